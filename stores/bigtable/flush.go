package bigtable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// Flush implements store.Backend: it commits the buffered writes (see
// FlushAt), leaving the stored changelog offset as it is (the changelog's
// records are absolute values, so replaying its tail over newer data
// converges) and removing the stored input offsets, if any (the data no
// longer matches them).
func (b *Backend) Flush() error { return b.flush(flushArgs{keepOffset: true}) }

// FlushAt implements store.OffsetKeeper: it commits the buffered writes and
// offset in one flush, which readers see whole or not at all; -1 removes the
// offset. It removes the stored input offsets, if any.
func (b *Backend) FlushAt(offset int64) error {
	if offset < -1 {
		return fmt.Errorf("bigtable store %s: FlushAt(%d): offsets are -1 or more", b.name, offset)
	}
	return b.flush(flushArgs{offset: offset})
}

// FlushInputs implements store.InputOffsetKeeper: it commits the buffered
// writes and the input offsets in one flush, the offsets written by the
// commit step that publishes the writes (a CheckAndMutateRow of the meta
// row under the owner epoch): readers, and the next owner, see both or
// neither. It removes the stored changelog offset, if any.
func (b *Backend) FlushInputs(offsets store.InputOffsets) error {
	enc, err := offsets.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("bigtable store %s: FlushInputs: %w", b.name, err)
	}
	return b.flush(flushArgs{offset: -1, inputs: enc})
}

// StoredInputs implements store.InputOffsetKeeper: the input offsets
// committed with the data, as read when the backend opened or committed by
// its FlushInputs since; nil if none.
func (b *Backend) StoredInputs() (store.InputOffsets, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, store.ErrClosed
	}
	if b.inputs == nil {
		return nil, nil
	}
	o, err := store.ParseInputOffsets(b.inputs)
	if err != nil {
		return nil, fmt.Errorf("bigtable store %s: stored input offsets: %w", b.name, err)
	}
	return o, nil
}

// flushArgs says what a flush commits with the buffered writes.
type flushArgs struct {
	keepOffset bool   // Flush: keep the changelog offset as it is
	offset     int64  // else the changelog offset, -1 for none
	inputs     []byte // encoded input offsets, for FlushInputs; else nil
}

// testHook, when set by a test, runs after the named step of a flush
// ("marked", "written") and before its commit ("committing"); an error it
// returns stops the flush there, as a crash would.
var testHook func(b *Backend, step string) error

func (b *Backend) flush(a flushArgs) error {
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
	// What the meta row holds once the flush commits: one kind of offset
	// at most, the one the data matches.
	offset, inputs := b.offset, b.inputs
	switch {
	case a.inputs != nil:
		offset, inputs = -1, a.inputs
	case !a.keepOffset:
		offset, inputs = a.offset, nil
	case hasWrites:
		inputs = nil
	}
	if !hasWrites && !b.metaUnknown && offset == b.offset && bytes.Equal(inputs, b.inputs) {
		b.mu.Unlock()
		return nil
	}
	// b.obsolete is read by this flush only: flushMu keeps other flushes
	// and Close out, and only they change it.
	f := flushState{top: top, hasWrites: hasWrites, offset: offset, inputs: inputs, obsolete: b.obsolete}
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
		// The commit may have been applied with its reply lost: the next
		// flush writes the offsets whatever b believes the row holds.
		b.metaUnknown = true
		return b.wrapCtx(fmt.Errorf("bigtable store %s: flush: %w", b.name, err))
	}
	b.offset, b.inputs, b.metaUnknown = offset, inputs, false
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
	hasWrites bool // top holds writes; if not, the flush writes the offsets alone
	version   uint64
	markedLow uint64
	offset    int64            // the changelog offset to commit, -1 for none
	inputs    []byte           // the encoded input offsets to commit, nil for none
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
//     version as committed with the changelog offset and the input
//     offsets, and clear the mark (CheckAndMutateRow).
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
		if err := b.ownerMutate(ctx, "marking the flush", mark, &b.stats.mark, 8); err != nil {
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
		sizes := make([]int, 0, n) // payload bytes per row, for StoreStats
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
			rows, list, sizes = append(rows, row), append(list, m), append(sizes, len(row)+len(cell))
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
				rows, list, sizes = append(rows, row), append(list, m), append(sizes, len(row))
			}
		}
		f.removedAll = removeAll
		if err := applyBulkConcurrently(ctx, b.tbl, rows, list, sizes, &b.stats.write); err != nil {
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
	// Both offsets are written every time, whatever the row held: one
	// more cell in a request that is sent anyway.
	if f.offset >= 0 {
		commit.Set(b.cfg.family, colOffset, 0, be64(uint64(f.offset)))
	} else {
		commit.DeleteCellsInColumn(b.cfg.family, colOffset)
	}
	if f.inputs != nil {
		commit.Set(b.cfg.family, colInputs, 0, f.inputs)
	} else {
		commit.DeleteCellsInColumn(b.cfg.family, colInputs)
	}
	if err := b.ownerMutate(ctx, "committing the flush", commit, &b.stats.commit, 16+len(f.inputs)); err != nil {
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
	start, received := time.Now(), 0
	err := b.tbl.ReadRows(ctx, set, func(r bigtable.Row) bool {
		received += len(r.Key())
		if !written[r.Key()] {
			rows = append(rows, r.Key())
		}
		return true
	}, bigtable.RowFilter(bigtable.ChainFilters(bigtable.CellsPerRowLimitFilter(1), bigtable.StripValueFilter())))
	b.stats.list.Add(0, received, time.Since(start), err)
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
func applyBulkConcurrently(ctx context.Context, tbl *bigtable.Table, rows []string, muts []*bigtable.Mutation, sizes []int, c *store.StatsCounter) error {
	calls := min(bulkCalls, len(rows)/bulkChunk)
	if calls <= 1 {
		return applyBulkCounted(ctx, tbl, rows, muts, sizes, c)
	}
	size := (len(rows) + calls - 1) / calls
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		lo, hi := i*size, min((i+1)*size, len(rows))
		wg.Go(func() { errs[i] = applyBulkCounted(ctx, tbl, rows[lo:hi], muts[lo:hi], sizes[lo:hi], c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyBulkCounted is applyBulk counted in c as one round trip of the
// payload bytes in sizes.
func applyBulkCounted(ctx context.Context, tbl *bigtable.Table, rows []string, muts []*bigtable.Mutation, sizes []int, c *store.StatsCounter) error {
	if len(rows) == 0 {
		return nil
	}
	sent := 0
	for _, n := range sizes {
		sent += n
	}
	start := time.Now()
	err := applyBulk(ctx, tbl, rows, muts)
	c.Add(sent, 0, time.Since(start), err)
	return err
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
