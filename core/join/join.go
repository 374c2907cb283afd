// Package join provides joins of streams and tables (package table), as
// typed builder functions:
//
//   - StreamTable and StreamTableLeft: each stream record is joined with
//     the table's row of its key at the moment the record is processed.
//   - StreamGlobalTable and StreamGlobalTableLeft: each stream record is
//     joined with the row of a global table (table.Global) whose key a
//     key mapper computes from the record.
//   - ForeignKey and ForeignKeyLeft: each row of a table is joined with
//     the row of another table that its foreign key names (KIP-213),
//     through a subscription and a response topic.
//   - TableTable, TableTableLeft and TableTableOuter: an update of either
//     table is joined with the other table's row of its key; the result is
//     a table's update stream (nil for a deleted result).
//   - StreamStream, StreamStreamLeft and StreamStreamOuter: records of two
//     streams with one key whose timestamps are within a time difference
//     (JoinWindows). Unmatched records of left and outer joins are
//     forwarded once their window has closed, never before, so no
//     unmatched result is followed by a match.
//
// Apart from global-table and foreign-key joins, both sides of a join must
// be partitioned alike (the same key serde and
// partitioner, the same number of partitions): a join runs in the
// sub-topology of its table, and reads only its task's part of it.
//
// Results match Kafka Streams' record for record (tools/ksdiff); see
// docs/joins.md.
package join

import (
	"context"
	"fmt"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/table"
)

// StreamTable adds an inner join of stream with t: for each stream record
// whose key t holds, it forwards joiner's result for the record's value
// and the table's value, with the stream record's key, timestamp and
// headers. Records whose key t does not hold are dropped.
func StreamTable[K, V, T, VOut any](stream kstreams.Node[K, V], t table.Table[K, T], name string,
	joiner func(key K, value V, row T) (VOut, error)) kstreams.Node[K, VOut] {
	if joiner == nil {
		addError(stream, fmt.Errorf("stream-table join %s: nil joiner", name))
	}
	return streamTable(stream, t, name, func(key K, value V, row *T) (VOut, bool, error) {
		if row == nil {
			var zero VOut
			return zero, false, nil
		}
		out, err := joiner(key, value, *row)
		return out, true, err
	})
}

// StreamTableLeft adds a left join of stream with t: as StreamTable, but a
// record whose key t does not hold is joined with a nil row instead of
// being dropped.
func StreamTableLeft[K, V, T, VOut any](stream kstreams.Node[K, V], t table.Table[K, T], name string,
	joiner func(key K, value V, row *T) (VOut, error)) kstreams.Node[K, VOut] {
	if joiner == nil {
		addError(stream, fmt.Errorf("stream-table left join %s: nil joiner", name))
	}
	return streamTable(stream, t, name, func(key K, value V, row *T) (VOut, bool, error) {
		out, err := joiner(key, value, row)
		return out, true, err
	})
}

func addError[K, V any](n kstreams.Node[K, V], err error) {
	if b := n.Builder(); b != nil {
		b.AddError(err)
	}
}

func streamTable[K, V, T, VOut any](stream kstreams.Node[K, V], t table.Table[K, T], name string,
	join func(key K, value V, row *T) (VOut, bool, error)) kstreams.Node[K, VOut] {
	return kstreams.Process(stream, name, func() kstreams.Processor[K, V, K, VOut] {
		return &streamTableProc[K, V, T, VOut]{t: t, join: join}
	}, kstreams.WithStores(t.Store()))
}

type streamTableProc[K, V, T, VOut any] struct {
	t    table.Table[K, T]
	join func(key K, value V, row *T) (VOut, bool, error)
	rows table.Reader[K, T]
	pc   kstreams.ProcessorContext[K, VOut]
}

func (p *streamTableProc[K, V, T, VOut]) Init(pc kstreams.ProcessorContext[K, VOut]) (err error) {
	p.pc = pc
	p.rows, err = p.t.Reader(pc)
	return err
}

func (p *streamTableProc[K, V, T, VOut]) Process(ctx context.Context, r kstreams.Record[K, V]) error {
	row, ok, err := p.rows.Get(r.Key)
	if err != nil {
		return fmt.Errorf("join %s: reading table %s: %w", p.pc.Node(), p.t.Name(), err)
	}
	var rp *T
	if ok {
		rp = &row
	}
	out, emit, err := p.join(r.Key, r.Value, rp)
	if err != nil {
		return fmt.Errorf("join %s: %w", p.pc.Node(), err)
	}
	if !emit {
		return nil
	}
	return p.pc.Forward(ctx, kstreams.WithValue(r, out))
}

func (p *streamTableProc[K, V, T, VOut]) Close() error { return nil }
