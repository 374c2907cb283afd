package window_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
)

// harness runs a windowed count over topic "in" (string keys and values)
// writing to topic "out", in the test driver.
type harness struct {
	t      *testing.T
	d      *kstreamstest.Driver
	in     *kstreamstest.InputTopic[string, string]
	out    *kstreamstest.OutputTopic[window.Key[string], int64]
	late   *kstreamstest.OutputTopic[string, string]
	counts map[string]*memory.Backend // the backends opened, by store name
}

// capture returns a supplier of in-memory backends that records them.
func (h *harness) capture() store.Supplier {
	return func(bc store.BackendContext) (store.Backend, error) {
		b := memory.New()
		h.counts[bc.Store] = b
		return b, nil
	}
}

func newHarness(t *testing.T, build builderFunc) *harness {
	t.Helper()
	h := &harness{t: t, counts: map[string]*memory.Backend{}}
	b := kstreams.NewBuilder()
	in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	out := build(h, b, in)
	kstreams.Sink(out, "out", "out", window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h.d = d
	h.in = kstreamstest.Input(d, "in", serde.String, serde.String)
	h.out = kstreamstest.Output(d, "out", window.KeySerde(serde.String), serde.Int64)
	h.late = kstreamstest.Output(d, "late", serde.String, serde.String)
	return h
}

// countHarness counts per key and window of w.
func countHarness(t *testing.T, w window.Windows, opts ...window.Option) *harness {
	return newHarness(t, countBuilder(w, nil, opts...))
}

type builderFunc = func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64]

// countBuilder counts per key and window of w in store "counts".
func countBuilder(w window.Windows, stOpts []window.StoreOption, opts ...window.Option) builderFunc {
	return func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64] {
		st := window.NewStore("counts", w, serde.String, serde.Int64, h.capture(), stOpts...)
		return window.Count(in, "count", st, opts...)
	}
}

// sessionCountBuilder counts per key and session of w in store "sessions".
func sessionCountBuilder(w window.SessionWindows, opts ...window.Option) builderFunc {
	return func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64] {
		st := window.NewSessionStore("sessions", w, serde.String, serde.Int64, h.capture())
		return window.CountSessions(in, "count", st, opts...)
	}
}

func (h *harness) pipe(key string, ts time.Time) {
	h.t.Helper()
	if err := h.in.PipeAt(key, "v", ts); err != nil {
		h.t.Fatal(err)
	}
}

// result is one output record, formatted for comparison.
type result struct {
	key        string
	start, end time.Time
	count      int64
	ts         time.Time
}

func (r result) String() string {
	return fmt.Sprintf("%s [%s, %s)=%d @%s", r.key, r.start.UTC().Format(time.RFC3339Nano), r.end.UTC().Format(time.RFC3339Nano), r.count, r.ts.UTC().Format(time.RFC3339Nano))
}

func (h *harness) read() []result {
	h.t.Helper()
	rs, err := h.out.ReadAll()
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]result, len(rs))
	for i, r := range rs {
		out[i] = result{r.Key.Key, r.Key.Window.Start, r.Key.Window.End, r.Value, r.Timestamp}
	}
	return out
}

// expect compares the unread output with want, given as "key start end
// count" lines, times as RFC 3339 (timestamps not compared).
func (h *harness) expect(what string, want ...string) {
	h.t.Helper()
	got := h.read()
	var gs []string
	for _, r := range got {
		gs = append(gs, fmt.Sprintf("%s %s %s %d", r.key, r.start.UTC().Format(time.RFC3339Nano), r.end.UTC().Format(time.RFC3339Nano), r.count))
	}
	var ws []string
	for _, w := range want {
		f := strings.Fields(w)
		ws = append(ws, fmt.Sprintf("%s %s %s %s", f[0], utc(f[1]).Format(time.RFC3339Nano), utc(f[2]).Format(time.RFC3339Nano), f[3]))
	}
	if !slices.Equal(gs, ws) {
		h.t.Errorf("%s: output\n\t%s\nwant\n\t%s", what, strings.Join(gs, "\n\t"), strings.Join(ws, "\n\t"))
	}
}

func TestTumblingCountEmitOnUpdate(t *testing.T) {
	h := countHarness(t, window.Tumbling(time.Hour))
	h.pipe("a", utc("2026-03-29T00:10:00Z"))
	h.pipe("a", utc("2026-03-29T00:20:00Z"))
	h.pipe("b", utc("2026-03-29T00:30:00Z"))
	h.pipe("a", utc("2026-03-29T01:05:00Z"))
	h.pipe("a", utc("2026-03-29T00:15:00Z")) // out of order, window closed (no grace): late
	rs := h.read()
	want := []string{
		"a [2026-03-29T00:00:00Z, 2026-03-29T01:00:00Z)=1 @2026-03-29T00:10:00Z",
		"a [2026-03-29T00:00:00Z, 2026-03-29T01:00:00Z)=2 @2026-03-29T00:20:00Z",
		"b [2026-03-29T00:00:00Z, 2026-03-29T01:00:00Z)=1 @2026-03-29T00:30:00Z",
		"a [2026-03-29T01:00:00Z, 2026-03-29T02:00:00Z)=1 @2026-03-29T01:05:00Z",
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("output\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestHoppingCount(t *testing.T) {
	h := countHarness(t, window.Hopping(time.Hour, 30*time.Minute).Grace(time.Hour))
	h.pipe("a", utc("2026-03-29T00:40:00Z"))
	h.expect("one record, two windows",
		"a 2026-03-29T00:00:00Z 2026-03-29T01:00:00Z 1",
		"a 2026-03-29T00:30:00Z 2026-03-29T01:30:00Z 1")
	h.pipe("a", utc("2026-03-29T01:00:00Z"))
	h.expect("at a boundary",
		"a 2026-03-29T00:30:00Z 2026-03-29T01:30:00Z 2",
		"a 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z 1")
}

func TestEmitFinalExactlyOnce(t *testing.T) {
	var late atomic.Int64
	h := countHarness(t, window.Tumbling(time.Hour).Grace(10*time.Minute), window.EmitFinal(), window.CountLate(&late))
	h.pipe("a", utc("2026-03-29T00:10:00Z"))
	h.pipe("a", utc("2026-03-29T00:50:00Z"))
	h.pipe("b", utc("2026-03-29T00:20:00Z"))
	h.pipe("a", utc("2026-03-29T01:05:00Z"))
	h.expect("windows still open (stream time 01:05 < end 01:00 + grace 10m)")
	h.pipe("a", utc("2026-03-29T00:55:00Z")) // out of order, within grace: counted
	h.pipe("c", utc("2026-03-29T01:09:59Z"))
	h.expect("still open a second before end + grace")
	h.pipe("c", utc("2026-03-29T01:10:00Z"))
	h.expect("closed at end + grace",
		"a 2026-03-29T00:00:00Z 2026-03-29T01:00:00Z 3",
		"b 2026-03-29T00:00:00Z 2026-03-29T01:00:00Z 1")
	h.pipe("a", utc("2026-03-29T00:59:00Z")) // late: its window is closed
	h.pipe("b", utc("2026-03-29T01:30:00Z"))
	h.pipe("b", utc("2026-03-29T02:09:00Z"))
	h.expect("no window emitted twice, none of the open ones")
	if n := late.Load(); n != 1 {
		t.Errorf("late records counted: %d, want 1", n)
	}
	h.pipe("x", utc("2026-03-29T05:00:00Z"))
	h.expect("every window once, in order of closing",
		"a 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z 1",
		"b 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z 1",
		"c 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z 2",
		"b 2026-03-29T02:00:00Z 2026-03-29T03:00:00Z 1")
	// The pending-emission store holds only the open window of x.
	if n := h.counts[window.PendingStoreName("counts")].Len(); n != 1 {
		t.Errorf("pending store has %d entries, want 1", n)
	}
}

func TestEmitFinalTimestamps(t *testing.T) {
	h := countHarness(t, window.Tumbling(time.Hour), window.EmitFinal())
	h.pipe("a", utc("2026-03-29T00:40:00Z"))
	h.pipe("a", utc("2026-03-29T00:10:00Z"))
	h.pipe("a", utc("2026-03-29T02:00:00Z"))
	rs := h.read()
	if len(rs) != 1 || !rs[0].ts.Equal(utc("2026-03-29T00:40:00Z")) {
		t.Fatalf("got %v, want one result timestamped with the window's latest record, 00:40", rs)
	}
}

func TestLateRecordsSideOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  window.Option
	}{
		{"LateRecords", window.LateRecords(func(late kstreams.Node[string, string]) {
			marked := kstreams.MapValues(late, "mark", func(v string) (string, error) { return "late:" + v, nil })
			kstreams.Sink(marked, "late-sink", "late", serde.String, serde.String)
		})},
		{"LateToTopic", window.LateToTopic("late", serde.String, serde.String)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			h := countHarness(t, window.Tumbling(time.Hour), tc.opt, window.CountLate(&n))
			h.pipe("a", utc("2026-03-29T01:30:00Z"))
			h.pipe("a", utc("2026-03-29T00:30:00Z"))
			h.expect("results", "a 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z 1")
			late, err := h.late.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(late) != 1 || late[0].Key != "a" || !late[0].Timestamp.Equal(utc("2026-03-29T00:30:00Z")) {
				t.Fatalf("late output %v, want the record of 00:30", late)
			}
			if want := map[bool]string{true: "late:v", false: "v"}[tc.name == "LateRecords"]; late[0].Value != want {
				t.Errorf("late value %q, want %q", late[0].Value, want)
			}
			if n.Load() != 1 {
				t.Errorf("CountLate: %d, want 1", n.Load())
			}
		})
	}
}

// A late-record option for other types than the input's is a Build error
// that says so.
func TestLateRecordsTypeMismatch(t *testing.T) {
	b := kstreams.NewBuilder()
	st := window.NewStore("counts", window.Tumbling(time.Hour), serde.String, serde.Int64, memory.Supplier())
	in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	out := window.Count(in, "count", st, window.LateToTopic("late", serde.String, serde.Int64))
	kstreams.Sink(out, "out", "out", window.KeySerde(serde.String), serde.Int64)
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), "LateRecords/LateToTopic") {
		t.Fatalf("got %v, want an error about the late-record option's types", err)
	}
}

// An aggregation declares its stores: another processor reads the windows
// through the Store's Handle, typed, and a Handle taken before the
// aggregation is added is a Build error, as is a Store used by two
// aggregations.
func TestStoreHandle(t *testing.T) {
	b := kstreams.NewBuilder()
	st := window.NewStore("counts", window.Tumbling(time.Hour), serde.String, serde.Int64, memory.Supplier())
	in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	kstreams.Sink(window.Count(in, "count", st), "out", "out", window.KeySerde(serde.String), serde.Int64)
	h := st.Handle()
	if h.Name() != "counts" {
		t.Fatalf("handle name %q, want counts", h.Name())
	}
	var seen []int64
	kstreams.Func(in, "read", func(_ context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		ws, err := h.Get(pc)
		if err != nil {
			return err
		}
		for w, err := range ws.Fetch(r.Key, r.Timestamp.Add(-time.Hour), r.Timestamp) {
			if err != nil {
				return err
			}
			seen = append(seen, w.Value.Value)
		}
		return nil
	}, kstreams.WithStores(h))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.String(); !strings.Contains(got, "count (stores: counts, counts-pending)") || !strings.Contains(got, "read (stores: counts)") {
		t.Errorf("the description does not show the aggregation's stores and the reader's:\n%s", got)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	input := kstreamstest.Input(d, "in", serde.String, serde.String)
	for range 3 {
		if err := input.PipeAt("a", "v", utc("2026-03-29T00:30:00Z")); err != nil {
			t.Fatal(err)
		}
	}
	// "read" is added after "count", so it sees the window after each count.
	if !slices.Equal(seen, []int64{1, 2, 3}) {
		t.Fatalf("reader saw %v, want [1 2 3]", seen)
	}

	t.Run("handle before the aggregation", func(t *testing.T) {
		b := kstreams.NewBuilder()
		st := window.NewStore("counts", window.Tumbling(time.Hour), serde.String, serde.Int64, memory.Supplier())
		in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
		kstreams.ForEach(kstreams.Filter(in, "early", func(kstreams.Record[string, string]) bool { return true }), "sink", func(kstreams.Record[string, string]) error { return nil })
		kstreams.Func(in, "read", func(context.Context, kstreams.ProcessorContext[string, string], kstreams.Record[string, string]) error {
			return nil
		},
			kstreams.WithStores(st.Handle()))
		window.Count(in, "count", st)
		_, err := b.Build()
		if err == nil || !strings.Contains(err.Error(), `processor "read"`) || !strings.Contains(err.Error(), "zero or nil store handle") {
			t.Fatalf("got %v, want a Build error naming the reader and the zero handle", err)
		}
	})
	t.Run("two aggregations", func(t *testing.T) {
		b := kstreams.NewBuilder()
		st := window.NewStore("counts", window.Tumbling(time.Hour), serde.String, serde.Int64, memory.Supplier())
		in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
		window.Count(in, "count1", st)
		window.Count(in, "count2", st)
		_, err := b.Build()
		if err == nil || !strings.Contains(err.Error(), `store name "counts" is declared twice`) {
			t.Fatalf("got %v, want a Build error: the store is declared twice", err)
		}
	})
}

// Calendar days through the aggregation, one record per hour of real time:
// each day's count is its length in hours.
func TestCalendarDaysAggregation(t *testing.T) {
	for _, tc := range []struct {
		zone     string
		from, to string // local days, inclusive
		every    time.Duration
		want     []int64 // records per day
		lengths  []time.Duration
		startsAt []int // local hour each day starts at
	}{
		{"Europe/Berlin", "2026-03-28", "2026-03-30", time.Hour, []int64{24, 23, 24}, []time.Duration{24 * time.Hour, 23 * time.Hour, 24 * time.Hour}, []int{0, 0, 0}},
		{"Europe/Berlin", "2026-10-24", "2026-10-26", time.Hour, []int64{24, 25, 24}, []time.Duration{24 * time.Hour, 25 * time.Hour, 24 * time.Hour}, []int{0, 0, 0}},
		{"America/Havana", "2026-03-07", "2026-03-09", time.Hour, []int64{24, 23, 24}, []time.Duration{24 * time.Hour, 23 * time.Hour, 24 * time.Hour}, []int{0, 1, 0}},
		{"America/Havana", "2026-10-31", "2026-11-02", time.Hour, []int64{24, 25, 24}, []time.Duration{24 * time.Hour, 25 * time.Hour, 24 * time.Hour}, []int{0, 0, 0}},
		{"America/Santiago", "2026-04-03", "2026-04-05", time.Hour, []int64{24, 25, 24}, []time.Duration{24 * time.Hour, 25 * time.Hour, 24 * time.Hour}, []int{0, 0, 0}},
		{"America/Santiago", "2026-09-05", "2026-09-07", time.Hour, []int64{24, 23, 24}, []time.Duration{24 * time.Hour, 23 * time.Hour, 24 * time.Hour}, []int{0, 1, 0}},
		{"Australia/Lord_Howe", "2026-04-04", "2026-04-06", 30 * time.Minute, []int64{48, 49, 48}, []time.Duration{24 * time.Hour, 24*time.Hour + 30*time.Minute, 24 * time.Hour}, []int{0, 0, 0}},
		{"Australia/Lord_Howe", "2026-10-03", "2026-10-05", 30 * time.Minute, []int64{48, 47, 48}, []time.Duration{24 * time.Hour, 23*time.Hour + 30*time.Minute, 24 * time.Hour}, []int{0, 0, 0}},
	} {
		t.Run(tc.zone+"/"+tc.from, func(t *testing.T) {
			loc := mustLoad(t, tc.zone)
			h := countHarness(t, window.Days(loc).Grace(time.Hour), window.EmitFinal())
			first, _ := time.ParseInLocation(time.DateOnly, tc.from, loc)
			last, _ := time.ParseInLocation(time.DateOnly, tc.to, loc)
			start := window.Days(loc).WindowAt(first).Start
			end := window.Days(loc).WindowAt(last).End
			for at := start; at.Before(end); at = at.Add(tc.every) {
				h.pipe("k", at)
			}
			h.pipe("k", end.Add(2*time.Hour)) // close the last day
			rs := h.read()
			if len(rs) != len(tc.want) {
				t.Fatalf("%d windows emitted, want %d: %v", len(rs), len(tc.want), rs)
			}
			for i, r := range rs {
				if r.count != tc.want[i] || r.end.Sub(r.start) != tc.lengths[i] || r.start.In(loc).Hour() != tc.startsAt[i] {
					t.Errorf("day %d: %v (%v long, starts %v local); want count %d, %v long, starting at %02d:00",
						i, r, r.end.Sub(r.start), r.start.In(loc).Format("2006-01-02 15:04 MST"), tc.want[i], tc.lengths[i], tc.startsAt[i])
				}
				if i > 0 && !r.start.Equal(rs[i-1].end) {
					t.Errorf("day %d starts at %v, the previous ended at %v", i, r.start, rs[i-1].end)
				}
			}
		})
	}
}

// Calendar weeks in Berlin over both 2026 changes: ISO weeks 13 (167h)
// and 43 (169h).
func TestCalendarWeeksAggregation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	h := countHarness(t, window.Weeks(berlin, time.Monday), window.EmitFinal())
	for _, span := range [][2]string{{"2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}, {"2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00"}} {
		for at := utc(span[0]); at.Before(utc(span[1])); at = at.Add(time.Hour) {
			h.pipe("k", at)
		}
	}
	h.pipe("k", utc("2026-11-30T00:00:00Z"))
	h.expect("two weeks",
		"k 2026-03-23T00:00:00+01:00 2026-03-30T00:00:00+02:00 167",
		"k 2026-10-19T00:00:00+02:00 2026-10-26T00:00:00+01:00 169")
}

func TestCalendarOutputInZone(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	var got []kstreams.Record[window.Key[string], int64]
	b := kstreams.NewBuilder()
	st := window.NewStore("counts", window.Days(berlin), serde.String, serde.Int64, memory.Supplier())
	in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	kstreams.ForEach(window.Count(in, "count", st), "collect", func(r kstreams.Record[window.Key[string], int64]) error {
		got = append(got, r)
		return nil
	})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := kstreamstest.New(topo)
	defer d.Close()
	if err := kstreamstest.Input(d, "in", serde.String, serde.String).PipeAt("a", "v", utc("2026-03-29T12:00:00Z")); err != nil {
		t.Fatal(err)
	}
	w := got[0].Key.Window
	if w.Start.Location() != berlin || w.Start.Format("15:04 MST") != "00:00 CET" || w.End.Format("2006-01-02 15:04 MST") != "2026-03-30 00:00 CEST" {
		t.Errorf("window %v: want local bounds in Europe/Berlin", w)
	}
}

func TestAggregateTypes(t *testing.T) {
	// Input string values, aggregate a struct, output a float: three types.
	type stats struct{ N, Sum int64 }
	statsSerde := serde.Funcs[stats]{
		Ser: func(dst []byte, _ string, _ []serde.Header, v stats) ([]byte, error) {
			return fmt.Appendf(dst, "%d,%d", v.N, v.Sum), nil
		},
		De: func(_ string, _ []serde.Header, b []byte) (stats, error) {
			var s stats
			_, err := fmt.Sscanf(string(b), "%d,%d", &s.N, &s.Sum)
			return s, err
		},
	}
	b := kstreams.NewBuilder()
	st := window.NewStore("stats", window.Tumbling(time.Hour), serde.String, serde.Serde[stats](statsSerde), memory.Supplier())
	in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	mean := window.Aggregate(in, "mean", st,
		func() stats { return stats{} },
		func(_ string, v string, s stats) (stats, error) {
			n, err := strconv.ParseInt(v, 10, 64)
			return stats{s.N + 1, s.Sum + n}, err
		},
		func(_ window.Key[string], s stats) (float64, error) { return float64(s.Sum) / float64(s.N), nil })
	kstreams.Sink(mean, "out", "out", window.KeySerde(serde.String), serde.Float64)
	// window.Identity infers its types from the parameter it is passed to.
	lens := window.NewStore("lens", window.Tumbling(time.Hour), serde.String, serde.Int64, memory.Supplier())
	sums := window.Aggregate(in, "sum", lens,
		func() int64 { return 0 }, func(_ string, v string, s int64) (int64, error) { return s + int64(len(v)), nil }, window.Identity)
	kstreams.Sink(sums, "lens-out", "lens", window.KeySerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := kstreamstest.New(topo)
	defer d.Close()
	input := kstreamstest.Input(d, "in", serde.String, serde.String)
	for _, v := range []string{"1", "2", "6"} {
		if err := input.PipeAt("a", v, utc("2026-03-29T00:30:00Z")); err != nil {
			t.Fatal(err)
		}
	}
	out, err := kstreamstest.Output(d, "out", window.KeySerde(serde.String), serde.Float64).ReadAll()
	if err != nil || len(out) != 3 || out[2].Value != 3 {
		t.Fatalf("means %v, %v; want the last to be 3", out, err)
	}
	ls, err := kstreamstest.Output(d, "lens", window.KeySerde(serde.String), serde.Int64).ReadAll()
	if err != nil || len(ls) != 3 || ls[2].Value != 3 {
		t.Fatalf("lengths %v, %v; want the last to be 3", ls, err)
	}
	// The store keeps the aggregate type with the latest timestamp.
	ws, err := kstreamstest.GetStore[store.WindowStore[string, window.Stamped[stats]]](d, "stats")
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := ws.Get("a", window.Window{Start: utc("2026-03-29T00:00:00Z"), End: utc("2026-03-29T01:00:00Z")})
	if err != nil || !ok || v.Value != (stats{3, 9}) || !v.Timestamp.Equal(utc("2026-03-29T00:30:00Z")) {
		t.Fatalf("stored %+v, %v, %v", v, ok, err)
	}
}
