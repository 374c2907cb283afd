package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
)

// startRedis starts a redis-server of its own on 127.0.0.1 (a free port, no
// persistence, a temporary directory), stopped when the test ends. Without
// the binary the test is skipped, or fails when tools/test.sh requires
// services.
func startRedis(tb testing.TB) (addr string) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not installed: run tools/services/redis.sh (tools/test.sh does)"
		if os.Getenv("KSTREAMS_TEST_SERVICES") == "required" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	dir := tb.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(tb)
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			tb.Fatalf("starting redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		if waitReady(addr, exited) {
			tb.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return addr
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			tb.Fatalf("redis-server on %s did not start:\n%s", addr, log)
		}
	}
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitReady waits up to 10 s for the server to answer PING.
func waitReady(addr string, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// newClient returns a client of addr, closed when the test ends, counting
// the round trips it makes (a pipeline counts as one).
func newClient(tb testing.TB, addr string) (*redis.Client, *roundTrips) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() { c.Close() })
	rt := &roundTrips{}
	c.AddHook(rt)
	return c, rt
}

// roundTrips is a go-redis hook counting commands sent, by name.
type roundTrips struct {
	n     atomic.Int64
	names commandNames
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		r.names.add(strings.ToLower(cmd.Name()))
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		r.names.add("pipeline")
		return next(ctx, cmds)
	}
}

func (r *roundTrips) count() int64 { return r.n.Load() }

var testApps atomic.Int64

// uniqueContext returns a BackendContext no other test uses on a shared
// server.
func uniqueContext(storeName string) store.BackendContext {
	return store.BackendContext{App: fmt.Sprintf("test-%d", testApps.Add(1)), Store: storeName, Task: "0_0"}
}

// openTest opens a backend of a new store instance on addr's server,
// closed when the test ends.
func openTest(tb testing.TB, c redis.UniversalClient, opts ...Option) *Backend {
	tb.Helper()
	b, err := Open(c, uniqueContext("s"), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// commandNames counts command names.
type commandNames struct {
	mu sync.Mutex
	m  map[string]int
}

func (a *commandNames) add(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]int{}
	}
	a.m[name]++
}

func (a *commandNames) snapshot() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, v := range a.m {
		out[k] = v
	}
	return out
}
