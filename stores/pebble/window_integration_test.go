package pebble_test

import (
	"context"
	"fmt"
	"testing"
	"time"
	_ "time/tzdata"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/window"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A windowed aggregation with its window store in Pebble, on the embedded
// cluster: hourly and daily counts in Europe/Berlin across the 2026
// spring-forward, emitted once per window, with the store files in the
// application's state directory.
func TestWindowedAggregationOnPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	const in, hourlyOut, dailyOut = "events", "hourly", "daily"
	c, err := embedded.NewCluster(embedded.Topic(in, 2), embedded.Topic(hourlyOut, 1), embedded.Topic(dailyOut, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	supplier := pebble.Supplier()
	b := kstreams.NewBuilder()
	hourly := window.NewStore("hourly", window.Hours(1, berlin).Grace(30*time.Minute), serde.String, serde.Int64, supplier)
	daily := window.NewStore("daily", window.Days(berlin).Grace(time.Hour), serde.String, serde.Int64, supplier)
	events := kstreams.Source(b, "events", []string{in}, serde.String, serde.String,
		kstreams.WithTimestampExtractor(func(r kstreams.Record[string, string]) (time.Time, error) {
			return time.Parse(time.RFC3339, r.Value)
		}))
	kstreams.Sink(window.Count(events, "count-hourly", hourly, window.EmitFinal()), "hourly-out", hourlyOut, window.KeySerde(serde.String), serde.Int64)
	kstreams.Sink(window.Count(events, "count-daily", daily, window.EmitFinal()), "daily-out", dailyOut, window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// One sensor per partition, a record every 15 minutes from 28 March to
	// 30 March (local), then one record per partition to close the last day.
	days := window.Days(berlin)
	from := days.Window(time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)).Start
	to := days.Window(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)).End
	var recs []*kgo.Record
	for p := range int32(2) {
		key := fmt.Sprintf("sensor-%d", p)
		for at := from; !at.After(to.Add(2 * time.Hour)); at = at.Add(15 * time.Minute) {
			if !at.Before(to) && at.Before(to.Add(2*time.Hour)) {
				continue
			}
			recs = append(recs, &kgo.Record{Topic: in, Partition: p, Key: []byte(key), Value: []byte(at.Format(time.RFC3339))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("pebble-windows"),
		kstreams.WithStateDir(t.TempDir()), kstreams.WithCommitInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	stopped := false
	stopApp := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-done; err != nil {
				t.Errorf("app: %v", err)
			}
		}
	}
	defer stopApp()

	// 3 days = 71 local hours (29 March has 23), per sensor.
	const wantHourly, wantDaily = 2 * 71, 2 * 3
	// Once every input record is committed, everything it produced is
	// acknowledged: stop the app, and the output topics hold all it wrote.
	waitCommitted(t, c.Brokers(), "pebble-windows", in, 90*time.Second)
	stopApp()
	hourlyRecs, dailyRecs := readToEnd(t, c.Brokers(), hourlyOut), readToEnd(t, c.Brokers(), dailyOut)
	ks := window.KeySerde(serde.String)
	check := func(name string, rs []*kgo.Record, want int, ok func(window.Key[string], int64) error) {
		if len(rs) != want {
			t.Errorf("%s: %d windows, want %d (each once)", name, len(rs), want)
		}
		seen := map[string]bool{}
		for _, r := range rs {
			k, err := ks.Deserialize("", nil, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := serde.Int64.Deserialize("", nil, r.Value)
			if seen[k.String()] {
				t.Errorf("%s: %v emitted twice", name, k)
			}
			seen[k.String()] = true
			if err := ok(k, n); err != nil {
				t.Errorf("%s: %v = %d: %v", name, k.In(berlin), n, err)
			}
		}
	}
	check("hourly", hourlyRecs, wantHourly, func(k window.Key[string], n int64) error {
		if l := k.Window.End.Sub(k.Window.Start); l != time.Hour || n != 4 {
			return fmt.Errorf("%v long with %d records, want 1h with 4", l, n)
		}
		return nil
	})
	check("daily", dailyRecs, wantDaily, func(k window.Key[string], n int64) error {
		l := k.Window.End.Sub(k.Window.Start)
		if k.Window.Start.In(berlin).Day() == 29 {
			if l != 23*time.Hour || n != 92 {
				return fmt.Errorf("29 March: %v long with %d records, want 23h with 92", l, n)
			}
		} else if l != 24*time.Hour || n != 96 {
			return fmt.Errorf("%v long with %d records, want 24h with 96", l, n)
		}
		return nil
	})
}

// waitCommitted waits until group has committed every record of topic.
func waitCommitted(t *testing.T, brokers []string, group, topic string, timeout time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		var committed kadm.OffsetResponses
		if err == nil {
			committed, err = adm.FetchOffsets(ctx, group)
		}
		if err == nil {
			all := true
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(topic, o.Partition)
				all = all && (o.Offset == 0 || ok && c.At == o.Offset)
			})
			if all {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not commit every record of %s within %v (last error: %v)", group, topic, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readToEnd reads every record of topic up to its current end offsets.
func readToEnd(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
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
