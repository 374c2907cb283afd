package window_test

import (
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
)

// Daily counts on the wall clock of Berlin, emitted once per day, across
// the spring-forward of 29 March 2026: that day has 23 hours.
func ExampleCount() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	b := kstreams.NewBuilder()
	daily := window.NewStore("daily-counts", window.Days(berlin).Grace(time.Hour), serde.String, serde.Int64, memory.Supplier())
	events := kstreams.Source(b, "events", []string{"events"}, serde.String, serde.String)
	counts := window.Count(events, "count", daily, window.EmitFinal())
	kstreams.ForEach(counts, "print", func(r kstreams.Record[window.Key[string], int64]) error {
		w := r.Key.Window
		fmt.Printf("%s %s - %s (%v): %d\n", r.Key.Key, w.Start.Format("Jan 2 15:04 MST"), w.End.Format("Jan 2 15:04 MST"), w.End.Sub(w.Start), r.Value)
		return nil
	})
	topo, _ := b.Build()
	d, _ := kstreamstest.New(topo)
	defer d.Close()
	in := kstreamstest.Input(d, "events", serde.String, serde.String)
	// An event every hour of real time from 28 March 00:00 to 30 March 23:00, Berlin time.
	start := time.Date(2026, 3, 28, 0, 0, 0, 0, berlin)
	for t := start; t.Before(time.Date(2026, 3, 31, 0, 0, 0, 0, berlin)); t = t.Add(time.Hour) {
		in.PipeAt("meter-1", "kWh", t)
	}
	in.PipeAt("meter-1", "kWh", time.Date(2026, 3, 31, 2, 0, 0, 0, berlin)) // closes 30 March
	// Output:
	// meter-1 Mar 28 00:00 CET - Mar 29 00:00 CET (24h0m0s): 24
	// meter-1 Mar 29 00:00 CET - Mar 30 00:00 CEST (23h0m0s): 23
	// meter-1 Mar 30 00:00 CEST - Mar 31 00:00 CEST (24h0m0s): 24
}
