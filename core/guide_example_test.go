package kstreams_test

// The code of docs/guide.md. Each Go block of the guide is a part of this
// file, word for word: a declaration as it stands, or the body of an
// Example (one tab less). TestGuideShowsCompiledCode checks it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// greetingsTopology reads names from topic "names" and writes a greeting
// for each non-empty one to topic "greetings".
func greetingsTopology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	names := kstreams.Source(b, "names", []string{"names"}, serde.String, serde.String)
	nonEmpty := kstreams.Filter(names, "non-empty", func(r kstreams.Record[string, string]) bool {
		return r.Value != ""
	})
	greetings := kstreams.MapValues(nonEmpty, "greet", func(name string) (string, error) {
		return "hello, " + name, nil
	})
	kstreams.Sink(greetings, "out", "greetings", serde.String, serde.String)
	return b.Build()
}

// A first topology, tested without a broker.
func Example_guideFirstTopology() {
	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	names := kstreamstest.Input(d, "names", serde.String, serde.String)
	greetings := kstreamstest.Output(d, "greetings", serde.String, serde.String)
	for _, name := range []string{"Ada", "", "Grace"} {
		if err := names.Pipe("user-1", name); err != nil {
			log.Fatal(err)
		}
	}
	out, err := greetings.ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range out {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// user-1 hello, Ada
	// user-1 hello, Grace
}

// The same topology on Kafka, until SIGTERM or Ctrl-C (compiled, not run).
func Example_guideRun() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers("localhost:9092"),
		kstreams.WithApplicationID("greeter"),
	)
	if err != nil {
		log.Fatal(err)
	}
	// Run returns nil once ctx is done and the shutdown is complete,
	// or the error that stopped the application.
	if err := app.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// balances keeps each account's balance in store "balances" and, every
// minute of wall-clock time, forwards the balances that changed since it
// last did. The accounts changed are kept in store "balances-changed",
// not in a Go map, so that they survive a crash and a move of the task
// to another instance.
type balances struct {
	// The stores' handles, from AddStore.
	totalsStore  kstreams.Store[store.KeyValueStore[string, int64]]
	changedStore kstreams.Store[store.KeyValueStore[string, bool]]

	pc      kstreams.ProcessorContext[string, int64]
	totals  store.KeyValueStore[string, int64]
	changed store.KeyValueStore[string, bool]
}

func (p *balances) Init(pc kstreams.ProcessorContext[string, int64]) error {
	p.pc = pc
	var err error
	if p.totals, err = p.totalsStore.Get(pc); err != nil {
		return err
	}
	if p.changed, err = p.changedStore.Get(pc); err != nil {
		return err
	}
	_, err = pc.Schedule(kstreams.WallClockTime, time.Minute, p.emit)
	return err
}

func (p *balances) Process(ctx context.Context, r kstreams.Record[string, int64]) error {
	total, _, err := p.totals.Get(r.Key)
	if err != nil {
		return err
	}
	if err := p.totals.Put(r.Key, total+r.Value); err != nil {
		return err
	}
	return p.changed.Put(r.Key, true)
}

// emit forwards the changed balances, in key order.
func (p *balances) emit(ctx context.Context, now time.Time) error {
	var accounts []string
	for kv, err := range p.changed.All() {
		if err != nil {
			return err
		}
		accounts = append(accounts, kv.Key)
	}
	for _, account := range accounts {
		total, _, err := p.totals.Get(account)
		if err != nil {
			return err
		}
		if err := p.pc.Forward(ctx, kstreams.Record[string, int64]{Key: account, Value: total, Timestamp: now}); err != nil {
			return err
		}
		if err := p.changed.Delete(account); err != nil {
			return err
		}
	}
	return nil
}

func (p *balances) Close() error { return nil }

// balancesTopology reads amounts in cents per account from "transfers"
// and writes balances to "balances".
func balancesTopology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	totals := kstreams.AddStore(b, store.KeyValue("balances", serde.String, serde.Int64, memory.Supplier()))
	changed := kstreams.AddStore(b, store.KeyValue("balances-changed", serde.String, serde.Bool, memory.Supplier()))
	transfers := kstreams.Source(b, "transfers", []string{"transfers"}, serde.String, serde.Int64)
	balanced := kstreams.Process(transfers, "balance", func() kstreams.Processor[string, int64, string, int64] {
		return &balances{totalsStore: totals, changedStore: changed}
	}, kstreams.WithStores(totals, changed))
	kstreams.Sink(balanced, "out", "balances", serde.String, serde.Int64)
	return b.Build()
}

// A processor with stores and a wall-clock punctuator, tested by moving
// the test driver's clock.
func Example_guideStores() {
	topo, err := balancesTopology()
	if err != nil {
		log.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	transfers := kstreamstest.Input(d, "transfers", serde.String, serde.Int64)
	out := kstreamstest.Output(d, "balances", serde.String, serde.Int64)
	for _, t := range []struct {
		account string
		cents   int64
	}{{"bob", 500}, {"alice", 1000}, {"bob", -200}} {
		if err := transfers.Pipe(t.account, t.cents); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("before a minute:", out.Len(), "outputs")
	if err := d.AdvanceWallClock(time.Minute); err != nil {
		log.Fatal(err)
	}
	records, err := out.ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range records {
		fmt.Println(r.Key, r.Value)
	}
	// Stores can be read directly, too.
	totals, err := kstreamstest.GetStore[store.KeyValueStore[string, int64]](d, "balances")
	if err != nil {
		log.Fatal(err)
	}
	bob, _, err := totals.Get("bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob's balance:", bob)
	// Output:
	// before a minute: 0 outputs
	// alice 1000
	// bob 300
	// bob's balance: 300
}

// Payment is the value of topic "payments", written as JSON.
type Payment struct {
	Account string `json:"account"`
	Cents   int64  `json:"cents"`
}

// paymentSerde encodes payments as JSON. Like every serde it decodes nil
// data (a Kafka null) to the zero value.
var paymentSerde = serde.Funcs[Payment]{
	Ser: func(dst []byte, _ string, _ []serde.Header, p Payment) ([]byte, error) {
		b, err := json.Marshal(p)
		return append(dst, b...), err
	},
	De: func(_ string, _ []serde.Header, data []byte) (Payment, error) {
		var p Payment
		if data == nil {
			return p, nil
		}
		err := json.Unmarshal(data, &p)
		return p, err
	},
}

// A serde of one's own: a struct as JSON.
func Example_guideSerde() {
	b := kstreams.NewBuilder()
	payments := kstreams.Source(b, "payments", []string{"payments"}, serde.String, paymentSerde)
	cents := kstreams.Map(payments, "by-account", func(r kstreams.Record[string, Payment]) (kstreams.Record[string, int64], error) {
		return kstreams.WithKeyValue(r, r.Value.Account, r.Value.Cents), nil
	})
	kstreams.Sink(cents, "out", "cents", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "payments", serde.String, paymentSerde)
	if err := in.Pipe("p-1", Payment{Account: "alice", Cents: -250}); err != nil {
		log.Fatal(err)
	}
	out := kstreamstest.Output(d, "cents", serde.String, serde.Int64)
	r, _, err := out.Read()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Key, r.Value)
	// Output:
	// alice -250
}

// lookupTier stands for a call to a remote customer service.
func lookupTier(ctx context.Context, customer string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if strings.HasSuffix(customer, "-vip") {
		return "gold", nil
	}
	return "standard", nil
}

// enrichTopology tags each order (key: customer, value: cents) with the
// customer's tier. The service calls of different customers run
// concurrently; a customer's orders one after another, in order.
func enrichTopology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.Int64)
	tagged := kstreams.Func(orders, "tier", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, int64]) error {
		tier, err := lookupTier(ctx, r.Key)
		if err != nil {
			return fmt.Errorf("looking up the tier of %s: %w", r.Key, err)
		}
		return pc.Forward(ctx, kstreams.WithValue(r, fmt.Sprintf("%s %d", tier, r.Value)))
	},
		kstreams.WithOrdering(kstreams.KeyOrder),
		kstreams.WithRetry(kstreams.Retry{Attempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}),
	)
	kstreams.Sink(tagged, "out", "orders-tagged", serde.String, serde.String)
	return b.Build()
}

// Key-ordered concurrent processing. The test driver processes one record
// at a time, so its output is deterministic whatever the mode.
func Example_guideKeyOrder() {
	topo, err := enrichTopology()
	if err != nil {
		log.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	orders := kstreamstest.Input(d, "orders", serde.String, serde.Int64)
	if err := orders.Pipe("ada-vip", 1200); err != nil {
		log.Fatal(err)
	}
	if err := orders.Pipe("bob", 300); err != nil {
		log.Fatal(err)
	}
	tagged, err := kstreamstest.Output(d, "orders-tagged", serde.String, serde.String).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range tagged {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// ada-vip gold 1200
	// bob standard 300
}

// tierLookup looks up the tiers of a batch of orders in one call.
type tierLookup struct {
	pc kstreams.ProcessorContext[string, string]
}

func (p *tierLookup) Init(pc kstreams.ProcessorContext[string, string]) error {
	p.pc = pc
	return nil
}

func (p *tierLookup) ProcessBatch(ctx context.Context, rs []kstreams.Record[string, int64]) error {
	customers := make([]string, len(rs))
	for i, r := range rs {
		customers[i] = r.Key
	}
	tiers, err := lookupTiers(ctx, customers) // one round trip for the batch
	if err != nil {
		return err
	}
	for i, r := range rs {
		if err := p.pc.Forward(ctx, kstreams.WithValue(r, tiers[i])); err != nil {
			return err
		}
	}
	return nil
}

func (p *tierLookup) Close() error { return nil }

// lookupTiers stands for a bulk call to the customer service.
func lookupTiers(ctx context.Context, customers []string) ([]string, error) {
	tiers := make([]string, len(customers))
	for i, c := range customers {
		tier, err := lookupTier(ctx, c)
		if err != nil {
			return nil, err
		}
		tiers[i] = tier
	}
	return tiers, nil
}

// A batch processor: up to 500 records per call, waiting up to 5 ms for a
// batch to fill.
func Example_guideBatch() {
	b := kstreams.NewBuilder()
	orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.Int64)
	tiers := kstreams.ProcessBatch(orders, "tiers", func() kstreams.BatchProcessor[string, int64, string, string] {
		return &tierLookup{}
	}, kstreams.WithBatching(500, 5*time.Millisecond), kstreams.WithOrdering(kstreams.KeyOrder))
	kstreams.Sink(tiers, "out", "tiers", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := kstreamstest.Input(d, "orders", serde.String, serde.Int64).Pipe("ada-vip", 1200); err != nil {
		log.Fatal(err)
	}
	out, err := kstreamstest.Output(d, "tiers", serde.String, serde.String).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out[0].Key, out[0].Value)
	// Output:
	// ada-vip gold
}

// Error policies, one per stage (compiled, not run).
func Example_guideErrorPolicies() {
	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers("localhost:9092"),
		kstreams.WithApplicationID("greeter"),
		// Undecodable input: keep it, with why it failed, and move on.
		kstreams.WithDeserializationErrors(kstreams.DeadLetterOnError("greeter-dead-letters")),
		// A processor's error: stop, so that a bug does not eat the input
		// (the default).
		kstreams.WithProcessingErrors(kstreams.FailOnError()),
		// An output the brokers refuse (too large, say): log, count, move on.
		kstreams.WithProductionErrors(kstreams.SkipOnError()),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = app
}

// A failed record as the test driver reports it: the error names the
// record, the node and the stage.
func Example_guideRecordError() {
	topo, err := balancesTopology()
	if err != nil {
		log.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	transfers := kstreamstest.Input(d, "transfers", serde.String, serde.Int64)
	// Three bytes are no int64.
	err = transfers.PipeRaw([]byte("bob"), []byte("ten"), d.Now(), 0)
	var re *kstreams.RecordError
	if errors.As(err, &re) {
		fmt.Println(re.Stage, re.Topic, re.Partition, re.Offset)
		fmt.Println(re.Err)
	}
	// Output:
	// deserialize transfers 0 0
	// value: serde: decoding int64: want 8 bytes, got 3
}

// Hourly counts per key in tumbling windows of event time.
func Example_guideTumbling() {
	b := kstreams.NewBuilder()
	clicks := kstreams.Source(b, "clicks", []string{"clicks"}, serde.String, serde.String)
	hourly := window.NewStore("hourly-clicks", window.Tumbling(time.Hour).Grace(5*time.Minute),
		serde.String, serde.Int64, memory.Supplier())
	counts := window.Count(clicks, "count-hourly", hourly, window.EmitFinal())
	kstreams.Sink(counts, "out", "clicks-hourly", window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "clicks", serde.String, serde.String)
	at := func(hhmm string) time.Time {
		t, _ := time.Parse(time.RFC3339, "2026-06-01T"+hhmm+":00Z")
		return t
	}
	for _, c := range []struct{ page, at string }{
		{"home", "09:10"}, {"home", "09:50"}, {"docs", "09:55"},
		{"home", "10:02"}, // late by 2 minutes, within the grace period
		{"home", "10:20"}, // stream time passes 10:05: hour 09 closes
	} {
		if err := in.PipeAt(c.page, "click", at(c.at)); err != nil {
			log.Fatal(err)
		}
	}
	out, err := kstreamstest.Output(d, "clicks-hourly", window.KeySerde(serde.String), serde.Int64).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range out {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// docs@[2026-06-01T09:00:00Z, 2026-06-01T10:00:00Z) 1
	// home@[2026-06-01T09:00:00Z, 2026-06-01T10:00:00Z) 2
}

// Calendar windows: trading days from 18:00 to 18:00 in New York. The one
// holding the spring-forward of 8 March 2026 is 23 hours long.
func Example_guideCalendar() {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		log.Fatal(err)
	}
	tradingDays := window.Days(newYork).StartAt(18 * time.Hour)
	for _, t := range []time.Time{
		time.Date(2026, 3, 6, 20, 0, 0, 0, newYork), // Friday evening
		time.Date(2026, 3, 8, 12, 0, 0, 0, newYork), // Sunday noon, after clocks sprang forward at 02:00
	} {
		w := tradingDays.WindowAt(t)
		fmt.Println(w, w.End.Sub(w.Start))
	}
	// Output:
	// [2026-03-06T18:00:00-05:00, 2026-03-07T18:00:00-05:00) 24h0m0s
	// [2026-03-07T18:00:00-05:00, 2026-03-08T18:00:00-04:00) 23h0m0s
}

// The windows that contain an instant, for each kind of definition, on
// the day Berlin's clocks fall back from 03:00 to 02:00 (01:00 UTC).
func Example_guideWindowKinds() {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		log.Fatal(err)
	}
	t := time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC) // 03:30 in Berlin
	for _, w := range []window.Windows{
		window.Tumbling(time.Hour),                         // [start, start+1h), aligned to the epoch
		window.Hopping(time.Hour, 30*time.Minute),          // 1 h long, one starting every 30 minutes
		window.Sliding(10 * time.Minute),                   // records at most 10 minutes apart
		window.Days(berlin),                                // calendar days in Berlin
		window.Months(berlin).StartAt(14 * 24 * time.Hour), // months from the 15th
	} {
		for _, win := range w.WindowsAt(t) {
			fmt.Println(win, win.End.Sub(win.Start))
		}
	}
	// Output:
	// [2026-10-25T02:00:00Z, 2026-10-25T03:00:00Z) 1h0m0s
	// [2026-10-25T02:00:00Z, 2026-10-25T03:00:00Z) 1h0m0s
	// [2026-10-25T02:30:00Z, 2026-10-25T03:30:00Z) 1h0m0s
	// [2026-10-25T02:20:00Z, 2026-10-25T02:30:00Z) 10m0s
	// [2026-10-25T00:00:00+02:00, 2026-10-26T00:00:00+01:00) 25h0m0s
	// [2026-10-15T00:00:00+02:00, 2026-11-15T00:00:00+01:00) 745h0m0s
}

// Sessions of clicks per user, closed after 30 minutes without one.
func Example_guideSessions() {
	b := kstreams.NewBuilder()
	clicks := kstreams.Source(b, "clicks", []string{"clicks"}, serde.String, serde.String)
	sessions := window.NewSessionStore("click-sessions", window.Session(30*time.Minute),
		serde.String, serde.Int64, memory.Supplier())
	counts := window.CountSessions(clicks, "count-sessions", sessions, window.EmitFinal())
	kstreams.Sink(counts, "out", "click-sessions", window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "clicks", serde.String, serde.String)
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	for _, minute := range []int{0, 20, 45, 120} { // 0-45 is one session: no gap over 30 minutes
		if err := in.PipeAt("ada", "click", start.Add(time.Duration(minute)*time.Minute)); err != nil {
			log.Fatal(err)
		}
	}
	out, err := kstreamstest.Output(d, "click-sessions", window.KeySerde(serde.String), serde.Int64).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range out {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// ada@[2026-06-01T09:00:00Z, 2026-06-01T09:45:00Z) 3
}

// An application on the in-process cluster: a record that cannot be
// decoded goes to the dead-letter topic, with headers saying why it failed
// and where it came from.
func Example_guideEmbedded() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := embedded.NewCluster(embedded.Topic("transfers", 1), embedded.Topic("balances", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	topo, err := balancesTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers(c.Brokers()...),
		kstreams.WithApplicationID("bank"),
		kstreams.WithDeserializationErrors(kstreams.DeadLetterOnError("transfers-dead")),
	)
	if err != nil {
		log.Fatal(err)
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	// Not an int64: dead-lettered.
	err = embedded.Produce(ctx, c, "transfers", serde.String, serde.String,
		embedded.Record[string, string]{Key: "bob", Value: "ten", Timestamp: at})
	if err != nil {
		log.Fatal(err)
	}
	dead, err := embedded.ReadAtLeast(ctx, c, "transfers-dead", 1, serde.String, serde.String)
	if err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println(dead[0].Key, dead[0].Value)
	for _, h := range dead[0].Headers {
		fmt.Printf("%s: %s\n", h.Key, h.Value)
	}
	fmt.Println("dead-lettered:", app.Stats().DeadLettered)
	// Output:
	// bob ten
	// kstreams.error.stage: deserialize
	// kstreams.error.message: value: serde: decoding int64: want 8 bytes, got 3
	// kstreams.error.node: transfers
	// kstreams.source.topic: transfers
	// kstreams.source.partition: 0
	// kstreams.source.offset: 0
	// kstreams.source.timestamp: 1780304400000
	// dead-lettered: 1
}

// A recovery test: crash an application, run a new one with the same
// application id, and check that no input was lost. The crash comes before
// any commit (the commit interval is an hour), so the new App processes
// the first two names again: at-least-once.
func Example_guideRecovery() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := embedded.NewCluster(embedded.Topic("names", 1), embedded.Topic("greetings", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	start := func(ctx context.Context) (*kstreams.App, chan error) {
		app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...),
			kstreams.WithApplicationID("greeter"), kstreams.WithCommitInterval(time.Hour))
		if err != nil {
			log.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		return app, done
	}
	produce := func(names ...string) {
		for _, name := range names {
			err := embedded.Produce(ctx, c, "names", serde.String, serde.String,
				embedded.Record[string, string]{Key: name, Value: name})
			if err != nil {
				log.Fatal(err)
			}
		}
	}

	first, done := start(ctx)
	produce("Ada", "Grace")
	if _, err := embedded.ReadAtLeast(ctx, c, "greetings", 2, serde.String, serde.String); err != nil {
		log.Fatal(err)
	}
	kstreamstest.Crash(first) // nothing flushed, nothing committed
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	produce("Linus")
	secondCtx, stop := context.WithCancel(ctx)
	_, done = start(secondCtx)
	out, err := embedded.ReadAtLeast(ctx, c, "greetings", 5, serde.String, serde.String)
	if err != nil {
		log.Fatal(err)
	}
	stop() // a graceful shutdown this time
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	greetings := map[string]int{}
	for _, r := range out {
		greetings[r.Value]++
	}
	for _, name := range []string{"Ada", "Grace", "Linus"} {
		fmt.Println(name, greetings["hello, "+name])
	}
	// Output:
	// Ada 2
	// Grace 2
	// Linus 1
}

// Production settings (compiled, not run).
func Example_guideConfiguration() {
	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers(strings.Split(os.Getenv("KAFKA_BROKERS"), ",")...),
		kstreams.WithApplicationID("greeter"),
		kstreams.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil))),
		kstreams.WithReplicationFactor(3),              // internal topics
		kstreams.WithCommitInterval(5*time.Second),     // the default
		kstreams.WithSessionTimeout(45*time.Second),    // the default
		kstreams.WithConcurrency(64),                   // KeyOrder/Unordered workers: calls in flight
		kstreams.WithMaxInFlight(50_000),               // per partition
		kstreams.WithMaxInFlightTotal(200_000),         // per instance
		kstreams.WithStateDir("/var/lib/greeter"),      // stores that keep files (Pebble)
		kstreams.WithStateCleanupDelay(10*time.Minute), // the default
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) {
			if p.Done {
				slog.Info("restored", "store", p.Store, "task", p.Task, "records", p.Restored, "took", p.Elapsed)
			}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = app
}

// The body of main for a Kubernetes pod (compiled, not run).
func Example_guideKubernetes() {
	// Kubernetes sends SIGTERM, then SIGKILL after the grace period (30 s
	// by default); a graceful shutdown takes at most kstreams.ShutdownBudget
	// (25 s) plus leaving the group.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	topo, err := balancesTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers(strings.Split(os.Getenv("KAFKA_BROKERS"), ",")...),
		kstreams.WithApplicationID("bank"),
		// A volume that outlives the container (a StatefulSet's
		// volumeClaimTemplate): a restart restores only the changelog's tail.
		kstreams.WithStateDir("/var/lib/bank"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := app.Run(ctx); err != nil {
		// A fatal error: exit non-zero and let Kubernetes restart the pod.
		log.Fatal(err)
	}
}

// Exactly-once for Kafka-to-Kafka (experimental; compiled, not run).
func Example_guideTransactions() {
	topo, err := balancesTopology()
	if err != nil {
		log.Fatal(err)
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers("localhost:9092"),
		kstreams.WithApplicationID("bank"),
		kstreams.WithTransactions(),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = app
}

// TLS and SASL/SCRAM through franz-go's options (compiled, not run).
func Example_guideSecurity() {
	topo, err := greetingsTopology()
	if err != nil {
		log.Fatal(err)
	}
	// The cluster's CA, when the system's roots do not hold it.
	ca, err := os.ReadFile("/etc/kafka/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		log.Fatal("no certificate in /etc/kafka/ca.pem")
	}
	app, err := kstreams.NewApp(topo,
		kstreams.WithBrokers(strings.Split(os.Getenv("KAFKA_BROKERS"), ",")...),
		kstreams.WithApplicationID("greeter"),
		kstreams.WithKgoOptions(
			kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
			kgo.SASL(scram.Auth{User: "greeter", Pass: os.Getenv("KAFKA_PASSWORD")}.AsSha512Mechanism()),
		),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = app
}

// Topics written by a kstreams version before topic serdes wrote Kafka's
// wire format: the Ordered serdes keep their bytes.
func Example_guideUpgradeSerdes() {
	b := kstreams.NewBuilder()
	// Was: serde.Int64 on both topics, with the earlier version.
	amounts := kstreams.Source(b, "amounts", []string{"amounts"}, serde.String, serde.OrderedInt64)
	kstreams.Sink(amounts, "out", "amounts-copy", serde.String, serde.OrderedInt64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := kstreamstest.Input(d, "amounts", serde.String, serde.OrderedInt64).Pipe("alice", 1); err != nil {
		log.Fatal(err)
	}
	out := kstreamstest.Output(d, "amounts-copy", serde.String, serde.OrderedInt64).ReadRaw()
	fmt.Printf("the bytes of 1: %x\n", out[0].Value)
	// The same bytes read with serde.Int64: why a topic's old records
	// need the Ordered serde.
	v, err := serde.Int64.Deserialize("amounts-copy", nil, out[0].Value)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read with serde.Int64:", v)
	// Output:
	// the bytes of 1: 8000000000000001
	// read with serde.Int64: -9223372036854775807
}
