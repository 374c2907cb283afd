package join_test

import (
	"strings"
	"testing"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
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
