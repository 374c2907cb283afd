package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/redis/go-redis/v9"
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

func entries(t *testing.T, b store.Backend, lo, hi []byte) []string {
	t.Helper()
	var out []string
	for e, err := range b.Range(lo, hi) {
		if err != nil {
			t.Fatalf("Range(%q, %q): %v", lo, hi, err)
		}
		out = append(out, string(e.Key)+"="+string(e.Value))
	}
	return out
}

// Every open raises the owner epoch; the keys of an instance share one
// hash tag (one cluster slot) and are namespaced by app, store and
// partition.
func TestKeyLayoutAndEpochs(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	ctx := store.BackendContext{App: "app:1", Store: "counts{x}", Partition: 3, Task: "0_3"}
	var last int64
	for i := range 3 {
		b, err := Open(c, ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.Epoch() != last+1 {
			t.Fatalf("open %d: epoch %d, want %d", i, b.Epoch(), last+1)
		}
		last = b.Epoch()
		mustSet(t, b, "k", "v")
		if err := b.FlushAt(9); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	prefix := "{ks:app%3A1:counts%7Bx%7D:3}"
	want := []string{prefix + ":data", prefix + ":index", prefix + ":meta"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q; want %q", keys, want)
	}
	for _, k := range keys {
		if tag := k[:strings.Index(k, "}")+1]; tag != prefix {
			t.Fatalf("key %q has hash tag %q, want %q", k, tag, prefix)
		}
	}
	meta, err := c.HGetAll(context.Background(), prefix+":meta").Result()
	if err != nil {
		t.Fatal(err)
	}
	if meta["epoch"] != "3" || meta["offset"] != "9" || meta["layout"] != layoutVersion || !strings.HasPrefix(meta["owner"], "3/") {
		t.Fatalf("meta hash %v", meta)
	}
	if escapeName("a:b") == escapeName("a%3Ab") {
		t.Fatal("escaped names collide")
	}
}

// Writes stay in memory until a flush; one flush script carries all of them
// and the offset: far below 0.05 round trips per write.
func TestRoundTripsPerSet(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	loadScripts(t, c)
	b := openTest(t, c)
	const perFlush, flushes = 1000, 5
	before := rt.count()
	for f := range flushes {
		for i := range perFlush {
			mustSet(t, b, fmt.Sprintf("k%05d", (f*perFlush+i)%1500), "value")
		}
		if err := b.FlushAt(int64(f + 1)); err != nil {
			t.Fatal(err)
		}
	}
	trips := rt.count() - before
	perSet := float64(trips) / (perFlush * flushes)
	t.Logf("%d round trips for %d Sets in %d flushes: %.4f per Set (%v)", trips, perFlush*flushes, flushes, perSet, rt.names.snapshot())
	if perSet >= 0.05 || trips != flushes {
		t.Fatalf("%d round trips for %d Sets (%.4f per Set); want one per flush", trips, perFlush*flushes, perSet)
	}
	// Keys just flushed are cached: reading them back costs nothing.
	before = rt.count()
	for i := range 1000 {
		wantGet(t, b, fmt.Sprintf("k%05d", 500+i), "value", true)
	}
	if n := rt.count() - before; n != 0 {
		t.Fatalf("%d round trips reading 1000 keys just flushed; want 0", n)
	}
	// An idle commit (nothing written, same offset) costs nothing either.
	before = rt.count()
	if err := b.FlushAt(flushes); err != nil {
		t.Fatal(err)
	}
	if n := rt.count() - before; n != 0 {
		t.Fatalf("%d round trips for a flush with nothing to do", n)
	}
}

// A key read from Redis is cached, found or not; the cache is bounded and
// follows the owner's own writes and range deletions.
func TestReadCache(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	ctx := uniqueContext("cache")
	w, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustSet(t, w, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := Open(c, ctx, WithReadCache(40*(cachedOverhead+8)), WithPreload(0))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	loadScripts(t, c)
	before := rt.count()
	wantGet(t, b, "k001", "1", true)
	wantGet(t, b, "missing", "", false)
	if n := rt.count() - before; n != 2 {
		t.Fatalf("%d round trips for 2 reads of uncached keys; want 2", n)
	}
	before = rt.count()
	wantGet(t, b, "k001", "1", true)
	wantGet(t, b, "missing", "", false)
	if n := rt.count() - before; n != 0 {
		t.Fatalf("%d round trips for 2 cached reads; want 0", n)
	}
	for i := range 100 {
		wantGet(t, b, fmt.Sprintf("k%03d", i), fmt.Sprint(i), true)
	}
	b.mu.Lock()
	n, used := b.cache.len(), b.cache.used
	b.mu.Unlock()
	if n > 40 || used > 40*(cachedOverhead+8) {
		t.Fatalf("cache holds %d entries, %d bytes; bound is 40 entries' worth", n, used)
	}
	// Own writes and range deletions, flushed, replace what was cached.
	mustSet(t, b, "k099", "new")
	if err := b.DeleteRange([]byte("k090"), []byte("k099")); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "k095", "", false)
	wantGet(t, b, "k099", "new", true)
	wantGet(t, b, "k089", "89", true)
}

// loadScripts loads the scripts into the server, so that counted round
// trips do not include the first EVALSHA's fallback to EVAL.
func loadScripts(t *testing.T, c *redis.Client) {
	t.Helper()
	for _, s := range []*redis.Script{claimScript, flushScript, rangeScript} {
		if err := s.Load(context.Background(), c).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// A small store instance is read whole at its first cache miss; an empty
// one, or one whose every entry the cache holds, answers misses without a
// round trip, until the cache evicts.
func TestPreloadAndCompleteCache(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	loadScripts(t, c)
	ctx := uniqueContext("preload")
	fresh, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := rt.count()
	wantGet(t, fresh, "nothing", "", false)
	for i := range 100 {
		mustSet(t, fresh, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	if err := fresh.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	wantGet(t, fresh, "k001", "1", true)
	wantGet(t, fresh, "k100", "", false)
	if n := rt.count() - before; n != 1 {
		t.Fatalf("%d round trips for an empty instance's reads and one flush; want 1 (the flush)", n)
	}
	fresh.Close()

	b, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	before = rt.count()
	for i := range 200 {
		if i < 100 {
			wantGet(t, b, fmt.Sprintf("k%03d", i), fmt.Sprint(i), true)
		} else {
			wantGet(t, b, fmt.Sprintf("k%03d", i), "", false)
		}
	}
	if n := rt.count() - before; n != 1 {
		t.Fatalf("%d round trips for 200 reads of a 100-entry instance; want 1 (the preload)", n)
	}

	// Too large to preload: one round trip per key read.
	big, err := Open(c, ctx, WithPreload(50))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	before = rt.count()
	wantGet(t, big, "k007", "7", true)
	wantGet(t, big, "k107", "", false)
	if n := rt.count() - before; n != 2 {
		t.Fatalf("%d round trips for 2 reads without preload; want 2", n)
	}

	// A cache too small for the instance is no longer complete once it
	// evicts: reads of evicted keys go to Redis again.
	small, err := Open(c, uniqueContext("preload-small"), WithReadCache(20*(cachedOverhead+8)))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	wantGet(t, small, "k000", "", false) // empty: complete from the start
	for i := range 100 {
		mustSet(t, small, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	if err := small.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		wantGet(t, small, fmt.Sprintf("k%03d", i), fmt.Sprint(i), true)
	}
	// DeleteRange(nil, nil), as the runtime does before restoring a store
	// from scratch, makes it complete again.
	if err := small.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	mustSet(t, small, "k500", "x")
	if err := small.Flush(); err != nil {
		t.Fatal(err)
	}
	before = rt.count()
	wantGet(t, small, "k001", "", false)
	wantGet(t, small, "k500", "x", true)
	if n := rt.count() - before; n != 0 {
		t.Fatalf("%d round trips after clearing the instance; want 0", n)
	}
}

// The buffer is bounded: a write that finds it full flushes it first,
// fenced like any flush, dropping the stored offset (the data is then ahead
// of it) until the next FlushAt.
func TestEarlyFlushWhenFull(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	ctx := uniqueContext("early")
	b, err := Open(c, ctx, WithMaxBufferedWrites(100))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.FlushAt(5); err != nil {
		t.Fatal(err)
	}
	before := rt.names.snapshot()["evalsha"]
	for i := range 250 {
		mustSet(t, b, fmt.Sprintf("k%03d", i), "v")
	}
	if n := rt.names.snapshot()["evalsha"] - before; n != 2 {
		t.Fatalf("%d flush scripts for 250 writes with a buffer of 100; want 2 early flushes", n)
	}
	n, err := c.HLen(context.Background(), b.keys.data).Result()
	if err != nil || n != 200 {
		t.Fatalf("Redis holds %d entries (%v) after two early flushes; want 200", n, err)
	}
	// The data is ahead of offset 5 now: no offset is stored until the
	// next FlushAt.
	if n, _ := c.HExists(context.Background(), b.keys.meta, "offset").Result(); n {
		t.Fatal("an offset is still stored after early flushes")
	}
	if off, ok, err := b.StoredOffset(); ok || err != nil {
		t.Fatalf("StoredOffset after early flushes = %d, %v, %v; want none", off, ok, err)
	}
	if got := len(entries(t, b, nil, nil)); got != 250 {
		t.Fatalf("Range sees %d entries; want 250", got)
	}
	if err := b.FlushAt(6); err != nil {
		t.Fatal(err)
	}
	if off, _ := c.HGet(context.Background(), b.keys.meta, "offset").Result(); off != "6" {
		t.Fatalf("stored offset %q after FlushAt(6)", off)
	}
	// Flush without offset: an empty one keeps it, one that writes drops it.
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if off, ok, _ := b.StoredOffset(); !ok || off != 6 {
		t.Fatalf("StoredOffset after an empty Flush = %d, %v; want 6", off, ok)
	}
	mustSet(t, b, "more", "v")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.HExists(context.Background(), b.keys.meta, "offset").Result(); n {
		t.Fatal("an offset is still stored after a Flush that wrote")
	}
	// The byte bound triggers early flushes too.
	bb, err := Open(c, uniqueContext("early-bytes"), WithMaxBufferedBytes(10_000))
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	big := strings.Repeat("x", 1000)
	for i := range 30 {
		mustSet(t, bb, fmt.Sprint(i), big)
	}
	if n, _ := c.HLen(context.Background(), bb.keys.data).Result(); n < 20 {
		t.Fatalf("%d entries flushed early after 30 KB written with a 10 KB buffer", n)
	}

	// A newer owner: the stale owner's next early flush is refused, and
	// nothing of it reaches Redis.
	newer, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	var fenced error
	for i := range 200 {
		if err := b.Set([]byte(fmt.Sprintf("stale%03d", i)), []byte("v")); err != nil {
			fenced = err
			break
		}
	}
	if !errors.Is(fenced, store.ErrFenced) {
		t.Fatalf("stale owner's writes past a full buffer: %v; want store.ErrFenced", fenced)
	}
	if got := entries(t, newer, []byte("stale"), []byte("stalf")); len(got) != 0 {
		t.Fatalf("newer owner sees %d of the stale owner's writes", len(got))
	}
	if err := b.Set([]byte("again"), nil); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Set after being fenced: %v; want store.ErrFenced", err)
	}
}

// A script that fails (here: a key of the instance holds the wrong type)
// changes nothing in Redis and loses no buffered write: the next flush
// applies them.
func TestScriptErrorKeepsWrites(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	b := openTest(t, c)
	mustSet(t, b, "a", "1")
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if err := c.Del(bg, b.keys.index).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(bg, b.keys.index, "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "a", "2")
	mustSet(t, b, "b", "3")
	err := b.FlushAt(2)
	if err == nil || errors.Is(err, store.ErrFenced) || !strings.Contains(err.Error(), "KSLAYOUT") || !strings.Contains(err.Error(), b.name) {
		t.Fatalf("FlushAt over a corrupt index: %v; want a KSLAYOUT error naming the store", err)
	}
	if v, _ := c.HGet(bg, b.keys.data, "a").Result(); v != "1" {
		t.Fatalf("the failed script wrote a=%q", v)
	}
	if off, _ := c.HGet(bg, b.keys.meta, "offset").Result(); off != "1" {
		t.Fatalf("the failed script stored offset %q", off)
	}
	// Writes after the failure go over the kept ones.
	if err := b.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "c", "4")
	wantGet(t, b, "a", "2", true)
	if err := c.Del(bg, b.keys.index).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushAt(3); err != nil {
		t.Fatal(err)
	}
	got, err := c.HGetAll(bg, b.keys.data).Result()
	if err != nil || fmt.Sprint(got) != "map[a:2 c:4]" {
		t.Fatalf("Redis holds %v (%v); want map[a:2 c:4]", got, err)
	}
}

// The stale owner is fenced whichever client it uses; its unflushed writes
// never reach Redis, and a reopen on its own client claims the instance back.
func TestFencingAcrossClients(t *testing.T) {
	addr := startRedis(t)
	c1, _ := newClient(t, addr)
	c2, _ := newClient(t, addr)
	ctx := uniqueContext("fence")
	old, err := Open(c1, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	mustSet(t, old, "k", "old")
	if err := old.FlushAt(10); err != nil {
		t.Fatal(err)
	}
	mustSet(t, old, "k", "unflushed")
	cur, err := Open(c2, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Epoch() != old.Epoch()+1 {
		t.Fatalf("epochs %d then %d", old.Epoch(), cur.Epoch())
	}
	wantGet(t, cur, "k", "old", true)
	if off, ok, _ := cur.StoredOffset(); !ok || off != 10 {
		t.Fatalf("newer owner's StoredOffset = %d, %v; want 10", off, ok)
	}
	if err := old.FlushAt(11); !errors.Is(err, store.ErrFenced) || !strings.Contains(err.Error(), "epoch is now 2") {
		t.Fatalf("stale owner's FlushAt: %v; want store.ErrFenced naming epoch 2", err)
	}
	if err := old.Flush(); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's Flush after being fenced: %v", err)
	}
	wantGet(t, cur, "k", "old", true)
	cur.Close()
	again, err := Open(c1, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	mustSet(t, again, "k", "again")
	if err := again.FlushAt(12); err != nil {
		t.Fatalf("a reopen on the first client: %v", err)
	}
	if err := cur.FlushAt(13); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("closed owner's FlushAt: %v; want store.ErrClosed", err)
	}
}

// Close does not flush: unflushed writes are the runtime's to redo.
func TestCloseDropsUnflushed(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	ctx := uniqueContext("close")
	b, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "flushed", "1")
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "unflushed", "2")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantGet(t, r, "flushed", "1", true)
	wantGet(t, r, "unflushed", "", false)
}

// Random writes, deletions, range deletions, batches and flushes against
// the in-memory backend as the model: thousands of keys, ranges with random
// bounds across pages of flushed and buffered entries.
func TestRangeAgainstModel(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	for _, tc := range []struct {
		name            string
		pageSize, cache int
	}{
		{"defaults", DefaultRangePageSize, DefaultReadCacheBytes},
		{"small pages and cache", 97, 100 * (cachedOverhead + 16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.pageSize)))
			b := openTest(t, c, WithRangePageSize(tc.pageSize), WithReadCache(tc.cache), WithMaxBufferedWrites(700))
			model := memory.New()
			keyOf := func(n int) []byte { return []byte(fmt.Sprintf("k%05d", n)) }
			key := func() []byte { return keyOf(rng.IntN(6000)) }
			both := func(f func(store.Backend) error) {
				t.Helper()
				if err := f(b); err != nil {
					t.Fatal(err)
				}
				if err := f(model); err != nil {
					t.Fatal(err)
				}
			}
			for step := range 8000 {
				switch r := rng.IntN(1000); {
				case r < 700:
					k, v := key(), []byte(fmt.Sprint(step))
					both(func(s store.Backend) error { return s.Set(k, v) })
				case r < 900:
					k := key()
					both(func(s store.Backend) error { return s.Delete(k) })
				case r < 903: // narrow: a few dozen keys
					n := rng.IntN(6000)
					lo, hi := keyOf(n), keyOf(n+rng.IntN(100))
					both(func(s store.Backend) error { return s.DeleteRange(lo, hi) })
				case r < 950:
					var batch store.Batch
					for range 20 {
						batch.Set(key(), []byte("b"))
					}
					batch.Delete(key())
					both(func(s store.Backend) error { return s.Write(&batch) })
				case r < 960:
					if err := b.Flush(); err != nil {
						t.Fatal(err)
					}
				case r < 985:
					k := key()
					want, wantOK, _ := model.Get(k)
					got, ok, err := b.Get(k)
					if err != nil || ok != wantOK || !bytes.Equal(got, want) {
						t.Fatalf("step %d: Get(%s) = %q, %v, %v; want %q, %v", step, k, got, ok, err, want, wantOK)
					}
				default:
					lo, hi := key(), key()
					if rng.IntN(10) == 0 {
						lo = nil
					}
					if rng.IntN(10) == 0 {
						hi = nil
					}
					got, want := entries(t, b, lo, hi), entries(t, model, lo, hi)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: Range(%s, %s): %d entries, model %d", step, lo, hi, len(got), len(want))
					}
				}
			}
			all := entries(t, model, nil, nil)
			if len(all) < 2000 {
				t.Fatalf("the model ends with %d keys; the test should range over thousands", len(all))
			}
			if got := entries(t, b, nil, nil); !slices.Equal(got, all) {
				t.Fatalf("full range: %d entries, model %d", len(got), len(all))
			}
			if got, want := entries(t, b, []byte("k01000"), []byte("k04000")), entries(t, model, []byte("k01000"), []byte("k04000")); !slices.Equal(got, want) || len(want) < 1000 {
				t.Fatalf("bounded range: %d entries, model %d", len(got), len(want))
			}
		})
	}
}

// Writers, readers, rangers and flushers at once on one backend (run with
// -race): every acknowledged write is read back, during and after.
func TestConcurrentOverlay(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	ctx := uniqueContext("concurrent")
	b, err := Open(c, ctx, WithMaxBufferedWrites(50), WithRangePageSize(16), WithReadCache(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const writers, perWriter = 4, 300
	var writing, helping sync.WaitGroup
	errs := make(chan error, writers+2)
	stop := make(chan struct{})
	for w := range writers {
		writing.Go(func() {
			for i := range perWriter {
				k := []byte(fmt.Sprintf("w%d-%04d", w, i))
				if err := b.Set(k, k); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if err := b.Set(k, append(k, '+')); err != nil {
						errs <- err
						return
					}
				}
				v, ok, err := b.Get(k)
				if err != nil || !ok || !bytes.HasPrefix(v, k) {
					errs <- fmt.Errorf("Get(%s) = %q, %v, %v", k, v, ok, err)
					return
				}
			}
		})
	}
	helping.Go(func() { // flushes at commit points of its own
		for off := int64(0); ; off++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.FlushAt(off); err != nil {
				errs <- err
				return
			}
		}
	})
	helping.Go(func() { // ranges come in order
		for {
			select {
			case <-stop:
				return
			default:
			}
			var prev []byte
			for e, err := range b.Range(nil, nil) {
				if err != nil {
					errs <- err
					return
				}
				if prev != nil && bytes.Compare(prev, e.Key) >= 0 {
					errs <- fmt.Errorf("range out of order: %q then %q", prev, e.Key)
					return
				}
				prev = append(prev[:0], e.Key...)
			}
		}
	})
	writing.Wait()
	close(stop)
	helping.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := b.FlushAt(1 << 40); err != nil {
		t.Fatal(err)
	}
	r, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for w := range writers {
		for i := range perWriter {
			k := fmt.Sprintf("w%d-%04d", w, i)
			want := k
			if i%3 == 0 {
				want += "+"
			}
			wantGet(t, r, k, want, true)
		}
	}
}

// Bad arguments are errors naming the store, never panics.
func TestBadInput(t *testing.T) {
	ctx := store.BackendContext{App: "a", Store: "s", Partition: 1}
	if _, err := Open(nil, ctx); err == nil || !strings.Contains(err.Error(), "a/s/1") {
		t.Fatalf("Open(nil client): %v", err)
	}
	c, _ := newClient(t, startRedis(t))
	for _, opt := range []Option{WithMaxBufferedWrites(0), WithMaxBufferedBytes(-1), WithReadCache(-1), WithRangePageSize(0), WithRangePageSize(maxRangePageSize + 1), WithPreload(-1)} {
		if _, err := Open(c, ctx, opt); err == nil || !strings.Contains(err.Error(), "a/s/1") {
			t.Fatalf("Open with a bad option: %v", err)
		}
	}
	b := openTest(t, c)
	if err := b.FlushAt(-2); err == nil {
		t.Fatal("FlushAt(-2) accepted")
	}
	// A meta key of another type is refused at open, not overwritten.
	bg := context.Background()
	if err := c.Set(bg, Keys("a", "s", 1).Meta, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(c, ctx); err == nil || !strings.Contains(err.Error(), "KSLAYOUT") {
		t.Fatalf("Open over a string meta key: %v", err)
	}
	if v, _ := c.Get(bg, Keys("a", "s", 1).Meta).Result(); v != "x" {
		t.Fatalf("the refused open changed the meta key to %q", v)
	}
	if err := c.Del(bg, Keys("a", "s", 1).Meta).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(bg, Keys("a", "s", 1).Meta, "layout", "99").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(c, ctx); err == nil || !strings.Contains(err.Error(), "layout version 99") {
		t.Fatalf("Open over another layout: %v", err)
	}
}

// GetMany reads the keys neither buffered nor cached in one round trip,
// and sees buffered writes and deletions.
func TestGetMany(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	ctx := uniqueContext("many")
	w, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		mustSet(t, w, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := Open(c, ctx, WithPreload(0))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustSet(t, b, "k005", "buffered")
	if err := b.Delete([]byte("k006")); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for i := range 120 {
		keys = append(keys, []byte(fmt.Sprintf("k%03d", i*2))) // k000 ... k238: the last 20 missing
	}
	keys = append(keys, []byte("k005"), []byte("k006"), []byte("k004"))
	before := rt.count()
	values, found, err := b.GetMany(keys)
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.count() - before; n != 1 {
		t.Fatalf("%d round trips for GetMany of %d keys; want 1", n, len(keys))
	}
	for i, k := range keys {
		want, wantFound := "", false
		var n int
		fmt.Sscanf(string(k), "k%d", &n)
		switch {
		case string(k) == "k005":
			want, wantFound = "buffered", true
		case string(k) == "k006":
		case n < 200:
			want, wantFound = fmt.Sprint(n), true
		}
		if found[i] != wantFound || string(values[i]) != want {
			t.Fatalf("GetMany: %s = %q, %v; want %q, %v", k, values[i], found[i], want, wantFound)
		}
	}
	// All of them are cached now, found or not.
	before = rt.count()
	if _, _, err := b.GetMany(keys); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "k238", "", false)
	if n := rt.count() - before; n != 0 {
		t.Fatalf("%d round trips reading cached keys again", n)
	}
}
