package join_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func str(p *string) string {
	if p == nil {
		return "~"
	}
	return *p
}

// step is one input record: topic, key, value (nil: a tombstone), and
// its timestamp as minutes after t0.
type step struct {
	topic, key string
	value      *string
	min        int
}

func v(s string) *string { return &s }

// run pipes steps into the topology and returns what it wrote to "out"
// as "key=value@minute" (value "null" for a tombstone).
func run(t *testing.T, b *kstreams.Builder, steps []step) string {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range steps {
		in := kstreamstest.Input(d, s.topic, serde.String, table.Nullable(serde.String))
		if err := in.PipeAt(s.key, s.value, t0.Add(time.Duration(s.min)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, r := range kstreamstest.Output(d, "out", serde.String, serde.Bytes).ReadRaw() {
		val := "null"
		if r.Value != nil {
			val = string(r.Value)
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Key, val, int(r.Timestamp.Sub(t0)/time.Minute)))
	}
	return strings.Join(out, " ")
}

func TestStreamTable(t *testing.T) {
	steps := []step{
		{"orders", "alice", v("o1"), 0}, // no customer yet
		{"customers", "alice", v("gold"), 1},
		{"orders", "alice", v("o2"), 2},
		{"customers", "alice", v("silver"), 3},
		{"orders", "alice", v("o3"), 1}, // joined with the table as it is now
		{"customers", "alice", nil, 5},
		{"orders", "alice", v("o4"), 6},
		{"orders", "bob", v("o5"), 7},
	}
	for _, tc := range []struct {
		name string
		want string
		wire func(orders kstreams.Node[string, string], customers table.Table[string, string]) kstreams.Node[string, string]
	}{
		{"inner", "alice=o2/gold@2 alice=o3/silver@1",
			func(o kstreams.Node[string, string], c table.Table[string, string]) kstreams.Node[string, string] {
				return join.StreamTable(o, c, "join", func(_ string, order, tier string) (string, error) { return order + "/" + tier, nil })
			}},
		{"left", "alice=o1/~@0 alice=o2/gold@2 alice=o3/silver@1 alice=o4/~@6 bob=o5/~@7",
			func(o kstreams.Node[string, string], c table.Table[string, string]) kstreams.Node[string, string] {
				return join.StreamTableLeft(o, c, "join", func(_ string, order string, tier *string) (string, error) { return order + "/" + str(tier), nil })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.String)
			customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
			kstreams.Sink(tc.wire(orders, customers), "out", "out", serde.String, serde.String)
			if got := run(t, b, steps); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestTableTable(t *testing.T) {
	steps := []step{
		{"right", "k", v("r1"), 0}, // left lacks k
		{"left", "k", v("l1"), 1},  // joined, stamped with the later row
		{"right", "k", v("r2"), 3}, //
		{"left", "k", nil, 2},      // left deleted; stamped 3 (right's row)
		{"left", "k", nil, 4},      // a tombstone of a key left no longer holds
		{"right", "k", nil, 5},     // right deleted, left lacks k
		{"left", "k", v("l2"), 6},  // right lacks k
		{"left", "x", nil, 7},      // a tombstone no table held
		{"right", "k", v("r3"), 8}, //
	}
	for _, tc := range []struct {
		name string
		want string
		wire func(l, r table.Table[string, string]) kstreams.Node[string, *string]
	}{
		{"inner", "k=l1+r1@1 k=l1+r2@3 k=null@3 k=null@4 k=l2+r3@8",
			func(l, r table.Table[string, string]) kstreams.Node[string, *string] {
				return join.TableTable(l, r, "join", func(_ string, a, b string) (string, error) { return a + "+" + b, nil })
			}},
		{"left", "k=l1+r1@1 k=l1+r2@3 k=null@3 k=null@4 k=l2+~@6 k=l2+r3@8",
			func(l, r table.Table[string, string]) kstreams.Node[string, *string] {
				return join.TableTableLeft(l, r, "join", func(_ string, a string, b *string) (string, error) { return a + "+" + str(b), nil })
			}},
		{"outer", "k=~+r1@0 k=l1+r1@1 k=l1+r2@3 k=~+r2@3 k=~+r2@4 k=null@5 k=l2+~@6 k=l2+r3@8",
			func(l, r table.Table[string, string]) kstreams.Node[string, *string] {
				return join.TableTableOuter(l, r, "join", func(_ string, a, b *string) (string, error) { return str(a) + "+" + str(b), nil })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			l := table.FromTopic(b, "l", "left", serde.String, serde.String, memory.Supplier())
			r := table.FromTopic(b, "r", "right", serde.String, serde.String, memory.Supplier())
			kstreams.Sink(tc.wire(l, r), "out", "out", serde.String, table.Nullable(serde.String))
			if got := run(t, b, steps); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestNilJoinerIsABuildError(t *testing.T) {
	b := kstreams.NewBuilder()
	orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.String)
	customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	kstreams.Sink(join.StreamTable[string, string, string, string](orders, customers, "join", nil), "out", "out", serde.String, serde.String)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "stream-table join join: nil joiner") {
		t.Errorf("Build: %v", err)
	}
}
