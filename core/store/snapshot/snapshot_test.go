package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
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

// counting counts a bucket's requests by kind and object kind.
type counting struct {
	bucket.Bucket
	filePuts, fileGets, manifestPuts atomic.Int64
	filePutBytes                     atomic.Int64
}

func (c *counting) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if strings.Contains(name, "/files/") {
		c.filePuts.Add(1)
		c.filePutBytes.Add(size)
	} else if strings.HasSuffix(name, "/manifest") {
		c.manifestPuts.Add(1)
	}
	return c.Bucket.Put(ctx, name, r, size, cond)
}

func (c *counting) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	if strings.Contains(name, "/files/") {
		c.fileGets.Add(1)
	}
	return c.Bucket.Get(ctx, name)
}

func newDir(t *testing.T) bucket.Bucket {
	t.Helper()
	b, err := bucket.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, supply store.Supplier, bc store.BackendContext) *snapshot.Backend {
	t.Helper()
	b, err := supply(bc)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return b.(*snapshot.Backend)
}

func closeQuietly(t *testing.T, b store.Backend) {
	t.Helper()
	if err := b.Close(); err != nil && !errors.Is(err, store.ErrClosed) && !errors.Is(err, store.ErrFenced) {
		t.Errorf("Close: %v", err)
	}
}

func set(t *testing.T, b store.Backend, k, v string) {
	t.Helper()
	if err := b.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Set(%s): %v", k, err)
	}
}

func contents(t *testing.T, b store.Backend) string {
	t.Helper()
	var parts []string
	for e, err := range b.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(e.Key)+"="+string(e.Value))
	}
	return strings.Join(parts, " ")
}

// Each open on its own disk: every restore comes from the bucket.
func TestDurableNewDisk(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		bc.Dir = t.TempDir()
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Every open of an instance on one disk (restarts, and a newer owner in the
// same process while the older is open): the file cache is shared.
func TestDurableSameDisk(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	dirs := map[string]string{}
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		if dirs[bc.Task] == "" {
			dirs[bc.Task] = t.TempDir()
		}
		bc.Dir = dirs[bc.Task]
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Without a state directory, a temporary one.
func TestDurableNoDir(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestConformance(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Backend {
		n++
		b, err := supply(store.BackendContext{App: "a", Store: "conformance", Task: fmt.Sprintf("0_%d", n), Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeQuietly(t, b) })
		return b
	})
}

// A snapshot uploads only the files the previous one did not have; a
// restart on the same disk downloads nothing, a new disk everything.
func TestIncremental(t *testing.T) {
	cb := &counting{Bucket: newDir(t)}
	supply := snapshot.Supplier(cb, fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	for _, k := range []string{"a1", "a2", "b1", "c1", "d1"} {
		set(t, b, k, "v-"+k)
	}
	if err := b.FlushAt(10); err != nil {
		t.Fatal(err)
	}
	if got := cb.filePuts.Load(); got != 4 {
		t.Fatalf("first snapshot uploaded %d files; want 4 (parts a, b, c, d)", got)
	}
	set(t, b, "b2", "v-b2")
	if err := b.FlushAt(11); err != nil {
		t.Fatal(err)
	}
	if got := cb.filePuts.Load(); got != 5 {
		t.Fatalf("after a write to part b, %d files uploaded in all; want 5 (only part b again)", got)
	}
	manifests := cb.manifestPuts.Load()
	if err := b.FlushAt(11); err != nil {
		t.Fatal(err)
	}
	if got := cb.manifestPuts.Load(); got != manifests {
		t.Fatalf("a FlushAt with no writes and the same offset wrote the manifest")
	}
	if err := b.FlushAt(12); err != nil {
		t.Fatal(err)
	}
	if cb.filePuts.Load() != 5 || cb.manifestPuts.Load() != manifests+1 {
		t.Fatalf("a FlushAt with a new offset and no writes: %d file uploads in all, %d manifest writes; want 5, %d", cb.filePuts.Load(), cb.manifestPuts.Load(), manifests+1)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	want := "a1=v-a1 a2=v-a2 b1=v-b1 b2=v-b2 c1=v-c1 d1=v-d1"
	same := open(t, supply, bc) // a restart on the same disk
	defer closeQuietly(t, same)
	if got := cb.fileGets.Load(); got != 0 {
		t.Fatalf("a restart on the same disk downloaded %d files; want 0", got)
	}
	if got := contents(t, same); got != want {
		t.Fatalf("restarted store holds %q; want %q", got, want)
	}
	if off, ok, _ := same.StoredOffset(); !ok || off != 12 {
		t.Fatalf("StoredOffset after restart = %d, %v; want 12", off, ok)
	}

	other := bc
	other.Dir = t.TempDir() // another machine
	moved := open(t, supply, other)
	defer closeQuietly(t, moved)
	if got := cb.fileGets.Load(); got != 4 {
		t.Fatalf("an open on a new disk downloaded %d files; want 4", got)
	}
	if got := contents(t, moved); got != want {
		t.Fatalf("store opened on a new disk holds %q; want %q", got, want)
	}
}

// A file whose contents do not match its hash is refused at open, naming it.
func TestCorruptFileRefused(t *testing.T) {
	dir := newDir(t)
	supply := snapshot.Supplier(dir, fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	set(t, b, "k", "v")
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var file string
	for info, err := range dir.List(context.Background(), "app/s/0_0/files/") {
		if err != nil {
			t.Fatal(err)
		}
		file = info.Name
	}
	if _, err := dir.Put(context.Background(), file, strings.NewReader("garbage"), 7, bucket.Cond{}); err != nil {
		t.Fatal(err)
	}
	bc.Dir = t.TempDir()
	_, err := supply(bc)
	if err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("open over a corrupt file: %v; want an error naming the SHA-256 mismatch", err)
	}
	// A missing file is an error too, never an empty store.
	if err := dir.Delete(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	bc.Dir = t.TempDir()
	if _, err = supply(bc); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("open with a file missing: %v; want bucket.ErrNotFound", err)
	}
}

// ignoring drops every condition, as some S3-compatible servers do.
type ignoring struct{ bucket.Bucket }

func (i ignoring) Put(ctx context.Context, name string, r io.Reader, size int64, _ bucket.Cond) (string, error) {
	return i.Bucket.Put(ctx, name, r, size, bucket.Cond{})
}

func TestRefusesBucketIgnoringConditions(t *testing.T) {
	supply := snapshot.Supplier(ignoring{newDir(t)}, fileLocal)
	_, err := supply(store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()})
	if !errors.Is(err, bucket.ErrConditionalWritesIgnored) {
		t.Fatalf("open on a bucket ignoring conditions: %v; want bucket.ErrConditionalWritesIgnored", err)
	}
}

// Concurrent opens of one instance each get their own epoch; only the
// newest owner's flush succeeds, every other is fenced.
func TestConcurrentOpens(t *testing.T) {
	supply := snapshot.Supplier(newDir(t), fileLocal)
	const owners = 6
	backends := make([]*snapshot.Backend, owners)
	var wg sync.WaitGroup
	for i := range owners {
		wg.Go(func() {
			b, err := supply(store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()})
			if err != nil {
				t.Error(err)
				return
			}
			backends[i] = b.(*snapshot.Backend)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var epochs []int64
	newest := backends[0]
	for _, b := range backends {
		defer closeQuietly(t, b)
		epochs = append(epochs, b.Epoch())
		if b.Epoch() > newest.Epoch() {
			newest = b
		}
	}
	slices.Sort(epochs)
	if !slices.Equal(epochs, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("epochs %v; want 1..6, each once", epochs)
	}
	for i, b := range backends {
		set(t, b, "k", fmt.Sprint("owner ", i))
	}
	var wins atomic.Int32
	for _, b := range backends {
		wg.Go(func() {
			err := b.FlushAt(5)
			switch {
			case err == nil:
				wins.Add(1)
				if b != newest {
					t.Errorf("owner of epoch %d flushed though epoch %d opened", b.Epoch(), newest.Epoch())
				}
			case !errors.Is(err, store.ErrFenced):
				t.Errorf("owner of epoch %d: %v; want store.ErrFenced", b.Epoch(), err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d flushes succeeded; want 1 (the newest owner's)", wins.Load())
	}
}

// Each snapshot (with a zero interval) deletes the file objects its
// manifest does not reference; with the default interval, they stay until
// the next round.
func TestGarbage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []snapshot.Option
		wantExtra bool
	}{{"EverySnapshot", []snapshot.Option{snapshot.WithGarbageInterval(0)}, false}, {"Default", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newDir(t)
			supply := snapshot.Supplier(dir, fileLocal, tc.opts...)
			b := open(t, supply, store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()})
			defer closeQuietly(t, b)
			for i := range 5 {
				set(t, b, "k", fmt.Sprint(i)) // rewrites part k each time
				set(t, b, fmt.Sprint("x", i), "v")
				if err := b.FlushAt(int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			objects := fileObjects(t, dir)
			// The last snapshot references part k and part x.
			if tc.wantExtra && len(objects) <= 2 || !tc.wantExtra && len(objects) != 2 {
				t.Fatalf("file objects after 5 snapshots: %v; want %s", objects, map[bool]string{true: "more than 2", false: "2"}[tc.wantExtra])
			}
			got := contents(t, open(t, supply, store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}))
			if got != "k=4 x0=v x1=v x2=v x3=v x4=v" {
				t.Fatalf("restored %q", got)
			}
		})
	}
}

func fileObjects(t *testing.T, b bucket.Bucket) []string {
	t.Helper()
	var names []string
	for info, err := range b.List(context.Background(), "app/s/0_0/files/") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimPrefix(info.Name, "app/s/0_0/files/"))
	}
	return names
}

// A fenced owner's uploads are collected by the next owner; what the
// current owner references survives every collection.
func TestGarbageOfFencedOwner(t *testing.T) {
	dir := newDir(t)
	supply := snapshot.Supplier(dir, fileLocal, snapshot.WithGarbageInterval(0))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0"}
	bc.Dir = t.TempDir()
	old := open(t, supply, bc) // epoch 1
	defer closeQuietly(t, old)
	set(t, old, "a", "1")
	if err := old.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	bc.Dir = t.TempDir()
	cur := open(t, supply, bc) // epoch 2
	defer closeQuietly(t, cur)
	set(t, cur, "a", "2") // part a again: uploaded under epoch 2
	set(t, cur, "b", "1")
	if err := cur.FlushAt(2); err != nil {
		t.Fatal(err)
	}
	set(t, old, "c", "stale") // a new part, uploaded under epoch 1, never referenced
	if err := old.FlushAt(3); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushAt: %v; want store.ErrFenced", err)
	}
	if got := fileObjects(t, dir); len(got) != 3 {
		t.Fatalf("file objects %v; want part a and b of epoch 2 and the stale owner's part c", got)
	}
	bc.Dir = t.TempDir()
	last := open(t, supply, bc) // epoch 3
	defer closeQuietly(t, last)
	if got := contents(t, last); got != "a=2 b=1" {
		t.Fatalf("restored %q; want a=2 b=1", got)
	}
	set(t, last, "d", "1")
	if err := last.FlushAt(4); err != nil {
		t.Fatal(err)
	}
	objects := fileObjects(t, dir)
	for _, name := range objects {
		if strings.HasSuffix(name, "-1") {
			t.Errorf("file object %s of the fenced owner outlived the next owner's collection", name)
		}
	}
	if len(objects) != 3 {
		t.Errorf("file objects %v; want parts a and b of epoch 2 and part d of epoch 3", objects)
	}
}

// FlushAt(-1) drops the offset without uploading; the next open has none.
func TestForgetUploadsNothing(t *testing.T) {
	cb := &counting{Bucket: newDir(t)}
	supply := snapshot.Supplier(cb, fileLocal)
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	set(t, b, "k", "v")
	if err := b.FlushAt(3); err != nil {
		t.Fatal(err)
	}
	set(t, b, "k2", "v2")
	puts := cb.filePuts.Load()
	if err := b.FlushAt(-1); err != nil {
		t.Fatal(err)
	}
	if cb.filePuts.Load() != puts {
		t.Fatal("FlushAt(-1) uploaded files")
	}
	// The writes before FlushAt(-1) are not in the bucket: a Flush
	// uploads them.
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if cb.filePuts.Load() == puts {
		t.Fatal("Flush after FlushAt(-1) uploaded nothing, though k2 was never uploaded")
	}
	b.Close()
	c := open(t, supply, bc)
	defer closeQuietly(t, c)
	if off, ok, err := c.StoredOffset(); ok || err != nil {
		t.Fatalf("StoredOffset after FlushAt(-1) = %d, %v, %v; want none", off, ok, err)
	}
	if got := contents(t, c); got != "k=v k2=v2" {
		t.Fatalf("restored %q; want k=v k2=v2", got)
	}
}

// With a snapshot interval, FlushAt uploads at most once per interval; in
// between, the stored offset stays the last snapshot's. Flush always
// uploads.
func TestSnapshotInterval(t *testing.T) {
	cb := &counting{Bucket: newDir(t)}
	supply := snapshot.Supplier(cb, fileLocal, snapshot.WithSnapshotInterval(time.Hour))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	defer closeQuietly(t, b)
	manifests := cb.manifestPuts.Load()
	set(t, b, "a", "1")
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	set(t, b, "a", "2")
	if err := b.FlushAt(2); err != nil {
		t.Fatal(err)
	}
	if got := cb.manifestPuts.Load() - manifests; got != 1 {
		t.Fatalf("%d manifest writes for two FlushAt within the interval; want 1", got)
	}
	if off, ok, _ := b.StoredOffset(); !ok || off != 1 {
		t.Fatalf("StoredOffset = %d, %v; want 1 (the snapshot's)", off, ok)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := cb.manifestPuts.Load() - manifests; got != 2 {
		t.Fatalf("Flush within the interval wrote %d manifests in all; want 2 (Flush always uploads)", got)
	}
	// A stale owner learns it is fenced at its next upload, and from then on
	// every FlushAt fails, within the interval too.
	other := bc
	other.Dir = t.TempDir()
	newer := open(t, supply, other)
	defer closeQuietly(t, newer)
	if got := contents(t, newer); got != "a=2" {
		t.Fatalf("newer owner restored %q; want a=2 (the Flush's snapshot)", got)
	}
	set(t, b, "a", "stale")
	if err := b.Flush(); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Flush: %v; want store.ErrFenced", err)
	}
	if err := b.FlushAt(9); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("fenced owner's FlushAt within the interval: %v; want store.ErrFenced", err)
	}
}
