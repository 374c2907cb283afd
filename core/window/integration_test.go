package window_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The calendar-day aggregation of the driver tests, end to end on a
// cluster (KSTREAMS_TEST_BROKERS, or an in-process one): event time from
// the value, daily counts in Europe/Berlin across the 2026 spring-forward,
// emitted once per day, late records to a dead-letter topic.
func TestIntegrationDailyCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	runDailyCounts(t, memory.Supplier())
}

func runDailyCounts(t *testing.T, supplier store.Supplier) {
	brokers := testBrokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	in, out, dead, appID := "events-"+suffix, "daily-"+suffix, "late-"+suffix, "window-it-"+suffix
	createTopics(t, brokers, 1, in, out, dead)

	berlin := mustLoad(t, "Europe/Berlin")
	b := kstreams.NewBuilder()
	st := window.NewStore("daily", window.Days(berlin).Grace(time.Hour), serde.String, serde.Int64, supplier)
	// The value is the event time (RFC 3339); the Kafka timestamp is not.
	events := kstreams.Source(b, "events", []string{in}, serde.String, serde.String,
		kstreams.WithTimestampExtractor(func(r kstreams.Record[string, string]) (time.Time, error) {
			return time.Parse(time.RFC3339, r.Value)
		}))
	daily := window.Count(events, "count", st, window.EmitFinal(), window.LateToTopic(dead, serde.String, serde.String))
	kstreams.Sink(daily, "out", out, window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	cl := newClient(t, brokers)
	var recs []*kgo.Record
	add := func(key string, ts time.Time) {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(ts.Format(time.RFC3339))})
	}
	days := window.Days(berlin)
	from := days.Window(time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)).Start
	to := days.Window(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)).End
	for at := from; at.Before(to); at = at.Add(time.Hour) {
		add("sensor-1", at)
		add("sensor-2", at.Add(30*time.Minute))
	}
	add("sensor-1", to.Add(2*time.Hour)) // closes 30 March
	add("sensor-2", from.Add(time.Hour)) // late: 28 March closed long ago
	produce(t, cl, recs...)

	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	}
	defer stop()

	// Once every input record is committed, all it produced is
	// acknowledged: stop the app, and what the topics hold is everything.
	waitCommitted(t, brokers, appID, in, 60*time.Second)
	stop()
	results, late := readToEnd(t, brokers, out), readToEnd(t, brokers, dead)
	ks := window.KeySerde(serde.String)
	got := map[string]string{}
	for _, r := range results {
		k, err := ks.Deserialize(out, nil, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := serde.Int64.Deserialize(out, nil, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		day := k.Window.Start.In(berlin).Format(time.DateOnly)
		if _, dup := got[k.Key+" "+day]; dup {
			t.Errorf("window %v emitted twice", k)
		}
		got[k.Key+" "+day] = fmt.Sprintf("%d records, %v", n, k.Window.End.Sub(k.Window.Start))
	}
	want := map[string]string{
		"sensor-1 2026-03-28": "24 records, 24h0m0s",
		"sensor-1 2026-03-29": "23 records, 23h0m0s",
		"sensor-1 2026-03-30": "24 records, 24h0m0s",
		"sensor-2 2026-03-28": "24 records, 24h0m0s",
		"sensor-2 2026-03-29": "23 records, 23h0m0s",
		"sensor-2 2026-03-30": "24 records, 24h0m0s",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("daily windows:\n%v\nwant\n%v", got, want)
	}
	if len(late) != 1 || string(late[0].Key) != "sensor-2" {
		t.Errorf("dead-letter topic has %v, want the late record of sensor-2", late)
	}
}

// waitCommitted waits until group has committed every record of topic.
func waitCommitted(t testing.TB, brokers []string, group, topic string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	waitFor(t, timeout, "every record of "+topic+" to be committed", func() bool {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, o.Partition)
			all = all && (o.Offset == 0 || ok && c.At == o.Offset)
		})
		return all
	})
}

// readToEnd reads every record of topic up to its current end offsets.
func readToEnd(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(newClient(t, brokers)).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl := newClient(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var recs []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s to its end: %v (partitions left: %v)", topic, ctx.Err(), remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 == end {
					delete(remaining, r.Partition)
				}
			}
		})
	}
	return recs
}

// testBrokers returns the brokers of KSTREAMS_TEST_BROKERS (a real Kafka),
// or of a new in-process cluster.
func testBrokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("KSTREAMS_TEST_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	c, err := embedded.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Brokers()
}

func newClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t testing.TB, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(newClient(t, brokers)).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("creating topics %v: %v", topics, err)
	}
}

func produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
