package join_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

// Orders keyed by order id carry "customer:item"; the global table of
// customers (keyed by customer) is on a topic with another partition
// count, and every partition's task sees all of it.
func TestStreamGlobalTable(t *testing.T) {
	customerOf := func(_ string, order string) (string, error) {
		c, _, _ := strings.Cut(order, ":")
		return c, nil
	}
	for _, tc := range []struct {
		name string
		want []string
		wire func(orders kstreams.Node[string, string], customers table.GlobalTable[string, string]) kstreams.Node[string, string]
	}{
		{"inner", []string{"o2=alice:b/gold@2", "o3=bob:c/silver@3", "o4=alice:d/platinum@4"},
			func(o kstreams.Node[string, string], c table.GlobalTable[string, string]) kstreams.Node[string, string] {
				return join.StreamGlobalTable(o, c, "join", customerOf, func(_ string, order, tier string) (string, error) { return order + "/" + tier, nil })
			}},
		{"left", []string{"o1=alice:a/~@0", "o2=alice:b/gold@2", "o3=bob:c/silver@3", "o4=alice:d/platinum@4", "o5=bob:e/~@6", "o6=carol:f/~@7"},
			func(o kstreams.Node[string, string], c table.GlobalTable[string, string]) kstreams.Node[string, string] {
				return join.StreamGlobalTableLeft(o, c, "join", customerOf, func(_ string, order string, tier *string) (string, error) {
					return order + "/" + str(tier), nil
				})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.String)
			customers := table.Global(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
			kstreams.Sink(tc.wire(orders, customers), "out", "out", serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := kstreamstest.New(topo, kstreamstest.WithPartitions("orders", 4), kstreamstest.WithPartitions("customers", 3))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := kstreamstest.Input(d, "orders", serde.String, serde.String)
			cust := kstreamstest.Input(d, "customers", serde.String, table.Nullable(serde.String))
			at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
			pipe := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			order := func(id, v string, m int, p int32) {
				pipe(in.PipeRecord(kstreams.Record[string, string]{Key: id, Value: v, Timestamp: at(m), Origin: kstreams.Origin{Partition: p}}))
			}
			customer := func(k string, v *string, m int, p int32) {
				pipe(cust.PipeRecord(kstreams.Record[string, *string]{Key: k, Value: v, Timestamp: at(m), Origin: kstreams.Origin{Partition: p}}))
			}
			order("o1", "alice:a", 0, 0)
			customer("alice", v("gold"), 1, 2)
			customer("bob", v("silver"), 1, 0)
			order("o2", "alice:b", 2, 1)
			order("o3", "bob:c", 3, 3)
			customer("alice", v("platinum"), 4, 1) // another partition than before
			order("o4", "alice:d", 4, 2)
			customer("bob", nil, 5, 0)
			order("o5", "bob:e", 6, 0)
			order("o6", "carol:f", 7, 3)
			recs, err := kstreamstest.Output(d, "out", serde.String, serde.String).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, int(r.Timestamp.Sub(t0)/time.Minute)))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			if n := len(d.Tasks()); n != 4 {
				t.Errorf("%d tasks (%v), want the 4 of the orders' partitions", n, d.Tasks())
			}
		})
	}
}

// writer tries to write the global table it reads.
type writer struct {
	customers table.GlobalTable[string, string]
	kv        store.KeyValueStore[string, table.Row[string]]
}

func (w *writer) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	w.kv, err = w.customers.Store().Get(pc)
	return err
}

func (w *writer) Process(_ context.Context, r kstreams.Record[string, string]) error {
	return w.kv.Put(r.Key, table.Row[string]{Value: r.Value})
}

func (w *writer) Close() error { return nil }

func TestGlobalTableRefusesWrites(t *testing.T) {
	b := kstreams.NewBuilder()
	orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.String)
	customers := table.Global(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	kstreams.Process(orders, "write", func() kstreams.Processor[string, string, string, string] {
		return &writer{customers: customers}
	}, kstreams.WithStores(customers.Store()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = kstreamstest.Input(d, "orders", serde.String, serde.String).Pipe("alice", "x")
	if err == nil || !strings.Contains(err.Error(), "global store customers is read-only") {
		t.Fatalf("a processor's write: %v", err)
	}
	kv, err := kstreamstest.GetStore[store.KeyValueStore[string, table.Row[string]]](d, "customers")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := kv.Get("alice"); ok || err != nil {
		t.Errorf("alice in the global table after a refused write: %v %v", ok, err)
	}
}

// Two streams of different partition counts read one global table: they
// stay in sub-topologies of their own, and a global topic cannot be a
// source too.
func TestGlobalTableJoinsNoSubtopologies(t *testing.T) {
	b := kstreams.NewBuilder()
	customers := table.Global(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	id := func(k, _ string) (string, error) { return k, nil }
	joiner := func(_, a, b string) (string, error) { return a + "/" + b, nil }
	a := kstreams.Source(b, "a", []string{"a"}, serde.String, serde.String)
	c := kstreams.Source(b, "c", []string{"c"}, serde.String, serde.String)
	kstreams.Sink(join.StreamGlobalTable(a, customers, "join-a", id, joiner), "out-a", "out", serde.String, serde.String)
	kstreams.Sink(join.StreamGlobalTable(c, customers, "join-c", id, joiner), "out-c", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if desc := topo.String(); !strings.HasSuffix(desc, "\nGlobal store: customers (topic: customers)\n") || strings.Count(desc, "Sub-topology") != 2 {
		t.Errorf("described as\n%s", desc)
	}
	d, err := kstreamstest.New(topo, kstreamstest.WithPartitions("a", 2), kstreamstest.WithPartitions("c", 5))
	if err != nil {
		t.Fatalf("streams of different partition counts reading one global table: %v", err)
	}
	defer d.Close()
	if err := kstreamstest.Input(d, "customers", serde.String, serde.String).Pipe("k", "gold"); err != nil {
		t.Fatal(err)
	}
	if err := kstreamstest.Input(d, "c", serde.String, serde.String).PipeRecord(kstreams.Record[string, string]{Key: "k", Value: "x", Origin: kstreams.Origin{Partition: 4}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := kstreamstest.Output(d, "out", serde.String, serde.String).ReadAll(); len(got) != 1 || got[0].Value != "x/gold" {
		t.Errorf("output %v", got)
	}

	b = kstreams.NewBuilder()
	table.Global(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	src := kstreams.Source(b, "src", []string{"customers"}, serde.String, serde.String)
	kstreams.Sink(src, "out", "out", serde.String, serde.String)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `topic "customers" is read by source "src" and by global store "customers"`) {
		t.Errorf("Build with a global topic read by a source: %v", err)
	}

	b = kstreams.NewBuilder()
	g := table.Global(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	kstreams.Sink(join.StreamGlobalTable[string, string, string, string, string](kstreams.Source(b, "a", []string{"a"}, serde.String, serde.String), g, "join", nil, joiner),
		"out", "out", serde.String, serde.String)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "stream-global-table join join: nil key mapper or joiner") {
		t.Errorf("Build with a nil key mapper: %v", err)
	}

	b = kstreams.NewBuilder()
	kstreams.AddGlobalStore(b, store.KeyValue("g", serde.String, serde.String, memory.Supplier()))
	kstreams.Sink(kstreams.Source(b, "a", []string{"a"}, serde.String, serde.String), "out", "out", serde.String, serde.String)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `global store "g" names no topic (declare it with store.WithSourceChangelog)`) {
		t.Errorf("Build with a global store without a topic: %v", err)
	}
}
