package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

// newDisk opens each store instance on a new, empty disk: every restore
// comes from the bucket.
func newDisk(supply store.Supplier) storetest.Reopen {
	return func(t *testing.T, bc store.BackendContext) store.Backend {
		bc.Dir = t.TempDir()
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func TestInputsConformance(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal, snapshot.WithGarbageInterval(0))
	storetest.RunInputs(t, newDisk(supply))
	storetest.RunRewind(t, newDisk(supply))
}

func flushInputs(t *testing.T, b *snapshot.Backend, in store.InputOffsets) {
	t.Helper()
	if err := b.FlushInputs(in); err != nil {
		t.Fatalf("FlushInputs(%v): %v", in, err)
	}
}

// failManifest refuses every manifest write after it is armed, as a crash
// between the upload of a snapshot's files and its manifest would leave the
// bucket.
type failManifest struct {
	bucket.Bucket
	armed atomic.Bool
}

var errInjected = errors.New("injected failure")

func (f *failManifest) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if f.armed.Load() && strings.HasSuffix(name, "/manifest") {
		return "", errInjected
	}
	return f.Bucket.Put(ctx, name, r, size, cond)
}

// A FlushInputs whose manifest is not written leaves the previous snapshot
// and its offsets in force, both together; the next open restores exactly
// them, never the writes after them.
func TestInputsAtomic(t *testing.T) {
	fb := &failManifest{Bucket: newDir(t)}
	supply := snapshot.Supplier(fb, fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	defer closeQuietly(t, b)
	set(t, b, "a", "1")
	flushInputs(t, b, store.InputOffsets{"in": 5})
	set(t, b, "a", "2")
	set(t, b, "b", "1")
	fb.armed.Store(true)
	if err := b.FlushInputs(store.InputOffsets{"in": 7}); !errors.Is(err, errInjected) {
		t.Fatalf("FlushInputs with the manifest write failing: %v; want the injected error", err)
	}
	fb.armed.Store(false)
	for _, dir := range []string{bc.Dir, t.TempDir()} { // the same disk, then a new one
		bc.Dir = dir
		c := open(t, supply, bc)
		if got, _ := c.StoredInputs(); !got.Equal(store.InputOffsets{"in": 5}) {
			t.Fatalf("StoredInputs after a failed FlushInputs = %v; want {in@5}", got)
		}
		if off, ok, _ := c.StoredOffset(); ok {
			t.Fatalf("StoredOffset = %d of a store without changelog; want none", off)
		}
		if got := contents(t, c); got != "a=1" {
			t.Fatalf("restored %q; want a=1 (the snapshot of in@5, no later write)", got)
		}
		closeQuietly(t, c)
	}
}

// Once FlushInputs stored offsets, Flush uploads nothing (a snapshot of
// later writes would put the state ahead of them); a FlushInputs with the
// same offsets and no writes writes nothing either.
func TestFlushAfterInputsUploadsNothing(t *testing.T) {
	cb := &counting{Bucket: newDir(t)}
	supply := snapshot.Supplier(cb, fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	set(t, b, "a", "1")
	flushInputs(t, b, store.InputOffsets{"in": 1})
	puts, manifests := cb.filePuts.Load(), cb.manifestPuts.Load()
	flushInputs(t, b, store.InputOffsets{"in": 1})
	set(t, b, "a", "2")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if cb.filePuts.Load() != puts || cb.manifestPuts.Load() != manifests {
		t.Fatalf("uploads after FlushInputs: %d files, %d manifests; want none", cb.filePuts.Load()-puts, cb.manifestPuts.Load()-manifests)
	}
	// New offsets without writes: a manifest, no file.
	b2 := open(t, supply, store.BackendContext{App: "app", Store: "s", Task: "0_1", Dir: t.TempDir()})
	defer closeQuietly(t, b2)
	set(t, b2, "x", "1")
	flushInputs(t, b2, store.InputOffsets{"in": 1})
	puts, manifests = cb.filePuts.Load(), cb.manifestPuts.Load()
	flushInputs(t, b2, store.InputOffsets{"in": 2})
	if cb.filePuts.Load() != puts || cb.manifestPuts.Load() != manifests+1 {
		t.Fatalf("FlushInputs with new offsets and no writes: %d files, %d manifests; want 0, 1", cb.filePuts.Load()-puts, cb.manifestPuts.Load()-manifests)
	}
	closeQuietly(t, b)
	c := open(t, supply, bc)
	defer closeQuietly(t, c)
	if got := contents(t, c); got != "a=1" {
		t.Fatalf("restored %q; want a=1", got)
	}
}

// A manifest keeps WithKeptSnapshots earlier snapshots: each can be
// rewound to, from a new disk after the garbage collection ran at every
// snapshot; older ones cannot, and their files are collected.
func TestKeptSnapshots(t *testing.T) {
	dir := newDir(t)
	supply := snapshot.Supplier(dir, fileLocal, snapshot.WithKeptSnapshots(2), snapshot.WithGarbageInterval(0))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	for i := range 6 {
		set(t, b, "k", fmt.Sprint(i)) // rewrites part k each time
		flushInputs(t, b, store.InputOffsets{"in": int64(10 * i)})
	}
	// The current snapshot (k=5) and two kept ones (k=4, k=3) reference one
	// part k each.
	if got := fileObjects(t, dir); len(got) != 3 {
		t.Fatalf("file objects %v; want 3 (part k of the current and of the 2 kept snapshots)", got)
	}
	closeQuietly(t, b)
	for _, tc := range []struct {
		to   int64
		ok   bool
		want string
	}{{20, false, "k=5"}, {30, true, "k=3"}, {40, true, "k=4"}, {50, true, "k=5"}} {
		bc.Dir = t.TempDir()
		c := open(t, supply, bc)
		ok, err := c.RewindInputs(store.InputOffsets{"in": tc.to})
		if err != nil || ok != tc.ok {
			t.Fatalf("RewindInputs(in@%d) = %v, %v; want %v", tc.to, ok, err, tc.ok)
		}
		if got := contents(t, c); got != tc.want {
			t.Fatalf("after RewindInputs(in@%d): %q; want %q", tc.to, got, tc.want)
		}
		closeQuietly(t, c)
		if tc.ok && tc.to != 50 {
			// Rewound for good: roll the store forward again for the next case.
			bc.Dir = t.TempDir()
			c := open(t, supply, bc)
			for i := tc.to/10 + 1; i < 6; i++ {
				set(t, c, "k", fmt.Sprint(i))
				flushInputs(t, c, store.InputOffsets{"in": 10 * i})
			}
			closeQuietly(t, c)
		}
	}
}

// A newer owner can rewind to a snapshot the older owner kept, though the
// older owner keeps snapshotting (fenced) and collecting garbage: the files
// of kept snapshots survive a concurrent owner's collection.
func TestRewindAfterOwnerChange(t *testing.T) {
	dir := newDir(t)
	supply := snapshot.Supplier(dir, fileLocal, snapshot.WithGarbageInterval(0))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	old := open(t, supply, bc)
	defer closeQuietly(t, old)
	set(t, old, "a", "1")
	flushInputs(t, old, store.InputOffsets{"in": 1})
	set(t, old, "a", "2")
	flushInputs(t, old, store.InputOffsets{"in": 2})
	bc.Dir = t.TempDir()
	cur := open(t, supply, bc)
	defer closeQuietly(t, cur)
	set(t, old, "a", "3")
	if err := old.FlushInputs(store.InputOffsets{"in": 3}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushInputs: %v; want store.ErrFenced", err)
	}
	if ok, err := cur.RewindInputs(store.InputOffsets{"in": 1}); !ok || err != nil {
		t.Fatalf("RewindInputs(in@1) = %v, %v; want ok", ok, err)
	}
	if got := contents(t, cur); got != "a=1" {
		t.Fatalf("after the rewind: %q; want a=1", got)
	}
	set(t, cur, "b", "1")
	flushInputs(t, cur, store.InputOffsets{"in": 2})
	bc.Dir = t.TempDir()
	last := open(t, supply, bc)
	defer closeQuietly(t, last)
	if got, _ := last.StoredInputs(); !got.Equal(store.InputOffsets{"in": 2}) {
		t.Fatalf("StoredInputs = %v; want {in@2}", got)
	}
	if got := contents(t, last); got != "a=1 b=1" {
		t.Fatalf("restored %q; want a=1 b=1", got)
	}
}

// A store switched from snapshots with input offsets to a changelog (FlushAt)
// drops its offsets and kept snapshots.
func TestFlushAtDropsInputs(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	set(t, b, "a", "1")
	flushInputs(t, b, store.InputOffsets{"in": 1})
	flushInputs(t, b, store.InputOffsets{"in": 2})
	if err := b.FlushAt(7); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.StoredInputs(); got != nil {
		t.Fatalf("StoredInputs after FlushAt = %v; want nil", got)
	}
	if ok, err := b.RewindInputs(store.InputOffsets{"in": 1}); ok || err != nil {
		t.Fatalf("RewindInputs after FlushAt = %v, %v; want false (nothing kept)", ok, err)
	}
	closeQuietly(t, b)
}
