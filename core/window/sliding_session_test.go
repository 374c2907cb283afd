package window_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/window"
)

var base = utc("2026-03-29T00:00:00Z")

func at(s time.Duration) time.Time { return base.Add(s) }

// span formats a window relative to base, in seconds: "[a,b]".
func span(w window.Window) string {
	return fmt.Sprintf("[%s,%s]", rel(w.Start), rel(w.End))
}

func rel(t time.Time) string {
	d := t.Sub(base)
	if d%time.Second == 0 {
		return fmt.Sprint(int64(d / time.Second))
	}
	return fmt.Sprintf("%d+%dns", int64(d/time.Second), int64(d%time.Second))
}

// slidingWant computes the sliding windows of a key's record timestamps
// from their definition: for each record r, its left window [r-d, r] and,
// if a later record is within d+1ns of it, its right window [r+1ns,
// r+1ns+d]; each with the number of records it holds.
func slidingWant(ts []time.Time, d time.Duration) map[string]int64 {
	want := map[string]int64{}
	count := func(lo, hi time.Time) int64 {
		n := int64(0)
		for _, q := range ts {
			if !q.Before(lo) && !q.After(hi) {
				n++
			}
		}
		return n
	}
	for _, r := range ts {
		left := window.Window{Start: r.Add(-d), End: r}
		want[span(left)] = count(left.Start, left.End)
		right := window.Window{Start: r.Add(1), End: r.Add(1 + d)}
		if n := count(right.Start, right.End); n > 0 {
			want[span(right)] = n
		}
	}
	return want
}

func storedWindows(t *testing.T, d *kstreamstest.Driver, name string) map[string]int64 {
	t.Helper()
	ws, err := kstreamstest.GetStore[store.WindowStore[string, window.Stamped[int64]]](d, name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for w, err := range ws.FetchAll(base.Add(-24*time.Hour), base.Add(24*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		got[w.Key+span(w.Window)] = w.Value.Value
	}
	return got
}

func diffMaps(got, want map[string]int64) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: got none, want %d", k, want[k]))
		case g != want[k]:
			out = append(out, fmt.Sprintf("%s: got %d, want %d", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: got %d, want none", k, got[k]))
		}
	}
	return strings.Join(out, "\n")
}

func TestSlidingExample(t *testing.T) {
	const d = 10 * time.Second
	h := countHarness(t, window.Sliding(d).Grace(time.Hour))
	h.pipe("a", at(0))
	h.pipe("a", at(5*time.Second))
	h.pipe("a", at(20*time.Second))
	got := map[string]int64{}
	for _, r := range h.read() {
		got[span(window.Window{Start: r.start, End: r.end})] = r.count // the latest update wins
	}
	want := map[string]int64{
		"[-10,0]":        1, // left window of 0
		"[0+1ns,10+1ns]": 1, // right window of 0: holds 5
		"[-5,5]":         2, // left window of 5: 0 and 5
		"[10,20]":        1, // left window of 20 (5 is more than 10s before it)
		// No right window of 5: 20 is not in [5+1ns, 15+1ns], and a window
		// holding no record does not exist.
	}
	if diff := diffMaps(got, want); diff != "" {
		t.Errorf("sliding windows (last update of each):\n%s", diff)
	}
	// The store agrees with the definition.
	if diff := diffMaps(storedWindows(t, h.d, "counts"), prefixed("a", slidingWant([]time.Time{at(0), at(5 * time.Second), at(20 * time.Second)}, d))); diff != "" {
		t.Errorf("stored windows:\n%s", diff)
	}
}

func prefixed(key string, m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[key+k] = v
	}
	return out
}

// Random records, in order and shuffled (all within grace): the stored
// sliding windows are exactly those of the definition.
func TestSlidingMatchesDefinition(t *testing.T) {
	const d = 10 * time.Second
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		h := countHarness(t, window.Sliding(d).Grace(time.Hour))
		want := map[string]int64{}
		for _, key := range []string{"a", "b"} {
			var ts []time.Time
			for range 2 + rnd.IntN(12) {
				// Whole and half seconds over a minute: ties and exact
				// boundaries (records d apart) happen often.
				ts = append(ts, at(time.Duration(rnd.IntN(120))*500*time.Millisecond))
			}
			if round%2 == 0 {
				sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
			}
			for _, x := range ts {
				h.pipe(key, x)
			}
			maps.Copy(want, prefixed(key, slidingWant(ts, d)))
		}
		if diff := diffMaps(storedWindows(t, h.d, "counts"), want); diff != "" {
			t.Fatalf("round %d: stored windows differ from the definition:\n%s", round, diff)
		}
	}
}

func TestSlidingLateAndEmitFinal(t *testing.T) {
	var late atomic.Int64
	h := countHarness(t, window.Sliding(10*time.Second), window.EmitFinal(), window.CountLate(&late))
	h.pipe("a", at(0))
	h.expect("open: [-10s, 0] closes after 0 (its end is included)")
	h.pipe("a", at(5*time.Second))
	h.expect("[-10s, 0] closed", "a 2026-03-28T23:59:50Z 2026-03-29T00:00:00Z 1")
	h.pipe("b", at(16*time.Second))
	h.expect("a's windows ending before 16s closed, in order of their ends",
		"a 2026-03-28T23:59:55Z 2026-03-29T00:00:05Z 2",
		"a 2026-03-29T00:00:00.000000001Z 2026-03-29T00:00:10.000000001Z 1")
	h.pipe("a", at(3*time.Second)) // every window holding 3s is closed
	h.expect("late record: nothing")
	if late.Load() != 1 {
		t.Errorf("late: %d, want 1", late.Load())
	}
	h.pipe("c", at(100*time.Second))
	h.expect("b's window", "b 2026-03-29T00:00:06Z 2026-03-29T00:00:16Z 1")
}

func TestSessions(t *testing.T) {
	const gap = 10 * time.Minute
	var late atomic.Int64
	h := newHarness(t, func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64] {
		st := window.NewSessionStore("sessions", window.Session(gap).Grace(10*time.Minute), serde.String, serde.Int64, h.capture())
		return window.CountSessions(in, "count", st, window.CountLate(&late))
	})
	h.pipe("a", at(0))
	h.pipe("a", at(18*time.Minute))
	h.expect("two sessions",
		"a 2026-03-29T00:00:00Z 2026-03-29T00:00:00Z 1",
		"a 2026-03-29T00:18:00Z 2026-03-29T00:18:00Z 1")
	h.pipe("a", at(9*time.Minute)) // within the gap of both (and the grace period): merges them
	h.expect("merged",
		"a 2026-03-29T00:00:00Z 2026-03-29T00:18:00Z 3")
	h.pipe("a", at(25*time.Minute)) // extends the session
	h.pipe("b", at(26*time.Minute))
	h.expect("extended, and another key",
		"a 2026-03-29T00:00:00Z 2026-03-29T00:25:00Z 4",
		"b 2026-03-29T00:26:00Z 2026-03-29T00:26:00Z 1")
	got := storedSessions(t, h.d, "sessions")
	if want := []string{"a[0,1500]=4", "b[1560,1560]=1"}; !slices.Equal(got, want) {
		t.Fatalf("stored sessions %v, want %v", got, want)
	}
	// Stream time past 45:00 closes a's session (25:00 + gap + grace).
	h.pipe("b", at(46*time.Minute))
	h.expect("b's new session", "b 2026-03-29T00:46:00Z 2026-03-29T00:46:00Z 1")
	h.pipe("a", at(30*time.Minute)) // open by itself, but would extend a's closed session: late
	h.expect("late record dropped")
	if late.Load() != 1 {
		t.Errorf("late: %d, want 1", late.Load())
	}
	h.pipe("a", at(36*time.Minute)) // more than the gap after a's session: a new one
	h.expect("new session", "a 2026-03-29T00:36:00Z 2026-03-29T00:36:00Z 1")
}

func storedSessions(t *testing.T, d *kstreamstest.Driver, name string) []string {
	t.Helper()
	ss, err := kstreamstest.GetStore[store.SessionStore[string, window.Stamped[int64]]](d, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for s, err := range ss.FetchAll(base.Add(-24*time.Hour), base.Add(24*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s[%d,%d]=%d", s.Key, s.Window.Start.Sub(base)/time.Second, s.Window.End.Sub(base)/time.Second, s.Value.Value))
	}
	sort.Strings(got)
	return got
}

func TestSessionsEmitFinal(t *testing.T) {
	const gap = 10 * time.Minute
	h := newHarness(t, func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64] {
		st := window.NewSessionStore("sessions", window.Session(gap).Grace(10*time.Minute), serde.String, serde.Int64, h.capture())
		return window.CountSessions(in, "count", st, window.EmitFinal())
	})
	h.pipe("a", at(0))
	h.pipe("a", at(18*time.Minute))
	h.pipe("a", at(9*time.Minute))
	h.pipe("b", at(30*time.Minute))
	h.expect("open: a's session closes after 18:00 + gap 10m + grace 10m")
	h.pipe("b", at(38*time.Minute))
	h.expect("open at 38:00 exactly")
	h.pipe("b", at(38*time.Minute+1))
	h.expect("merged session emitted once", "a 2026-03-29T00:00:00Z 2026-03-29T00:18:00Z 3")
	h.pipe("c", at(2*time.Hour))
	h.expect("b's session", "b 2026-03-29T00:30:00Z 2026-03-29T00:38:00.000000001Z 3")
	// Only c's session is pending.
	if n := h.counts[window.PendingStoreName("sessions")].Len(); n != 1 {
		t.Errorf("pending store has %d entries, want 1", n)
	}
}

// Random records in random order within grace: the stored sessions are
// the gaps-split runs of the sorted timestamps.
func TestSessionsMatchDefinition(t *testing.T) {
	const gap = 10 * time.Second
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := range 40 {
		h := newHarness(t, func(h *harness, b *kstreams.Builder, in kstreams.Node[string, string]) kstreams.Node[window.Key[string], int64] {
			st := window.NewSessionStore("sessions", window.Session(gap).Grace(time.Hour), serde.String, serde.Int64, h.capture())
			return window.CountSessions(in, "count", st)
		})
		var ts []time.Time
		for range 1 + rnd.IntN(20) {
			ts = append(ts, at(time.Duration(rnd.IntN(200))*time.Second))
		}
		for _, x := range ts {
			h.pipe("k", x)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		var want []string
		s, n := ts[0], 1
		for i := 1; i <= len(ts); i++ {
			if i < len(ts) && ts[i].Sub(ts[i-1]) <= gap {
				n++
				continue
			}
			want = append(want, fmt.Sprintf("k[%d,%d]=%d", s.Sub(base)/time.Second, ts[i-1].Sub(base)/time.Second, n))
			if i < len(ts) {
				s, n = ts[i], 1
			}
		}
		sort.Strings(want)
		if got := storedSessions(t, h.d, "sessions"); !slices.Equal(got, want) {
			t.Fatalf("round %d: sessions %v, want %v (records %v)", round, got, want, ts)
		}
	}
}
