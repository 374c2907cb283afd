package pebble

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Window stores expire whole segments with one DeleteRange each. Over
// Pebble, the expired windows must disappear from reads and from the store,
// and the disk space they took must be reclaimed by compaction.
func TestWindowRetention(t *testing.T) {
	const (
		hours     = 24
		keys      = 150
		valueSize = 1024
	)
	b := openTemp(t)
	defer b.Close()
	ws := store.NewWindowStore("w", "w", b, 3*time.Hour, time.Hour, serde.String, serde.Bytes)
	base := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	win := func(h int) store.Window {
		return store.Window{Start: base.Add(time.Duration(h) * time.Hour), End: base.Add(time.Duration(h+1) * time.Hour)}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, valueSize)
	var peak uint64
	for h := range hours {
		for k := range keys {
			for i := range value {
				value[i] = byte(rnd.Uint32()) // incompressible: sizes on disk are meaningful
			}
			if err := ws.Put(fmt.Sprintf("key-%03d", k), win(h), value); err != nil {
				t.Fatal(err)
			}
		}
		// Write the hour out as table files, as memtables filling up would.
		if err := b.db.Flush(); err != nil {
			t.Fatal(err)
		}
		m, _ := b.Metrics()
		peak = max(peak, m.DiskSpaceUsage())
	}
	written := uint64(hours * keys * valueSize)

	// Reads: windows older than the retention (3h before hour 23) are gone;
	// hours 20-23 remain.
	for h := range hours {
		_, ok, err := ws.Get("key-007", win(h))
		if err != nil {
			t.Fatal(err)
		}
		if live := h >= hours-4; ok != live {
			t.Fatalf("window of hour %d: found %v, want %v", h, ok, live)
		}
	}
	// FetchAll, not Fetch: core's Fetch loses windows for keys whose
	// encoded prefix leaves spare capacity (see the module's notes).
	fetched := 0
	for w, err := range ws.FetchAll(base, base.Add(hours*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		if w.Window.Start.Before(base.Add((hours - 4) * time.Hour)) {
			t.Fatalf("FetchAll returned expired window %v", w.Window)
		}
		fetched++
	}
	if fetched != 4*keys {
		t.Fatalf("FetchAll returned %d windows, want %d", fetched, 4*keys)
	}
	// The raw store holds the live segments only.
	if n := rawCount(t, b); n != 4*keys {
		t.Fatalf("%d raw entries, want %d (4 live hours × %d keys)", n, 4*keys, keys)
	}

	// Disk: the range deletions let compactions drop the expired tables.
	// Pebble does this in the background, whenever its scheduler gets to
	// it: wait for the space to shrink (the limit is only there so that a
	// store that never reclaims fails instead of hanging).
	if err := b.db.Flush(); err != nil {
		t.Fatal(err)
	}
	live := uint64(4 * keys * valueSize)
	var usage uint64
	start := time.Now()
	for {
		m, err := b.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		usage = m.DiskSpaceUsage()
		if usage < 2*live {
			break
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("disk usage %d KiB did not shrink towards the live data (%d KiB) within %v of the expiry",
				usage>>10, live>>10, time.Since(start).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("written %d KiB, peak disk %d KiB, now %d KiB (after %v), live data %d KiB",
		written>>10, peak>>10, usage>>10, time.Since(start).Round(time.Millisecond), live>>10)
}

// clock is a settable time source for TTL tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func withClock(c *clock) Option { return func(cfg *config) { cfg.now = c.Now } }

func rangeKeys(t *testing.T, b store.Backend) []string {
	t.Helper()
	var keys []string
	for e, err := range b.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(e.Key)+"="+string(e.Value))
	}
	return keys
}

func TestTTL(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	// A sweep interval longer than the test: sweeps are run by hand.
	dir := t.TempDir()
	b, err := Open(dir, WithTTL(time.Hour), WithTTLSweepInterval(time.Hour), withClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()

	mustSet(t, b, "old", "1")
	var batch store.Batch
	batch.Set([]byte("old-batch"), []byte("2"))
	if err := b.Write(&batch); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Minute)
	mustSet(t, b, "young", "3")
	mustSet(t, b, "rewritten", "4")
	if got := rangeKeys(t, b); !slices.Equal(got, []string{"old=1", "old-batch=2", "rewritten=4", "young=3"}) {
		t.Fatalf("before expiry: %q", got)
	}

	clk.Advance(30 * time.Minute) // "old" and "old-batch" are exactly ttl old
	wantGet(t, b, "old", "", false)
	wantGet(t, b, "old-batch", "", false)
	wantGet(t, b, "young", "3", true)
	if got := rangeKeys(t, b); !slices.Equal(got, []string{"rewritten=4", "young=3"}) {
		t.Fatalf("after the first expiry: %q", got)
	}
	// Hidden, not yet deleted.
	if n := rawCount(t, b); n != 4 {
		t.Fatalf("%d raw entries before the sweep, want 4", n)
	}
	if n, err := b.sweep(); err != nil || n != 2 {
		t.Fatalf("sweep deleted %d (%v), want 2", n, err)
	}
	if n := rawCount(t, b); n != 2 {
		t.Fatalf("%d raw entries after the sweep, want 2", n)
	}

	// Writing a key again restarts its time to live.
	clk.Advance(20 * time.Minute)
	mustSet(t, b, "rewritten", "5")
	clk.Advance(20 * time.Minute)
	wantGet(t, b, "young", "", false)
	wantGet(t, b, "rewritten", "5", true)
	if n, err := b.sweep(); err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}

	// The TTL survives a reopen, and the store refuses to open without one.
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "created with a TTL") {
		t.Fatalf("opening a TTL store without a TTL: %v", err)
	}
	b, err = Open(dir, WithTTL(time.Hour), withClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, "rewritten", "5", true)
	clk.Advance(time.Hour)
	wantGet(t, b, "rewritten", "", false)
}

func TestTTLPlainStoreRefusesTTL(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "k", "v")
	b.Close()
	if _, err := Open(dir, WithTTL(time.Hour)); err == nil || !strings.Contains(err.Error(), "without a TTL") {
		t.Fatalf("opening a plain store with a TTL: %v", err)
	}
}

// The background sweep deletes expired keys by itself.
func TestTTLBackgroundSweep(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := openTemp(t, WithTTL(time.Minute), WithTTLSweepInterval(5*time.Millisecond), withClock(clk))
	defer b.Close()
	for i := range 1000 { // more than one sweep chunk
		mustSet(t, b, fmt.Sprintf("k%04d", i), "v")
	}
	clk.Advance(time.Minute)
	// The sweeps run every 5 ms; the limit only stops a sweep that never
	// comes from hanging the test.
	deadline := time.Now().Add(2 * time.Minute)
	for rawCount(t, b) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d expired entries left after 2 minutes of sweeps", rawCount(t, b))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A sweep racing with writers never deletes a fresh write: it checks each
// key again while holding writers off.
func TestTTLSweepKeepsFreshWrites(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := openTemp(t, WithTTL(time.Minute), WithTTLSweepInterval(time.Hour), withClock(clk))
	defer b.Close()
	const n = 3000
	for i := range n {
		mustSet(t, b, fmt.Sprintf("k%04d", i), "old")
	}
	clk.Advance(time.Minute) // all expired
	var wg sync.WaitGroup
	wg.Add(2)
	errs := make(chan error, 2)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := b.Set(fmt.Appendf(nil, "k%04d", i), []byte("new")); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := b.sweep(); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range n {
		wantGet(t, b, fmt.Sprintf("k%04d", i), "new", true)
	}
}
