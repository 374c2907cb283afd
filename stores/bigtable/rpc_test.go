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
