package join_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Orders (keyed by order id, four partitions) joined with a global table
// of customers (three partitions) on a cluster: the customers written
// before the start are all in the table before the first order is
// processed, updates made while the app runs reach it, and a restart
// fills it again from the topic (a deleted customer stays deleted). The
// app creates no topic of its own.
func TestIntegrationStreamGlobalTableJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	orders, customers, out, appID := "gorders-"+suffix, "gcustomers-"+suffix, "genriched-"+suffix, "gjoin-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 4, orders, out)
	kafkatest.CreateTopics(t, brokers, 3, customers)

	b := kstreams.NewBuilder()
	ords := kstreams.Source(b, "orders", []string{orders}, serde.String, serde.String)
	// Slow writes: the fill takes a second, longer than joining the group,
	// so an order processed before the fill completed would miss its
	// customer.
	cs := table.Global(b, "customers", customers, serde.String, serde.String, slowSupplier(30*time.Millisecond))
	enriched := join.StreamGlobalTableLeft(ords, cs, "enrich",
		func(_ string, customer string) (string, error) { return customer, nil },
		func(_ string, customer string, tier *string) (string, error) { return customer + "/" + str(tier), nil })
	kstreams.Sink(enriched, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Client(t, brokers)
	rec := func(topic, key, value string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key), Timestamp: time.Now()}
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	start := func() (stop func()) {
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
			kstreams.WithCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("app: %v", err)
			}
		}
	}
	results := func() map[string]string {
		m := map[string]string{}
		for _, r := range kafkatest.ReadToEnd(t, brokers, out) {
			m[string(r.Key)] = string(r.Value)
		}
		return m
	}

	// Everything is written before the app starts: the orders, read as
	// soon as the app joins its group, find their customers.
	var first []*kgo.Record
	for i := range 30 {
		first = append(first, rec(customers, fmt.Sprintf("c%02d", i), fmt.Sprintf("tier%d", i%3)))
	}
	for i := range 30 {
		first = append(first, rec(orders, fmt.Sprintf("o%02d", i), fmt.Sprintf("c%02d", i)))
	}
	kafkatest.Produce(t, cl, first...)
	stop := start()
	kafkatest.WaitCommitted(t, brokers, appID, orders, 60*time.Second)

	// Updates while it runs: probes show when they arrived.
	kafkatest.Produce(t, cl, rec(customers, "c03", ""), rec(customers, "c04", "tier9"))
	probe := 0
	kafkatest.WaitFor(t, 60*time.Second, "the customers' updates in the global table", func() bool {
		probe++
		kafkatest.Produce(t, cl, rec(orders, fmt.Sprintf("probe3-%d", probe), "c03"), rec(orders, fmt.Sprintf("probe4-%d", probe), "c04"))
		kafkatest.WaitCommitted(t, brokers, appID, orders, 60*time.Second)
		m := results()
		return m[fmt.Sprintf("probe3-%d", probe)] == "c03/~" && m[fmt.Sprintf("probe4-%d", probe)] == "c04/tier9"
	})
	kafkatest.Produce(t, cl, rec(orders, "p1", "c05"), rec(orders, "p2", "c99"))
	kafkatest.WaitCommitted(t, brokers, appID, orders, 60*time.Second)
	stop()

	// A restart fills the table again, from the topic's start.
	kafkatest.Produce(t, cl, rec(orders, "r1", "c03"), rec(orders, "r2", "c04"), rec(orders, "r3", "c29"))
	stop = start()
	kafkatest.WaitCommitted(t, brokers, appID, orders, 60*time.Second)
	stop()

	got := results()
	var bad []string
	for i := range 30 {
		if k, want := fmt.Sprintf("o%02d", i), fmt.Sprintf("c%02d/tier%d", i, i%3); got[k] != want {
			bad = append(bad, fmt.Sprintf("%s=%q (want %q)", k, got[k], want))
		}
	}
	for k, want := range map[string]string{"p1": "c05/tier2", "p2": "c99/~", "r1": "c03/~", "r2": "c04/tier9", "r3": "c29/tier2"} {
		if got[k] != want {
			bad = append(bad, fmt.Sprintf("%s=%q (want %q)", k, got[k], want))
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("enriched orders:\n%s", strings.Join(bad, "\n"))
	}
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, appID+"-") {
			t.Errorf("the application created topic %s; a global table has no changelog", name)
		}
	}
}

// slowSupplier returns in-memory backends whose Set takes at least d.
func slowSupplier(d time.Duration) store.Supplier {
	return func(bctx store.BackendContext) (store.Backend, error) {
		b, err := memory.Supplier()(bctx)
		return slowBackend{b, d}, err
	}
}

type slowBackend struct {
	store.Backend
	d time.Duration
}

func (b slowBackend) Set(key, value []byte) error {
	time.Sleep(b.d)
	return b.Backend.Set(key, value)
}

// A global table over a topic that does not exist stops the app at start
// with an error naming the topic.
func TestIntegrationGlobalTableMissingTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	orders, customers, out := "gmorders-"+suffix, "gmcustomers-"+suffix, "gmout-"+suffix
	kafkatest.CreateTopics(t, brokers, 1, orders, out)
	b := kstreams.NewBuilder()
	cs := table.Global(b, "customers", customers, serde.String, serde.String, memory.Supplier())
	kstreams.Sink(join.StreamGlobalTable(kstreams.Source(b, "orders", []string{orders}, serde.String, serde.String), cs, "enrich",
		func(k, _ string) (string, error) { return k, nil }, func(_, o, c string) (string, error) { return o + c, nil }),
		"out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID("gm-it-"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = app.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "global topic "+customers+" does not exist (create it before starting the application)") {
		t.Fatalf("app: %v", err)
	}
}
