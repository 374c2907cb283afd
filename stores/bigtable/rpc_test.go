package bigtable

import (
	"fmt"
	"testing"
)

// Round trips per record, counted at the gRPC client: 1,000 Sets per flush,
// as a task's writes between two commits, cost a handful of calls per
// flush, not one per record. Updates of keys already read are answered by
// the cache.
func TestRoundTripsPerSet(t *testing.T) {
	e := startEmulator(t)
	b := e.open(t, freshContext())
	defer b.Close()
	const flushes, perFlush, keys = 5, 1000, 2000
	before := e.rpcs.Load()
	for f := range flushes {
		for i := range perFlush {
			k := fmt.Appendf(nil, "key-%05d", (f*perFlush+i)%keys)
			if err := b.Set(k, fmt.Appendf(nil, "%d", f)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.FlushAt(int64(f)); err != nil {
			t.Fatal(err)
		}
	}
	calls := e.rpcs.Load() - before
	perSet := float64(calls) / (flushes * perFlush)
	t.Logf("%d calls for %d Sets in %d flushes: %.4f per Set", calls, flushes*perFlush, flushes, perSet)
	if perSet >= 0.05 {
		t.Fatalf("%.4f calls per Set; want < 0.05", perSet)
	}

	// Read-modify-write of the same keys, as a count does: the flushed
	// rows are cached, so reads cost nothing either.
	before = e.rpcs.Load()
	for i := range perFlush {
		k := fmt.Appendf(nil, "key-%05d", i)
		v, ok, err := b.Get(k)
		if err != nil || !ok {
			t.Fatalf("Get(%s) = %q, %v, %v", k, v, ok, err)
		}
		if err := b.Set(k, append(v, '+')); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.FlushAt(flushes); err != nil {
		t.Fatal(err)
	}
	calls = e.rpcs.Load() - before
	t.Logf("%d calls for %d Get+Set and a flush", calls, perFlush)
	if float64(calls)/perFlush >= 0.05 {
		t.Fatalf("%d calls for %d Get+Set; want < 0.05 per record", calls, perFlush)
	}
}

// A write that finds the buffer full flushes it first, keeping the stored
// offset: a long restore does not hold the whole store in memory.
func TestBufferBound(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	b := e.open(t, ctx, WithMaxBufferedBytes(10_000))
	defer b.Close()
	if err := b.FlushAt(3); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 100)
	for i := range 1000 {
		if err := b.Set(fmt.Appendf(nil, "k%04d", i), value); err != nil {
			t.Fatal(err)
		}
		b.mu.RLock()
		size := b.layers[0].bytes
		b.mu.RUnlock()
		if size > 10_000+200 {
			t.Fatalf("after %d Sets the buffer holds %d bytes; want at most about 10,000", i+1, size)
		}
	}
	other := e.openWith(t, e.newClient(t), ctx)
	defer other.Close()
	wantOffset(t, other, 3, true)
	n := 0
	for _, err := range other.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 900 || n == 1000 {
		t.Fatalf("the next owner reads %d flushed rows; want the early flushes' (most, not all, of 1000)", n)
	}
}
