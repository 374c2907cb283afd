// Command windowed aggregates electricity-meter readings per hour and per
// day of the Europe/Berlin wall clock with kstreams' calendar windows,
// across the night of 29 March 2026, when Berlin's clocks jump from 02:00
// to 03:00: that day has 23 hours, and the hour 02:00-03:00 does not exist.
//
// The readings carry their own time (event time), which a timestamp
// extractor takes from the value. Each window is printed once, when it
// closes (emit-final), with its local start and end and the average power
// over its real length, which a fixed 24-hour "day" would get wrong.
//
// It starts an in-process Kafka cluster, and writes the readings and reads
// the windows with package embedded's Produce and ReadAtLeast, so it needs
// nothing installed and no Kafka client of its own:
//
//	go run ./windowed
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
	_ "time/tzdata" // Europe/Berlin on machines without a zoneinfo database

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
)

const (
	readingsTopic = "meter-readings"
	hourlyTopic   = "meter-hourly"
	dailyTopic    = "meter-daily"
)

// Reading is one meter reading: the energy used since the previous one.
type Reading struct {
	Meter string    `json:"meter"`
	Time  time.Time `json:"time"`
	KWh   float64   `json:"kwh"`
}

// Usage is the aggregate of a window: what the store keeps.
type Usage struct {
	Readings int     `json:"readings"`
	KWh      float64 `json:"kwh"`
}

// Summary is the output of a window.
type Summary struct {
	Readings int     `json:"readings"`
	KWh      float64 `json:"kwh"`
	Hours    float64 `json:"hours"`  // the window's real length
	AvgKW    float64 `json:"avg_kw"` // KWh / Hours
}

// jsonSerde encodes T as JSON.
func jsonSerde[T any]() serde.Serde[T] {
	return serde.Funcs[T]{
		Ser: func(dst []byte, _ string, _ []serde.Header, v T) ([]byte, error) {
			b, err := json.Marshal(v)
			return append(dst, b...), err
		},
		De: func(_ string, _ []serde.Header, data []byte) (T, error) {
			var v T
			if data == nil {
				return v, nil
			}
			err := json.Unmarshal(data, &v)
			return v, err
		},
	}
}

// Topology aggregates readings into hourly and daily windows of loc.
func Topology(loc *time.Location) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	hourly := window.NewStore("hourly-usage", window.Hours(1, loc).Grace(10*time.Minute), serde.String, jsonSerde[Usage](), memory.Supplier())
	daily := window.NewStore("daily-usage", window.Days(loc).Grace(10*time.Minute), serde.String, jsonSerde[Usage](), memory.Supplier())

	// Event time comes from the reading, not from the Kafka record.
	readings := kstreams.Source(b, "readings", []string{readingsTopic}, serde.String, jsonSerde[Reading](),
		kstreams.WithTimestampExtractor(func(r kstreams.Record[string, Reading]) (time.Time, error) {
			if r.Value.Time.IsZero() {
				return time.Time{}, errors.New("reading without a time")
			}
			return r.Value.Time, nil
		}))

	none := func() Usage { return Usage{} }
	add := func(_ string, r Reading, u Usage) (Usage, error) {
		return Usage{Readings: u.Readings + 1, KWh: u.KWh + r.KWh}, nil
	}
	summarize := func(k window.Key[string], u Usage) (Summary, error) {
		hours := k.Window.End.Sub(k.Window.Start).Hours()
		return Summary{Readings: u.Readings, KWh: u.KWh, Hours: hours, AvgKW: u.KWh / hours}, nil
	}
	keys := window.KeySerde(serde.String)
	kstreams.Sink(window.Aggregate(readings, "hourly", hourly, none, add, summarize, window.EmitFinal()),
		"hourly-out", hourlyTopic, keys, jsonSerde[Summary]())
	kstreams.Sink(window.Aggregate(readings, "daily", daily, none, add, summarize, window.EmitFinal()),
		"daily-out", dailyTopic, keys, jsonSerde[Summary]())
	return b.Build()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "windowed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return err
	}
	c, err := embedded.NewCluster(embedded.Topic(readingsTopic, 1), embedded.Topic(hourlyTopic, 1), embedded.Topic(dailyTopic, 1))
	if err != nil {
		return err
	}
	defer c.Close()

	// A reading of 0.25 kWh every 15 minutes (1 kW) from 22:00 on 28 March
	// to 02:00 on 30 March, Berlin time, then one on 31 March that moves
	// event time past the last window's end plus grace, so it closes.
	var readings []embedded.Record[string, Reading]
	from := time.Date(2026, 3, 28, 22, 0, 0, 0, berlin)
	to := time.Date(2026, 3, 30, 2, 0, 0, 0, berlin)
	for t := from; t.Before(to); t = t.Add(15 * time.Minute) {
		readings = append(readings, embedded.Record[string, Reading]{Key: "meter-1", Value: Reading{Meter: "meter-1", Time: t, KWh: 0.25}})
	}
	last := time.Date(2026, 3, 31, 1, 0, 0, 0, berlin)
	readings = append(readings, embedded.Record[string, Reading]{Key: "meter-1", Value: Reading{Meter: "meter-1", Time: last, KWh: 0.25}})
	if err := embedded.Produce(ctx, c, readingsTopic, serde.String, jsonSerde[Reading](), readings...); err != nil {
		return fmt.Errorf("producing readings: %w", err)
	}

	topo, err := Topology(berlin)
	if err != nil {
		return err
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("windowed-example"),
		kstreams.WithCommitInterval(200*time.Millisecond))
	if err != nil {
		return err
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	// Closed windows: 2 + 23 + 2 hours, and 3 days.
	keys, values := window.KeySerde(serde.String), jsonSerde[Summary]()
	hours, err := embedded.ReadAtLeast(ctx, c, hourlyTopic, 27, keys, values)
	if err != nil {
		stop()
		return errors.Join(fmt.Errorf("waiting for the hourly windows: %w", err), <-done)
	}
	days, err := embedded.ReadAtLeast(ctx, c, dailyTopic, 3, keys, values)
	if err != nil {
		stop()
		return errors.Join(fmt.Errorf("waiting for the daily windows: %w", err), <-done)
	}
	fmt.Println("windows of Europe/Berlin (local start and end), across the spring-forward of 29 March 2026:")
	for _, out := range []struct {
		kind    string
		windows []embedded.Record[window.Key[string], Summary]
	}{{"hour", hours}, {"day ", days}} {
		for _, r := range out.windows {
			k, s := r.Key, r.Value
			fmt.Printf("%s %s  %s → %s  %5.2f h  %3d readings  %6.2f kWh  avg %.2f kW\n", out.kind, k.Key,
				k.Window.Start.In(berlin).Format("2006-01-02 15:04 MST"), k.Window.End.In(berlin).Format("2006-01-02 15:04 MST"),
				s.Hours, s.Readings, s.KWh, s.AvgKW)
		}
	}
	stop()
	if err := <-done; err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}
