package bigtable

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

func wantInputs(t *testing.T, b *Backend, want store.InputOffsets) {
	t.Helper()
	got, err := b.StoredInputs()
	if err != nil {
		t.Fatalf("StoredInputs: %v", err)
	}
	if (got == nil) != (want == nil) || !got.Equal(want) {
		t.Fatalf("StoredInputs = %v; want %v", got, want)
	}
}

// The input offsets are committed by the step that publishes the flush's
// writes: a crash after any earlier step (the mark, the rows written)
// leaves the previous writes and offsets, and the crashed flush's rows are
// never read.
func TestCrashDuringFlushInputs(t *testing.T) {
	for _, step := range []string{"marked", "written", "committing"} {
		t.Run("after "+step, func(t *testing.T) {
			e := startEmulator(t)
			ctx := freshContext()
			b := e.openWith(t, e.newClient(t), ctx)
			mustSet(t, b, "k1", "v1")
			mustSet(t, b, "k2", "v1")
			before := store.InputOffsets{"in": 5}
			if err := b.FlushInputs(before); err != nil {
				t.Fatal(err)
			}
			setHook(t, func(_ *Backend, s string) error {
				if s == step {
					return errCrash
				}
				return nil
			})
			mustSet(t, b, "k1", "v2")
			if err := b.DeleteRange([]byte("k2"), []byte("k3")); err != nil {
				t.Fatal(err)
			}
			mustSet(t, b, "k3", "v2")
			if err := b.FlushInputs(store.InputOffsets{"in": 9}); !errors.Is(err, errCrash) {
				t.Fatalf("FlushInputs: %v; want the crash", err)
			}
			testHook = nil
			// The process is gone: b is abandoned without Close.

			next := e.openWith(t, e.newClient(t), ctx)
			wantInputs(t, next, before)
			if got := all(t, next); got != "k1=v1 k2=v1" {
				t.Fatalf("after the crash: %q; want the state at offset 5, k1=v1 k2=v1", got)
			}
			mustSet(t, next, "k4", "v3")
			if err := next.FlushInputs(store.InputOffsets{"in": 6}); err != nil {
				t.Fatal(err)
			}
			next.Close()
			last := e.openWith(t, e.newClient(t), ctx)
			defer last.Close()
			wantInputs(t, last, store.InputOffsets{"in": 6})
			if got := all(t, last); got != "k1=v1 k2=v1 k4=v3" {
				t.Fatalf("third owner: %q", got)
			}
		})
	}
}

// Each kind of flush keeps only the offsets its data matches; a
// FlushInputs with nothing new costs nothing; a stale owner's FlushInputs
// is fenced, offsets alone included.
func TestInputOffsetsKinds(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx)
	a := store.InputOffsets{"in": 10, "other": 2}
	mustSet(t, b, "k", "1")
	if err := b.FlushAt(4); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushInputs(a); err != nil {
		t.Fatal(err)
	}
	wantOffset(t, b, 0, false)
	before := e.rpcs.Load()
	if err := b.FlushInputs(store.InputOffsets{"in": 10, "other": 2}); err != nil {
		t.Fatal(err)
	}
	if n := e.rpcs.Load() - before; n != 0 {
		t.Fatalf("an idle FlushInputs made %d calls; want 0", n)
	}
	next := e.open(t, ctx)
	wantInputs(t, next, a)
	wantOffset(t, next, 0, false)
	wantGet(t, next, "k", "1", true)
	if err := b.FlushInputs(store.InputOffsets{"in": 11, "other": 2}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushInputs of offsets alone: %v; want store.ErrFenced", err)
	}
	// Flush with writes drops the input offsets (the changelog offset rule
	// stays: Flush keeps it); FlushAt drops them too.
	mustSet(t, next, "k", "2")
	if err := next.Flush(); err != nil {
		t.Fatal(err)
	}
	wantInputs(t, next, nil)
	if err := next.FlushInputs(a); err != nil {
		t.Fatal(err)
	}
	if err := next.FlushAt(7); err != nil {
		t.Fatal(err)
	}
	third := e.open(t, ctx)
	defer third.Close()
	wantInputs(t, third, nil)
	wantOffset(t, third, 7, true)
}

// A corrupt inputs cell fails the open, naming the column.
func TestCorruptInputOffsets(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx)
	m := bigtable.NewMutation()
	m.Set(DefaultFamily, colInputs, 0, []byte{1, 5, 'x'})
	if err := e.client.Open(e.table).Apply(context.Background(), b.metaKey, m); err != nil {
		t.Fatal(err)
	}
	_, err := Supplier(e.client, e.table)(ctx)
	if err == nil || !strings.Contains(err.Error(), "column inputs") || !strings.Contains(err.Error(), "input offsets") {
		t.Fatalf("open over a corrupt inputs cell: %v", err)
	}
}
