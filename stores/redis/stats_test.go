package redis

import (
	"context"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// StoreStats counts each round trip under its operation, with its bytes,
// and reports the final counts after Close.
func TestStoreStats(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	loadScripts(t, c)
	ctx := uniqueContext("stats")
	seed := reopen(t, c, ctx)
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, seed, k, "value")
	}
	if err := seed.FlushInputs(store.InputOffsets{"in": 3}); err != nil {
		t.Fatal(err)
	}
	b, err := Open(c, ctx, WithPreload(0))
	if err != nil {
		t.Fatal(err)
	}
	before := rt.count()
	wantGet(t, b, "a", "value", true)
	wantGet(t, b, "zz", "", false)
	if _, _, err := b.GetMany([][]byte{[]byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	entries(t, b, nil, nil)
	mustSet(t, b, "d", "12345")
	if err := b.FlushInputs(store.InputOffsets{"in": 4}); err != nil {
		t.Fatal(err)
	}
	s := b.StoreStats()
	want := map[string]int64{"open": 1, "get": 2, "get_many": 1, "range": 1, "flush": 1, "preload": 0}
	var total int64
	for op, n := range want {
		got := s.Ops[op]
		if got.RoundTrips != n || got.Errors != 0 {
			t.Errorf("%s: %+v; want %d round trips, no error", op, got, n)
		}
		if n > 0 && got.Duration <= 0 {
			t.Errorf("%s: no duration", op)
		}
		total += got.RoundTrips
	}
	if n := rt.count() - before + 1; total != n {
		t.Errorf("%d round trips counted; the client made %d", total, n)
	}
	if got := s.Ops["get"].BytesReceived; got != int64(len("value")) {
		t.Errorf("get received %d bytes; want %d", got, len("value"))
	}
	if got := s.Ops["get_many"].BytesReceived; got != 2*int64(len("value")) {
		t.Errorf("get_many received %d bytes; want %d", got, 2*len("value"))
	}
	if got := s.Ops["flush"].BytesSent; got < int64(len("d12345")) {
		t.Errorf("flush sent %d bytes; want at least %d", got, len("d12345"))
	}
	if s.Closed {
		t.Error("Closed before Close")
	}
	// A failed round trip counts as an error.
	if err := c.HSet(context.Background(), b.keys.data, "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(context.Background(), b.keys.index, "not a zset", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "e", "1")
	if err := b.Flush(); err == nil {
		t.Fatal("a flush over a broken layout succeeded")
	}
	b.Close()
	s = b.StoreStats()
	if !s.Closed || s.Ops["flush"].RoundTrips != 2 || s.Ops["flush"].Errors != 1 {
		t.Fatalf("after a failed flush and Close: closed %v, flush %+v; want closed, 2 round trips, 1 error", s.Closed, s.Ops["flush"])
	}
}
