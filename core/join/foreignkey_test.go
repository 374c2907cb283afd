package join_test

import (
	"strings"
	"testing"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

var fkTopics = join.ForeignKeyTopics{Subscription: "fk-subscription", SubscriptionPartitions: 1, Response: "fk-response", ResponsePartitions: 1}

// customerOf is the foreign key of an order "customer:item".
func customerOf(_ string, order string) (string, error) {
	c, _, _ := strings.Cut(order, ":")
	return c, nil
}

// Orders (keyed by order id) refer to customers by the customer id in
// their value.
func TestForeignKey(t *testing.T) {
	steps := []step{
		{"customers", "c1", v("gold"), 0},   // no order refers to c1
		{"orders", "o1", v("c1:a"), 1},      // joined, stamped with the later row
		{"orders", "o2", v("c2:b"), 2},      // c2 missing
		{"customers", "c2", v("silver"), 3}, // o2 joins now
		{"orders", "o1", v("c2:x"), 4},      // o1 moves to c2
		{"customers", "c1", v("plat"), 5},   // o1 no longer refers to c1
		{"customers", "c2", nil, 6},         // both orders lose their customer
		{"orders", "o2", nil, 7},            // o2 deleted
		{"orders", "o3", v("c3:z"), 8},      // c3 missing
		{"orders", "o4", nil, 9},            // a tombstone of an order never held
		{"customers", "c1", v("gold"), 10},  // o1 still refers to c2
	}
	for _, tc := range []struct {
		name string
		want string
		wire func(orders, customers table.Table[string, string]) kstreams.Node[string, *string]
	}{
		{"inner", "o1=c1:a/gold@1 o2=c2:b/silver@3 o1=c2:x/silver@4 o1=null@6 o2=null@6 o2=null@7",
			func(o, c table.Table[string, string]) kstreams.Node[string, *string] {
				return join.ForeignKey(o, c, "fk", customerOf, func(_ string, order, tier string) (string, error) { return order + "/" + tier, nil },
					fkTopics, memory.Supplier())
			}},
		{"left", "o1=c1:a/gold@1 o2=c2:b/~@2 o2=c2:b/silver@3 o1=c2:x/silver@4 o1=c2:x/~@6 o2=c2:b/~@6 o2=null@7 o3=c3:z/~@8",
			func(o, c table.Table[string, string]) kstreams.Node[string, *string] {
				return join.ForeignKeyLeft(o, c, "fk", customerOf, func(_ string, order string, tier *string) (string, error) { return order + "/" + str(tier), nil },
					fkTopics, memory.Supplier())
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			orders := table.FromTopic(b, "orders", "orders", serde.String, serde.String, memory.Supplier())
			customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
			kstreams.Sink(tc.wire(orders, customers), "out", "out", serde.String, table.Nullable(serde.String))
			if got := run(t, b, steps); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestForeignKeyBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		topics join.ForeignKeyTopics
		fk     func(string, string) (string, error)
		want   string
	}{
		{"no topics", join.ForeignKeyTopics{}, customerOf, `foreign-key join fk: the subscription and response topics must be named, and differ (got "" and "")`},
		{"one topic", join.ForeignKeyTopics{Subscription: "x", Response: "x", SubscriptionPartitions: 1, ResponsePartitions: 1}, customerOf, "must be named, and differ"},
		{"nil extractor", fkTopics, nil, "foreign-key join fk: nil foreign-key extractor or joiner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			orders := table.FromTopic(b, "orders", "orders", serde.String, serde.String, memory.Supplier())
			customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
			j := join.ForeignKey(orders, customers, "fk", tc.fk, func(_, o, c string) (string, error) { return o + c, nil }, tc.topics, memory.Supplier())
			kstreams.Sink(j, "out", "out", serde.String, table.Nullable(serde.String))
			if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want %q", err, tc.want)
			}
		})
	}
}

// Partition counts left to derive: the subscription topic gets the right
// table's (3), the response topic the left table's (4), and rows of any
// partitions join.
func TestForeignKeyDerivedPartitions(t *testing.T) {
	b := kstreams.NewBuilder()
	orders := table.FromTopic(b, "orders", "orders", serde.String, serde.String, memory.Supplier())
	customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	j := join.ForeignKey(orders, customers, "fk", customerOf, func(_ string, order, tier string) (string, error) { return order + "/" + tier, nil },
		join.ForeignKeyTopics{Subscription: "fk-sub", Response: "fk-resp"}, memory.Supplier())
	kstreams.Sink(j, "out", "out", serde.String, table.Nullable(serde.String))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo, kstreamstest.WithPartitions("orders", 4), kstreamstest.WithPartitions("customers", 3))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cust := kstreamstest.Input(d, "customers", serde.String, serde.String)
	ord := kstreamstest.Input(d, "orders", serde.String, serde.String)
	for _, in := range []struct {
		topic      *kstreamstest.InputTopic[string, string]
		key, value string
		partition  int32
	}{{cust, "c1", "gold", 2}, {ord, "o1", "c1:a", 3}, {ord, "o2", "c1:b", 1}, {cust, "c1", "plat", 2}} {
		if err := in.topic.PipeRecord(kstreams.Record[string, string]{Key: in.key, Value: in.value, Timestamp: t0, Origin: kstreams.Origin{Partition: in.partition}}); err != nil {
			t.Fatal(err)
		}
	}
	raw := kstreamstest.Output(d, "out", serde.String, serde.String).ReadRaw()
	var got []string
	for _, r := range raw {
		got = append(got, string(r.Key)+"="+string(r.Value))
	}
	if want := "o1=c1:a/gold o2=c1:b/gold o1=c1:a/plat o2=c1:b/plat"; strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	resp := map[int32]bool{}
	for _, r := range kstreamstest.Output(d, "fk-resp", serde.Bytes, serde.Bytes).ReadRaw() {
		resp[r.Partition] = true
	}
	if !resp[3] || !resp[1] || len(resp) != 2 {
		t.Errorf("answers written to partitions %v of the response topic, want those of the orders (1 and 3)", resp)
	}
}
