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
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Orders enriched with customers on a cluster (KSTREAMS_TEST_BROKERS, or
// an in-process one), four partitions: the table is kept across a restart
// (restored from its source topic, the customers: the app creates no
// changelog topic), and a deleted customer's orders are joined with no
// customer.
func TestIntegrationStreamTableLeftJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	orders, customers, out, appID := "orders-"+suffix, "customers-"+suffix, "enriched-"+suffix, "join-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 4, orders, customers, out)

	b := kstreams.NewBuilder()
	ords := kstreams.Source(b, "orders", []string{orders}, serde.String, serde.String)
	cs := table.FromTopic(b, "customers", customers, serde.String, serde.String, memory.Supplier())
	enriched := join.StreamTableLeft(ords, cs, "enrich", func(_ string, order string, tier *string) (string, error) {
		return order + "/" + str(tier), nil
	})
	kstreams.Sink(enriched, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Client(t, brokers)
	runApp := func(phase string, recs ...*kgo.Record) {
		t.Helper()
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
			kstreams.WithCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		// Customers first, committed, then the orders: each order then
		// sees its customer whatever order the runtime reads topics in.
		var cust, ord []*kgo.Record
		for _, r := range recs {
			if r.Topic == customers {
				cust = append(cust, r)
			} else {
				ord = append(ord, r)
			}
		}
		kafkatest.Produce(t, cl, cust...)
		kafkatest.WaitCommitted(t, brokers, appID, customers, 60*time.Second)
		kafkatest.Produce(t, cl, ord...)
		kafkatest.WaitCommitted(t, brokers, appID, orders, 60*time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%s: app: %v", phase, err)
		}
	}
	rec := func(topic, key, value string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	var first []*kgo.Record
	for i := range 20 {
		first = append(first, rec(customers, fmt.Sprintf("c%02d", i), fmt.Sprintf("tier%d", i%3)))
	}
	for i := range 20 {
		first = append(first, rec(orders, fmt.Sprintf("c%02d", i), fmt.Sprintf("o%02d", i)))
	}
	runApp("first run", first...)
	// Second run: the table comes back from its changelog; c03 is deleted,
	// c04 changes tier.
	second := []*kgo.Record{rec(customers, "c03", ""), rec(customers, "c04", "tier9")}
	for _, c := range []string{"c03", "c04", "c05", "c99"} {
		second = append(second, rec(orders, c, "p-"+c))
	}
	runApp("second run", second...)

	var got []string
	for _, r := range kafkatest.ReadToEnd(t, brokers, out) {
		got = append(got, string(r.Key)+"="+string(r.Value))
	}
	slices.Sort(got)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("c%02d=o%02d/tier%d", i, i, i%3))
	}
	want = append(want, "c03=p-c03/~", "c04=p-c04/tier9", "c05=p-c05/tier2", "c99=p-c99/~")
	slices.Sort(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("enriched orders:\n%s\nwant\n%s", strings.Join(got, " "), strings.Join(want, " "))
	}
	// The customers topic is the table's changelog: none of its own.
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, appID+"-") {
			t.Errorf("the application created topic %s; a table read from a topic restores from that topic", name)
		}
	}
}

// A left stream-stream join on a cluster: a left record joined by a right
// one, and one that nothing joined, forwarded alone once a later record
// closes its window.
func TestIntegrationStreamStreamLeftJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	clicks, views, out, appID := "clicks-"+suffix, "views-"+suffix, "joined-"+suffix, "ssjoin-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 1, clicks, views, out)

	b := kstreams.NewBuilder()
	vs := kstreams.Source(b, "views", []string{views}, serde.String, serde.String)
	cs := kstreams.Source(b, "clicks", []string{clicks}, serde.String, serde.String)
	joined := join.StreamStreamLeft(vs, cs, "join", join.Within(time.Minute).Grace(time.Minute),
		join.Stores(serde.String, serde.String, serde.String, memory.Supplier()),
		func(_ string, view string, click *string) (string, error) { return view + "+" + str(click), nil })
	kstreams.Sink(joined, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	cl := kafkatest.Client(t, brokers)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(topic, key, value string, min int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Timestamp: base.Add(time.Duration(min) * time.Minute)}
	}
	// Views first, committed; then the clicks: one joins ad-1's view, the
	// other, ten minutes on, closes ad-2's window.
	kafkatest.Produce(t, cl, at(views, "ad-1", "v1", 0), at(views, "ad-2", "v2", 0))
	kafkatest.WaitCommitted(t, brokers, appID, views, 60*time.Second)
	kafkatest.Produce(t, cl, at(clicks, "ad-1", "c1", 1), at(clicks, "ad-3", "c3", 10))
	kafkatest.WaitCommitted(t, brokers, appID, clicks, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("app: %v", err)
	}
	var got []string
	for _, r := range kafkatest.ReadToEnd(t, brokers, out) {
		got = append(got, fmt.Sprintf("%s=%s@%v", r.Key, r.Value, r.Timestamp.Sub(base)))
	}
	if want := "ad-1=v1+c1@1m0s ad-2=v2+~@0s"; strings.Join(got, " ") != want {
		t.Errorf("joined: %s, want %s", strings.Join(got, " "), want)
	}
}

// Under KeyOrder, records of different keys reach the join concurrently:
// every view is joined with its click, and the one view nothing clicked is
// forwarded alone once a later record closes its window (run with -race).
func TestIntegrationStreamStreamJoinKeyOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	clicks, views, out, appID := "kclicks-"+suffix, "kviews-"+suffix, "kjoined-"+suffix, "ssjoin-key-"+suffix
	kafkatest.CreateTopics(t, brokers, 2, clicks, views, out)

	b := kstreams.NewBuilder()
	vs := kstreams.Func(kstreams.Source(b, "views", []string{views}, serde.String, serde.String), "by-key",
		func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
			// Slow work: the runtime hands the task's records to its
			// workers, so keys run concurrently.
			time.Sleep(2 * time.Millisecond)
			return pc.Forward(ctx, r)
		}, kstreams.WithOrdering(kstreams.KeyOrder))
	cs := kstreams.Source(b, "clicks", []string{clicks}, serde.String, serde.String)
	joined := join.StreamStreamLeft(vs, cs, "join", join.Within(time.Minute),
		join.Stores(serde.String, serde.String, serde.String, memory.Supplier()),
		func(_ string, view string, click *string) (string, error) { return view + "+" + str(click), nil })
	kstreams.Sink(joined, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	cl := kafkatest.Client(t, brokers)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var vrecs, crecs []*kgo.Record
	var want []string
	for i := range 100 {
		ad := fmt.Sprintf("ad-%03d", i)
		vrecs = append(vrecs, &kgo.Record{Topic: views, Key: []byte(ad), Value: []byte("v" + ad), Timestamp: base})
		crecs = append(crecs, &kgo.Record{Topic: clicks, Key: []byte(ad), Value: []byte("c" + ad), Timestamp: base.Add(time.Second)})
		want = append(want, ad+"=v"+ad+"+c"+ad)
	}
	vrecs = append(vrecs, &kgo.Record{Topic: views, Key: []byte("lonely"), Value: []byte("v"), Timestamp: base})
	kafkatest.Produce(t, cl, vrecs...)
	kafkatest.WaitCommitted(t, brokers, appID, views, 60*time.Second)
	kafkatest.Produce(t, cl, crecs...)
	kafkatest.WaitCommitted(t, brokers, appID, clicks, 60*time.Second)
	// A view ten minutes on, in every partition, closes the lonely view's window.
	var closing []*kgo.Record
	for i := range 8 {
		closing = append(closing, &kgo.Record{Topic: views, Key: []byte(fmt.Sprintf("later-%d", i)), Value: []byte("x"), Timestamp: base.Add(10 * time.Minute)})
	}
	kafkatest.Produce(t, cl, closing...)
	kafkatest.WaitCommitted(t, brokers, appID, views, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("app: %v", err)
	}
	want = append(want, "lonely=v+~")
	var got []string
	for _, r := range kafkatest.ReadToEnd(t, brokers, out) {
		got = append(got, fmt.Sprintf("%s=%s", r.Key, r.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("joined:\n%s\nwant\n%s", strings.Join(got, " "), strings.Join(want, " "))
	}
}
