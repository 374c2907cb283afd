package bigtable

import (
	"fmt"
	"testing"
)

// An instance never flushed answers misses from the cache; a small one is
// read whole at its first miss; a large one, or one whose rows the cache
// evicted, goes to Bigtable per miss again.
func TestPreloadAndCompleteCache(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx)
	before := e.rpcs.Load()
	for i := range 50 {
		wantGet(t, b, fmt.Sprintf("k%03d", i), "", false)
	}
	if n := e.rpcs.Load() - before; n != 0 {
		t.Fatalf("%d calls reading 50 keys of an instance never flushed; want 0", n)
	}
	for i := range 100 {
		mustSet(t, b, fmt.Sprintf("k%03d", i), "v")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	b.Close()

	// Reopened: one ReadRows for the whole instance, then nothing.
	r := e.open(t, ctx)
	defer r.Close()
	before = e.rpcs.Load()
	for i := range 200 {
		want, found := "v", true
		if i >= 100 {
			want, found = "", false
		}
		wantGet(t, r, fmt.Sprintf("k%03d", i), want, found)
	}
	if _, _, err := r.GetMany([][]byte{[]byte("k001"), []byte("zzz")}); err != nil {
		t.Fatal(err)
	}
	if n := e.rpcs.Load() - before; n != 1 {
		t.Fatalf("%d calls for 200 reads of a 100-row instance; want 1 (the preload)", n)
	}
	if got := r.StoreStats().Ops["preload"].RoundTrips; got != 1 {
		t.Fatalf("preload round trips %d; want 1", got)
	}

	// Above WithPreload: a read per miss.
	big := e.open(t, ctx, WithPreload(10))
	defer big.Close()
	before = e.rpcs.Load()
	for i := range 20 {
		wantGet(t, big, fmt.Sprintf("k%03d", i), "v", true)
	}
	if n := e.rpcs.Load() - before; n != 21 {
		t.Fatalf("%d calls for 20 reads of a 100-row instance over WithPreload(10); want 21 (a preload attempt, then one per key)", n)
	}

	// A cache too small for the instance: the preload's own puts evict
	// rows, so misses are not final.
	small := e.open(t, ctx, WithCacheSize(20*(cacheOverhead+5)))
	defer small.Close()
	wantGet(t, small, "k099", "v", true)
	before = e.rpcs.Load()
	wantGet(t, small, "k000", "v", true)
	wantGet(t, small, "zzz", "", false)
	if n := e.rpcs.Load() - before; n != 2 {
		t.Fatalf("%d calls for 2 reads of evicted or unknown keys; want 2", n)
	}
}
