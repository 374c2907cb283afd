package join

import (
	"context"
	"fmt"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/table"
)

// StreamGlobalTable adds an inner join of stream with the global table t:
// for each stream record, keyOf computes the key to look up in t (from the
// record's key and value), and where t holds it the join forwards joiner's
// result with the stream record's key, timestamp and headers. Records
// whose looked-up key t does not hold are dropped.
//
// A global table holds every partition of its topic, so the stream needs
// no co-partitioning with it; the lookup sees the table as its own
// consumer last updated it (see table.Global).
func StreamGlobalTable[K, V, GK, GV, VOut any](stream kstreams.Node[K, V], t table.GlobalTable[GK, GV], name string,
	keyOf func(key K, value V) (GK, error), joiner func(key K, value V, row GV) (VOut, error)) kstreams.Node[K, VOut] {
	if keyOf == nil || joiner == nil {
		addError(stream, fmt.Errorf("stream-global-table join %s: nil key mapper or joiner", name))
	}
	return streamGlobal(stream, t, name, keyOf, func(key K, value V, row *GV) (VOut, bool, error) {
		if row == nil {
			var zero VOut
			return zero, false, nil
		}
		out, err := joiner(key, value, *row)
		return out, true, err
	})
}

// StreamGlobalTableLeft adds a left join of stream with the global table
// t: as StreamGlobalTable, but a record whose looked-up key t does not hold
// is joined with a nil row instead of being dropped.
func StreamGlobalTableLeft[K, V, GK, GV, VOut any](stream kstreams.Node[K, V], t table.GlobalTable[GK, GV], name string,
	keyOf func(key K, value V) (GK, error), joiner func(key K, value V, row *GV) (VOut, error)) kstreams.Node[K, VOut] {
	if keyOf == nil || joiner == nil {
		addError(stream, fmt.Errorf("stream-global-table left join %s: nil key mapper or joiner", name))
	}
	return streamGlobal(stream, t, name, keyOf, func(key K, value V, row *GV) (VOut, bool, error) {
		out, err := joiner(key, value, row)
		return out, true, err
	})
}

func streamGlobal[K, V, GK, GV, VOut any](stream kstreams.Node[K, V], t table.GlobalTable[GK, GV], name string,
	keyOf func(key K, value V) (GK, error), join func(key K, value V, row *GV) (VOut, bool, error)) kstreams.Node[K, VOut] {
	return kstreams.Process(stream, name, func() kstreams.Processor[K, V, K, VOut] {
		return &streamGlobalProc[K, V, GK, GV, VOut]{t: t, keyOf: keyOf, join: join}
	}, kstreams.WithStores(t.Store()))
}

type streamGlobalProc[K, V, GK, GV, VOut any] struct {
	t     table.GlobalTable[GK, GV]
	keyOf func(key K, value V) (GK, error)
	join  func(key K, value V, row *GV) (VOut, bool, error)
	rows  table.Reader[GK, GV]
	pc    kstreams.ProcessorContext[K, VOut]
}

func (p *streamGlobalProc[K, V, GK, GV, VOut]) Init(pc kstreams.ProcessorContext[K, VOut]) (err error) {
	p.pc = pc
	p.rows, err = p.t.Reader(pc)
	return err
}

func (p *streamGlobalProc[K, V, GK, GV, VOut]) Process(ctx context.Context, r kstreams.Record[K, V]) error {
	gk, err := p.keyOf(r.Key, r.Value)
	if err != nil {
		return fmt.Errorf("join %s: mapping a record to a key of global table %s: %w", p.pc.Node(), p.t.Name(), err)
	}
	row, ok, err := p.rows.Get(gk)
	if err != nil {
		return fmt.Errorf("join %s: reading global table %s: %w", p.pc.Node(), p.t.Name(), err)
	}
	var rp *GV
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

func (p *streamGlobalProc[K, V, GK, GV, VOut]) Close() error { return nil }
