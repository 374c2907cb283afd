package table

import (
	"errors"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Aggregate adds a table aggregating parent's records per key: the first
// record of a key folds into init(), each later one into the key's
// aggregate, with add. The table, named name, holds each key's aggregate,
// stamped with the latest timestamp of its records; every record forwards
// the key's new aggregate (Updates, Changes).
//
// The aggregation needs parent partitioned by K: to aggregate by another
// key, map the records to it and repartition them with kstreams.Through
// first.
func Aggregate[K, V, A any](parent kstreams.Node[K, V], name string, keys serde.Serde[K], aggs serde.Serde[A], supplier store.Supplier,
	init func() A, add func(key K, value V, agg A) (A, error), opts ...Option) Table[K, A] {
	return build(parent, name, keys, aggs, supplier, opts, func() error {
		if init == nil || add == nil {
			return errors.New("nil init or add function")
		}
		return nil
	}, func(key K, v V, old *Row[A], ts time.Time) (*Row[A], error) {
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
		agg.Value, err = add(key, v, agg.Value)
		return &agg, err
	})
}

// Count adds a table counting parent's records per key. See Aggregate.
func Count[K, V any](parent kstreams.Node[K, V], name string, keys serde.Serde[K], supplier store.Supplier, opts ...Option) Table[K, int64] {
	return Aggregate(parent, name, keys, serde.Int64, supplier, func() int64 { return 0 },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil }, opts...)
}

// Reduce adds a table combining parent's records per key: a key's first
// value is its aggregate, and each later one is combined with it by
// reduce. See Aggregate.
func Reduce[K, V any](parent kstreams.Node[K, V], name string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier,
	reduce func(key K, agg, value V) (V, error), opts ...Option) Table[K, V] {
	return build(parent, name, keys, values, supplier, opts, func() error {
		if reduce == nil {
			return errors.New("nil reduce function")
		}
		return nil
	}, func(key K, v V, old *Row[V], ts time.Time) (*Row[V], error) {
		if old == nil {
			return &Row[V]{Value: v, Timestamp: ts}, nil
		}
		agg := Row[V]{Timestamp: ts}
		if old.Timestamp.After(ts) {
			agg.Timestamp = old.Timestamp
		}
		var err error
		agg.Value, err = reduce(key, old.Value, v)
		return &agg, err
	})
}
