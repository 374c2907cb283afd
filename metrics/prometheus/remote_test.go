package prometheus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	kprom "github.com/kstreams-go/kstreams/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// reportingBackend is core's in-memory backend reporting each Get and
// Flush as a round trip of a remote service, as remote stores do through
// store.StatsReporter.
type reportingBackend struct {
	*memory.Backend
	get, flush store.StatsCounter
	closed     atomic.Bool
	opened     *atomic.Int64
}

func (b *reportingBackend) Get(k []byte) ([]byte, bool, error) {
	v, ok, err := b.Backend.Get(k)
	b.get.Add(len(k), len(v), time.Microsecond, err)
	return v, ok, err
}

func (b *reportingBackend) Flush() error {
	err := b.Backend.Flush()
	b.flush.Add(1, 0, time.Millisecond, err)
	return err
}

func (b *reportingBackend) Close() error {
	b.closed.Store(true)
	return b.Backend.Close()
}

func (b *reportingBackend) StoreStats() store.Stats {
	return store.Stats{Ops: map[string]store.OpStats{"get": b.get.Load(), "flush": b.flush.Load()}, Closed: b.closed.Load()}
}

// TestRemoteStoreMetrics counts records into a store whose backend reports
// store.StatsReporter, through Collector.Supplier, on the embedded cluster:
// one round trip per Get (one per record), bytes and time move, the task
// label comes WithPartitionLabels, and the totals do not go down when the
// App stops and its backends close.
func TestRemoteStoreMetrics(t *testing.T) {
	const records = 200
	c, err := embedded.NewCluster(embedded.Topic("in", 2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs := make([]embedded.Record[string, string], records)
	for i := range recs {
		recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("k%02d", i%20), Value: "v"}
	}
	if err := embedded.Produce(ctx, c, "in", serde.String, serde.String, recs...); err != nil {
		t.Fatal(err)
	}

	col, colP := kprom.New(), kprom.New(kprom.WithPartitionLabels())
	reg, regP := prom.NewPedanticRegistry(), prom.NewPedanticRegistry()
	reg.MustRegister(col)
	regP.MustRegister(colP)
	var opened atomic.Int64
	supplier := func(store.BackendContext) (store.Backend, error) {
		opened.Add(1)
		return &reportingBackend{Backend: memory.New(), opened: &opened}, nil
	}
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, col.Supplier(colP.Supplier(supplier)), store.WithoutChangelog()))
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	var processed atomic.Int64
	kstreams.Func(src, "count", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		st, err := counts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := st.Get(r.Key)
		if err != nil {
			return err
		}
		processed.Add(1)
		return st.Put(r.Key, n+1)
	}, kstreams.WithStores(counts))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("remote-metrics"),
		kstreams.WithCommitInterval(50*time.Millisecond), col.Option())
	if err != nil {
		t.Fatal(err)
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	for processed.Load() < records && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	// A scrape while the App runs: one get per record so far.
	m := scrape(t, reg)
	if v, _ := value(m, "kstreams_store_round_trips_total", "store", "counts", "operation", "get"); v != records {
		t.Errorf("get round trips while running: %v; want %d", v, records)
	}
	if v, _ := value(m, "kstreams_store_sent_bytes_total", "store", "counts", "operation", "get"); v != records*3 {
		t.Errorf("get bytes sent: %v; want %d (3-byte keys)", v, records*3)
	}
	if v, _ := value(m, "kstreams_store_round_trip_seconds_total", "store", "counts", "operation", "get"); v != records*1e-6 {
		t.Errorf("get seconds: %v; want %v", v, records*1e-6)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Stopped: the backends closed, their counts kept, at the first scrape
	// that finds them closed and at the next.
	for _, r := range []*prom.Registry{reg, reg} {
		m = scrape(t, r)
		if v, _ := value(m, "kstreams_store_round_trips_total", "store", "counts", "operation", "get"); v != records {
			t.Errorf("get round trips after the App stopped: %v; want %d", v, records)
		}
		if v, _ := value(m, "kstreams_store_round_trips_total", "store", "counts", "operation", "flush"); v < 1 {
			t.Errorf("flush round trips: %v; want at least one (a commit)", v)
		}
		if v, _ := value(m, "kstreams_store_round_trip_errors_total", "store", "counts", "operation", "get"); v != 0 {
			t.Errorf("errors: %v; want 0", v)
		}
	}
	if n := len(m["kstreams_store_round_trips_total"]); n != 2 {
		t.Errorf("%d round-trip series; want 2 (get, flush)", n)
	}
	// Per task: one series per task and operation, summing to the same.
	mp := scrape(t, regP)
	sum := 0.0
	for task := range 2 {
		v, ok := value(mp, "kstreams_store_round_trips_total", "store", "counts", "task", fmt.Sprintf("0_%d", task), "operation", "get")
		if !ok {
			t.Errorf("no series for task 0_%d", task)
		}
		sum += v
	}
	if sum != records || opened.Load() != 2 {
		t.Errorf("per-task gets sum to %v over %d backends; want %d over 2", sum, opened.Load(), records)
	}
}
