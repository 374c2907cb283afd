package bigtable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// Supplier returns a store.Supplier that keeps each store instance
// (application × store × partition) in table, through client. The caller
// owns client (its project, instance, credentials and options) and closes
// it after the application stopped. The table and its column family must
// exist (see CreateTable).
func Supplier(client *bigtable.Client, table string, opts ...Option) store.Supplier {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	shared := newCache(cfg.cacheBytes)
	tbl := client.Open(table)
	var ids atomic.Uint64
	return func(ctx store.BackendContext) (store.Backend, error) {
		return open(tbl, table, cfg, shared, ids.Add(1), ctx)
	}
}

// Backend is a store.Backend and store.OffsetKeeper whose rows live in
// Bigtable, with writes buffered in memory until Flush or FlushAt. It is
// safe for concurrent use. See the package documentation for its layout and
// guarantees.
type Backend struct {
	tbl        *bigtable.Table
	cfg        config
	cache      *cache
	id         uint64
	name       string // app/store/partition, for errors and logs
	dataPrefix []byte
	dataEnd    []byte
	metaKey    string
	column     string // family:column as ReadItem names it
	owner      bigtable.Filter
	logger     *slog.Logger
	base       context.Context
	cancel     context.CancelFunc

	flushMu sync.Mutex // one flush at a time; Close waits for it

	mu        sync.RWMutex
	epoch     int64
	layers    []*layer // unflushed writes, newest first; never empty
	view      readView // which cells are committed
	seq       uint64   // the last flush version's sequence number
	markedLow uint64   // lowest version marked pending since the last commit
	offset    int64    // -1: none
	inputs    []byte   // the encoded input offsets; nil: none
	// metaUnknown: a flush failed, its commit maybe applied: offset and
	// inputs may not be what the meta row holds.
	metaUnknown bool
	obsolete    map[string]int64 // row → end of its cells made obsolete by a commit; flushMu
	cacheGen    uint64           // written with mu and cache.mu held
	preloaded   atomic.Bool      // a preload was tried
	closed      bool
	fenced      error

	stats backendStats
}

// Obsolete cells. Each committed flush makes older cells of the rows it
// wrote obsolete (and the rows it deleted, deletion included): they change
// nothing readers see, and are removed later, by a Bigtable DeleteFromColumn
// of the timestamps below the end kept in Backend.obsolete. A row written
// again has the removal added to its new write, at no extra entry; the
// others wait until more than a bound (100,000) rows are waiting, when a
// flush removes all of them, or until Close.

// readView says which cells count: those at a committed version that no
// handover excluded.
type readView struct {
	committed uint64
	excluded  []versionRange // immutable once published
}

type versionRange struct{ lo, hi uint64 } // inclusive

func (v readView) valid(version uint64) bool {
	if version > v.committed {
		return false
	}
	for _, r := range v.excluded {
		if version >= r.lo && version <= r.hi {
			return false
		}
	}
	return true
}

var (
	_ store.Backend      = (*Backend)(nil)
	_ store.OffsetKeeper = (*Backend)(nil)
	_ store.BatchGetter  = (*Backend)(nil)

	_ store.InputOffsetKeeper = (*Backend)(nil)
	_ store.StatsReporter     = (*Backend)(nil)
)

// usableLocked returns why the backend may not be used, if it may not.
func (b *Backend) usableLocked() error {
	if b.closed {
		return store.ErrClosed
	}
	return b.fenced
}

// resolve returns the committed value of a row from its cells, as of view.
// A row whose cells that count under view were all removed by later
// flushes (a read that overlapped two commits) is resolved again under the
// current view: the read then sees the newer value, as a read overlapping
// a write may.
func (b *Backend) resolve(view readView, row bigtable.Row) (value []byte, found bool) {
	value, found, newer := b.resolveAt(view, row)
	if !found && newer && value == nil {
		b.mu.RLock()
		current := b.view
		b.mu.RUnlock()
		if current.committed != view.committed {
			value, found, _ = b.resolveAt(current, row)
		}
	}
	if !found {
		return nil, false
	}
	return value, true
}

// resolveAt returns the row's value under view, and whether it has cells
// above view's committed version. value is non-nil for a found row, and
// for a row whose newest counted cell is a deletion.
func (b *Backend) resolveAt(view readView, row bigtable.Row) (value []byte, found, newer bool) {
	for _, it := range row[b.cfg.family] {
		if it.Column != b.column {
			continue
		}
		v := timestampVersion(int64(it.Timestamp))
		if v > view.committed {
			newer = true
		}
		if !view.valid(v) {
			continue
		}
		if len(it.Value) == 0 || it.Value[0] != tagValue {
			return []byte{}, false, newer
		}
		return it.Value[1:], true, newer
	}
	return nil, false, newer
}

func (b *Backend) rowKey(key []byte) string { return dataRowKey(b.dataPrefix, key) }

func (b *Backend) checkKey(key []byte) error {
	if len(b.dataPrefix)+len(key) > maxRowKey {
		return fmt.Errorf("bigtable store %s: key of %d bytes makes a row key longer than Bigtable's %d bytes", b.name, len(key), maxRowKey)
	}
	return nil
}

// Get implements store.Backend: unflushed writes first, then the cache, then
// one read of the row.
func (b *Backend) Get(key []byte) ([]byte, bool, error) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, false, store.ErrClosed
	}
	if v, ok, decided := lookupLayers(b.layers, key); decided {
		b.mu.RUnlock()
		return v, ok, nil
	}
	view, gen := b.view, b.cacheGen
	b.mu.RUnlock()
	if len(b.dataPrefix)+len(key) > maxRowKey {
		return nil, false, nil // no such row can exist
	}
	if v, ok, hit := b.cache.get(b.id, key); hit {
		return v, ok, nil
	}
	if b.preloadOnce() {
		if err := b.preload(view, gen); err != nil {
			return nil, false, err
		}
		if v, ok, hit := b.cache.get(b.id, key); hit {
			return v, ok, nil
		}
	}
	rowKey := b.rowKey(key)
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	start := time.Now()
	row, err := b.tbl.ReadRow(ctx, rowKey)
	b.stats.get.Add(len(rowKey), rowBytes(row), time.Since(start), err)
	if err != nil {
		return nil, false, b.wrapCtx(fmt.Errorf("bigtable store %s: reading key %q: %w", b.name, key, err))
	}
	v, ok := b.resolve(view, row)
	b.cache.fill(b, gen, rowKey[len(b.dataPrefix):], v, ok)
	return v, ok, nil
}

// GetMany returns the values of keys (values[i] and found[i] for keys[i]),
// reading every key that is neither unflushed nor cached in one request. It
// implements store.BatchGetter: processors reach it through
// KeyValueStore.GetMany.
func (b *Backend) GetMany(keys [][]byte) (values [][]byte, found []bool, err error) {
	values, found = make([][]byte, len(keys)), make([]bool, len(keys))
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, nil, store.ErrClosed
	}
	var missing []int
	for i, k := range keys {
		if v, ok, decided := lookupLayers(b.layers, k); decided {
			values[i], found[i] = v, ok
			continue
		}
		missing = append(missing, i)
	}
	view, gen := b.view, b.cacheGen
	b.mu.RUnlock()
	if len(missing) > 0 && b.preloadOnce() {
		if err := b.preload(view, gen); err != nil {
			return nil, nil, err
		}
	}
	var rows bigtable.RowList
	wanted := map[string][]int{}
	for _, i := range missing {
		if len(b.dataPrefix)+len(keys[i]) > maxRowKey {
			continue
		}
		if v, ok, hit := b.cache.get(b.id, keys[i]); hit {
			values[i], found[i] = v, ok
			continue
		}
		row := b.rowKey(keys[i])
		if _, dup := wanted[row]; !dup {
			rows = append(rows, row)
		}
		wanted[row] = append(wanted[row], i)
	}
	if len(rows) == 0 {
		return values, found, nil
	}
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	start, sent, received := time.Now(), 0, 0
	for _, r := range rows {
		sent += len(r)
	}
	err = b.tbl.ReadRows(ctx, rows, func(r bigtable.Row) bool {
		received += rowBytes(r)
		v, ok := b.resolve(view, r)
		for _, i := range wanted[r.Key()] {
			values[i], found[i] = v, ok
		}
		b.cache.fill(b, gen, r.Key()[len(b.dataPrefix):], v, ok)
		delete(wanted, r.Key())
		return true
	})
	b.stats.getMany.Add(sent, received, time.Since(start), err)
	if err != nil {
		return nil, nil, b.wrapCtx(fmt.Errorf("bigtable store %s: reading %d keys: %w", b.name, len(rows), err))
	}
	for row := range wanted { // rows Bigtable does not have
		b.cache.fill(b, gen, row[len(b.dataPrefix):], nil, false)
	}
	return values, found, nil
}

// Set implements store.Backend. The write is buffered until the next flush.
func (b *Backend) Set(key, value []byte) error {
	return b.writePoint(key, func(l *layer) { l.set(key, value) })
}

// Delete implements store.Backend. The deletion is buffered until the next
// flush.
func (b *Backend) Delete(key []byte) error {
	return b.writePoint(key, func(l *layer) { l.delete(key) })
}

// writePoint applies one point write to the newest layer.
func (b *Backend) writePoint(key []byte, apply func(*layer)) error {
	if err := b.checkKey(key); err != nil {
		return err
	}
	if err := b.makeRoom(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	apply(b.layers[0])
	return nil
}

// makeRoom flushes when the unflushed writes reached WithMaxBufferedBytes.
func (b *Backend) makeRoom() error {
	if b.cfg.maxBuffer <= 0 {
		return nil
	}
	b.mu.RLock()
	full := b.layers[0].bytes >= b.cfg.maxBuffer
	b.mu.RUnlock()
	if full {
		return b.Flush()
	}
	return nil
}

// DeleteRange implements store.Backend. The deletion is buffered until the
// next flush, which reads the keys of the range and deletes each row.
func (b *Backend) DeleteRange(lo, hi []byte) error {
	var batch store.Batch
	batch.DeleteRange(lo, hi)
	return b.Write(&batch)
}

// Write implements store.Backend. The batch is buffered as a whole, and a
// flush commits all of it or none (see the package documentation). A write
// that finds the buffer full (WithMaxBufferedBytes) flushes it first.
func (b *Backend) Write(batch *store.Batch) error {
	for _, op := range batch.Ops() {
		if op.Kind != store.OpDeleteRange {
			if err := b.checkKey(op.Key); err != nil {
				return err
			}
		}
	}
	if err := b.makeRoom(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	top := b.layers[0]
	for _, op := range batch.Ops() {
		switch op.Kind {
		case store.OpSet:
			top.set(op.Key, op.Value)
		case store.OpDelete:
			top.delete(op.Key)
		case store.OpDeleteRange:
			top.deleteRange(op.Key, op.End)
		default:
			return fmt.Errorf("bigtable store %s: unknown batch operation %d", b.name, op.Kind)
		}
	}
	return nil
}

// Range implements store.Backend: one stream of the rows of [lo, hi),
// merged with the unflushed writes in the range.
func (b *Backend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		if lo != nil && hi != nil && bytes.Compare(lo, hi) >= 0 {
			b.mu.RLock()
			closed := b.closed
			b.mu.RUnlock()
			if closed {
				yield(store.Entry{}, store.ErrClosed)
			}
			return
		}
		b.mu.RLock()
		if b.closed {
			b.mu.RUnlock()
			yield(store.Entry{}, store.ErrClosed)
			return
		}
		points, ranges := snapshot(b.layers, lo, hi)
		view := b.view
		b.mu.RUnlock()

		start := dataRowKey(b.dataPrefix, lo)
		end := string(b.dataEnd)
		if hi != nil {
			end = dataRowKey(b.dataPrefix, hi)
		}
		prefixLen := len(b.dataPrefix)
		i := 0
		stopped := false
		// emitPoints yields the unflushed writes before key (all if nil).
		emitPoints := func(key []byte) bool {
			for ; i < len(points) && (key == nil || bytes.Compare(points[i].key, key) < 0); i++ {
				if !points[i].deleted && !yield(store.Entry{Key: points[i].key, Value: points[i].value}, nil) {
					return false
				}
			}
			return true
		}
		ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
		defer cancel()
		began, received := time.Now(), 0
		err := b.tbl.ReadRows(ctx, bigtable.NewRange(start, end), func(r bigtable.Row) bool {
			received += rowBytes(r)
			key := []byte(r.Key()[prefixLen:])
			if !emitPoints(key) {
				stopped = true
				return false
			}
			if i < len(points) && bytes.Equal(points[i].key, key) {
				p := points[i]
				i++
				if !p.deleted && !yield(store.Entry{Key: p.key, Value: p.value}, nil) {
					stopped = true
					return false
				}
				return true
			}
			for _, rg := range ranges {
				if rg.contains(key) {
					return true
				}
			}
			v, ok := b.resolve(view, r)
			if ok && !yield(store.Entry{Key: key, Value: v}, nil) {
				stopped = true
				return false
			}
			return true
		})
		b.stats.rangeRead.Add(len(start)+len(end), received, time.Since(began), err)
		if stopped {
			return
		}
		if err != nil {
			yield(store.Entry{}, b.wrapCtx(fmt.Errorf("bigtable store %s: reading range: %w", b.name, err)))
			return
		}
		emitPoints(nil)
	}
}

// wrapCtx turns the error of a call canceled by Close into store.ErrClosed.
func (b *Backend) wrapCtx(err error) error {
	if b.base.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	}
	return err
}

// StoredOffset implements store.OffsetKeeper. The offset is read when the
// backend opens and kept up to date by its own flushes: only the owner
// writes it.
func (b *Backend) StoredOffset() (int64, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, false, store.ErrClosed
	}
	return b.offset, b.offset >= 0, nil
}

// Close implements store.Backend. Unflushed writes are dropped: the runtime
// flushes before it closes a store it keeps. Close removes, best effort,
// the cells the last flush made obsolete.
func (b *Backend) Close() error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return store.ErrClosed
	}
	b.closed = true
	obsolete := b.obsolete
	b.obsolete = nil
	b.mu.Unlock()
	if len(obsolete) > 0 {
		ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
		rows, muts := make([]string, 0, len(obsolete)), make([]*bigtable.Mutation, 0, len(obsolete))
		for row, end := range obsolete {
			m := bigtable.NewMutation()
			m.DeleteTimestampRange(b.cfg.family, colData, 0, bigtable.Timestamp(end))
			rows, muts = append(rows, row), append(muts, m)
		}
		sizes := make([]int, len(rows))
		for i, r := range rows {
			sizes[i] = len(r)
		}
		if err := applyBulkCounted(ctx, b.tbl, rows, muts, sizes, &b.stats.cleanup); err != nil && b.logger != nil {
			b.logger.Warn("bigtable store: removing obsolete cells at close failed; they are removed when the rows are written again", "store", b.name, "err", err)
		}
		cancel()
	}
	b.cancel()
	b.cache.dropInstance(b.id)
	return nil
}
