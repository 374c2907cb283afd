package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// Reopen opens the store instance named by ctx: the same data each time it is
// called with the same ctx, as a restarted or a new owner of the task would.
// The suite closes what it returns (a fenced backend may refuse Close with
// store.ErrFenced; that is accepted).
type Reopen func(t *testing.T, ctx store.BackendContext) store.Backend

// RunDurable checks the contract of backends that are durable by themselves
// and implement store.OffsetKeeper, and their owner fencing (store.ErrFenced):
// flushed writes and offsets survive a reopen, unflushed ones of a closed
// owner do not need to, and once a newer owner opened the same instance an
// older one can never again change what the newer one reads.
//
// Each subtest uses its own BackendContext (a distinct Task), so reopen may
// share one server across subtests.
func RunDurable(t *testing.T, reopen Reopen) {
	tests := []struct {
		name string
		fn   func(*testing.T, func() store.Backend)
	}{
		{"NoOffsetWhenNew", testNoOffset},
		{"FlushAtSurvivesReopen", testFlushAtReopen},
		{"FlushAtMinusOneForgets", testFlushAtForget},
		{"FlushSurvivesReopen", testFlushReopen},
		{"ReadYourWritesBeforeFlush", testReadYourWrites},
		{"StaleOwnerIsFenced", testStaleOwnerFenced},
		{"StaleOwnerBatchIsFenced", testStaleOwnerBatchFenced},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := store.BackendContext{App: "storetest", Store: "durable", Task: fmt.Sprintf("0_%d", i), Partition: int32(i)}
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
				if _, ok := b.(store.OffsetKeeper); !ok {
					t.Fatalf("%T does not implement store.OffsetKeeper", b)
				}
				opened = append(opened, b)
				return b
			})
		})
	}
}

func keeper(b store.Backend) store.OffsetKeeper { return b.(store.OffsetKeeper) }

func wantOffset(t *testing.T, b store.Backend, want int64, wantOK bool) {
	t.Helper()
	off, ok, err := keeper(b).StoredOffset()
	if err != nil {
		t.Fatalf("StoredOffset: %v", err)
	}
	if ok != wantOK || (ok && off != want) {
		t.Fatalf("StoredOffset = %d, %v; want %d, %v", off, ok, want, wantOK)
	}
}

func testNoOffset(t *testing.T, open func() store.Backend) {
	b := open()
	wantOffset(t, b, 0, false)
	wantGet(t, b, "a", "", false)
}

func testFlushAtReopen(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "a", "1")
	mustSet(t, b, "b", "2")
	if err := b.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := keeper(b).FlushAt(42); err != nil {
		t.Fatalf("FlushAt: %v", err)
	}
	wantOffset(t, b, 42, true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := open()
	wantOffset(t, c, 42, true)
	wantGet(t, c, "a", "1", true)
	wantGet(t, c, "b", "", false)
	mustSet(t, c, "a", "3")
	if err := keeper(c).FlushAt(43); err != nil {
		t.Fatalf("FlushAt: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d := open()
	wantOffset(t, d, 43, true)
	wantGet(t, d, "a", "3", true)
}

func testFlushAtForget(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "a", "1")
	if err := keeper(b).FlushAt(7); err != nil {
		t.Fatal(err)
	}
	if err := keeper(b).FlushAt(-1); err != nil {
		t.Fatal(err)
	}
	wantOffset(t, b, 0, false)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wantOffset(t, open(), 0, false)
}

func testFlushReopen(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "k", "v")
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, open(), "k", "v", true)
}

func testReadYourWrites(t *testing.T, open func() store.Backend) {
	b := open()
	mustSet(t, b, "a", "1")
	mustSet(t, b, "c", "3")
	if err := keeper(b).FlushAt(1); err != nil {
		t.Fatal(err)
	}
	// Unflushed writes over flushed ones: Get and Range see the newest.
	mustSet(t, b, "b", "2")
	if err := b.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "a", "10")
	wantGet(t, b, "a", "10", true)
	wantGet(t, b, "c", "", false)
	keys, values := collect(t, b, nil, nil)
	if fmt.Sprint(keys, values) != "[a b] [10 2]" {
		t.Fatalf("Range = %v %v; want [a b] [10 2]", keys, values)
	}
}

func testStaleOwnerFenced(t *testing.T, open func() store.Backend) {
	old := open()
	mustSet(t, old, "k", "old")
	if err := keeper(old).FlushAt(1); err != nil {
		t.Fatal(err)
	}
	mustSet(t, old, "k", "unflushed") // the owner's write before the handover
	cur := open()                     // the newer owner
	// A backend may buffer writes until a flush or write them through: the
	// newer owner reads the last flushed value or the unflushed one.
	if v, _, err := cur.Get([]byte("k")); err != nil || (string(v) != "old" && string(v) != "unflushed") {
		t.Fatalf("newer owner's Get(k) = %q, %v; want \"old\" or \"unflushed\"", v, err)
	}
	wantOffset(t, cur, 1, true)
	mustSet(t, cur, "k", "new")
	if err := keeper(cur).FlushAt(2); err != nil {
		t.Fatal(err)
	}
	// The stale owner's writes and flushes are refused from now on.
	err := keeper(old).FlushAt(3)
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushAt: %v; want store.ErrFenced", err)
	}
	if err := old.Set([]byte("k"), []byte("stale2")); err == nil {
		if err := old.Flush(); !errors.Is(err, store.ErrFenced) {
			t.Fatalf("stale owner's Set+Flush: %v; want store.ErrFenced", err)
		}
	} else if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Set: %v; want store.ErrFenced", err)
	}
	wantGet(t, cur, "k", "new", true)
	wantOffset(t, cur, 2, true)
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	last := open()
	wantGet(t, last, "k", "new", true)
	wantOffset(t, last, 2, true)
}

func testStaleOwnerBatchFenced(t *testing.T, open func() store.Backend) {
	old := open()
	cur := open()
	var b store.Batch
	b.Set([]byte("x"), []byte("stale"))
	b.DeleteRange([]byte("a"), []byte("z"))
	if err := old.Write(&b); err == nil {
		if err := old.Flush(); !errors.Is(err, store.ErrFenced) {
			t.Fatalf("stale owner's Write+Flush: %v; want store.ErrFenced", err)
		}
	} else if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Write: %v; want store.ErrFenced", err)
	}
	mustSet(t, cur, "m", "kept")
	if err := cur.Flush(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, open(), "m", "kept", true)
	wantGet(t, cur, "x", "", false)
}
