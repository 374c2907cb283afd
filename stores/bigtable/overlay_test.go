package bigtable

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"cloud.google.com/go/bigtable"
)

// Writers, readers and a flusher at once (run with -race): every reader
// sees its own goroutine's last write whether or not a flush is running,
// and the final state, read by a new owner, is the last write of each key.
func TestOverlayConcurrent(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx)
	const writers, rounds, keysPerWriter = 4, 60, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Add(1)
	go func() {
		defer flusher.Done()
		for off := int64(0); ; off++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.FlushAt(off); err != nil {
				errs <- fmt.Errorf("FlushAt: %w", err)
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := fmt.Appendf(nil, "w%d-%02d", w, r%keysPerWriter)
				v := fmt.Appendf(nil, "%d", r)
				var err error
				switch r % 5 {
				case 3:
					err = b.Delete(k)
					v = nil
				case 4: // delete the writer's keys, then write one back
					if err = b.DeleteRange(fmt.Appendf(nil, "w%d-", w), fmt.Appendf(nil, "w%d.", w)); err == nil {
						err = b.Set(k, v)
					}
				default:
					err = b.Set(k, v)
				}
				if err != nil {
					errs <- err
					return
				}
				got, ok, err := b.Get(k)
				if err != nil || ok != (v != nil) || string(got) != string(v) {
					errs <- fmt.Errorf("writer %d round %d: Get(%s) = %q, %v, %v; want %q", w, r, k, got, ok, err, v)
					return
				}
				n := 0
				for e, err := range b.Range(fmt.Appendf(nil, "w%d-", w), fmt.Appendf(nil, "w%d.", w)) {
					if err != nil {
						errs <- err
						return
					}
					if string(e.Key) == string(k) && string(e.Value) != string(v) {
						errs <- fmt.Errorf("writer %d round %d: Range has %s=%q; want %q", w, r, k, e.Value, v)
						return
					}
					n++
				}
				if n > keysPerWriter {
					errs <- fmt.Errorf("writer %d: %d keys in its range", w, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flusher.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := all(t, b)
	if err := b.FlushAt(1 << 40); err != nil {
		t.Fatal(err)
	}
	b.Close()
	next := e.openWith(t, e.newClient(t), ctx)
	defer next.Close()
	if got := all(t, next); got != want {
		t.Fatalf("new owner reads\n%s\nthe old one read\n%s", got, want)
	}
	wantOffset(t, next, 1<<40, true)
}

// withObsoleteRows sets how many rows may wait with obsolete cells before a
// flush removes them all.
func withObsoleteRows(n int) Option { return func(c *config) { c.obsoleteRows = n } }

// cellCounts returns the cells of each data row of b, by store key.
func cellCounts(t *testing.T, e *emulator, b *Backend) string {
	t.Helper()
	rows := map[string]int{}
	err := e.client.Open(testTable).ReadRows(context.Background(), bigtable.PrefixRange(string(b.dataPrefix)), func(r bigtable.Row) bool {
		rows[r.Key()[len(b.dataPrefix):]] = len(r[DefaultFamily])
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(rows)
}

// Obsolete cells are removed with the next write of their row, and the
// other rows' once more rows than the bound wait: rows never hold more than
// two cells (a value and the one it replaced), deleted rows go.
func TestObsoleteCellsBounded(t *testing.T) {
	e := startEmulator(t)
	b := e.open(t, freshContext(), withObsoleteRows(3))
	defer b.Close()
	flush := func() {
		t.Helper()
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		mustSet(t, b, "hot", fmt.Sprint(i))
		flush()
	}
	// hot: written at each flush, each write removing what the one before
	// last left; the last two values are still there.
	if got := cellCounts(t, e, b); got != "map[hot:2]" {
		t.Fatalf("cells after 4 writes of one row: %s; want map[hot:2]", got)
	}
	mustSet(t, b, "a", "1")
	mustSet(t, b, "b", "1")
	flush()
	if err := b.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "b", "2")
	flush() // three rows wait (hot, a, b): not more than the bound
	if got := cellCounts(t, e, b); got != "map[a:2 b:2 hot:2]" {
		t.Fatalf("cells with 3 rows waiting: %s; want map[a:2 b:2 hot:2]", got)
	}
	mustSet(t, b, "c", "1")
	flush() // four wait (c too), more than the bound
	if got := cellCounts(t, e, b); got != "map[a:2 b:2 c:1 hot:2]" {
		t.Fatalf("cells with 4 rows waiting: %s; want map[a:2 b:2 c:1 hot:2]", got)
	}
	mustSet(t, b, "d", "1")
	flush() // this one removes the obsolete cells of all four
	if got := cellCounts(t, e, b); got != "map[b:1 c:1 d:1 hot:1]" {
		t.Fatalf("cells once 4 rows waited: %s; want map[b:1 c:1 d:1 hot:1]", got)
	}
	for k, want := range map[string]string{"hot": "3", "b": "2", "c": "1", "d": "1"} {
		if v, ok, err := b.Get([]byte(k)); err != nil || !ok || string(v) != want {
			t.Fatalf("Get(%s) = %q, %v, %v; want %q", k, v, ok, err, want)
		}
	}
}

// Flushed rows keep one cell once the store closed: each flush (bound 0) or
// the close removes the cells made obsolete, and the rows deleted.
func TestObsoleteCellsRemoved(t *testing.T) {
	for _, bound := range []int{0, defaultObsoleteRows} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) { testObsoleteCellsRemoved(t, bound) })
	}
}

func testObsoleteCellsRemoved(t *testing.T, bound int) {
	e := startEmulator(t)
	b := e.open(t, freshContext(), withObsoleteRows(bound))
	for i := range 5 {
		mustSet(t, b, "kept", fmt.Sprint(i))
		mustSet(t, b, fmt.Sprint("gone", i), "x")
		if i > 0 {
			if err := b.Delete([]byte(fmt.Sprint("gone", i-1))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil { // removes what the flushes left obsolete
		t.Fatal(err)
	}
	if got := cellCounts(t, e, b); got != "map[gone4:1 kept:1]" {
		t.Fatalf("rows and their cell counts: %s; want map[gone4:1 kept:1]", got)
	}
}

func TestGetMany(t *testing.T) {
	e := startEmulator(t)
	b := e.open(t, freshContext(), WithCacheSize(0))
	defer b.Close()
	mustSet(t, b, "a", "1")
	mustSet(t, b, "b", "2")
	mustSet(t, b, "c", "3")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "b", "unflushed")
	if err := b.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	before := e.rpcs.Load()
	values, found, err := b.GetMany([][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("missing"), []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q %v", values, found); got != `["1" "unflushed" "" "" "1"] [true true false false true]` {
		t.Fatalf("GetMany = %s", got)
	}
	if n := e.rpcs.Load() - before; n != 1 {
		t.Fatalf("GetMany made %d calls; want 1", n)
	}
}

// A read that took its view before two commits and reads the row after the
// second one removed the cell that counted under that view sees the newer
// value, not a missing row.
func TestReadOverlappingTwoCommits(t *testing.T) {
	e := startEmulator(t)
	b := e.open(t, freshContext(), WithCacheSize(0), withObsoleteRows(0))
	defer b.Close()
	mustSet(t, b, "k", "1")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	b.mu.RLock()
	before := b.view
	b.mu.RUnlock()
	mustSet(t, b, "k", "2")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "other", "x") // this flush removes k's cell of the first
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	row, err := e.client.Open(testTable).ReadRow(context.Background(), b.rowKey([]byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(row[DefaultFamily]); n != 1 {
		t.Fatalf("row k has %d cells; want 1 (the test needs the first cell removed)", n)
	}
	if v, ok := b.resolve(before, row); !ok || string(v) != "2" {
		t.Fatalf("resolve under the older view = %q, %v; want \"2\", true", v, ok)
	}
}

// A write made while a flush of the offset alone runs is not part of that
// flush, and does not make it look like one that wrote rows: the committed
// version, and what reads find in Bigtable, stay as they were. (The flush
// used to decide again at its end, found the new write, and recorded
// version 0 as committed: every read of Bigtable then found nothing.)
func TestWriteDuringOffsetOnlyFlush(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx, WithCacheSize(0))
	defer b.Close()
	mustSet(t, b, "flushed", "1")
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	setHook(t, func(hb *Backend, step string) error {
		if hb == b && step == "committing" {
			testHook = nil
			mustSet(t, b, "during", "2")
		}
		return nil
	})
	if err := b.FlushAt(2); err != nil { // nothing buffered: the offset alone
		t.Fatal(err)
	}
	wantGet(t, b, "flushed", "1", true)
	wantGet(t, b, "during", "2", true)
	if err := b.FlushAt(3); err != nil {
		t.Fatal(err)
	}
	next := e.openWith(t, e.newClient(t), ctx)
	defer next.Close()
	if got := all(t, next); got != "during=2 flushed=1" {
		t.Fatalf("next owner reads %q; want during=2 flushed=1", got)
	}
	wantOffset(t, next, 3, true)
}
