package runtime

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

func TestEncodeDecodeDone(t *testing.T) {
	for _, tc := range []struct {
		name string
		done []int64
	}{
		{"none", nil},
		{"one", []int64{101}},
		{"runs", []int64{101, 102, 103, 200, 201, 5000}},
		{"dense", func() []int64 {
			var d []int64
			for o := int64(101); o < 1101; o += 2 {
				d = append(d, o)
			}
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := encodeDone(100, tc.done)
			got, err := decodeDone(100, meta)
			if err != nil || !slices.Equal(got, tc.done) {
				t.Fatalf("round trip: %v, %v (meta %q)", got, err, meta)
			}
		})
	}
	// Alternating offsets favour the bitset: it must be chosen.
	var alt []int64
	for o := int64(1); o < 2000; o += 2 {
		alt = append(alt, o)
	}
	if meta := encodeDone(0, alt); len(meta) > 400 {
		t.Fatalf("alternating offsets encode to %d bytes; the bitset would take ~340", len(meta))
	}
	if got, err := decodeDone(0, "not ours"); err != nil || got != nil {
		t.Fatalf("foreign metadata: %v, %v", got, err)
	}
	if _, err := decodeDone(0, metaPrefix+"!!!"); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

func TestTrackerCommitPoint(t *testing.T) {
	tr := newPartTracker()
	if _, _, ok := tr.commitPoint(); ok {
		t.Fatal("commit point before any dispatch")
	}
	es := make([]*trackEntry, 10)
	for i := range es {
		es[i] = tr.add(int64(i), int64(i+1))
	}
	for _, i := range []int{0, 1, 3, 4, 7} {
		tr.markDone(es[i])
	}
	off, done, _ := tr.commitPoint()
	if off != 2 || !slices.Equal(done, []int64{3, 4, 7}) {
		t.Fatalf("commit point %d, done %v", off, done)
	}
	if tr.inFlight() != 8 {
		t.Fatalf("in flight %d, want 8 (the complete prefix 0-1 is dropped)", tr.inFlight())
	}
	for _, e := range es {
		tr.markDone(e)
	}
	if off, done, _ := tr.commitPoint(); off != 10 || done != nil {
		t.Fatalf("all done: %d, %v", off, done)
	}
}

func FuzzDecodeDone(f *testing.F) {
	f.Add(int64(0), encodeDone(0, []int64{1, 2, 3, 10}))
	f.Add(int64(5), encodeDone(5, []int64{7, 9, 11, 13, 15, 17, 19, 21, 23}))
	f.Add(int64(0), "")
	f.Add(int64(0), metaPrefix+"cg")
	f.Add(int64(1<<40), metaPrefix+"Yv///w")
	f.Fuzz(func(t *testing.T, committed int64, meta string) {
		if committed < 0 || committed > 1<<50 {
			return
		}
		done, err := decodeDone(committed, meta)
		if err != nil {
			return
		}
		for i, o := range done {
			if o <= committed || (i > 0 && o <= done[i-1]) {
				t.Fatalf("decoded offsets not strictly above %d and increasing: %v", committed, done)
			}
		}
		// Whatever decodes must re-encode to something that decodes the same.
		again, err := decodeDone(committed, encodeDone(committed, done))
		if err != nil || !slices.Equal(again, done) {
			t.Fatalf("re-encoding %v: %v, %v", done, again, err)
		}
	})
}

func TestEncodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var done []int64
		o := int64(1000)
		for range r.IntN(300) {
			o += 1 + int64(r.IntN(5))
			done = append(done, o)
		}
		got, err := decodeDone(1000, encodeDone(1000, done))
		if err != nil || !slices.Equal(got, done) {
			t.Fatalf("random round trip failed: %v", err)
		}
	}
}

func TestSplitAtKeepsEntriesInOrder(t *testing.T) {
	tr := newPartTracker()
	a := tr.add(0, 1)
	whole := tr.add(1, 10)
	b := tr.add(10, 11)
	parts := tr.splitAt(whole, []int64{4, 5, 8})
	want := [][2]int64{{1, 4}, {4, 5}, {5, 8}, {8, 10}}
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(parts), len(want))
	}
	for i, p := range parts {
		if p.from != want[i][0] || p.to != want[i][1] {
			t.Fatalf("part %d is [%d, %d), want [%d, %d)", i, p.from, p.to, want[i][0], want[i][1])
		}
	}
	// Completing out of order: the commit point stops at the first
	// incomplete part and lists the complete ones above it.
	tr.markDone(a)
	tr.markDone(parts[0])
	tr.markDone(parts[2])
	tr.markDone(b)
	off, done, ok := tr.commitPoint()
	if !ok || off != 4 {
		t.Fatalf("commit point %d (ok %v), want 4", off, ok)
	}
	if !slices.Equal(done, []int64{5, 6, 7, 10}) {
		t.Fatalf("complete above the commit point: %v, want [5 6 7 10]", done)
	}
	tr.markDoneAll([]entryRef{{tr, parts[1]}, {tr, parts[3]}})
	if off, _, _ := tr.commitPoint(); off != 11 {
		t.Fatalf("commit point %d after all complete, want 11", off)
	}
}

// TestTrackerTotal: the shared total always equals the sum of the trackers'
// in-flight entries (the backpressure check reads it instead of summing).
func TestTrackerTotal(t *testing.T) {
	var total atomic.Int64
	a, b := newPartTracker(), newPartTracker()
	a.total, b.total = &total, &total
	check := func(step string) {
		t.Helper()
		if got, want := total.Load(), int64(a.inFlight()+b.inFlight()); got != want {
			t.Fatalf("%s: total %d, trackers hold %d", step, got, want)
		}
	}
	var es []*trackEntry
	for i := range 10 {
		es = append(es, a.add(int64(i*10), int64(i*10+10)))
		b.add(int64(i), int64(i+1))
	}
	check("add")
	parts := a.splitAt(es[3], []int64{32, 35, 38})
	check("split")
	a.markDone(es[0])
	a.markDone(parts[1])
	a.markDoneAll([]entryRef{{a, es[1]}, {a, es[2]}, {a, parts[0]}})
	check("done")
	a.commitPoint()
	check("commit point")
	b.detach()
	if got, want := total.Load(), int64(a.inFlight()); got != want {
		t.Fatalf("after detach: total %d, want %d", got, want)
	}
	b.add(100, 101) // a detached tracker no longer counts
	if got, want := total.Load(), int64(a.inFlight()); got != want {
		t.Fatalf("detached tracker counted: total %d, want %d", got, want)
	}
}
