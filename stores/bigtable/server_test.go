package bigtable

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/bigtable/bttest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kstreams-go/kstreams/core/store"
)

// emulator is an in-process Bigtable emulator with one table, and a client
// whose calls are counted.
type emulator struct {
	srv    *bttest.Server // nil when the emulator runs in another process
	addr   string
	client *bigtable.Client
	admin  *bigtable.AdminClient
	table  string
	rpcs   *atomic.Int64
	calls  *methodCalls  // the counted calls by method
	rtt    time.Duration // added to every call of the counted clients
	proc   *os.Process   // the emulator's process, when it has its own
}

const testTable = "kstreams"

// startEmulator starts the emulator for t (or b) and stops it at cleanup.
func startEmulator(tb testing.TB) *emulator { return startEmulatorRTT(tb, 0) }

// startEmulatorRTT is startEmulator with rtt added to each call of the
// store's clients, as a network round trip would.
func startEmulatorRTT(tb testing.TB, rtt time.Duration) *emulator {
	tb.Helper()
	srv, err := bttest.NewServer("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	e := &emulator{srv: srv, addr: srv.Addr, table: testTable, rpcs: new(atomic.Int64), calls: &methodCalls{}, rtt: rtt}
	ctx := context.Background()
	e.admin, err = bigtable.NewAdminClient(ctx, "proj", "inst", option.WithGRPCConn(dial(tb, srv.Addr, nil, nil, 0)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.admin.Close() })
	if err := CreateTable(ctx, e.admin, e.table); err != nil {
		tb.Fatal(err)
	}
	e.client = e.newClient(tb)
	return e
}

// newClient returns another client of the emulator (another process, as
// far as the store can tell), counting its calls in e.rpcs.
func (e *emulator) newClient(tb testing.TB) *bigtable.Client {
	tb.Helper()
	c, err := bigtable.NewClientWithConfig(context.Background(), "proj", "inst",
		bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}},
		option.WithGRPCConn(dial(tb, e.addr, e.rpcs, e.calls, e.rtt)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// dial connects to addr; calls are counted in rpcs (and by method in
// calls) when it is not nil, and each is delayed by rtt.
func dial(tb testing.TB, addr string, rpcs *atomic.Int64, calls *methodCalls, rtt time.Duration) *grpc.ClientConn {
	tb.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if rpcs != nil {
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				rpcs.Add(1)
				calls.add(method)
				time.Sleep(rtt)
				return invoker(ctx, method, req, reply, cc, opts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				rpcs.Add(1)
				calls.add(method)
				time.Sleep(rtt)
				return streamer(ctx, desc, cc, method, opts...)
			}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// open opens the instance of ctx with the emulator's client.
func (e *emulator) open(tb testing.TB, ctx store.BackendContext, opts ...Option) *Backend {
	tb.Helper()
	return e.openWith(tb, e.client, ctx, opts...)
}

func (e *emulator) openWith(tb testing.TB, c *bigtable.Client, ctx store.BackendContext, opts ...Option) *Backend {
	tb.Helper()
	b, err := Supplier(c, e.table, opts...)(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return b.(*Backend)
}

var instanceCount atomic.Int64

// freshContext names a store instance no other test uses.
func freshContext() store.BackendContext {
	n := instanceCount.Add(1)
	return store.BackendContext{App: "test", Store: fmt.Sprintf("s%d", n), Task: "0_0", Partition: int32(n)}
}

// methodCalls counts calls by gRPC method name (the part after the last
// slash: ReadRows, MutateRows, CheckAndMutateRow, ...).
type methodCalls struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *methodCalls) add(method string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[method[strings.LastIndexByte(method, '/')+1:]]++
}

// snapshot returns the counts so far.
func (c *methodCalls) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}
