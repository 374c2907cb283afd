package bigtable

import (
	"iter"
	"sync/atomic"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

// Every subtest gets its own store instance in one emulator. Writes stay
// unflushed unless a subtest flushes: the suite then checks the overlay.
func TestConformance(t *testing.T) {
	e := startEmulator(t)
	storetest.Run(t, func(t *testing.T) store.Backend { return e.open(t, freshContext()) })
}

// flushingBackend flushes before every read that follows a write, so that
// the suite checks what Bigtable holds (reads go to the server, through the
// cache) and flushes that run while other goroutines write.
type flushingBackend struct {
	*Backend
	dirty *atomic.Bool
}

func flushing(b *Backend) flushingBackend { return flushingBackend{b, new(atomic.Bool)} }

func (f flushingBackend) Set(k, v []byte) error { return f.wrote(f.Backend.Set(k, v)) }
func (f flushingBackend) Delete(k []byte) error { return f.wrote(f.Backend.Delete(k)) }
func (f flushingBackend) DeleteRange(lo, hi []byte) error {
	return f.wrote(f.Backend.DeleteRange(lo, hi))
}
func (f flushingBackend) Write(b *store.Batch) error { return f.wrote(f.Backend.Write(b)) }

func (f flushingBackend) wrote(err error) error {
	f.dirty.Store(true)
	return err
}

func (f flushingBackend) flush() error {
	if f.dirty.Swap(false) {
		return f.Backend.Flush()
	}
	return nil
}

func (f flushingBackend) Get(k []byte) ([]byte, bool, error) {
	if err := f.flush(); err != nil {
		return nil, false, err
	}
	return f.Backend.Get(k)
}

func (f flushingBackend) GetMany(keys [][]byte) ([][]byte, []bool, error) {
	if err := f.flush(); err != nil {
		return nil, nil, err
	}
	return f.Backend.GetMany(keys)
}

func (f flushingBackend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	if err := f.flush(); err != nil {
		return func(yield func(store.Entry, error) bool) { yield(store.Entry{}, err) }
	}
	return f.Backend.Range(lo, hi)
}

func TestConformanceFlushed(t *testing.T) {
	e := startEmulator(t)
	storetest.Run(t, func(t *testing.T) store.Backend { return flushing(e.open(t, freshContext())) })
}

func TestDurable(t *testing.T) {
	e := startEmulator(t)
	storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		return e.open(t, ctx)
	})
}

// Each owner on a client of its own, as on different machines.
func TestDurableSeparateClients(t *testing.T) {
	e := startEmulator(t)
	storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		return e.openWith(t, e.newClient(t), ctx)
	})
}

// Owners alternate between two clients, as on different machines.
func TestInputs(t *testing.T) {
	e := startEmulator(t)
	other := e.newClient(t)
	n := 0
	storetest.RunInputs(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		if n++; n%2 == 0 {
			return e.openWith(t, other, ctx)
		}
		return e.open(t, ctx)
	})
}
