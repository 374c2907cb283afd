package bigtable

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"regexp"
	"time"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// Columns of the meta row. All but epoch are written at timestamp 0, so
// each write replaces the previous cell.
const (
	colData      = "v"         // data rows: the value cell
	colEpoch     = "epoch"     // 8-byte counter, raised by ReadModifyWriteRow at open
	colCommitted = "committed" // 8 bytes: the version of the last committed flush
	colPending   = "pending"   // 8 bytes: the lowest version written since, not committed
	colOffset    = "offset"    // 8 bytes: the changelog offset (absent: none)
	colInputs    = "inputs"    // the input offsets, store.InputOffsets' encoding (absent: none)
	colExcluded  = "excluded"  // 16 bytes per range of versions never to read
)

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// open claims the store instance: it raises the owner epoch, reads the
// meta row, and excludes the versions a previous owner may have written
// without committing them.
func open(tbl *bigtable.Table, table string, cfg config, shared *cache, id uint64, bctx store.BackendContext) (*Backend, error) {
	inst := instancePrefix(bctx.App, bctx.Store, bctx.Partition)
	dp := dataPrefix(inst)
	b := &Backend{
		tbl:        tbl,
		cfg:        cfg,
		cache:      shared,
		id:         id,
		name:       fmt.Sprintf("%s/%s/%d", bctx.App, bctx.Store, bctx.Partition),
		dataPrefix: dp,
		dataEnd:    store.PrefixEnd(dp),
		metaKey:    metaRowKey(inst),
		column:     cfg.family + ":" + colData,
		logger:     bctx.Logger,
		layers:     []*layer{newLayer()},
		offset:     -1,
		obsolete:   map[string]int64{},
	}
	b.base, b.cancel = context.WithCancel(context.Background())
	if err := b.claim(); err != nil {
		b.cancel()
		return nil, fmt.Errorf("bigtable store %s: opening in table %s: %w", b.name, table, err)
	}
	if b.view.committed == 0 {
		// Never flushed: no cell counts, the instance is empty.
		shared.mu.Lock()
		shared.setCompleteLocked(id)
		shared.mu.Unlock()
	}
	if b.logger != nil {
		b.logger.Debug("bigtable store opened", "store", b.name, "epoch", b.epoch, "committed", b.view.committed, "offset", b.offset)
	}
	return b, nil
}

func (b *Backend) claim() error {
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	rmw := bigtable.NewReadModifyWrite()
	rmw.Increment(b.cfg.family, colEpoch, 1)
	start := time.Now()
	r, err := b.tbl.ApplyReadModifyWrite(ctx, b.metaKey, rmw)
	b.stats.open.Add(len(b.metaKey), 8, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("raising the owner epoch: %w", err)
	}
	var epochTS bigtable.Timestamp
	for _, it := range r[b.cfg.family] {
		if it.Column == b.cfg.family+":"+colEpoch && len(it.Value) == 8 {
			b.epoch = int64(binary.BigEndian.Uint64(it.Value))
			epochTS = it.Timestamp
		}
	}
	if b.epoch <= 0 || b.epoch > maxEpoch {
		return fmt.Errorf("owner epoch %d out of range (1 to %d)", b.epoch, maxEpoch)
	}
	e := be64(uint64(b.epoch))
	b.owner = bigtable.ChainFilters(
		bigtable.FamilyFilter("^"+regexp.QuoteMeta(b.cfg.family)+"$"),
		bigtable.ColumnFilter("^"+colEpoch+"$"),
		bigtable.LatestNFilter(1),
		bigtable.ValueRangeFilter(e, append(e, 0)),
	)

	start = time.Now()
	row, err := b.tbl.ReadRow(ctx, b.metaKey, bigtable.RowFilter(bigtable.LatestNFilter(1)))
	b.stats.open.Add(len(b.metaKey), rowBytes(row), time.Since(start), err)
	if err != nil {
		return fmt.Errorf("reading the meta row: %w", err)
	}
	var pending uint64
	for _, it := range row[b.cfg.family] {
		v := it.Value
		switch it.Column[len(b.cfg.family)+1:] {
		case colCommitted:
			if len(v) == 8 {
				b.view.committed = binary.BigEndian.Uint64(v)
			}
		case colPending:
			if len(v) == 8 {
				pending = binary.BigEndian.Uint64(v)
			}
		case colOffset:
			if len(v) == 8 {
				b.offset = int64(binary.BigEndian.Uint64(v))
			}
		case colInputs:
			if _, err := store.ParseInputOffsets(v); err != nil {
				return fmt.Errorf("meta row column %s: %w", colInputs, err)
			}
			b.inputs = bytes.Clone(v)
		case colExcluded:
			for ; len(v) >= 16; v = v[16:] {
				b.view.excluded = append(b.view.excluded, versionRange{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])})
			}
		}
	}
	m := bigtable.NewMutation()
	if pending != 0 {
		// A previous owner wrote cells at versions from pending on and did
		// not commit them; it can write no other version any more (a flush
		// marks its version first, under the epoch check). Exclude them for
		// good: the rest of that owner's epoch above the last commit.
		lo := max(pending, b.view.committed+1)
		hi := version(int64(pending>>seqBits), maxSeq)
		if lo <= hi {
			b.view.excluded = append(b.view.excluded, versionRange{lo, hi})
			var enc []byte
			for _, r := range b.view.excluded {
				enc = binary.BigEndian.AppendUint64(enc, r.lo)
				enc = binary.BigEndian.AppendUint64(enc, r.hi)
			}
			m.Set(b.cfg.family, colExcluded, 0, enc)
		}
		m.DeleteCellsInColumn(b.cfg.family, colPending)
	}
	if epochTS > 0 {
		m.DeleteTimestampRange(b.cfg.family, colEpoch, 0, epochTS) // earlier owners' epoch cells
	}
	b.seq = 0
	return b.ownerMutate(ctx, "claiming the instance", m, &b.stats.open, 0)
}

// ownerMutate applies m to the meta row if the stored epoch is still this
// owner's, in one atomic step (CheckAndMutateRow), counted in c as a round
// trip sending sent bytes of cells.
func (b *Backend) ownerMutate(ctx context.Context, what string, m *bigtable.Mutation, c *store.StatsCounter, sent int) error {
	var matched bool
	cond := bigtable.NewCondMutation(b.owner, m, nil)
	start := time.Now()
	err := b.tbl.Apply(ctx, b.metaKey, cond, bigtable.GetCondMutationResult(&matched))
	if err == nil && !matched {
		err = fmt.Errorf("owner epoch %d is no longer the instance's: %w", b.epoch, store.ErrFenced)
	}
	c.Add(len(b.metaKey)+sent, 0, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
