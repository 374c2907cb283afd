package join_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A foreign-key join on a cluster, orders (four partitions) referring to
// customers (three), with orders moving between customers, deleted, and
// customers changing and deleted while the app runs, in two runs of the
// app: once everything is processed, the last result of every order is the
// join of its last value with its customer's (inner and left).
func TestIntegrationForeignKeyJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			t.Parallel()
			testForeignKeyOnCluster(t, left)
		})
	}
}

func testForeignKeyOnCluster(t *testing.T, leftJoin bool) {
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d-%v", time.Now().UnixNano()%1e9, leftJoin)
	orders, customers, out, appID := "fkorders-"+suffix, "fkcustomers-"+suffix, "fkout-"+suffix, "fk-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 4, orders, out)
	kafkatest.CreateTopics(t, brokers, 3, customers)
	// Counts derived: the subscription topic takes the customers' (3),
	// the response topic the orders' (4).
	topics := join.ForeignKeyTopics{Subscription: appID + "-sub", Response: appID + "-resp"}

	b := kstreams.NewBuilder()
	os := table.FromTopic(b, "orders", orders, serde.String, serde.String, memory.Supplier())
	cs := table.FromTopic(b, "customers", customers, serde.String, serde.String, memory.Supplier())
	var j kstreams.Node[string, *string]
	if leftJoin {
		j = join.ForeignKeyLeft(os, cs, "fk", customerOf, func(_ string, o string, c *string) (string, error) { return o + "/" + str(c), nil }, topics, memory.Supplier())
	} else {
		j = join.ForeignKey(os, cs, "fk", customerOf, func(_ string, o, c string) (string, error) { return o + "/" + c, nil }, topics, memory.Supplier())
	}
	kstreams.Sink(j, "out", out, serde.String, table.Nullable(serde.String))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Client(t, brokers)
	orderRows, customerRows := map[string]string{}, map[string]string{}
	var history []string // inputs, for the failure message
	rng := rand.New(rand.NewPCG(1, 2))
	batch := func(n int) []*kgo.Record {
		var recs []*kgo.Record
		for range n {
			if rng.IntN(3) == 0 {
				c := fmt.Sprintf("c%d", rng.IntN(6))
				r := &kgo.Record{Topic: customers, Key: []byte(c), Timestamp: time.Now()}
				if rng.IntN(4) == 0 {
					delete(customerRows, c)
				} else {
					customerRows[c] = fmt.Sprintf("tier%d", rng.IntN(5))
					r.Value = []byte(customerRows[c])
				}
				history = append(history, fmt.Sprintf("%s=%s", c, r.Value))
				recs = append(recs, r)
				continue
			}
			o := fmt.Sprintf("o%02d", rng.IntN(20))
			r := &kgo.Record{Topic: orders, Key: []byte(o), Timestamp: time.Now()}
			if rng.IntN(5) == 0 {
				delete(orderRows, o)
			} else {
				orderRows[o] = fmt.Sprintf("c%d:i%d", rng.IntN(6), rng.IntN(100))
				r.Value = []byte(orderRows[o])
			}
			history = append(history, fmt.Sprintf("%s=%s", o, r.Value))
			recs = append(recs, r)
		}
		return recs
	}
	run := func(recs []*kgo.Record) {
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
			kstreams.WithCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		// Produced one by one, as the app runs: subscriptions and responses
		// cross later changes.
		for _, r := range recs {
			kafkatest.Produce(t, cl, r)
		}
		// Both inputs, then what they lead to, then what that leads to.
		for _, topic := range []string{orders, customers, topics.Subscription, topics.Response, topics.Subscription, topics.Response} {
			kafkatest.WaitCommitted(t, brokers, appID, topic, 60*time.Second)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("app: %v", err)
		}
	}
	run(batch(150))
	run(batch(150))

	details, err := kadm.NewClient(cl).ListTopics(context.Background(), topics.Subscription, topics.Response)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := len(details[topics.Subscription].Partitions), len(details[topics.Response].Partitions); n != 3 || m != 4 {
		t.Errorf("the app created the subscription topic with %d partitions and the response topic with %d; want 3 and 4", n, m)
	}
	got := map[string]string{}
	results := map[string][]string{}
	for _, r := range kafkatest.ReadToEnd(t, brokers, out) {
		results[string(r.Key)] = append(results[string(r.Key)], fmt.Sprintf("%s", r.Value))
		if r.Value == nil {
			delete(got, string(r.Key))
		} else {
			got[string(r.Key)] = string(r.Value)
		}
	}
	want := map[string]string{}
	for o, v := range orderRows {
		c, _ := customerOf(o, v)
		tier, ok := customerRows[c]
		switch {
		case ok:
			want[o] = v + "/" + tier
		case leftJoin:
			want[o] = v + "/~"
		}
	}
	var diffs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for k := range got {
			seen[k] = true
		}
		for k := range want {
			seen[k] = true
		}
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}) {
		if got[k] != want[k] {
			var hist []string
			for _, h := range history {
				if strings.HasPrefix(h, k+"=") || strings.HasPrefix(h, "c") {
					hist = append(hist, h)
				}
			}
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want %q; results %q; inputs %s", k, got[k], want[k], results[k], strings.Join(hist, " ")))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("last results differ from the join of the last rows:\n%s", strings.Join(diffs, "\n"))
	}
	if len(want) < 5 {
		t.Errorf("only %d orders join: the test checks little", len(want))
	}
}
