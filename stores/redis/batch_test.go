package redis

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
// batch, then a Put per key.
type batchCount struct {
	handle  kstreams.Store[store.KeyValueStore[string, int64]]
	pc      kstreams.ProcessorContext[string, string]
	counts  store.KeyValueStore[string, int64]
	batches *atomic.Int64
	records *atomic.Int64
}

func (p *batchCount) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	p.pc = pc
	p.counts, err = p.handle.Get(pc)
	return err
}

func (p *batchCount) ProcessBatch(ctx context.Context, rs []kstreams.Record[string, string]) error {
	p.batches.Add(1)
	p.records.Add(int64(len(rs)))
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.Key
	}
	values, _, err := p.counts.GetMany(keys)
	if err != nil {
		return err
	}
	// A key may come more than once in a batch: count on from the batch's
	// own updates.
	seen := map[string]int64{}
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
// round trip: under the runtime, on the embedded cluster and a real
// redis-server, with the read cache off so that every read the buffer
// cannot answer goes to Redis, the store sends at most one HMGET per batch
// and never a single-key HGET; the counts are exact.
func TestBatchProcessorReadsInOneRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const in, out, keys, records = "batch-in", "batch-out", 150, 600
	rdb, rt := newClient(t, startRedis(t))
	c, err := embedded.NewCluster(embedded.Topic(in, 1), embedded.Topic(out, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	b := kstreams.NewBuilder()
	handle := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, Supplier(rdb, WithReadCache(0))))
	var batches, seen atomic.Int64
	src := kstreams.Source(b, "src", []string{in}, serde.String, serde.String)
	counted := kstreams.ProcessBatch(src, "count", func() kstreams.BatchProcessor[string, string, string, string] {
		return &batchCount{handle: handle, batches: &batches, records: &seen}
	}, kstreams.WithStores(handle), kstreams.WithBatching(100, 20*time.Millisecond))
	kstreams.Sink(counted, "sink", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Two applications one after the other: the second finds the counts of
	// the first in Redis, so its reads go there (the first one's store
	// starts empty and knows it: it reads nothing).
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
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("redis-batch"),
			kstreams.WithCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		batches.Store(0)
		appCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		before = rt.names.snapshot()
		go func() { done <- app.Run(appCtx) }()
		got, err := embedded.ReadAtLeast(ctx, c, out, round*records, serde.String, serde.String)
		stop()
		if runErr := <-done; runErr != nil {
			t.Fatalf("round %d: app: %v", round, runErr)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		after = rt.names.snapshot()
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
	hmget, hget := after["hmget"]-before["hmget"], after["hget"]-before["hget"]
	n := batches.Load()
	t.Logf("second application: %d batches, %d HMGET, %d HGET; commands since the start %v (%d records in all)", n, hmget, hget, after, seen.Load())
	if hget != 0 || hmget > int(n) || hmget == 0 {
		t.Errorf("%d batches read with %d HMGET and %d HGET; want at most one HMGET per batch (and some), no HGET", n, hmget, hget)
	}
}
