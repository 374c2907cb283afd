package bigtable

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// StoreStats counts each call under its operation, as many as the client
// made, and reports the final counts after Close.
func TestStoreStats(t *testing.T) {
	e := startEmulator(t)
	ctx := freshContext()
	seed := e.open(t, ctx)
	mustSet(t, seed, "a", "value")
	mustSet(t, seed, "b", "value")
	if err := seed.FlushInputs(store.InputOffsets{"in": 2}); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	before := e.rpcs.Load()
	b := e.open(t, ctx, WithCacheSize(0))
	wantGet(t, b, "a", "value", true)
	if _, _, err := b.GetMany([][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	all(t, b)
	mustSet(t, b, "c", "12345")
	if err := b.DeleteRange([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushInputs(store.InputOffsets{"in": 3}); err != nil {
		t.Fatal(err)
	}
	calls := e.rpcs.Load() - before
	s := b.StoreStats()
	want := map[string]int64{"open": 3, "get": 1, "get_many": 1, "range": 1, "mark": 1, "list": 1, "write": 1, "commit": 1, "cleanup": 0}
	var total int64
	for op, n := range want {
		got := s.Ops[op]
		if got.RoundTrips != n || got.Errors != 0 {
			t.Errorf("%s: %+v; want %d round trips, no error", op, got, n)
		}
		total += got.RoundTrips
	}
	if total != calls {
		t.Errorf("%d round trips counted; the client made %d calls (%v)", total, calls, e.calls.snapshot())
	}
	if got := s.Ops["get"].BytesReceived; got < int64(len("value")) {
		t.Errorf("get received %d bytes", got)
	}
	if got := s.Ops["write"].BytesSent; got < int64(len("c12345")) {
		t.Errorf("write sent %d bytes", got)
	}
	if s.Closed {
		t.Error("Closed before Close")
	}
	b.Close()
	s = b.StoreStats()
	if !s.Closed || s.Ops["cleanup"].RoundTrips != 1 {
		t.Fatalf("after Close: closed %v, cleanup %+v; want closed, one cleanup call", s.Closed, s.Ops["cleanup"])
	}
}
