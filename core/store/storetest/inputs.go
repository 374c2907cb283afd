package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// RunInputs checks the contract of backends that implement
// store.InputOffsetKeeper (stores without changelog that keep the input
// offsets their data covers) and their owner fencing: flushed writes and
// input offsets survive a reopen together, invalid offsets are refused, and
// once a newer owner opened the same instance an older one cannot flush.
//
// Each subtest uses its own BackendContext (a distinct Task), so reopen may
// share one server across subtests.
func RunInputs(t *testing.T, reopen Reopen) {
	runInputs(t, reopen, "1", false, []inputTest{
		{"NoInputsWhenNew", testNoInputs},
		{"FlushInputsSurvivesReopen", testFlushInputsReopen},
		{"EmptyInputs", testEmptyInputs},
		{"InvalidInputsRefused", testInvalidInputs},
		{"StaleOwnerIsFenced", testInputsStaleOwner},
	})
}

// RunRewind checks the contract of backends that implement
// store.InputRewinder: a rewind to the offsets of an earlier flush restores
// its data (durably), a rewind to offsets never flushed changes nothing,
// and an owner fenced by a newer one cannot rewind.
func RunRewind(t *testing.T, reopen Reopen) {
	runInputs(t, reopen, "2", true, []inputTest{
		{"Rewind", testRewind},
		{"RewindSurvivesReopen", testRewindReopen},
		{"StaleOwnerCannotRewind", testRewindStaleOwner},
	})
}

type inputTest struct {
	name string
	fn   func(*testing.T, func() store.Backend)
}

func runInputs(t *testing.T, reopen Reopen, subtopology string, rewinder bool, tests []inputTest) {
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := store.BackendContext{App: "storetest", Store: "inputs", Task: fmt.Sprintf("%s_%d", subtopology, i), Partition: int32(i)}
			var opened []store.Backend
			t.Cleanup(func() {
				for _, b := range opened {
					if err := b.Close(); err != nil && !errors.Is(err, store.ErrFenced) && !errors.Is(err, store.ErrClosed) {
						t.Errorf("Close: %v", err)
					}
				}
			})
			tc.fn(t, func() store.Backend {
				b := reopen(t, ctx)
				opened = append(opened, b)
				if _, ok := b.(store.InputOffsetKeeper); !ok {
					t.Fatalf("%T does not implement store.InputOffsetKeeper", b)
				}
				if _, ok := b.(store.InputRewinder); rewinder && !ok {
					t.Fatalf("%T does not implement store.InputRewinder", b)
				}
				return b
			})
		})
	}
}

func inputKeeper(b store.Backend) store.InputOffsetKeeper { return b.(store.InputOffsetKeeper) }

func wantInputs(t *testing.T, b store.Backend, want store.InputOffsets) {
	t.Helper()
	got, err := inputKeeper(b).StoredInputs()
	if err != nil {
		t.Fatalf("StoredInputs: %v", err)
	}
	if (got == nil) != (want == nil) || !got.Equal(want) {
		t.Fatalf("StoredInputs = %v (nil: %v); want %v (nil: %v)", got, got == nil, want, want == nil)
	}
}

func flushInputs(t *testing.T, b store.Backend, in store.InputOffsets) {
	t.Helper()
	if err := inputKeeper(b).FlushInputs(in); err != nil {
		t.Fatalf("FlushInputs(%v): %v", in, err)
	}
}

func testNoInputs(t *testing.T, open func() store.Backend) {
	b := open()
	wantInputs(t, b, nil)
	wantGet(t, b, "a", "", false)
}

func testFlushInputsReopen(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "a", "1")
	mustSet(t, b, "b", "2")
	if err := b.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	in := store.InputOffsets{"orders": 17, "payments": 3}
	flushInputs(t, b, in)
	wantInputs(t, b, in)
	in["orders"] = 99 // the backend keeps its own copy
	wantInputs(t, b, store.InputOffsets{"orders": 17, "payments": 3})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := open()
	wantInputs(t, c, store.InputOffsets{"orders": 17, "payments": 3})
	wantGet(t, c, "a", "1", true)
	wantGet(t, c, "b", "", false)
	mustSet(t, c, "a", "3")
	flushInputs(t, c, store.InputOffsets{"orders": 18})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d := open()
	wantInputs(t, d, store.InputOffsets{"orders": 18})
	wantGet(t, d, "a", "3", true)
}

func testEmptyInputs(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "a", "1")
	flushInputs(t, b, store.InputOffsets{})
	wantInputs(t, b, store.InputOffsets{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := open()
	wantInputs(t, c, store.InputOffsets{})
	wantGet(t, c, "a", "1", true)
}

func testInvalidInputs(t *testing.T, open func() store.Backend) {
	b := open()
	flushInputs(t, b, store.InputOffsets{"in": 4})
	for _, bad := range []store.InputOffsets{{"": 1}, {"in": -1}} {
		if err := inputKeeper(b).FlushInputs(bad); err == nil {
			t.Fatalf("FlushInputs(%v) succeeded; want an error", bad)
		}
	}
	wantInputs(t, b, store.InputOffsets{"in": 4})
}

func testInputsStaleOwner(t *testing.T, open func() store.Backend) {
	old := open()
	mustSet(t, old, "k", "old")
	flushInputs(t, old, store.InputOffsets{"in": 1})
	cur := open()
	wantInputs(t, cur, store.InputOffsets{"in": 1})
	wantGet(t, cur, "k", "old", true)
	mustSet(t, cur, "k", "new")
	flushInputs(t, cur, store.InputOffsets{"in": 2})
	mustSet(t, old, "k", "stale") // may be refused already, or at the flush
	if err := inputKeeper(old).FlushInputs(store.InputOffsets{"in": 3}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushInputs: %v; want store.ErrFenced", err)
	}
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	last := open()
	wantInputs(t, last, store.InputOffsets{"in": 2})
	wantGet(t, last, "k", "new", true)
}

func rewind(t *testing.T, b store.Backend, to store.InputOffsets) bool {
	t.Helper()
	ok, err := b.(store.InputRewinder).RewindInputs(to)
	if err != nil {
		t.Fatalf("RewindInputs(%v): %v", to, err)
	}
	return ok
}

func testRewind(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "k", "1")
	mustSet(t, b, "gone", "x")
	flushInputs(t, b, store.InputOffsets{"in": 10})
	mustSet(t, b, "k", "2")
	if err := b.Delete([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	flushInputs(t, b, store.InputOffsets{"in": 20})
	mustSet(t, b, "k", "unflushed")

	if rewind(t, b, store.InputOffsets{"in": 15}) {
		t.Fatal("RewindInputs to offsets never flushed reported ok")
	}
	wantInputs(t, b, store.InputOffsets{"in": 20})
	wantGet(t, b, "k", "unflushed", true)

	if !rewind(t, b, store.InputOffsets{"in": 10}) {
		t.Fatal("RewindInputs to the previous flush's offsets reported not ok")
	}
	wantInputs(t, b, store.InputOffsets{"in": 10})
	wantGet(t, b, "k", "1", true)
	wantGet(t, b, "gone", "x", true)
	if !rewind(t, b, store.InputOffsets{"in": 10}) {
		t.Fatal("RewindInputs to the current offsets reported not ok")
	}
	wantGet(t, b, "k", "1", true)
	// Processing resumes from there.
	mustSet(t, b, "k", "1b")
	flushInputs(t, b, store.InputOffsets{"in": 12})
	wantGet(t, b, "k", "1b", true)
}

func testRewindReopen(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "k", "1")
	flushInputs(t, b, store.InputOffsets{"in": 10})
	mustSet(t, b, "k", "2")
	flushInputs(t, b, store.InputOffsets{"in": 20})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// A new owner finds the store ahead of the committed offsets (10).
	c := open()
	wantInputs(t, c, store.InputOffsets{"in": 20})
	if !rewind(t, c, store.InputOffsets{"in": 10}) {
		t.Fatal("RewindInputs to the previous flush's offsets after a reopen reported not ok")
	}
	wantGet(t, c, "k", "1", true)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d := open()
	wantInputs(t, d, store.InputOffsets{"in": 10})
	wantGet(t, d, "k", "1", true)
}

func testRewindStaleOwner(t *testing.T, open func() store.Backend) {
	old := open()
	mustSet(t, old, "k", "1")
	flushInputs(t, old, store.InputOffsets{"in": 10})
	mustSet(t, old, "k", "2")
	flushInputs(t, old, store.InputOffsets{"in": 20})
	cur := open()
	if _, err := old.(store.InputRewinder).RewindInputs(store.InputOffsets{"in": 10}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's RewindInputs: %v; want store.ErrFenced", err)
	}
	wantInputs(t, cur, store.InputOffsets{"in": 20})
	wantGet(t, cur, "k", "2", true)
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	last := open()
	wantInputs(t, last, store.InputOffsets{"in": 20})
	wantGet(t, last, "k", "2", true)
}
