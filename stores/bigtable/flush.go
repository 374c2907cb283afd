package bigtable

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// Flush implements store.Backend: it commits the buffered writes (see
// FlushAt), leaving the stored offset as it is.
func (b *Backend) Flush() error { return b.flush(0, false) }

// FlushAt implements store.OffsetKeeper: it commits the buffered writes and
// offset in one flush, which readers see whole or not at all; -1 removes the
// offset.
func (b *Backend) FlushAt(offset int64) error {
	if offset < -1 {
		return fmt.Errorf("bigtable store %s: FlushAt(%d): offsets are -1 or more", b.name, offset)
	}
	return b.flush(offset, true)
}

// testHook, when set by a test, runs after the named step of a flush
// ("marked", "written") and before its commit ("committing"); an error it
// returns stops the flush there, as a crash would.
var testHook func(b *Backend, step string) error

func (b *Backend) flush(offset int64, setOffset bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	if err := b.usableLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
	top := b.layers[0]
	// Whether this flush writes rows is decided here, once: a flush of the
	// offset alone leaves top in place, and writes made while it runs go
	// to top without being part of it.
	hasWrites := !top.empty()
	offsetChanges := setOffset && offset != b.offset
	if !hasWrites && !offsetChanges {
		b.mu.Unlock()
		return nil
	}
	// b.obsolete is read by this flush only: flushMu keeps other flushes
	// and Close out, and only they change it.
	f := flushState{top: top, hasWrites: hasWrites, offset: offset, setOffset: setOffset, obsolete: b.obsolete}
	if hasWrites {
		if b.seq >= maxSeq {
			b.mu.Unlock()
			return fmt.Errorf("bigtable store %s: flush: owner epoch %d used all its %d versions; reopen the store", b.name, b.epoch, maxSeq)
		}
		b.seq++ // a version per attempt: a failed attempt's version is never reused
		f.version = version(b.epoch, b.seq)
		if b.markedLow == 0 {
			b.markedLow = f.version
		}
		f.markedLow = b.markedLow
		b.layers = []*layer{newLayer(), top} // new writes go above the one flushing
	}
	b.mu.Unlock()

	written, err := b.write(&f)

	b.mu.Lock()
	defer b.mu.Unlock()
	if hasWrites {
		if err != nil {
			b.layers = []*layer{mergeLayers(b.layers[0], top)}
		} else {
			b.layers = b.layers[:1]
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrFenced) {
			b.fenced = fmt.Errorf("bigtable store %s: %w", b.name, err)
		}
		return b.wrapCtx(fmt.Errorf("bigtable store %s: flush: %w", b.name, err))
	}
	if setOffset {
		b.offset = offset
	}
	if !hasWrites {
		return nil
	}
	b.markedLow = 0
	b.view = readView{committed: f.version, excluded: b.view.excluded}
	if f.removedAll {
		clear(b.obsolete)
	}
	ts := versionTimestamp(f.version)
	for _, row := range written {
		b.obsolete[row] = obsoleteEnd(ts, false)
	}
	for _, row := range f.rangeRows {
		b.obsolete[row] = obsoleteEnd(ts, true)
	}
	// The cache learns the committed rows; reads that started before are
	// not cached (cacheGen). Its keys share the row keys' bytes.
	b.cache.mu.Lock()
	b.cacheGen++
	for i, p := range f.points {
		if p.deleted {
			b.obsolete[written[i]] = obsoleteEnd(ts, true)
		}
		b.cache.putLocked(b.id, written[i][len(b.dataPrefix):], p.value, !p.deleted)
	}
	for _, row := range f.rangeRows {
		b.cache.putLocked(b.id, row[len(b.dataPrefix):], nil, false)
	}
	b.cache.mu.Unlock()
	return nil
}

// obsoleteEnd returns the end (exclusive) of the cell timestamps of a row
// that its commit at timestamp ts made obsolete: the older cells, and the
// deletion itself if the commit deleted the row.
func obsoleteEnd(ts int64, deleted bool) int64 {
	if deleted {
		return ts + 1000
	}
	return ts
}

// flushState is one flush attempt.
type flushState struct {
	top       *layer
	hasWrites bool // top holds writes; if not, the flush writes the offset alone
	version   uint64
	markedLow uint64
	offset    int64
	setOffset bool
	obsolete  map[string]int64 // the backend's; read only

	points     []pointWrite // the top layer's point writes
	rangeRows  []string     // rows in its deleted ranges, without point writes
	removedAll bool         // the flush removed the obsolete cells of every row in obsolete
}

// write runs the steps of a flush:
//
//  1. mark: on the meta row, if the epoch is this owner's, record the
//     lowest version written since the last commit (CheckAndMutateRow);
//  2. list the rows in deleted ranges (one ReadRows, keys only);
//  3. write every row at the flush's version (one ApplyBulk), each together
//     with the removal of the cells an earlier commit made obsolete in it
//     (see obsolete), and, once more rows than a bound (100,000) wait for
//     it, the removal of the obsolete cells of every other row;
//  4. commit: on the meta row, if the epoch is this owner's, record the
//     version as committed with the offset, and clear the mark
//     (CheckAndMutateRow).
//
// Offset-only flushes run step 4 alone. It returns the row keys of
// f.points, in order.
func (b *Backend) write(f *flushState) ([]string, error) {
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	commit := bigtable.NewMutation()
	var written []string
	if f.hasWrites {
		mark := bigtable.NewMutation()
		mark.Set(b.cfg.family, colPending, 0, be64(f.markedLow))
		if err := b.ownerMutate(ctx, "marking the flush", mark); err != nil {
			return nil, err
		}
		if testHook != nil {
			if err := testHook(b, "marked"); err != nil {
				return nil, err
			}
		}
		var ranges []keyRange
		f.points, ranges = snapshot([]*layer{f.top}, nil, nil)
		if len(ranges) > 0 {
			rows, err := b.rowsIn(ctx, ranges, f.points)
			if err != nil {
				return nil, err
			}
			f.rangeRows = rows
		}
		removeAll := len(f.obsolete) > b.cfg.obsoleteRows
		n := len(f.points) + len(f.rangeRows)
		if removeAll {
			n += len(f.obsolete)
		}
		rows := make([]string, 0, n)
		list := make([]*bigtable.Mutation, 0, n)
		// One Mutation per row, its operations allocated together.
		muts := make([]bigtable.Mutation, len(f.points)+len(f.rangeRows))
		merged := 0 // rows of obsolete written again by this flush
		ts := bigtable.Timestamp(versionTimestamp(f.version))
		add := func(row string, cell []byte) {
			m := &muts[len(list)]
			if end, ok := f.obsolete[row]; ok {
				m.DeleteTimestampRange(b.cfg.family, colData, 0, bigtable.Timestamp(end))
				merged++
			}
			m.Set(b.cfg.family, colData, ts, cell)
			rows, list = append(rows, row), append(list, m)
		}
		written = make([]string, len(f.points))
		for i, p := range f.points {
			written[i] = b.rowKey(p.key)
			add(written[i], p.tagged) // immutable: the layer is no longer written
		}
		for _, row := range f.rangeRows {
			add(row, []byte{tagDeleted})
		}
		if removeAll && merged < len(f.obsolete) {
			mine := make(map[string]struct{}, len(rows))
			for _, row := range rows {
				mine[row] = struct{}{}
			}
			for row, end := range f.obsolete {
				if _, ok := mine[row]; ok {
					continue
				}
				m := bigtable.NewMutation()
				m.DeleteTimestampRange(b.cfg.family, colData, 0, bigtable.Timestamp(end))
				rows, list = append(rows, row), append(list, m)
			}
		}
		f.removedAll = removeAll
		if err := applyBulkConcurrently(ctx, b.tbl, rows, list); err != nil {
			return nil, fmt.Errorf("writing %d rows: %w", len(rows), err)
		}
		if testHook != nil {
			if err := testHook(b, "written"); err != nil {
				return nil, err
			}
		}
		commit.Set(b.cfg.family, colCommitted, 0, be64(f.version))
		commit.DeleteCellsInColumn(b.cfg.family, colPending)
	}
	if testHook != nil {
		if err := testHook(b, "committing"); err != nil {
			return nil, err
		}
	}
	if f.setOffset {
		if f.offset >= 0 {
			commit.Set(b.cfg.family, colOffset, 0, be64(uint64(f.offset)))
		} else {
			commit.DeleteCellsInColumn(b.cfg.family, colOffset)
		}
	}
	if err := b.ownerMutate(ctx, "committing the flush", commit); err != nil {
		return nil, err
	}
	return written, nil
}

// rowsIn returns the rows Bigtable holds in the deleted ranges, less those
// with point writes.
func (b *Backend) rowsIn(ctx context.Context, ranges []keyRange, points []pointWrite) ([]string, error) {
	set := make(bigtable.RowRangeList, 0, len(ranges))
	for _, r := range ranges {
		end := string(b.dataEnd)
		if r.hi != nil {
			end = dataRowKey(b.dataPrefix, r.hi)
		}
		set = append(set, bigtable.NewRange(dataRowKey(b.dataPrefix, r.lo), end))
	}
	written := make(map[string]bool, len(points))
	for _, p := range points {
		written[b.rowKey(p.key)] = true
	}
	var rows []string
	err := b.tbl.ReadRows(ctx, set, func(r bigtable.Row) bool {
		if !written[r.Key()] {
			rows = append(rows, r.Key())
		}
		return true
	}, bigtable.RowFilter(bigtable.ChainFilters(bigtable.CellsPerRowLimitFilter(1), bigtable.StripValueFilter())))
	if err != nil {
		return nil, fmt.Errorf("listing the rows of %d deleted ranges: %w", len(ranges), err)
	}
	return rows, nil
}

// bulkChunk is the number of rows above which a flush's rows go in several
// ApplyBulk calls at once, and bulkCalls the most calls at once: the server
// applies one chunk while the client encodes the next.
const (
	bulkChunk = 400
	bulkCalls = 4
)

// applyBulkConcurrently applies muts in chunks of at least bulkChunk rows,
// at most bulkCalls at a time, and returns the first error. The chunks'
// order does not matter: readers see none of the rows until the flush
// commits, and a row is in one chunk only.
func applyBulkConcurrently(ctx context.Context, tbl *bigtable.Table, rows []string, muts []*bigtable.Mutation) error {
	calls := min(bulkCalls, len(rows)/bulkChunk)
	if calls <= 1 {
		return applyBulk(ctx, tbl, rows, muts)
	}
	size := (len(rows) + calls - 1) / calls
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		lo, hi := i*size, min((i+1)*size, len(rows))
		wg.Go(func() { errs[i] = applyBulk(ctx, tbl, rows[lo:hi], muts[lo:hi]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyBulk applies muts in as few requests as the client allows and
// returns the first error of any row.
func applyBulk(ctx context.Context, tbl *bigtable.Table, rows []string, muts []*bigtable.Mutation) error {
	if len(rows) == 0 {
		return nil
	}
	errs, err := tbl.ApplyBulk(ctx, rows, muts)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil {
			return fmt.Errorf("row %d of %d: %w", i+1, len(rows), e)
		}
	}
	return nil
}
