package redis

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

func TestConformance(t *testing.T) {
	addr := startRedis(t)
	c, _ := newClient(t, addr)
	supply := Supplier(c)
	storetest.Run(t, func(t *testing.T) store.Backend {
		b, err := supply(uniqueContext("conformance"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// With one buffered write and no cache, every write is flushed at once and
// every read goes to Redis: the suite then checks the server side (scripts,
// index, pages) rather than the buffer.
func TestConformanceWriteThrough(t *testing.T) {
	addr := startRedis(t)
	c, _ := newClient(t, addr)
	supply := Supplier(c, WithMaxBufferedWrites(1), WithReadCache(0), WithRangePageSize(3))
	storetest.Run(t, func(t *testing.T) store.Backend {
		b, err := supply(uniqueContext("conformance"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Small pages and a small buffer: ranges merge buffered and flushed entries
// across page boundaries.
func TestConformanceSmallPages(t *testing.T) {
	addr := startRedis(t)
	c, _ := newClient(t, addr)
	supply := Supplier(c, WithMaxBufferedWrites(7), WithReadCache(256), WithRangePageSize(2))
	storetest.Run(t, func(t *testing.T) store.Backend {
		b, err := supply(uniqueContext("conformance"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestDurable(t *testing.T) {
	addr := startRedis(t)
	c, _ := newClient(t, addr)
	app := uniqueContext("").App
	storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		ctx.App = app
		b, err := Open(c, ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// A second client (another process's connection pool) is a newer owner
// like any other.
func TestDurableTwoClients(t *testing.T) {
	addr := startRedis(t)
	c1, _ := newClient(t, addr)
	c2, _ := newClient(t, addr)
	app := uniqueContext("").App
	n := 0
	storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		ctx.App = app
		c := c1
		if n++; n%2 == 0 {
			c = c2
		}
		b, err := Open(c, ctx, WithMaxBufferedWrites(1), WithReadCache(0))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestInputs(t *testing.T) {
	addr := startRedis(t)
	c1, _ := newClient(t, addr)
	c2, _ := newClient(t, addr)
	app := uniqueContext("").App
	n := 0
	storetest.RunInputs(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		ctx.App = app
		c := c1
		if n++; n%2 == 0 {
			c = c2
		}
		b, err := Open(c, ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
