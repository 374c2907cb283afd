package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/core/store/storetest"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// Pebble as the working copy of object-storage snapshots (SnapshotLocal).

func snapshotSupplier(t *testing.T, b bucket.Bucket, opts ...pebble.Option) store.Supplier {
	return snapshot.Supplier(b, pebble.SnapshotLocal(append([]pebble.Option{pebble.WithCacheSize(8 << 20)}, opts...)...))
}

func dirBucket(t *testing.T) bucket.Bucket {
	t.Helper()
	b, err := bucket.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotDurable(t *testing.T) {
	supply := snapshotSupplier(t, dirBucket(t))
	disks := t.TempDir() // outlives the subtests, whose cleanups close the stores
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		var err error
		if bc.Dir, err = os.MkdirTemp(disks, ""); err != nil {
			t.Fatal(err)
		}
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Pebble stores without changelog: input offsets stored with the snapshot,
// rewinds to kept snapshots (a rewind replaces the Pebble working copy).
func TestSnapshotInputs(t *testing.T) {
	supply := snapshotSupplier(t, dirBucket(t))
	disks := t.TempDir() // outlives the subtests, whose cleanups close the stores
	reopen := func(t *testing.T, bc store.BackendContext) store.Backend {
		var err error
		if bc.Dir, err = os.MkdirTemp(disks, ""); err != nil {
			t.Fatal(err)
		}
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	storetest.RunInputs(t, reopen)
	storetest.RunRewind(t, reopen)
}

func TestSnapshotConformance(t *testing.T) {
	supply := snapshotSupplier(t, dirBucket(t))
	n := 0
	storetest.Run(t, func(t *testing.T) store.Backend {
		n++
		b, err := supply(store.BackendContext{App: "app", Store: "conformance", Task: fmt.Sprintf("0_%d", n), Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
				t.Error(err)
			}
		})
		return b
	})
}

// countingBucket counts the bytes of file uploads.
type countingBucket struct {
	bucket.Bucket
	fileBytes, files atomic.Int64
}

func (c *countingBucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if strings.Contains(name, "/files/") {
		c.files.Add(1)
		c.fileBytes.Add(size)
	}
	return c.Bucket.Put(ctx, name, r, size, cond)
}

// A snapshot after a few writes uploads a small fraction of the state:
// the table files of the earlier snapshot are shared. (Compactions are off:
// a compaction rewrites files, which the next snapshot then uploads.)
func TestSnapshotIncremental(t *testing.T) {
	cb := &countingBucket{Bucket: dirBucket(t)}
	supply := snapshotSupplier(t, cb, pebble.WithPebbleOptions(func(o *pebbledb.Options) { o.DisableAutomaticCompactions = true }))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	raw, err := supply(bc)
	if err != nil {
		t.Fatal(err)
	}
	b := raw.(*snapshot.Backend)
	const keys = 20000
	// Values that do not compress, 100 bytes each.
	rng := rand.New(rand.NewPCG(1, 2))
	valueOf := func() string {
		v := make([]byte, 100)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		return string(v)
	}
	values := make([]string, keys)
	var batch store.Batch
	for i := range keys {
		values[i] = valueOf()
		batch.Set(fmt.Appendf(nil, "key-%06d", i), []byte(values[i]))
	}
	if err := b.Write(&batch); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	full := cb.fileBytes.Load()
	if full < keys*50 {
		t.Fatalf("first snapshot uploaded %d bytes for %d keys of 110 bytes; want at least %d", full, keys, keys*50)
	}
	for i := range 10 {
		if err := b.Set(fmt.Appendf(nil, "key-%06d", i*1000), []byte("changed")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.FlushAt(2); err != nil {
		t.Fatal(err)
	}
	delta := cb.fileBytes.Load() - full
	t.Logf("first snapshot: %d bytes; after 10 updates: %d bytes (%d files in all)", full, delta, cb.files.Load())
	if delta*10 > full {
		t.Fatalf("a snapshot after 10 updates uploaded %d bytes, the full state is %d: want under a tenth", delta, full)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	bc.Dir = t.TempDir()
	moved, err := supply(bc)
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	n := 0
	for e, err := range moved.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		want := values[n]
		if n%1000 == 0 && n < 10*1000 {
			want = "changed"
		}
		if string(e.Key) != fmt.Sprintf("key-%06d", n) || string(e.Value) != want {
			t.Fatalf("entry %d after restore on a new disk: %s=%s; want key-%06d=%s", n, e.Key, abbrev(e.Value), n, want)
		}
		n++
	}
	if n != keys {
		t.Fatalf("restored %d keys; want %d", n, keys)
	}
	if off, ok, err := moved.(store.OffsetKeeper).StoredOffset(); err != nil || !ok || off != 2 {
		t.Fatalf("StoredOffset = %d, %v, %v; want 2", off, ok, err)
	}
}

func abbrev(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}

// getCounter counts downloads of file objects.
type getCounter struct {
	bucket.Bucket
	fileGets atomic.Int64
}

func (c *getCounter) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	if strings.Contains(name, "/files/") {
		c.fileGets.Add(1)
	}
	return c.Bucket.Get(ctx, name)
}

// Restarts on the same disk restore from the local file cache (hard links
// shared with the working copy) and download nothing; the working copy's
// compactions never change what the cache holds.
func TestSnapshotRestartSameDisk(t *testing.T) {
	gc := &getCounter{Bucket: dirBucket(t)}
	supply := snapshotSupplier(t, gc)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	for round := range 4 {
		raw, err := supply(bc)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		b := raw.(*snapshot.Backend)
		for i := range 500 * round {
			want := fmt.Sprint(i, "@", round-1)
			if v, ok, err := b.Get(fmt.Appendf(nil, "k%05d", i)); err != nil || !ok || string(v) != want {
				t.Fatalf("round %d: k%05d = %q, %v, %v; want %q", round, i, v, ok, err, want)
			}
		}
		var batch store.Batch
		for i := range 500 * (round + 1) {
			batch.Set(fmt.Appendf(nil, "k%05d", i), fmt.Append(nil, i, "@", round))
		}
		if err := b.Write(&batch); err != nil {
			t.Fatal(err)
		}
		if err := b.FlushAt(int64(round)); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := gc.fileGets.Load(); got != 0 {
		t.Fatalf("restarts on the same disk downloaded %d files; want 0", got)
	}
}
