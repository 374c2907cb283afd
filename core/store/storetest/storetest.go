// Package storetest is the conformance suite for store.Backend
// implementations. A backend module runs it against itself:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
//	}
//
// The suite checks the contract stated on store.Backend: ordering, bounds,
// ownership of slices, batches, deletion, closing and concurrent use, plus the
// typed key-value and window stores on top of the backend.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Open returns a new, empty backend for one subtest. The suite closes it.
type Open func(t *testing.T) store.Backend

// Run runs every conformance test against backends made by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Backend)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"EmptyAndNilValues", testEmptyValues},
		{"CallerOwnsInputSlices", testInputOwnership},
		{"GetResultSurvivesWrites", testGetResultStable},
		{"RangeOrderAndBounds", testRangeOrder},
		{"RangeEarlyStop", testRangeEarlyStop},
		{"WriteWhileRanging", testWriteWhileRanging},
		{"PrefixScan", testPrefix},
		{"DeleteRange", testDeleteRange},
		{"Batch", testBatch},
		{"Concurrent", testConcurrent},
		{"TypedKeyValueOrder", testTypedKV},
		{"TypedWindowStore", testTypedWindow},
		{"Close", testClose},
		{"GetMany", testGetMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					b.Close()
				}
			})
			if tc.name == "Close" || tc.name == "GetMany" {
				closed = true
			}
			tc.fn(t, b)
		})
	}
}

func mustSet(t *testing.T, b store.Backend, k, v string) {
	t.Helper()
	if err := b.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func wantGet(t *testing.T, b store.Backend, k string, want string, wantFound bool) {
	t.Helper()
	v, ok, err := b.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if ok != wantFound || (ok && string(v) != want) {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", k, v, ok, want, wantFound)
	}
}

// collect returns the keys and values of a range, failing on error.
func collect(t *testing.T, b store.Backend, lo, hi []byte) (keys, values []string) {
	t.Helper()
	for e, err := range b.Range(lo, hi) {
		if err != nil {
			t.Fatalf("Range(%q, %q): %v", lo, hi, err)
		}
		keys = append(keys, string(e.Key))
		values = append(values, string(e.Value))
	}
	return keys, values
}

func testGetSetDelete(t *testing.T, b store.Backend) {
	wantGet(t, b, "a", "", false)
	mustSet(t, b, "a", "1")
	wantGet(t, b, "a", "1", true)
	mustSet(t, b, "a", "2")
	wantGet(t, b, "a", "2", true)
	if err := b.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "a", "", false)
	if err := b.Delete([]byte("never-set")); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func testEmptyValues(t *testing.T, b store.Backend) {
	if err := b.Set([]byte("nil"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("empty"), []byte{}); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "nil", "", true)
	wantGet(t, b, "empty", "", true)
	if err := b.Set([]byte{}, []byte("empty key")); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "", "empty key", true)
	keys, _ := collect(t, b, nil, nil)
	if want := []string{"", "empty", "nil"}; !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want %q", keys, want)
	}
}

func testInputOwnership(t *testing.T, b store.Backend) {
	k, v := []byte("key"), []byte("value")
	if err := b.Set(k, v); err != nil {
		t.Fatal(err)
	}
	copy(k, "XXX")
	copy(v, "XXXXX")
	wantGet(t, b, "key", "value", true)
	wantGet(t, b, "XXX", "", false)

	var batch store.Batch
	k2, v2 := []byte("k2"), []byte("v2")
	batch.Set(k2, v2)
	copy(k2, "ZZ")
	copy(v2, "ZZ")
	if err := b.Write(&batch); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "k2", "v2", true)
}

func testGetResultStable(t *testing.T, b store.Backend) {
	mustSet(t, b, "a", "first")
	v, _, err := b.Get([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "a", "second")
	for i := range 100 {
		mustSet(t, b, fmt.Sprintf("filler-%03d", i), "xxxxxxxxxxxxxxxx")
	}
	if string(v) != "first" {
		t.Fatalf("value returned by Get changed after later writes: %q", v)
	}
}

func testRangeOrder(t *testing.T, b store.Backend) {
	r := rand.New(rand.NewPCG(7, 7))
	want := map[string]string{}
	for range 500 {
		k := make([]byte, 1+r.IntN(6))
		for i := range k {
			k[i] = byte(r.IntN(256))
		}
		v := fmt.Sprint(r.Int())
		want[string(k)] = v
		if err := b.Set(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]string, 0, len(want))
	for k := range want {
		all = append(all, k)
	}
	slices.Sort(all)

	keys, values := collect(t, b, nil, nil)
	if !slices.Equal(keys, all) {
		t.Fatalf("full range: got %d keys (sorted: %v), want %d", len(keys), slices.IsSorted(keys), len(all))
	}
	for i, k := range keys {
		if values[i] != want[k] {
			t.Fatalf("value of %x = %q, want %q", k, values[i], want[k])
		}
	}

	for range 50 {
		lo, hi := all[r.IntN(len(all))], all[r.IntN(len(all))]
		if lo > hi {
			lo, hi = hi, lo
		}
		var exp []string
		for _, k := range all {
			if k >= lo && k < hi {
				exp = append(exp, k)
			}
		}
		got, _ := collect(t, b, []byte(lo), []byte(hi))
		if !slices.Equal(got, exp) {
			t.Fatalf("Range(%x, %x): got %d keys, want %d", lo, hi, len(got), len(exp))
		}
		// Open lower and upper bounds.
		got, _ = collect(t, b, nil, []byte(hi))
		if n := slices.Index(all, hi); len(got) != n {
			t.Fatalf("Range(nil, %x): got %d keys, want %d", hi, len(got), n)
		}
		got, _ = collect(t, b, []byte(lo), nil)
		if n := len(all) - slices.Index(all, lo); len(got) != n {
			t.Fatalf("Range(%x, nil): got %d keys, want %d", lo, len(got), n)
		}
	}
	if got, _ := collect(t, b, []byte{0x10}, []byte{0x10}); len(got) != 0 {
		t.Fatalf("empty range [x, x) returned %d keys", len(got))
	}
}

func testRangeEarlyStop(t *testing.T, b store.Backend) {
	for i := range 10 {
		mustSet(t, b, fmt.Sprintf("k%d", i), "v")
	}
	n := 0
	for _, err := range b.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("iterated %d entries, want 3", n)
	}
	// The backend is still usable after an abandoned range.
	mustSet(t, b, "after", "v")
	wantGet(t, b, "after", "v", true)
}

func testWriteWhileRanging(t *testing.T, b store.Backend) {
	for i := range 20 {
		mustSet(t, b, fmt.Sprintf("k%02d", i), "v")
	}
	seen := 0
	for e, err := range b.Range([]byte("k"), []byte("l")) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		// Deleting the current key and writing another must not deadlock
		// or break the iteration.
		if err := b.Delete(e.Key); err != nil {
			t.Fatal(err)
		}
		if err := b.Set([]byte("z-"+string(e.Key)), []byte("w")); err != nil {
			t.Fatal(err)
		}
		if seen > 20 {
			t.Fatal("range does not terminate while writing")
		}
	}
	if seen != 20 {
		t.Fatalf("saw %d of 20 keys while deleting each", seen)
	}
	keys, _ := collect(t, b, []byte("k"), []byte("l"))
	if len(keys) != 0 {
		t.Fatalf("%d k-keys left after deleting each while ranging", len(keys))
	}
	if zs, _ := collect(t, b, []byte("z"), nil); len(zs) != 20 {
		t.Fatalf("%d keys written while ranging, want 20", len(zs))
	}
}

func testPrefix(t *testing.T, b store.Backend) {
	for _, k := range []string{"a", "ab", "abc", "abd", "ac", "b", "\xff", "\xff\xff", "\xff\xff\x01"} {
		mustSet(t, b, k, "v")
	}
	got, _ := collect(t, b, []byte("ab"), store.PrefixEnd([]byte("ab")))
	if want := []string{"ab", "abc", "abd"}; !slices.Equal(got, want) {
		t.Fatalf("prefix ab: %q, want %q", got, want)
	}
	got, _ = collect(t, b, []byte("\xff\xff"), store.PrefixEnd([]byte("\xff\xff")))
	if want := []string{"\xff\xff", "\xff\xff\x01"}; !slices.Equal(got, want) {
		t.Fatalf("prefix ff ff: %q, want %q", got, want)
	}
}

func testDeleteRange(t *testing.T, b store.Backend) {
	for i := range 10 {
		mustSet(t, b, fmt.Sprintf("k%d", i), "v")
	}
	if err := b.DeleteRange([]byte("k2"), []byte("k7")); err != nil {
		t.Fatal(err)
	}
	got, _ := collect(t, b, nil, nil)
	if want := []string{"k0", "k1", "k7", "k8", "k9"}; !slices.Equal(got, want) {
		t.Fatalf("after DeleteRange: %q, want %q", got, want)
	}
	if err := b.DeleteRange(nil, []byte("k8")); err != nil {
		t.Fatal(err)
	}
	got, _ = collect(t, b, nil, nil)
	if want := []string{"k8", "k9"}; !slices.Equal(got, want) {
		t.Fatalf("after DeleteRange(nil, k8): %q, want %q", got, want)
	}
}

func testBatch(t *testing.T, b store.Backend) {
	mustSet(t, b, "old", "v")
	var batch store.Batch
	batch.Set([]byte("a"), []byte("1"))
	batch.Set([]byte("b"), []byte("2"))
	batch.Delete([]byte("a"))
	batch.Set([]byte("c"), []byte("3"))
	batch.Set([]byte("c"), []byte("4"))
	batch.DeleteRange([]byte("o"), []byte("p"))
	batch.Set([]byte("ok"), []byte("5"))
	if batch.Len() != 7 {
		t.Fatalf("batch.Len() = %d, want 7", batch.Len())
	}
	if err := b.Write(&batch); err != nil {
		t.Fatal(err)
	}
	keys, values := collect(t, b, nil, nil)
	if want := []string{"b", "c", "ok"}; !slices.Equal(keys, want) {
		t.Fatalf("keys after batch: %q, want %q", keys, want)
	}
	if want := []string{"2", "4", "5"}; !slices.Equal(values, want) {
		t.Fatalf("values after batch: %q, want %q (ops must apply in order)", values, want)
	}
	batch.Reset()
	if batch.Len() != 0 {
		t.Fatal("Reset left operations in the batch")
	}
	if err := b.Write(&batch); err != nil {
		t.Fatalf("writing an empty batch: %v", err)
	}
}

func testConcurrent(t *testing.T, b store.Backend) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				k := []byte(fmt.Sprintf("w%d-%04d", w, i))
				if err := b.Set(k, k); err != nil {
					errs <- err
					return
				}
				if v, ok, err := b.Get(k); err != nil || !ok || !bytes.Equal(v, k) {
					errs <- fmt.Errorf("Get(%s) = %q, %v, %v", k, v, ok, err)
					return
				}
				if i%50 == 0 {
					for _, err := range b.Range(nil, nil) {
						if err != nil {
							errs <- err
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys, _ := collect(t, b, nil, nil)
	if len(keys) != 1200 {
		t.Fatalf("%d keys after concurrent writes, want 1200", len(keys))
	}
}

func testTypedKV(t *testing.T, b store.Backend) {
	s := store.NewKeyValueStore("typed", "typed", b, serde.Int64, serde.String)
	nums := []int64{5, -1, 0, -1 << 40, 1 << 40, -7, 3, 1<<63 - 1, -1 << 63}
	for _, n := range nums {
		if err := s.Put(n, fmt.Sprint(n)); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for kv, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		if kv.Value != fmt.Sprint(kv.Key) {
			t.Fatalf("value of %d = %q", kv.Key, kv.Value)
		}
		got = append(got, kv.Key)
	}
	want := slices.Clone(nums)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("typed keys in order %v, want %v", got, want)
	}
	got = got[:0]
	for kv, err := range s.Range(-7, 4) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, kv.Key)
	}
	if want := []int64{-7, -1, 0, 3}; !slices.Equal(got, want) {
		t.Fatalf("Range(-7, 4) = %v, want %v", got, want)
	}
	if v, ok, err := s.Get(-1 << 40); err != nil || !ok || v != fmt.Sprint(int64(-1<<40)) {
		t.Fatalf("Get(-2^40) = %q, %v, %v", v, ok, err)
	}
	if err := s.Delete(-1 << 40); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get(-1 << 40); err != nil || ok {
		t.Fatalf("Get of a deleted key = %q, %v, %v; want absent, no error", v, ok, err)
	}

	ss := store.NewKeyValueStore("strings", "strings", b, serde.String, serde.Int64)
	for _, k := range []string{"user:2", "user:10", "order:1", "user:1", "userx"} {
		if err := ss.Put(k, 1); err != nil {
			t.Fatal(err)
		}
	}
	var pref []string
	for kv, err := range ss.Prefix("user:") {
		if err != nil {
			t.Fatal(err)
		}
		pref = append(pref, kv.Key)
	}
	if want := []string{"user:1", "user:10", "user:2"}; !slices.Equal(pref, want) {
		t.Fatalf("Prefix(user:) = %q, want %q", pref, want)
	}
}

func testTypedWindow(t *testing.T, b store.Backend) {
	ws := store.NewWindowStore("w", "w", b, 3*time.Hour, time.Hour, serde.String, serde.Int64)
	base := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	win := func(h int) store.Window {
		return store.Window{Start: base.Add(time.Duration(h) * time.Hour), End: base.Add(time.Duration(h+1) * time.Hour)}
	}
	for h := range 3 {
		for _, k := range []string{"b", "a", "ab", "a-key-long-enough-to-leave-spare-capacity"} {
			if err := ws.Put(k, win(h), int64(h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var starts []int
	for w, err := range ws.Fetch("a", base, base.Add(2*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		if w.Key != "a" {
			t.Fatalf("Fetch(a) returned key %q", w.Key)
		}
		if w.Window.End.Sub(w.Window.Start) != time.Hour {
			t.Fatalf("window %v lost its end", w.Window)
		}
		starts = append(starts, int(w.Value))
	}
	if want := []int{0, 1, 2}; !slices.Equal(starts, want) {
		t.Fatalf("Fetch(a) values %v, want %v", starts, want)
	}
	n := 0
	for _, err := range ws.FetchAll(base.Add(time.Hour), base.Add(time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("FetchAll(hour 1) returned %d windows, want 4", n)
	}
	long := 0
	for _, err := range ws.Fetch("a-key-long-enough-to-leave-spare-capacity", base, base.Add(2*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		long++
	}
	if long != 3 {
		t.Fatalf("Fetch of a long key returned %d windows, want 3", long)
	}
	// Advancing 10 hours expires everything older than 3 hours.
	if err := ws.Put("a", win(10), 10); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := ws.Get("a", win(0)); err != nil || ok {
		t.Fatalf("Get of an expired window = %v, %v, %v; want absent, no error", v, ok, err)
	}
	raw := 0
	for _, err := range b.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		raw++
	}
	if raw != 1 {
		t.Fatalf("%d raw entries after expiry, want 1 (expired segments must be deleted)", raw)
	}
	if v, ok, err := ws.Get("a", win(10)); err != nil || !ok || v != 10 {
		t.Fatalf("live window: %v, %v, %v", v, ok, err)
	}
}

func testClose(t *testing.T, b store.Backend) {
	mustSet(t, b, "a", "1")
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := b.Get([]byte("a")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if err := b.Set([]byte("a"), nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Set after Close: %v, want ErrClosed", err)
	}
	var errs []error
	for _, err := range b.Range(nil, nil) {
		errs = append(errs, err)
		if len(errs) > 10 {
			break
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], store.ErrClosed) {
		t.Fatalf("Range after Close yielded errors %v; want exactly one, ErrClosed", errs)
	}
}
