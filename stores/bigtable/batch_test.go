package bigtable

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// batchCount counts keys in batches: one GetMany for the keys of a whole
// batch, then a Put per record.
type batchCount struct {
	handle  kstreams.Store[store.KeyValueStore[string, int64]]
	pc      kstreams.ProcessorContext[string, string]
	counts  store.KeyValueStore[string, int64]
	batches *atomic.Int64
}

func (p *batchCount) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	p.pc = pc
	p.counts, err = p.handle.Get(pc)
	return err
}

func (p *batchCount) ProcessBatch(ctx context.Context, rs []kstreams.Record[string, string]) error {
	p.batches.Add(1)
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.Key
	}
	values, _, err := p.counts.GetMany(keys)
	if err != nil {
		return err
	}
	seen := map[string]int64{} // a key may come more than once in a batch
	for i, r := range rs {
		n, ok := seen[r.Key]
		if !ok {
			n = values[i]
		}
		n++
		seen[r.Key] = n
		if err := p.counts.Put(r.Key, n); err != nil {
			return err
		}
		if err := p.pc.Forward(ctx, kstreams.WithValue(r, strconv.FormatInt(n, 10))); err != nil {
			return err
		}
	}
	return nil
}

func (p *batchCount) Close() error { return nil }

// A batch processor (WithBatching) reads the keys of a whole batch in one
// ReadRows: under the runtime, on the embedded cluster, with the cache off,
// a second application reading the first one's counts makes at most one
// ReadRows per batch (a per-key Get would make one per key); the counts
// are exact.
func TestBatchProcessorReadsInOneCall(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const in, out, keys, records = "batch-in", "batch-out", 150, 600
	e := startEmulator(t)
	c, err := embedded.NewCluster(embedded.Topic(in, 1), embedded.Topic(out, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	b := kstreams.NewBuilder()
	handle := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, Supplier(e.client, e.table, WithCacheSize(0))))
	var batches atomic.Int64
	src := kstreams.Source(b, "src", []string{in}, serde.String, serde.String)
	counted := kstreams.ProcessBatch(src, "count", func() kstreams.BatchProcessor[string, string, string, string] {
		return &batchCount{handle: handle, batches: &batches}
	}, kstreams.WithStores(handle), kstreams.WithBatching(100, 20*time.Millisecond))
	kstreams.Sink(counted, "sink", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last map[string]string
	var before, after map[string]int
	for round := 1; round <= 2; round++ {
		recs := make([]embedded.Record[string, string], records)
		for i := range recs {
			recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("k%03d", i%keys), Value: "v"}
		}
		if err := embedded.Produce(ctx, c, in, serde.String, serde.String, recs...); err != nil {
			t.Fatal(err)
		}
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("bigtable-batch"),
			kstreams.WithCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		batches.Store(0)
		appCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		before = e.calls.snapshot()
		go func() { done <- app.Run(appCtx) }()
		got, err := embedded.ReadAtLeast(ctx, c, out, round*records, serde.String, serde.String)
		stop()
		if runErr := <-done; runErr != nil {
			t.Fatalf("round %d: app: %v", round, runErr)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		after = e.calls.snapshot()
		last = map[string]string{}
		for _, r := range got {
			last[r.Key] = r.Value
		}
	}
	want := strconv.Itoa(2 * records / keys)
	for k := range keys {
		if key := fmt.Sprintf("k%03d", k); last[key] != want {
			t.Errorf("last count of %s: %q, want %q", key, last[key], want)
		}
	}
	// ReadRows also serves the open (the meta row) and Range; the second
	// application opens one instance.
	reads := after["ReadRows"] - before["ReadRows"]
	n := int(batches.Load())
	t.Logf("second application: %d batches, %d ReadRows; calls since the start %v", n, reads, after)
	if reads > n+1 || reads < 2 {
		t.Errorf("%d batches read with %d ReadRows; want at most one per batch (and the open's)", n, reads)
	}
}
