package bigtable

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/bigtable"

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

func wantOffset(t *testing.T, b *Backend, want int64, wantOK bool) {
	t.Helper()
	off, ok, err := b.StoredOffset()
	if err != nil || ok != wantOK || (ok && off != want) {
		t.Fatalf("StoredOffset = %d, %v, %v; want %d, %v", off, ok, err, want, wantOK)
	}
}

// all returns the store's contents as "k=v" pairs in order.
func all(t *testing.T, b store.Backend) string {
	t.Helper()
	var out []string
	for e, err := range b.Range(nil, nil) {
		if err != nil {
			t.Fatalf("Range: %v", err)
		}
		out = append(out, string(e.Key)+"="+string(e.Value))
	}
	return strings.Join(out, " ")
}

// setHook installs testHook for one test.
func setHook(t *testing.T, h func(b *Backend, step string) error) {
	testHook = h
	t.Cleanup(func() { testHook = nil })
}

var errCrash = errors.New("simulated crash")

// A stale owner that passed the mark step before the new owner opened
// still lands its rows: the new owner must never read them, not even after
// its own commits have moved the committed version past them.
func TestStaleOwnerRowsNeverRead(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	old := e.openWith(t, e.newClient(t), ctx)
	mustSet(t, old, "a", "old-committed")
	if err := old.FlushAt(10); err != nil {
		t.Fatal(err)
	}

	var cur *Backend
	setHook(t, func(b *Backend, step string) error {
		if b == old && step == "marked" && cur == nil {
			cur = e.openWith(t, e.newClient(t), ctx) // the handover, mid-flush
		}
		return nil
	})
	mustSet(t, old, "a", "stale")
	mustSet(t, old, "b", "stale")
	if err := old.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	err := old.FlushAt(11)
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushAt: %v; want store.ErrFenced", err)
	}
	// The stale rows are in Bigtable (the ApplyBulk ran), yet invisible.
	if n := cellsAbove(t, e.client, old.dataPrefix, cur.view.committed); n == 0 {
		t.Fatal("the stale owner's ApplyBulk wrote nothing: the test does not test the race")
	}
	wantOffset(t, cur, 10, true)
	if got := all(t, cur); got != "a=old-committed" {
		t.Fatalf("new owner reads %q; want a=old-committed", got)
	}
	// The new owner commits, more than once, versions above the stale ones.
	mustSet(t, cur, "c", "new")
	if err := cur.FlushAt(12); err != nil {
		t.Fatal(err)
	}
	mustSet(t, cur, "d", "new")
	if err := cur.FlushAt(13); err != nil {
		t.Fatal(err)
	}
	if got := all(t, cur); got != "a=old-committed c=new d=new" {
		t.Fatalf("new owner reads %q after its commits", got)
	}
	if err := old.Set([]byte("x"), nil); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Set after being fenced: %v; want store.ErrFenced", err)
	}
	// And every later owner, on another client, reads the same.
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	next := e.openWith(t, e.newClient(t), ctx)
	defer next.Close()
	wantOffset(t, next, 13, true)
	if got := all(t, next); got != "a=old-committed c=new d=new" {
		t.Fatalf("third owner reads %q", got)
	}
	wantGet(t, next, "b", "", false)
}

// cellsAbove counts the data cells of an instance above a version.
func cellsAbove(t *testing.T, c *bigtable.Client, prefix []byte, committed uint64) int {
	t.Helper()
	n := 0
	err := c.Open(testTable).ReadRows(context.Background(), bigtable.PrefixRange(string(prefix)), func(r bigtable.Row) bool {
		for _, it := range r[DefaultFamily] {
			if timestampVersion(int64(it.Timestamp)) > committed {
				n++
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A crash after each step of a flush leaves a state where the offset never
// claims writes that are not there: before the commit, the flush's rows are
// invisible and the offset is the previous one.
func TestCrashDuringFlush(t *testing.T) {
	for _, step := range []string{"marked", "written"} {
		t.Run("after "+step, func(t *testing.T) {
			e := startEmulator(t)
			ctx := freshContext()
			b := e.openWith(t, e.newClient(t), ctx)
			mustSet(t, b, "k1", "v1")
			mustSet(t, b, "k2", "v1")
			if err := b.FlushAt(5); err != nil {
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
			if err := b.FlushAt(9); !errors.Is(err, errCrash) {
				t.Fatalf("FlushAt: %v; want the crash", err)
			}
			testHook = nil
			// The process is gone: b is abandoned without Close.

			next := e.openWith(t, e.newClient(t), ctx)
			wantOffset(t, next, 5, true)
			if got := all(t, next); got != "k1=v1 k2=v1" {
				t.Fatalf("after the crash: %q; want the state at offset 5, k1=v1 k2=v1", got)
			}
			// The changelog tail re-applied, and more: the crashed flush's
			// cells stay invisible once later versions are committed.
			mustSet(t, next, "k4", "v3")
			if err := next.FlushAt(10); err != nil {
				t.Fatal(err)
			}
			if got := all(t, next); got != "k1=v1 k2=v1 k4=v3" {
				t.Fatalf("after the next owner's commit: %q", got)
			}
			next.Close()
			last := e.openWith(t, e.newClient(t), ctx)
			defer last.Close()
			if got := all(t, last); got != "k1=v1 k2=v1 k4=v3" {
				t.Fatalf("third owner: %q", got)
			}
		})
	}
}

// A flush that fails (here: the network, simulated after the rows were
// written) keeps the writes buffered; the next flush commits them, at a
// new version above the failed one.
func TestFailedFlushIsRetried(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx)
	defer b.Close()
	mustSet(t, b, "a", "1")
	failures := 1
	setHook(t, func(_ *Backend, s string) error {
		if s == "written" && failures > 0 {
			failures--
			return errors.New("connection reset")
		}
		return nil
	})
	if err := b.FlushAt(1); err == nil || errors.Is(err, store.ErrFenced) {
		t.Fatalf("FlushAt: %v; want the injected failure", err)
	}
	wantOffset(t, b, 0, false)
	wantGet(t, b, "a", "1", true) // still buffered
	if err := b.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "b", "2")
	if err := b.FlushAt(2); err != nil {
		t.Fatal(err)
	}
	other := e.openWith(t, e.newClient(t), ctx)
	defer other.Close()
	wantOffset(t, other, 2, true)
	if got := all(t, other); got != "b=2" {
		t.Fatalf("after the retried flush: %q; want b=2", got)
	}
}

// Each open raises the epoch: the last one opened is the only writer,
// whichever client it uses.
func TestFencingAcrossClients(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	owners := make([]*Backend, 3)
	for i := range owners {
		owners[i] = e.openWith(t, e.newClient(t), ctx)
		mustSet(t, owners[i], "k", fmt.Sprint(i))
	}
	for i, o := range owners[:2] {
		if err := o.FlushAt(int64(i)); !errors.Is(err, store.ErrFenced) {
			t.Fatalf("owner %d of 3: FlushAt: %v; want store.ErrFenced", i, err)
		}
		if err := o.Close(); err != nil {
			t.Fatalf("Close of a fenced owner: %v", err)
		}
	}
	if err := owners[2].FlushAt(7); err != nil {
		t.Fatal(err)
	}
	if owners[2].epoch != owners[0].epoch+2 {
		t.Fatalf("epochs %d, %d: want one raise per open", owners[0].epoch, owners[2].epoch)
	}
	reader := e.openWith(t, e.newClient(t), ctx)
	defer reader.Close()
	wantGet(t, reader, "k", "2", true)
	wantOffset(t, reader, 7, true)
	if err := owners[2].Flush(); err != nil {
		t.Fatalf("Flush with nothing to write: %v", err)
	}
	mustSet(t, owners[2], "k", "late")
	if err := owners[2].Flush(); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("owner fenced by a reader's open: Flush: %v; want store.ErrFenced", err)
	}
}

// Instances of different apps, stores and partitions share a table without
// seeing each other's rows, whatever their names.
func TestInstancesIsolated(t *testing.T) {
	e := startEmulator(t)
	ctxs := []store.BackendContext{
		{App: "app", Store: "s", Partition: 0},
		{App: "app", Store: "s", Partition: 1},
		{App: "app", Store: "s\x00", Partition: 0},
		{App: "app\x00s", Store: "", Partition: 0},
		{App: "ap", Store: "ps", Partition: 0},
		{App: "", Store: "", Partition: 0},
		{App: "app", Store: "s", Partition: -1},
	}
	var opened []*Backend
	for i, c := range ctxs {
		b := e.open(t, c)
		defer b.Close()
		opened = append(opened, b)
		mustSet(t, b, "", fmt.Sprint(i))
		mustSet(t, b, "\xff\xff", fmt.Sprint(i))
		mustSet(t, b, "\x00", fmt.Sprint(i))
		if err := b.FlushAt(int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range ctxs {
		b := e.openWith(t, e.newClient(t), c)
		defer b.Close()
		want := fmt.Sprintf("=%d \x00=%d \xff\xff=%d", i, i, i)
		if got := all(t, b); got != want {
			t.Fatalf("instance %+v reads %q; want %q", c, got, want)
		}
		wantOffset(t, b, int64(i), true)
	}
}
