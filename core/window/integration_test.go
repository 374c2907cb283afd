package window_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
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
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	in, out, dead, appID := "events-"+suffix, "daily-"+suffix, "late-"+suffix, "window-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 1, in, out, dead)

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

	cl := kafkatest.Client(t, brokers)
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
	kafkatest.Produce(t, cl, recs...)

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
	kafkatest.WaitCommitted(t, brokers, appID, in, 60*time.Second)
	stop()
	results, late := kafkatest.ReadToEnd(t, brokers, out), kafkatest.ReadToEnd(t, brokers, dead)
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
