package bigtable

import (
	"context"
	"fmt"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// countBoth counts each key in a logged and an unlogged store and emits
// both counts.
type countBoth struct {
	loggedStore, unloggedStore kstreams.Store[store.KeyValueStore[string, int64]]
	pc                         kstreams.ProcessorContext[string, string]
	logged, unlogged           store.KeyValueStore[string, int64]
}

func (c *countBoth) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	c.pc = pc
	if c.logged, err = c.loggedStore.Get(pc); err != nil {
		return err
	}
	c.unlogged, err = c.unloggedStore.Get(pc)
	return err
}

func (c *countBoth) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	var counts [2]int64
	for i, s := range []store.KeyValueStore[string, int64]{c.logged, c.unlogged} {
		n, _, err := s.Get(r.Key)
		if err != nil {
			return err
		}
		if err := s.Put(r.Key, n+1); err != nil {
			return err
		}
		counts[i] = n + 1
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, fmt.Sprintf("%d/%d", counts[0], counts[1])))
}

func (c *countBoth) Close() error { return nil }

// A count under the runtime, in a logged and an unlogged store, over two
// runs of the application: the counts carry on from Bigtable, each
// instance was opened by both runs, only the logged store holds a
// changelog offset and only the unlogged one input offsets,
// and the round trips stay far below one per record.
func TestCountUnderRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const in, out, partitions, keys, perRound = "views", "counts", 2, 30, 3000
	e := startEmulator(t)
	c, err := embedded.NewCluster(embedded.Topic(in, partitions), embedded.Topic(out, partitions))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	supplier := Supplier(e.client, e.table)
	b := kstreams.NewBuilder()
	logged := kstreams.AddStore(b, store.KeyValue("logged", serde.String, serde.Int64, supplier))
	unlogged := kstreams.AddStore(b, store.KeyValue("unlogged", serde.String, serde.Int64, supplier, store.WithoutChangelog()))
	src := kstreams.Source(b, "src", []string{in}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, string] {
		return &countBoth{loggedStore: logged, unloggedStore: unlogged}
	}, kstreams.WithStores(logged, unlogged))
	kstreams.Sink(counted, "sink", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	before := e.rpcs.Load()
	var last map[string]string
	for round := 1; round <= 2; round++ {
		recs := make([]embedded.Record[string, string], perRound)
		for i := range recs {
			recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("k%02d", i%keys), Value: "v"}
		}
		if err := embedded.Produce(ctx, c, in, serde.String, serde.String, recs...); err != nil {
			t.Fatal(err)
		}
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("bigtable-count"),
			kstreams.WithCommitInterval(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		appCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- app.Run(appCtx) }()
		got, err := embedded.ReadAtLeast(ctx, c, out, round*perRound, serde.String, serde.String)
		stop()
		if runErr := <-done; runErr != nil {
			t.Fatalf("round %d: app: %v", round, runErr)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		last = map[string]string{}
		for _, r := range got {
			last[r.Key] = r.Value
		}
	}
	want := fmt.Sprintf("%d/%d", 2*perRound/keys, 2*perRound/keys)
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		if last[key] != want {
			t.Errorf("last count of %s: %q, want %q", key, last[key], want)
		}
	}
	calls := e.rpcs.Load() - before
	perRecord := float64(calls) / (2 * perRound)
	t.Logf("%d calls to Bigtable for %d records in 2 stores (%.4f per record)", calls, 2*perRound, perRecord)
	if perRecord >= 0.1 {
		t.Errorf("%d calls for %d records: the stores are not batching", calls, 2*perRound)
	}
	for p := range int32(partitions) {
		for _, s := range []string{"logged", "unlogged"} {
			st, err := ReadInstanceState(ctx, e.client, e.table, DefaultFamily, "bigtable-count", s, p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Epoch < 2 || st.HasOffset != (s == "logged") || (st.Inputs != nil) != (s == "unlogged") || st.Pending {
				t.Errorf("store %s partition %d: %+v; want epoch 2 or more, a changelog offset only with a changelog, input offsets only without, no pending flush", s, p, st)
			}
		}
	}
}
