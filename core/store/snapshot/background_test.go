package snapshot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

// settledFlush waits for each FlushAt's background upload (StoredOffset
// waits for it), so that the durable-store contract, which expects a
// FlushAt to be in the bucket when it returns, applies.
type settledFlush struct{ *snapshot.Backend }

func (s settledFlush) FlushAt(offset int64) error {
	if err := s.Backend.FlushAt(offset); err != nil {
		return err
	}
	_, _, err := s.Backend.StoredOffset()
	return err
}

// With background uploads, once each upload landed, the durable-store
// contract holds (fencing included); so does the input-offsets one
// (FlushInputs waits for its upload itself).
func TestBackgroundDurable(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal, snapshot.WithBackgroundUploads(), snapshot.WithGarbageInterval(0))
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		return settledFlush{newDisk(supply)(t, bc).(*snapshot.Backend)}
	})
	storetest.RunInputs(t, newDisk(supply))
}

// gated holds each file upload until a token arrives on gate (or until
// openAll), and fails it if fail is set when it passes.
type gated struct {
	bucket.Bucket
	gate    chan struct{}
	open    chan struct{}
	once    sync.Once
	waiting atomic.Int64 // file uploads that reached the gate
	fail    atomic.Bool
}

func newGated(t *testing.T) *gated {
	return &gated{Bucket: newDir(t), gate: make(chan struct{}), open: make(chan struct{})}
}

func (g *gated) openAll() { g.once.Do(func() { close(g.open) }) }

func (g *gated) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if strings.Contains(name, "/files/") {
		g.waiting.Add(1)
		select {
		case <-g.gate:
		case <-g.open:
		}
		if g.fail.Load() {
			return "", errInjected
		}
	}
	return g.Bucket.Put(ctx, name, r, size, cond)
}

func readManifest(t *testing.T, b bucket.Bucket, name string) *snapshot.Manifest {
	t.Helper()
	r, _, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var m snapshot.Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func manifestOffset(t *testing.T, b bucket.Bucket) int64 {
	t.Helper()
	return readManifest(t, b, "app/s/0_0/manifest").Offset
}

// FlushAt returns while its upload is held; the next FlushAt waits for it
// (one upload in flight); the stored offset advances when the manifest
// lands. A failed upload leaves the previous offset, and the next FlushAt
// snapshots again.
func TestBackgroundUploads(t *testing.T) {
	g := newGated(t)
	supply := snapshot.Supplier(g, fileLocal, snapshot.WithBackgroundUploads())
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	defer closeQuietly(t, b)
	defer g.openAll()

	set(t, b, "a", "1")
	if err := b.FlushAt(1); err != nil { // returns though its upload is held
		t.Fatal(err)
	}
	if got := manifestOffset(t, g.Bucket); got != -1 {
		t.Fatalf("the bucket's manifest has offset %d before the upload finished; want -1", got)
	}
	set(t, b, "a", "2") // writes go on while the upload is held
	second := make(chan error, 1)
	go func() { second <- b.FlushAt(2) }()
	select {
	case err := <-second:
		t.Fatalf("a second FlushAt returned (%v) while the first upload was in flight; want it to wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.fail.Store(true)
	g.gate <- struct{}{} // the first upload fails
	if err := <-second; err != nil {
		t.Fatalf("FlushAt after a failed background upload: %v; want nil (it snapshots again)", err)
	}
	g.fail.Store(false)
	g.gate <- struct{}{} // the second upload goes through
	if off, ok, err := b.StoredOffset(); err != nil || !ok || off != 2 {
		t.Fatalf("StoredOffset after the second upload = %d, %v, %v; want 2", off, ok, err)
	}
	if got := manifestOffset(t, g.Bucket); got != 2 {
		t.Fatalf("the bucket's manifest has offset %d; want 2", got)
	}
	// Nothing written: a new offset is a manifest only, no file upload.
	waiting := g.waiting.Load()
	if err := b.FlushAt(3); err != nil {
		t.Fatal(err)
	}
	if off, _, _ := b.StoredOffset(); off != 3 || g.waiting.Load() != waiting {
		t.Fatalf("FlushAt(3) without writes: stored offset %d, %d file uploads; want 3, 0", off, g.waiting.Load()-waiting)
	}
	other := bc
	other.Dir = t.TempDir()
	c := open(t, supply, other)
	defer closeQuietly(t, c)
	if got := contents(t, c); got != "a=2" {
		t.Fatalf("restored %q; want a=2", got)
	}
}

// A stale owner's background upload that a newer owner's claim overtook
// fails the next FlushAt with store.ErrFenced; a FlushAt that finds the
// manifest replaced is fenced before uploading anything.
func TestBackgroundFenced(t *testing.T) {
	g := newGated(t)
	supply := snapshot.Supplier(g, fileLocal, snapshot.WithBackgroundUploads())
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	old := open(t, supply, bc)
	defer closeQuietly(t, old)
	defer g.openAll()
	set(t, old, "a", "1")
	if err := old.FlushAt(1); err != nil { // held at the gate
		t.Fatal(err)
	}
	other := bc
	other.Dir = t.TempDir()
	cur := open(t, supply, other) // claims while old's upload is held
	defer closeQuietly(t, cur)
	g.gate <- struct{}{}
	if err := old.FlushAt(2); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushAt after its background upload was refused: %v; want store.ErrFenced", err)
	}
	if err := old.Set([]byte("a"), []byte("stale")); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Set: %v; want store.ErrFenced", err)
	}

	bc.Task, bc.Dir = "0_1", t.TempDir()
	older := open(t, supply, bc)
	defer closeQuietly(t, older)
	bc.Dir = t.TempDir()
	newer := open(t, supply, bc)
	defer closeQuietly(t, newer)
	set(t, older, "b", "1")
	waiting := g.waiting.Load()
	if err := older.FlushAt(1); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("FlushAt of an owner whose manifest was claimed: %v; want store.ErrFenced", err)
	}
	if g.waiting.Load() != waiting {
		t.Fatal("a fenced owner's FlushAt uploaded a file")
	}
}
