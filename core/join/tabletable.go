package join

import (
	"context"
	"fmt"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/table"
)

// TableTable adds an inner join of two tables. When a key of left changes
// and right holds the key, it forwards joiner's result for the two values
// (or nil when the left key was deleted); the same for changes of right.
// Changes of a key the other table does not hold forward nothing. Results
// are timestamped with the later of the two rows' timestamps and form a
// table's update stream: turn them into a table with table.FromChanges, or
// write them with table.Nullable.
//
// The join is three nodes: "<name>-left" and "<name>-right", joining the
// updates of each side, and "<name>", which merges them (the node
// returned).
func TableTable[K, L, R, VOut any](left table.Table[K, L], right table.Table[K, R], name string,
	joiner func(key K, l L, r R) (VOut, error)) kstreams.Node[K, *VOut] {
	if joiner == nil {
		addError(left.Changes(), fmt.Errorf("table-table join %s: nil joiner", name))
	}
	return tableTable(left, right, name, func(key K, l *L, r *R) (*VOut, error) {
		if l == nil || r == nil {
			return nil, nil
		}
		out, err := joiner(key, *l, *r)
		return &out, err
	}, innerJoin)
}

// TableTableLeft adds a left join of two tables: every change of left
// forwards joiner's result, with a nil right value where right does not
// hold the key (or nil when the left key was deleted); a change of right
// forwards a result only where left holds the key. See TableTable.
func TableTableLeft[K, L, R, VOut any](left table.Table[K, L], right table.Table[K, R], name string,
	joiner func(key K, l L, r *R) (VOut, error)) kstreams.Node[K, *VOut] {
	if joiner == nil {
		addError(left.Changes(), fmt.Errorf("table-table left join %s: nil joiner", name))
	}
	return tableTable(left, right, name, func(key K, l *L, r *R) (*VOut, error) {
		if l == nil {
			return nil, nil
		}
		out, err := joiner(key, *l, r)
		return &out, err
	}, leftJoin)
}

// TableTableOuter adds an outer join of two tables: every change of
// either table forwards joiner's result for the two values, either of which
// may be nil (nil when neither table holds the key any more). See
// TableTable.
func TableTableOuter[K, L, R, VOut any](left table.Table[K, L], right table.Table[K, R], name string,
	joiner func(key K, l *L, r *R) (VOut, error)) kstreams.Node[K, *VOut] {
	if joiner == nil {
		addError(left.Changes(), fmt.Errorf("table-table outer join %s: nil joiner", name))
	}
	return tableTable(left, right, name, func(key K, l *L, r *R) (*VOut, error) {
		if l == nil && r == nil {
			return nil, nil
		}
		out, err := joiner(key, l, r)
		return &out, err
	}, outerJoin)
}

type joinKind uint8

const (
	innerJoin joinKind = iota
	leftJoin
	outerJoin
)

// tableTable wires the two sides. join computes a result from the two
// current values (nil: absent); whether a change forwards anything when the
// other side is absent depends on the kind.
func tableTable[K, L, R, VOut any](left table.Table[K, L], right table.Table[K, R], name string,
	join func(key K, l *L, r *R) (*VOut, error), kind joinKind) kstreams.Node[K, *VOut] {
	fromLeft := kstreams.Process(left.Changes(), name+"-left", func() kstreams.Processor[K, table.Change[L], K, *VOut] {
		return &sideProc[K, L, R, VOut]{other: right, join: func(k K, own *L, other *R) (*VOut, error) { return join(k, own, other) },
			needOther: kind == innerJoin}
	}, kstreams.WithStores(right.Store()))
	fromRight := kstreams.Process(right.Changes(), name+"-right", func() kstreams.Processor[K, table.Change[R], K, *VOut] {
		return &sideProc[K, R, L, VOut]{other: left, join: func(k K, own *R, other *L) (*VOut, error) { return join(k, other, own) },
			needOther: kind != outerJoin}
	}, kstreams.WithStores(left.Store()))
	return kstreams.Merge(name, fromLeft, fromRight)
}

// sideProc joins the updates of one table (own) with the rows of the
// other.
type sideProc[K, Own, Other, VOut any] struct {
	other     table.Table[K, Other]
	join      func(key K, own *Own, other *Other) (*VOut, error)
	needOther bool // forward nothing when the other table lacks the key
	rows      table.Reader[K, Other]
	pc        kstreams.ProcessorContext[K, *VOut]
}

func (p *sideProc[K, Own, Other, VOut]) Init(pc kstreams.ProcessorContext[K, *VOut]) (err error) {
	p.pc = pc
	p.rows, err = p.other.Reader(pc)
	return err
}

func (p *sideProc[K, Own, Other, VOut]) Process(ctx context.Context, r kstreams.Record[K, table.Change[Own]]) error {
	row, ok, err := p.rows.GetRow(r.Key)
	if err != nil {
		return fmt.Errorf("join %s: reading table %s: %w", p.pc.Node(), p.other.Name(), err)
	}
	if !ok && (p.needOther || r.Value.New == nil && r.Value.Old == nil) {
		// The other table lacks the key: an inner join has no result; nor
		// has a tombstone of a key this table did not hold either.
		return nil
	}
	var other *Other
	ts := r.Timestamp
	if ok {
		other = &row.Value
		if row.Timestamp.After(ts) {
			ts = row.Timestamp
		}
	}
	out, err := p.join(r.Key, r.Value.New, other)
	if err != nil {
		return fmt.Errorf("join %s: %w", p.pc.Node(), err)
	}
	res := kstreams.WithValue(r, out)
	res.Timestamp = ts
	return p.pc.Forward(ctx, res)
}

func (p *sideProc[K, Own, Other, VOut]) Close() error { return nil }
