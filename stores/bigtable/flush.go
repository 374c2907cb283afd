package bigtable

import (
	"context"
	"errors"
	"fmt"

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
// ("marked", "written"); an error it returns stops the flush there, as a
// crash would.
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
	offsetChanges := setOffset && offset != b.offset
	if top.empty() && !offsetChanges {
		b.mu.Unlock()
		return nil
	}
	f := flushState{top: top, offset: offset, setOffset: setOffset, cleanup: b.cleanup, cleanupTS: b.cleanupTS}
	if !top.empty() {
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
	if !top.empty() {
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
	if top.empty() {
		return nil
	}
	b.markedLow = 0
	b.view = readView{committed: f.version, excluded: b.view.excluded}
	b.cleanup, b.cleanupTS = written, versionTimestamp(f.version)
	// The cache learns the committed rows; reads that started before are
	// not cached (cacheGen).
	b.cache.mu.Lock()
	b.cacheGen++
	for _, p := range f.points {
		b.cache.putLocked(cacheKey{instance: b.id, row: b.rowKey(p.key)}, p.value, !p.deleted)
	}
	for _, row := range f.rangeRows {
		b.cache.putLocked(cacheKey{instance: b.id, row: row}, nil, false)
	}
	b.cache.mu.Unlock()
	return nil
}

// flushState is one flush attempt.
type flushState struct {
	top       *layer
	version   uint64
	markedLow uint64
	offset    int64
	setOffset bool
	cleanup   []cleanupRow
	cleanupTS int64

	points    []pointWrite // the top layer's point writes
	rangeRows []string     // rows in its deleted ranges, without point writes
}

// write runs the steps of a flush:
//
//  1. mark: on the meta row, if the epoch is this owner's, record the
//     lowest version written since the last commit (CheckAndMutateRow);
//  2. list the rows in deleted ranges (one ReadRows, keys only);
//  3. write every row at the flush's version (one ApplyBulk), together with
//     the removal of the cells the previous commit made obsolete;
//  4. commit: on the meta row, if the epoch is this owner's, record the
//     version as committed with the offset, and clear the mark
//     (CheckAndMutateRow).
//
// Offset-only flushes run step 4 alone. It returns the rows written.
func (b *Backend) write(f *flushState) ([]cleanupRow, error) {
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	commit := bigtable.NewMutation()
	var written []cleanupRow
	if !f.top.empty() {
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
		muts := make(map[string]*bigtable.Mutation, len(f.points)+len(f.rangeRows)+len(f.cleanup))
		var order []string
		mut := func(row string) *bigtable.Mutation {
			m, ok := muts[row]
			if !ok {
				m = bigtable.NewMutation()
				muts[row] = m
				order = append(order, row)
			}
			return m
		}
		for _, c := range f.cleanup {
			b.addCleanup(mut(c.row), c, f.cleanupTS)
		}
		ts := bigtable.Timestamp(versionTimestamp(f.version))
		written = make([]cleanupRow, 0, len(f.points)+len(f.rangeRows))
		for _, p := range f.points {
			row := b.rowKey(p.key)
			mut(row).Set(b.cfg.family, colData, ts, p.tagged) // immutable: the layer is no longer written
			written = append(written, cleanupRow{row: row, deleted: p.deleted})
		}
		for _, row := range f.rangeRows {
			mut(row).Set(b.cfg.family, colData, ts, []byte{tagDeleted})
			written = append(written, cleanupRow{row: row, deleted: true})
		}
		list := make([]*bigtable.Mutation, len(order))
		for i, row := range order {
			list[i] = muts[row]
		}
		if err := applyBulk(ctx, b.tbl, order, list); err != nil {
			return nil, fmt.Errorf("writing %d rows: %w", len(order), err)
		}
		if testHook != nil {
			if err := testHook(b, "written"); err != nil {
				return nil, err
			}
		}
		commit.Set(b.cfg.family, colCommitted, 0, be64(f.version))
		commit.DeleteCellsInColumn(b.cfg.family, colPending)
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

// addCleanup adds to m the removal of the cells of c that the commit at
// timestamp ts made obsolete: the older ones, and the deletion itself.
// Removing them changes nothing readers see, so a stale owner doing it
// harms no one; cells of later versions are kept.
func (b *Backend) addCleanup(m *bigtable.Mutation, c cleanupRow, ts int64) {
	end := ts
	if c.deleted {
		end += 1000
	}
	m.DeleteTimestampRange(b.cfg.family, colData, 0, bigtable.Timestamp(end))
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
