package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	exactApp  = "redis-exact"
	exactIn   = "exact-in"
	exactOut  = "exact-out"
	exactEnv  = "KSTREAMS_REDIS_EXACT_CHILD" // brokers|redis address|flushes: run as the killed instance
	exactPart = 4
)

// countOne counts each key in one store and emits the count.
type countOne struct {
	st kstreams.Store[store.KeyValueStore[string, int64]]
	pc kstreams.ProcessorContext[string, string]
	kv store.KeyValueStore[string, int64]
}

func (c *countOne) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	c.pc = pc
	c.kv, err = c.st.Get(pc)
	return err
}

func (c *countOne) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.kv.Get(r.Key)
	if err != nil {
		return err
	}
	if err := c.kv.Put(r.Key, n+1); err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, strconv.FormatInt(n+1, 10)))
}

func (c *countOne) Close() error { return nil }

func exactTopology(tb testing.TB, supplier store.Supplier) *kstreams.Topology {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, supplier, store.WithoutChangelog()))
	src := kstreams.Source(b, "src", []string{exactIn}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, string] {
		return &countOne{st: counts}
	}, kstreams.WithStores(counts))
	kstreams.Sink(counted, "sink", exactOut, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return topo
}

// crashAfterFlush is the Redis backend of the killed instance: once its
// process has made `after` FlushInputs that wrote records' effects, it
// kills the process (SIGKILL) as soon as the next one returns, before the
// runtime commits the offsets it flushed.
type crashAfterFlush struct {
	*Backend
	flushes *atomic.Int64
	after   int64
}

func (c crashAfterFlush) FlushInputs(o store.InputOffsets) error {
	c.Backend.mu.Lock()
	writes := !c.Backend.cur.isEmpty()
	c.Backend.mu.Unlock()
	err := c.Backend.FlushInputs(o)
	if err == nil && writes && c.flushes.Add(1) > c.after {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	return err
}

// TestExactKillHelper is the instance TestKillBetweenFlushAndCommit kills.
func TestExactKillHelper(t *testing.T) {
	spec := os.Getenv(exactEnv)
	if spec == "" {
		t.Skip("run by TestKillBetweenFlushAndCommit")
	}
	parts := strings.Split(spec, "|")
	after, _ := strconv.ParseInt(parts[2], 10, 64)
	client := redis.NewClient(&redis.Options{Addr: parts[1]})
	var flushes atomic.Int64
	supplier := func(bctx store.BackendContext) (store.Backend, error) {
		b, err := Open(client, bctx)
		if err != nil {
			return nil, err
		}
		return crashAfterFlush{b, &flushes, after}, nil
	}
	app, err := kstreams.NewApp(exactTopology(t, supplier), exactAppOptions(strings.Split(parts[0], ","))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(app.Run(context.Background())) // returns only on failure
}

func exactAppOptions(brokers []string) []kstreams.Option {
	return []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(exactApp),
		kstreams.WithCommitInterval(50 * time.Millisecond), kstreams.WithSessionTimeout(time.Second)}
}

// storedAhead returns the partitions whose input offsets in Redis are
// ahead of the group's committed offsets: the work of a flush whose
// commit never came.
func storedAhead(t *testing.T, ctx context.Context, c *embedded.Cluster, rdb redis.UniversalClient) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, exactApp)
	if err != nil {
		t.Fatal(err)
	}
	var ahead []string
	for p := range int32(exactPart) {
		raw, err := rdb.HGet(ctx, Keys(exactApp, "counts", p).Meta, "inputs").Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		in, err := store.ParseInputOffsets(raw)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(0)
		if o, ok := committed.Lookup(exactIn, p); ok {
			off = o.At
		}
		if in[exactIn] > off {
			ahead = append(ahead, fmt.Sprintf("partition %d: stored %d, committed %d", p, in[exactIn], off))
		}
	}
	return ahead
}

// A count in Redis without changelog, killed (SIGKILL) right after the
// runtime flushed the store with the input offsets and before it committed
// them, twice; a last instance finishes. The restarts resume from the
// offsets Redis holds, not the older committed ones: every key's final
// count, in Redis and in the last output, is exactly its number of records
// (none lost, none applied twice).
func TestKillBetweenFlushAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const keys, records = 40, 8000
	addr := startRedis(t)
	rdb, _ := newClient(t, addr)
	c, err := embedded.NewCluster(embedded.Topic(exactIn, exactPart), embedded.Topic(exactOut, exactPart), embedded.MinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produced := make(chan error, 1)
	go func() {
		for batch := range records / 200 {
			recs := make([]embedded.Record[string, string], 200)
			for i := range recs {
				recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("k%02d", (batch*200+i)%keys), Value: "v"}
			}
			if err := embedded.Produce(ctx, c, exactIn, serde.String, serde.String, recs...); err != nil {
				produced <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		produced <- nil
	}()

	for kill, after := range []int{6, 10} {
		child := exec.Command(os.Args[0], "-test.run=^TestExactKillHelper$")
		child.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d", exactEnv, strings.Join(c.Brokers(), ","), addr, after))
		var out strings.Builder
		child.Stdout, child.Stderr = &out, &out
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		// The child kills itself after a FlushInputs; one that never calls
		// it (a runtime that only calls Flush) is stopped after a while.
		timer := time.AfterFunc(30*time.Second, func() { child.Process.Signal(syscall.SIGTERM) })
		err := child.Wait()
		timer.Stop()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: the child ended with %v, not killed after a flush; it printed:\n%s", kill+1, err, out.String())
		}
		ahead := storedAhead(t, ctx, c, rdb)
		if len(ahead) == 0 {
			t.Fatalf("kill %d: no partition's stored input offsets are ahead of the committed ones: the crash did not fall between a flush and its commit", kill+1)
		}
		t.Logf("kill %d after a flush, before its commit: %s", kill+1, strings.Join(ahead, "; "))
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}

	app, err := kstreams.NewApp(exactTopology(t, Supplier(rdb)), exactAppOptions(c.Brokers())...)
	if err != nil {
		t.Fatal(err)
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	want := records / keys
	for {
		data := map[string]int64{}
		for p := range int32(exactPart) {
			m, err := rdb.HGetAll(ctx, Keys(exactApp, "counts", p).Data).Result()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				n, err := serde.StoreForm(serde.Int64).Deserialize("", nil, []byte(v))
				if err != nil {
					t.Fatal(err)
				}
				data[k] = n
			}
		}
		reached := len(data) == keys
		for _, n := range data {
			reached = reached && n >= int64(want)
		}
		if reached {
			over := 0
			for k, n := range data {
				if n != int64(want) {
					t.Errorf("key %s: Redis holds %d, want exactly %d", k, n, want)
					over += int(n) - want
				}
			}
			if over != 0 {
				t.Fatalf("counts above the truth by %d in all: records applied twice", over)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the final instance stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("counts never reached %d per key: %v", want, data)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The outputs: each key's counts, in order, may repeat (records whose
	// outputs were written before a kill are emitted again) but never skip
	// or exceed the truth, and the last is exact.
	var got []embedded.Record[string, string]
	last, repeated := map[string]int{}, 0
	for {
		if got, err = embedded.Read(ctx, c, exactOut, serde.String, serde.String); err != nil {
			t.Fatal(err)
		}
		last, repeated = map[string]int{}, 0
		for _, r := range got {
			n, _ := strconv.Atoi(r.Value)
			switch prev := last[r.Key]; {
			case n == prev+1:
			case n <= prev:
				repeated++ // an output emitted again after a kill
			default:
				t.Fatalf("key %s: count %d follows %d: records skipped", r.Key, n, prev)
			}
			if n > want {
				t.Fatalf("key %s: output count %d above the truth %d", r.Key, n, want)
			}
			last[r.Key] = max(last[r.Key], n)
		}
		all := len(last) == keys
		for _, n := range last {
			all = all && n == want
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the outputs never reached %d per key: %v", want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for k := range keys {
		if n := last[fmt.Sprintf("k%02d", k)]; n != want {
			t.Errorf("key k%02d: last output %d, want %d", k, n, want)
		}
	}
	t.Logf("%d outputs for %d records (%d emitted again after the kills); every count exact", len(got), records, repeated)
}
