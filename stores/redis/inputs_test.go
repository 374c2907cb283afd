package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
)

func wantInputs(t *testing.T, b *Backend, want store.InputOffsets) {
	t.Helper()
	got, err := b.StoredInputs()
	if err != nil {
		t.Fatalf("StoredInputs: %v", err)
	}
	if (got == nil) != (want == nil) || !got.Equal(want) {
		t.Fatalf("StoredInputs = %v; want %v", got, want)
	}
}

func reopen(t *testing.T, c redis.UniversalClient, ctx store.BackendContext) *Backend {
	t.Helper()
	b, err := Open(c, ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Input offsets are stored with the data by the flush script and read back
// by the next owner; each kind of flush keeps only the offsets its data
// matches; an idle FlushInputs costs nothing.
func TestInputOffsetsRoundTrip(t *testing.T) {
	c, rt := newClient(t, startRedis(t))
	loadScripts(t, c)
	ctx := uniqueContext("inputs")
	b := reopen(t, c, ctx)
	wantInputs(t, b, nil)
	a := store.InputOffsets{"in": 10, "other-topic": 3}
	mustSet(t, b, "k", "1")
	before := rt.count()
	if err := b.FlushInputs(a); err != nil {
		t.Fatal(err)
	}
	if n := rt.count() - before; n != 1 {
		t.Fatalf("FlushInputs took %d round trips; want 1", n)
	}
	wantInputs(t, b, a)
	before = rt.count()
	if err := b.FlushInputs(store.InputOffsets{"in": 10, "other-topic": 3}); err != nil {
		t.Fatal(err)
	}
	if n := rt.count() - before; n != 0 {
		t.Fatalf("an idle FlushInputs took %d round trips; want 0", n)
	}

	next := reopen(t, c, ctx)
	wantInputs(t, next, a)
	wantGet(t, next, "k", "1", true)
	if _, ok, _ := next.StoredOffset(); ok {
		t.Fatal("a changelog offset is stored; FlushInputs stored none")
	}
	// Offsets alone (no writes) still go through the fenced script.
	bb := store.InputOffsets{"in": 12, "other-topic": 3}
	if err := next.FlushInputs(bb); err != nil {
		t.Fatal(err)
	}
	wantInputs(t, reopen(t, c, ctx), bb)

	// FlushInputs drops a changelog offset; FlushAt and Flush with data
	// drop input offsets.
	cur := reopen(t, c, ctx)
	if err := cur.FlushAt(7); err != nil {
		t.Fatal(err)
	}
	wantInputs(t, cur, nil)
	mustSet(t, cur, "k", "2")
	if err := cur.FlushInputs(bb); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := cur.StoredOffset(); ok {
		t.Fatal("FlushInputs kept the changelog offset")
	}
	again := reopen(t, c, ctx)
	wantInputs(t, again, bb)
	if _, ok, _ := again.StoredOffset(); ok {
		t.Fatal("FlushInputs kept the changelog offset in Redis")
	}
	mustSet(t, again, "k", "3")
	if err := again.Flush(); err != nil {
		t.Fatal(err)
	}
	wantInputs(t, again, nil)
	wantInputs(t, reopen(t, c, ctx), nil)

	if err := again.FlushInputs(store.InputOffsets{"": 1}); err == nil || !strings.Contains(err.Error(), "invalid entry") {
		t.Fatalf("FlushInputs of an empty topic name: %v", err)
	}
}

// A corrupt inputs field fails Open, naming the key.
func TestCorruptInputOffsets(t *testing.T) {
	c, _ := newClient(t, startRedis(t))
	ctx := uniqueContext("corrupt")
	b := reopen(t, c, ctx)
	if err := c.HSet(context.Background(), b.keys.meta, "inputs", "\x01\x05x").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(c, ctx)
	if err == nil || !strings.Contains(err.Error(), b.keys.meta) || !strings.Contains(err.Error(), "input offsets") {
		t.Fatalf("Open over a corrupt inputs field: %v; want an error naming %s", err, b.keys.meta)
	}
}

// A stale owner's FlushInputs is refused: neither its writes nor its
// offsets reach Redis.
func TestStaleFlushInputsFenced(t *testing.T) {
	addr := startRedis(t)
	c1, _ := newClient(t, addr)
	c2, _ := newClient(t, addr)
	ctx := uniqueContext("fence-inputs")
	old := reopen(t, c1, ctx)
	mustSet(t, old, "k", "old")
	if err := old.FlushInputs(store.InputOffsets{"in": 5}); err != nil {
		t.Fatal(err)
	}
	cur := reopen(t, c2, ctx)
	wantInputs(t, cur, store.InputOffsets{"in": 5})
	mustSet(t, old, "k", "stale")
	if err := old.FlushInputs(store.InputOffsets{"in": 9}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's FlushInputs: %v; want store.ErrFenced", err)
	}
	if err := old.FlushInputs(store.InputOffsets{"in": 9}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner's second FlushInputs: %v; want store.ErrFenced", err)
	}
	check := reopen(t, c2, ctx)
	wantInputs(t, check, store.InputOffsets{"in": 5})
	wantGet(t, check, "k", "old", true)
}

// cutProxy forwards TCP connections to target; once armed, each connection
// forwards at most limit bytes more from the client to the server, then
// both sides are closed: a request cut short, as by a crash of the client
// or the network mid-way.
type cutProxy struct {
	mu    sync.Mutex
	limit int64 // 0: not armed
	gen   int64 // arms so far
	cuts  atomic.Int64
}

// arm makes every connection forward at most limit more bytes from now; 0
// disarms.
func (p *cutProxy) arm(limit int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit, p.gen = limit, p.gen+1
}

func (p *cutProxy) state() (limit, gen int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit, p.gen
}

func startCutProxy(tb testing.TB, target string) (*cutProxy, string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &cutProxy{}
	var wg sync.WaitGroup
	tb.Cleanup(func() { l.Close(); wg.Wait() })
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(down, up); down.Close(); up.Close() }()
			go func() { defer wg.Done(); p.forward(up, down); down.Close(); up.Close() }()
		}
	}()
	return p, l.Addr().String()
}

func (p *cutProxy) forward(dst, src net.Conn) {
	var sent, gen int64 // bytes forwarded since arm number gen
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		limit, g := p.state()
		if g != gen {
			sent, gen = 0, g
		}
		if limit > 0 && sent+int64(n) > limit {
			dst.Write(buf[:limit-sent])
			p.cuts.Add(1)
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// A flush cut short on its way to Redis leaves neither its writes nor its
// offsets: Redis runs a command only once it has all of it, and the flush
// is one command. The backend keeps the writes and lands both at its next
// flush.
func TestFlushCutShortLeavesNeither(t *testing.T) {
	addr := startRedis(t)
	direct, _ := newClient(t, addr)
	proxy, paddr := startCutProxy(t, addr)
	viaProxy, _ := newClient(t, paddr)
	loadScripts(t, direct)
	ctx := uniqueContext("cut")
	b := reopen(t, viaProxy, ctx)
	a := store.InputOffsets{"in": 100}
	for i := range 100 {
		mustSet(t, b, fmt.Sprintf("k%04d", i), "old")
	}
	if err := b.FlushInputs(a); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 100)
	for i := range 2000 {
		mustSet(t, b, fmt.Sprintf("k%04d", i), value)
	}
	// The flush carries about 220 kB: cut every attempt at 100 kB.
	proxy.arm(100 << 10)
	err := b.FlushInputs(store.InputOffsets{"in": 2000})
	if err == nil {
		t.Fatal("a flush cut short succeeded")
	}
	if proxy.cuts.Load() == 0 {
		t.Fatalf("the proxy cut nothing (flush error %v)", err)
	}
	t.Logf("flush cut %d times: %v", proxy.cuts.Load(), err)

	check := func(wantIn store.InputOffsets, want string, n int) {
		t.Helper()
		r := reopen(t, direct, ctx)
		wantInputs(t, r, wantIn)
		entries := entries(t, r, nil, nil)
		if len(entries) != n {
			t.Fatalf("%d entries; want %d", len(entries), n)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e, "="+want) {
				t.Fatalf("entry %.40s; want every value %.10s", e, want)
			}
		}
	}
	check(a, "old", 100)

	// Reopening above fenced b: a new owner, through the healed proxy, lands
	// writes and offsets together.
	proxy.arm(0)
	if err := b.FlushInputs(store.InputOffsets{"in": 2000}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("flush after a newer owner opened: %v; want store.ErrFenced", err)
	}
	c := reopen(t, viaProxy, ctx)
	for i := range 2000 {
		mustSet(t, c, fmt.Sprintf("k%04d", i), value)
	}
	proxy.arm(100 << 10)
	if err := c.FlushInputs(store.InputOffsets{"in": 2000}); err == nil {
		t.Fatal("a flush cut short succeeded")
	}
	proxy.arm(0)
	if err := c.FlushInputs(store.InputOffsets{"in": 2000}); err != nil {
		t.Fatalf("the retry of a flush cut short: %v", err)
	}
	check(store.InputOffsets{"in": 2000}, value, 2000)
}
