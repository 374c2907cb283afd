package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/kstreams-go/kstreams/core/store"
)

// Key layout. Every key of the store is kept under a one-byte namespace:
//
//	0x00 name        the store's metadata (format, see meta.go)
//	0x01 key         the entries of the store.Backend
//
// The data namespace gives DeleteRange with an open upper bound (nil hi) a
// finite end key, 0x02, which Pebble's range deletions need; and it keeps
// metadata out of Range.
const (
	nsMeta byte = 0x00
	nsData byte = 0x01
	nsEnd  byte = 0x02
)

// Backend is a store.Backend kept in a Pebble database. It also implements
// store.Checkpointer and store.Persistent. It is safe for concurrent use.
type Backend struct {
	db            *pebbledb.DB
	dir           string // the Pebble directory, for messages
	res           *resources
	ttl           time.Duration
	now           func() time.Time
	wal           bool
	log           *slog.Logger
	removeOnClose string // a temporary store directory

	// mu is held shared by every operation that uses db and exclusively by
	// Close (and by the TTL sweep while it deletes). A Range holds it only
	// while it steps its iterator, never while the caller's loop body runs,
	// so the body may write to the store or close it.
	mu     sync.RWMutex
	closed bool
	// iters counts open Range iterators. Pebble must not be closed before
	// its iterators, and the slices a Range yields point into the
	// iterator's memory, so if Close finds iterators open it leaves the
	// database to the last of them to close (see finishIter).
	iters atomic.Int64

	// writes counts completed writes; flushMu serializes Flush, and flushed
	// is the count the last successful Flush covered. Flush has nothing to
	// do when no write completed since.
	writes  atomic.Uint64
	flushMu sync.Mutex
	flushed uint64

	stop      chan struct{} // closed to stop the TTL sweep
	done      chan struct{} // closed when the TTL sweep has stopped
	closeOnce sync.Once
}

var (
	_ store.Backend      = (*Backend)(nil)
	_ store.Checkpointer = (*Backend)(nil)
	_ store.Persistent   = (*Backend)(nil)
)

// keyBufs holds scratch buffers for namespaced keys (Pebble does not retain
// the keys it is given for reads).
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// dataKey appends the namespaced form of key to dst.
func dataKey(dst, key []byte) []byte {
	return append(append(dst, nsData), key...)
}

// bounds returns the namespaced bounds of the user range [lo, hi).
func bounds(lo, hi []byte) (lower, upper []byte) {
	lower = dataKey(make([]byte, 0, 1+len(lo)), lo)
	if hi == nil {
		upper = []byte{nsEnd}
	} else {
		upper = dataKey(make([]byte, 0, 1+len(hi)), hi)
	}
	return lower, upper
}

// emptyRange reports whether [lo, hi) holds no key.
func emptyRange(lo, hi []byte) bool {
	return hi != nil && bytes.Compare(lo, hi) >= 0
}

func (b *Backend) errorf(format string, args ...any) error {
	return fmt.Errorf("pebble store %s: "+format, append([]any{b.dir}, args...)...)
}

// Dir returns the directory of the store's Pebble files.
func (b *Backend) Dir() string { return b.dir }

// Persistent implements store.Persistent: flushed data survives a restart,
// unless the store lives in a temporary directory (a Supplier given no
// state directory).
func (b *Backend) Persistent() bool { return b.removeOnClose == "" }

// Get implements store.Backend. The returned value is a copy.
func (b *Backend) Get(key []byte) ([]byte, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, false, store.ErrClosed
	}
	buf := keyBufs.Get().(*[]byte)
	k := dataKey((*buf)[:0], key)
	v, closer, err := b.db.Get(k)
	*buf = k
	keyBufs.Put(buf)
	if err != nil {
		if errors.Is(err, pebbledb.ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, b.errorf("get: %w", err)
	}
	defer closer.Close()
	if b.ttl > 0 {
		var live bool
		if v, live, err = b.unwrapTTL(v, b.now()); err != nil || !live {
			return nil, false, err
		}
	}
	return append([]byte(nil), v...), true, nil
}

// Set implements store.Backend.
func (b *Backend) Set(key, value []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	var ts int64
	if b.ttl > 0 {
		ts = b.now().UnixNano()
	}
	if err := b.addSet(batch, key, value, ts); err != nil {
		return b.errorf("set: %w", err)
	}
	return b.commit(batch, "set")
}

// Delete implements store.Backend.
func (b *Backend) Delete(key []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	if err := addDelete(batch, key); err != nil {
		return b.errorf("delete: %w", err)
	}
	return b.commit(batch, "delete")
}

// DeleteRange implements store.Backend with one Pebble range deletion:
// constant work however many keys the range holds. The space the deleted
// entries take is reclaimed by compaction; a range covering whole table
// files (an expired window segment, typically) is dropped without rewriting
// them.
func (b *Backend) DeleteRange(lo, hi []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	if emptyRange(lo, hi) {
		return nil
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	if err := addDeleteRange(batch, lo, hi); err != nil {
		return b.errorf("delete range: %w", err)
	}
	return b.commit(batch, "delete range")
}

// Write implements store.Backend: the operations are applied as one Pebble
// batch, atomically, in order.
func (b *Backend) Write(sb *store.Batch) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	ops := sb.Ops()
	if len(ops) == 0 {
		return nil
	}
	// Size the batch up front: restores write batches of many thousands of
	// records, and growing the batch's buffer would copy it repeatedly.
	size := 0
	for i := range ops {
		size += len(ops[i].Key) + len(ops[i].Value) + len(ops[i].End) + 32
	}
	batch := b.db.NewBatchWithSize(size)
	defer batch.Close()
	var ts int64
	if b.ttl > 0 {
		ts = b.now().UnixNano()
	}
	for i := range ops {
		op := &ops[i]
		var err error
		switch op.Kind {
		case store.OpSet:
			err = b.addSet(batch, op.Key, op.Value, ts)
		case store.OpDelete:
			err = addDelete(batch, op.Key)
		case store.OpDeleteRange:
			if !emptyRange(op.Key, op.End) {
				err = addDeleteRange(batch, op.Key, op.End)
			}
		default:
			err = fmt.Errorf("unknown operation kind %d", op.Kind)
		}
		if err != nil {
			return b.errorf("write batch (operation %d of %d): %w", i, len(ops), err)
		}
	}
	return b.commit(batch, "write batch")
}

// addSet adds a set of key to value (prefixed with the write time ts when
// the store has a TTL) to batch, encoding straight into the batch's memory.
func (b *Backend) addSet(batch *pebbledb.Batch, key, value []byte, ts int64) error {
	vlen := len(value)
	if b.ttl > 0 {
		vlen += ttlHeader
	}
	op := batch.SetDeferred(1+len(key), vlen)
	op.Key[0] = nsData
	copy(op.Key[1:], key)
	if b.ttl > 0 {
		putTTLHeader(op.Value, ts)
		copy(op.Value[ttlHeader:], value)
	} else {
		copy(op.Value, value)
	}
	return op.Finish()
}

func addDelete(batch *pebbledb.Batch, key []byte) error {
	op := batch.DeleteDeferred(1 + len(key))
	op.Key[0] = nsData
	copy(op.Key[1:], key)
	return op.Finish()
}

func addDeleteRange(batch *pebbledb.Batch, lo, hi []byte) error {
	lower, upper := bounds(lo, hi)
	return batch.DeleteRange(lower, upper, nil)
}

// commit commits batch without syncing: durability comes from Flush.
func (b *Backend) commit(batch *pebbledb.Batch, what string) error {
	if err := batch.Commit(pebbledb.NoSync); err != nil {
		return b.errorf("%s: %w", what, err)
	}
	b.writes.Add(1)
	return nil
}

// Flush implements store.Backend: when it returns, every write that returned
// before it was called survives a crash of the process or the machine. It
// syncs the write-ahead log (with WithoutWAL: writes the memtables out as
// table files and syncs them and the manifest). It returns at once if
// nothing was written since the last Flush.
func (b *Backend) Flush() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	n := b.writes.Load()
	if n == b.flushed {
		return nil
	}
	var err error
	if b.wal {
		err = b.db.LogData(nil, pebbledb.Sync)
	} else {
		err = b.db.Flush()
	}
	if err != nil {
		return b.errorf("flush: %w", err)
	}
	b.flushed = n
	return nil
}

// Range implements store.Backend over a Pebble iterator. The iterator reads
// a consistent view of the store as of the first step, so writes made while
// ranging (to any key) are not seen by the running iteration. The yielded
// slices point into the iterator's memory.
func (b *Backend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	empty := emptyRange(lo, hi)
	lower, upper := bounds(lo, hi) // copies: the caller may reuse lo and hi
	return func(yield func(store.Entry, error) bool) {
		if empty {
			if !b.isClosed() {
				return
			}
			yield(store.Entry{}, store.ErrClosed)
			return
		}
		b.mu.RLock()
		if b.closed {
			b.mu.RUnlock()
			yield(store.Entry{}, store.ErrClosed)
			return
		}
		it, err := b.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			b.mu.RUnlock()
			yield(store.Entry{}, b.errorf("range: %w", err))
			return
		}
		b.iters.Add(1)
		b.mu.RUnlock()
		defer b.finishIter(it)

		var now time.Time
		if b.ttl > 0 {
			now = b.now()
		}
		for first := true; ; first = false {
			e, ok, err := b.step(it, first, now)
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			if !ok || !yield(e, nil) {
				return
			}
		}
	}
}

// step advances it to the next live entry.
func (b *Backend) step(it *pebbledb.Iterator, first bool, now time.Time) (store.Entry, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.Entry{}, false, store.ErrClosed
	}
	var valid bool
	if first {
		valid = it.First()
	} else {
		valid = it.Next()
	}
	for ; valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return store.Entry{}, false, b.errorf("range: %w", err)
		}
		if b.ttl > 0 {
			var live bool
			if v, live, err = b.unwrapTTL(v, now); err != nil {
				return store.Entry{}, false, err
			}
			if !live {
				continue
			}
		}
		return store.Entry{Key: it.Key()[1:], Value: v}, true, nil
	}
	if err := it.Error(); err != nil {
		return store.Entry{}, false, b.errorf("range: %w", err)
	}
	return store.Entry{}, false, nil
}

// finishIter closes a Range's iterator, and the database if Close was
// called while the iterator was open and it was the last one.
func (b *Backend) finishIter(it *pebbledb.Iterator) {
	b.mu.RLock()
	err := it.Close()
	last := b.iters.Add(-1) == 0 && b.closed
	b.mu.RUnlock()
	if err != nil {
		b.log.Error("pebble store: closing iterator", "err", err)
	}
	if last {
		if err := b.closeDB(); err != nil {
			b.log.Error("pebble store: closing after the last range ended", "err", err)
		}
	}
}

func (b *Backend) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// Close implements store.Backend. It flushes first (a no-op when nothing
// was written since the last Flush), so that a store closed cleanly keeps
// everything written to it, with or without the write-ahead log.
//
// If a Range is still being iterated (its loop body is running, in this or
// another goroutine), that Range yields ErrClosed at its next step and the
// database is closed when it ends, so that the slices it yielded stay valid
// until then; Close returns at once in that case, before the directory lock
// is released.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.done
	})
	flushErr := b.Flush()
	if errors.Is(flushErr, store.ErrClosed) {
		return store.ErrClosed
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return store.ErrClosed
	}
	b.closed = true
	open := b.iters.Load()
	b.mu.Unlock()
	if open > 0 {
		b.log.Warn("pebble store closed while a range is open; closing when it ends", "ranges", open)
		return flushErr
	}
	return errors.Join(flushErr, b.closeDB())
}

// closeDB closes the database and releases the shared resources. It runs
// once, after closed was set and every iterator was closed.
func (b *Backend) closeDB() error {
	err := b.db.Close()
	b.res.release()
	if err != nil {
		err = b.errorf("close: %w", err)
	}
	if b.removeOnClose != "" {
		if rerr := os.RemoveAll(b.removeOnClose); rerr != nil {
			err = errors.Join(err, fmt.Errorf("pebble store %s: removing temporary directory: %w", b.dir, rerr))
		}
	}
	return err
}

// Metrics returns Pebble's metrics of the store (sizes, levels, compactions,
// cache hits), for monitoring.
func (b *Backend) Metrics() (*pebbledb.Metrics, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, store.ErrClosed
	}
	return b.db.Metrics(), nil
}
