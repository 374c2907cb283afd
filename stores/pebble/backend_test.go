package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/kstreams-go/kstreams/core/store"
)

func mustSet(t *testing.T, b store.Backend, k, v string) {
	t.Helper()
	if err := b.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func wantGet(t *testing.T, b store.Backend, k, want string, wantFound bool) {
	t.Helper()
	v, ok, err := b.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if ok != wantFound || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", k, v, ok, want, wantFound)
	}
}

// rawCount counts the entries of b's data namespace as stored, including
// expired ones that reads hide.
func rawCount(t *testing.T, b *Backend) int {
	t.Helper()
	lower, upper := bounds(nil, nil)
	it, err := b.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReopenAfterFlush(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"wal", nil}, {"nowal", []Option{WithoutWAL()}}} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Open(dir, mode.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var batch store.Batch
			for i := range 1000 {
				batch.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i))
			}
			batch.DeleteRange([]byte("k0100"), []byte("k0200"))
			if err := b.Write(&batch); err != nil {
				t.Fatal(err)
			}
			mustSet(t, b, "single", "x")
			if err := b.Delete([]byte("k0999")); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			b, err = Open(dir, mode.opts...)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer b.Close()
			wantGet(t, b, "single", "x", true)
			wantGet(t, b, "k0050", "v50", true)
			wantGet(t, b, "k0150", "", false)
			wantGet(t, b, "k0999", "", false)
			n := 0
			for _, err := range b.Range(nil, nil) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if want := 1000 - 100 - 1 + 1; n != want {
				t.Fatalf("%d entries after reopen, want %d", n, want)
			}
			if !b.Persistent() {
				t.Fatal("Persistent() = false for a store in a given directory")
			}
		})
	}
}

func TestSupplierLayoutAndSharedCache(t *testing.T) {
	supply := Supplier(WithCacheSize(32 << 20))
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := supply(store.BackendContext{Store: "s", Task: "0_0", Dir: dirA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := supply(store.BackendContext{Store: "s", Task: "0_1", Dir: dirB})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := a.(*Backend), b.(*Backend)
	if pa.res != pb.res || pa.res.cache == nil || pa.res.users != 2 {
		t.Fatalf("stores of one supplier do not share resources (users %d)", pa.res.users)
	}
	if got := pa.res.cache.MaxSize(); got != 32<<20 {
		t.Fatalf("cache size %d, want %d", got, 32<<20)
	}
	if pa.Dir() != filepath.Join(dirA, DBDir) {
		t.Fatalf("Dir() = %s, want %s", pa.Dir(), filepath.Join(dirA, DBDir))
	}
	if _, err := os.Stat(filepath.Join(dirA, DBDir, "LOCK")); err != nil {
		t.Fatalf("no Pebble database in %s/%s: %v", dirA, DBDir, err)
	}
	// The runtime keeps files of its own in the instance directory.
	if err := os.WriteFile(filepath.Join(dirA, ".changelog-offset"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSet(t, a, "k", "a")
	mustSet(t, b, "k", "b")
	wantGet(t, a, "k", "a", true)
	wantGet(t, b, "k", "b", true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if pa.res.users != 1 || pa.res.cache == nil {
		t.Fatal("closing one store released the shared cache")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if pa.res.users != 0 || pa.res.cache != nil || pa.res.fileCache != nil {
		t.Fatal("closing the last store did not release the shared caches")
	}
	// Opening again after all were closed creates the caches anew.
	a, err = supply(store.BackendContext{Store: "s", Task: "0_0", Dir: dirA})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if pa.res.cache == nil {
		t.Fatal("no cache after reopening")
	}
}

func TestSupplierWithoutDir(t *testing.T) {
	b, err := Supplier()(store.BackendContext{Store: "a/b", Task: "0_1"})
	if err != nil {
		t.Fatal(err)
	}
	pb := b.(*Backend)
	if pb.Persistent() {
		t.Fatal("a store in a temporary directory reports Persistent() = true")
	}
	tmp := pb.removeOnClose
	if tmp == "" || !strings.Contains(filepath.Base(tmp), "a_b-0_1") {
		t.Fatalf("temporary directory %q does not name the store and task", tmp)
	}
	mustSet(t, b, "k", "v")
	wantGet(t, b, "k", "v", true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary directory %s left after Close: %v", tmp, err)
	}
}

func TestOpenErrorsNameTheDirectory(t *testing.T) {
	dir := t.TempDir()
	// A file where the database directory should be.
	if err := os.WriteFile(filepath.Join(dir, DBDir), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, DBDir)) {
		t.Fatalf("Open over a file: %v; want an error naming %s", err, filepath.Join(dir, DBDir))
	}

	// A directory locked by an open store.
	dir = t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open of one directory: %v; want an error naming it", err)
	}
}

func TestNotAKstreamsStore(t *testing.T) {
	dir := t.TempDir()
	db, err := pebbledb.Open(filepath.Join(dir, DBDir), &pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("\x01foreign"), []byte("x"), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a kstreams store") {
		t.Fatalf("Open of a foreign database: %v", err)
	}
}

func TestCloseWhileRanging(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustSet(t, b, fmt.Sprintf("k%d", i), "v")
	}
	var (
		seen    int
		lastErr error
	)
	for e, err := range b.Range(nil, nil) {
		if err != nil {
			lastErr = err
			break
		}
		seen++
		if seen == 3 {
			// The yielded entry stays readable after Close, until the
			// loop body returns.
			key := string(e.Key)
			if err := b.Close(); err != nil {
				t.Fatalf("Close while ranging: %v", err)
			}
			if string(e.Key) != key {
				t.Fatal("yielded key changed by Close")
			}
			if _, _, err := b.Get([]byte("k0")); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Get after Close: %v", err)
			}
		}
	}
	if seen != 3 || !errors.Is(lastErr, store.ErrClosed) {
		t.Fatalf("range after Close: saw %d, ended with %v; want 3 then ErrClosed", seen, lastErr)
	}
	// The range ending closed the database: the directory can be opened.
	b2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen after the range ended: %v", err)
	}
	defer b2.Close()
	if err := b.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	for _, op := range []func() error{
		func() error { return b.Flush() },
		func() error { return b.Checkpoint(filepath.Join(t.TempDir(), "cp")) },
		func() error { return b.DeleteRange(nil, nil) },
		func() error { return b.Write(&store.Batch{}) },
	} {
		if err := op(); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("operation after Close: %v, want ErrClosed", err)
		}
	}
}

func TestDeleteRangeOpenBounds(t *testing.T) {
	b := openTemp(t)
	defer b.Close()
	for _, k := range []string{"", "a", "b", "\xff", "\xff\xff\xff"} {
		mustSet(t, b, k, "v")
	}
	if err := b.DeleteRange([]byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "a", "v", true)
	wantGet(t, b, "\xff\xff\xff", "", false)
	// Inverted and empty ranges delete nothing.
	if err := b.DeleteRange([]byte("z"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "a", "v", true)
	if err := b.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, b); n != 0 {
		t.Fatalf("%d entries after DeleteRange(nil, nil)", n)
	}
	// The format record is outside the data namespace and survives.
	if err := b.checkFormat(); err != nil {
		t.Fatalf("format record lost: %v", err)
	}
}

// Flush after no writes must not do I/O (the runtime calls it at every
// commit, for every store, busy or not).
func TestFlushWithoutWritesIsFree(t *testing.T) {
	b := openTemp(t, WithoutWAL())
	defer b.Close()
	mustSet(t, b, "k", "v")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	m, _ := b.Metrics()
	flushes := m.Flush.Count
	for range 5 {
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	m, _ = b.Metrics()
	if m.Flush.Count != flushes {
		t.Fatalf("Flush without writes flushed memtables: %d -> %d", flushes, m.Flush.Count)
	}
	mustSet(t, b, "k", "w")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	m, _ = b.Metrics()
	if m.Flush.Count == flushes {
		t.Fatal("Flush after a write did not flush")
	}
}

// A clean Close keeps every write, with or without the write-ahead log.
func TestCloseFlushes(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"wal", nil}, {"nowal", []Option{WithoutWAL()}}} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Open(dir, mode.opts...)
			if err != nil {
				t.Fatal(err)
			}
			mustSet(t, b, "k", "v")
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b, err = Open(dir, mode.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			wantGet(t, b, "k", "v", true)
		})
	}
}
