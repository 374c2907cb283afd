package table

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Groups are a table's rows re-keyed for aggregation (GroupBy): each
// change of the table moves a row out of one group and into another (or the
// same).
type Groups[K, V any] struct {
	name    string
	changes kstreams.Node[K, Change[V]]
	keys    serde.Serde[K]
	values  serde.Serde[V]
}

// GroupBy re-keys t's rows for aggregation: selector maps each row (k, v) to
// its group key and the value aggregated there. When a row changes, its old
// value leaves its old group (the aggregation's subtract) and its new value
// joins its new group (add); a deleted row only leaves. The changes go
// through topic, a repartition topic of partitions partitions that the
// application creates (0: see kstreams.Through), encoded with keys and values, so that each group is
// aggregated in one task. The nodes are "<name>" (the re-keying) and
// "<name>-repartition".
func GroupBy[K, V, K2, V2 any](t Table[K, V], name, topic string, partitions int32, keys serde.Serde[K2], values serde.Serde[V2],
	selector func(key K, value V) (K2, V2, error)) Groups[K2, V2] {
	g := Groups[K2, V2]{name: name, keys: keys, values: values}
	b := t.changes.Builder()
	if b == nil {
		return g
	}
	if selector == nil || keys == nil || values == nil {
		b.AddError(fmt.Errorf("table group-by %s: nil selector, key serde or value serde", name))
		return g
	}
	rekeyed := kstreams.Process(t.changes, name, func() kstreams.Processor[K, Change[V], K2, Change[V2]] {
		return &regroup[K, V, K2, V2]{selector: selector, keys: keys}
	})
	g.changes = kstreams.Through(rekeyed, name+"-repartition", topic, partitions, keys, changeSerde[V2]{values})
	return g
}

// regroup turns a table change into the changes of the groups it leaves
// and joins: one record when the group stays the same, else the leaving
// one first.
type regroup[K, V, K2, V2 any] struct {
	selector func(K, V) (K2, V2, error)
	keys     serde.Serde[K2]
	pc       kstreams.ProcessorContext[K2, Change[V2]]
}

func (g *regroup[K, V, K2, V2]) Init(pc kstreams.ProcessorContext[K2, Change[V2]]) error {
	g.pc = pc
	return nil
}

func (g *regroup[K, V, K2, V2]) Close() error { return nil }

func (g *regroup[K, V, K2, V2]) Process(ctx context.Context, r kstreams.Record[K, Change[V]]) error {
	var (
		oldKey, newKey K2
		oldVal, newVal *V2
	)
	if o := r.Value.Old; o != nil {
		k, v, err := g.selector(r.Key, *o)
		if err != nil {
			return fmt.Errorf("group-by %s: %w", g.pc.Node(), err)
		}
		oldKey, oldVal = k, &v
	}
	if n := r.Value.New; n != nil {
		k, v, err := g.selector(r.Key, *n)
		if err != nil {
			return fmt.Errorf("group-by %s: %w", g.pc.Node(), err)
		}
		newKey, newVal = k, &v
	}
	out := func(k K2, c Change[V2]) error {
		return g.pc.Forward(ctx, kstreams.Record[K2, Change[V2]]{Key: k, Value: c, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin})
	}
	if oldVal != nil && newVal != nil {
		same, err := g.sameKey(oldKey, newKey)
		if err != nil {
			return err
		}
		if same {
			return out(newKey, Change[V2]{New: newVal, Old: oldVal})
		}
	}
	if oldVal != nil {
		if err := out(oldKey, Change[V2]{Old: oldVal}); err != nil {
			return err
		}
	}
	if newVal != nil {
		return out(newKey, Change[V2]{New: newVal})
	}
	return nil
}

func (g *regroup[K, V, K2, V2]) sameKey(a, b K2) (bool, error) {
	ea, err := g.keys.Serialize(nil, "", nil, a)
	if err != nil {
		return false, fmt.Errorf("group-by %s: encoding a group key: %w", g.pc.Node(), err)
	}
	eb, err := g.keys.Serialize(nil, "", nil, b)
	if err != nil {
		return false, fmt.Errorf("group-by %s: encoding a group key: %w", g.pc.Node(), err)
	}
	return string(ea) == string(eb), nil
}

// AggregateGroups adds a table aggregating each group of g: a value
// joining a group is folded into its aggregate with add (into init() for a
// group's first), a value leaving it is taken out with subtract. The
// table, named name, holds each group's aggregate, stamped with the latest
// timestamp of its changes; every change forwards the group's new
// aggregate. A group whose values all left keeps its aggregate (as Kafka
// Streams does: a count stays at 0).
func AggregateGroups[K, V, A any](g Groups[K, V], name string, aggs serde.Serde[A], supplier store.Supplier,
	init func() A, add, subtract func(key K, value V, agg A) (A, error), opts ...Option) Table[K, A] {
	return build(g.changes, name, g.keys, aggs, supplier, opts, func() error {
		if init == nil || add == nil || subtract == nil {
			return errors.New("nil init, add or subtract function")
		}
		return nil
	}, func(key K, c Change[V], old *Row[A], ts time.Time) (*Row[A], error) {
		agg := Row[A]{Timestamp: ts}
		if old == nil {
			agg.Value = init()
		} else {
			agg.Value = old.Value
			if old.Timestamp.After(ts) {
				agg.Timestamp = old.Timestamp
			}
		}
		var err error
		if c.Old != nil && old != nil {
			if agg.Value, err = subtract(key, *c.Old, agg.Value); err != nil {
				return nil, err
			}
		}
		if c.New != nil {
			if agg.Value, err = add(key, *c.New, agg.Value); err != nil {
				return nil, err
			}
		}
		return &agg, nil
	})
}

// ReduceGroups adds a table reducing each group of g to one value: a
// group's first value is its aggregate, a value joining it later is
// combined with the aggregate by add, a value leaving it is taken out by
// subtract (Kafka Streams' KGroupedTable.reduce(adder, subtractor)). The
// table, named name, holds each group's aggregate, stamped with the latest
// timestamp of its changes; every change forwards the group's new
// aggregate. A group whose values all left keeps its aggregate, as
// subtract left it.
func ReduceGroups[K, V any](g Groups[K, V], name string, supplier store.Supplier,
	add, subtract func(key K, agg, value V) (V, error), opts ...Option) Table[K, V] {
	return build(g.changes, name, g.keys, g.values, supplier, opts, func() error {
		if add == nil || subtract == nil {
			return errors.New("nil add or subtract function")
		}
		return nil
	}, func(key K, c Change[V], old *Row[V], ts time.Time) (*Row[V], error) {
		if old == nil {
			if c.New == nil {
				return nil, nil // a value leaving a group with no aggregate
			}
			return &Row[V]{Value: *c.New, Timestamp: ts}, nil
		}
		agg := Row[V]{Value: old.Value, Timestamp: ts}
		if old.Timestamp.After(ts) {
			agg.Timestamp = old.Timestamp
		}
		var err error
		if c.Old != nil {
			if agg.Value, err = subtract(key, agg.Value, *c.Old); err != nil {
				return nil, err
			}
		}
		if c.New != nil {
			if agg.Value, err = add(key, agg.Value, *c.New); err != nil {
				return nil, err
			}
		}
		return &agg, nil
	})
}

// CountGroups adds a table counting the rows of each group of g. See
// AggregateGroups.
func CountGroups[K, V any](g Groups[K, V], name string, supplier store.Supplier, opts ...Option) Table[K, int64] {
	return AggregateGroups(g, name, serde.Int64, supplier, func() int64 { return 0 },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil },
		func(_ K, _ V, n int64) (int64, error) { return n - 1, nil }, opts...)
}

// changeSerde encodes a Change on a repartition topic: a byte of flags
// (1: new value present, 2: old value present), the new value's length
// (4 bytes, big-endian) and bytes, then the old value's bytes.
type changeSerde[V any] struct{ values serde.Serde[V] }

func (s changeSerde[V]) Serialize(dst []byte, topic string, headers []serde.Header, c Change[V]) ([]byte, error) {
	var flags byte
	if c.New != nil {
		flags |= 1
	}
	if c.Old != nil {
		flags |= 2
	}
	dst = append(dst, flags, 0, 0, 0, 0)
	lenAt := len(dst) - 4
	var err error
	if c.New != nil {
		if dst, err = s.values.Serialize(dst, topic, headers, *c.New); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	if c.Old != nil {
		if dst, err = s.values.Serialize(dst, topic, headers, *c.Old); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func (s changeSerde[V]) Deserialize(topic string, headers []serde.Header, data []byte) (Change[V], error) {
	var c Change[V]
	if len(data) < 5 {
		return c, fmt.Errorf("table change of %d bytes: shorter than its 5-byte header", len(data))
	}
	flags, n := data[0], binary.BigEndian.Uint32(data[1:5])
	if flags > 3 {
		return c, fmt.Errorf("table change: unknown flags %#x", flags)
	}
	rest := data[5:]
	if uint64(n) > uint64(len(rest)) {
		return c, fmt.Errorf("table change: new value of %d bytes in %d", n, len(rest))
	}
	if flags&1 == 0 && n != 0 {
		return c, fmt.Errorf("table change: %d bytes of a new value that is absent", n)
	}
	if flags&2 == 0 && int(n) != len(rest) {
		return c, fmt.Errorf("table change: %d bytes after the new value, and no old value", len(rest)-int(n))
	}
	if flags&1 != 0 {
		v, err := s.values.Deserialize(topic, headers, rest[:n:n])
		if err != nil {
			return c, fmt.Errorf("table change, new value: %w", err)
		}
		c.New = &v
	}
	if flags&2 != 0 {
		v, err := s.values.Deserialize(topic, headers, rest[n:])
		if err != nil {
			return c, fmt.Errorf("table change, old value: %w", err)
		}
		c.Old = &v
	}
	return c, nil
}
