// Package table provides tables: the latest value of each key of a
// changelog stream, kept in a key-value store, readable by processors, and
// joinable with streams and other tables (package join).
//
// A table is built from a topic (FromTopic: each record is an update, a
// null value deletes its key), from a stream of the topology (FromStream,
// FromChanges), by aggregating a stream per key (Count, Reduce,
// Aggregate), or by aggregating another table's rows regrouped by a new key
// (GroupBy, then CountGroups, AggregateGroups or ReduceGroups). Its updates
// flow on as a node of *V, nil for a deletion
// (Updates); a sink writes them back as a table topic with Nullable:
//
//	customers := table.FromTopic(b, "customers", "customers", serde.String, customerSerde, memory.Supplier())
//	kstreams.Sink(customers.Updates(), "customers-out", "customers-copy", serde.String, table.Nullable(customerSerde))
//
// Processors read a table through its typed handle: attach the store with
// kstreams.WithStores(t.Store()), and get a Reader in Init with
// t.Reader(pc). A processor that reads a table runs in the table's
// sub-topology: its input must be partitioned like the table's topic.
//
// The table's store is a key-value store named after the table. A table
// read from a topic restores from that topic; the others have a changelog
// topic (<application id>-<name>-changelog).
//
// Global builds a global table: every partition of its topic on every
// instance, readable by the processors of any task (see Global and
// join.StreamGlobalTable).
//
// Go 1.26 has no method type parameters, so tables are built with
// functions taking the builder or the parent node, like the builder
// functions of package kstreams.
package table

import (
	"context"
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Table is a table of a topology: its store (the latest row of each key)
// and the node its updates flow out of. The zero Table is invalid: joining
// or reading it is a Build error.
type Table[K, V any] struct {
	name    string
	changes kstreams.Node[K, Change[V]]
	updates kstreams.Node[K, *V]
	st      kstreams.Store[store.KeyValueStore[K, Row[V]]]
	keys    serde.Serde[K]
	values  serde.Serde[V]
}

// Name returns the table's name: its processor's and its store's.
func (t Table[K, V]) Name() string { return t.name }

// Updates returns the node "<name>-updates" that forwards each update of
// the table: the key and its new value, or nil when the key was deleted,
// with the timestamp of the record that changed it. A tombstone of a key
// the table did not hold is forwarded too (as Kafka Streams forwards it).
func (t Table[K, V]) Updates() kstreams.Node[K, *V] { return t.updates }

// Changes returns the node "<name>" (the table's processor), which forwards
// each update with the key's value before it.
func (t Table[K, V]) Changes() kstreams.Node[K, Change[V]] { return t.changes }

// Change is an update of a table: the key's value after it and before it,
// nil where the table did not hold the key.
type Change[V any] struct {
	New, Old *V
}

// Store returns the handle of the table's store, to attach it to the
// processors that read the table (kstreams.WithStores). Its rows are the
// table's values with the timestamps of the records that wrote them.
func (t Table[K, V]) Store() kstreams.Store[store.KeyValueStore[K, Row[V]]] { return t.st }

// Keys returns the serde of the table's keys.
func (t Table[K, V]) Keys() serde.Serde[K] { return t.keys }

// Values returns the serde of the table's values.
func (t Table[K, V]) Values() serde.Serde[V] { return t.values }

// Reader returns the task's view of the table. Call it in the Init of a
// processor the table's store is attached to (kstreams.WithStores(t.Store())),
// with the context Init receives.
func (t Table[K, V]) Reader(pc kstreams.StoreContext) (Reader[K, V], error) {
	kv, err := t.st.Get(pc)
	if err != nil {
		return Reader[K, V]{}, fmt.Errorf("table %s: %w", t.name, err)
	}
	return Reader[K, V]{kv: kv}, nil
}

// Reader reads one task's part of a table. Processors must not write the
// table's store: the table is what its input says.
type Reader[K, V any] struct {
	kv store.KeyValueStore[K, Row[V]]
}

// Get returns the value of key and whether the table has it.
func (r Reader[K, V]) Get(key K) (V, bool, error) {
	row, ok, err := r.kv.Get(key)
	return row.Value, ok, err
}

// GetRow returns the row of key (its value and the timestamp of the
// record that wrote it) and whether the table has it.
func (r Reader[K, V]) GetRow(key K) (Row[V], bool, error) { return r.kv.Get(key) }

// Option configures a table.
type Option func(*config)

type config struct {
	specOpts []store.SpecOption
}

// SpecOptions passes options to the table's store spec (for example
// store.WithoutChangelog()).
func SpecOptions(opts ...store.SpecOption) Option {
	return func(c *config) { c.specOpts = append(c.specOpts, opts...) }
}

// FromTopic adds a table read from topic: a source node "<name>-source"
// decodes each record, and the table's processor "<name>" applies it: a
// record with a null value (a tombstone) deletes its key, any other sets
// it. The table's store, named name, is on the backend supplier returns.
//
// topic is the store's changelog (store.WithSourceChangelog): no
// changelog topic is created, and a task restores the store from its
// partition of topic up to the committed offset. Its sub-topology must
// process records in partition order (the default).
func FromTopic[K, V any](b *kstreams.Builder, name, topic string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier, opts ...Option) Table[K, V] {
	src := kstreams.Source(b, name+"-source", []string{topic}, keys, Nullable(values))
	rows := Nullable(values)
	restore := store.WithSourceChangelog(topic, func(st any, key, value []byte, headers []serde.Header, ts time.Time) error {
		kv, ok := st.(store.KeyValueStore[K, Row[V]])
		if !ok {
			return fmt.Errorf("table %s: store of type %T", name, st)
		}
		k, err := keys.Deserialize(topic, headers, key)
		if err != nil {
			return fmt.Errorf("decoding a key: %w", err)
		}
		v, err := rows.Deserialize(topic, headers, value)
		if err != nil {
			return fmt.Errorf("decoding a value: %w", err)
		}
		if v == nil {
			return kv.Delete(k)
		}
		return kv.Put(k, Row[V]{Value: *v, Timestamp: ts})
	})
	return FromChanges(src, name, keys, values, supplier, append([]Option{SpecOptions(restore)}, opts...)...)
}

// FromStream turns parent's records into a table: each record sets its
// key to its value. See FromChanges for streams that delete keys.
func FromStream[K, V any](parent kstreams.Node[K, V], name string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier, opts ...Option) Table[K, V] {
	changes := kstreams.MapValues(parent, name+"-changes", func(v V) (*V, error) { return &v, nil })
	return FromChanges(changes, name, keys, values, supplier, opts...)
}

// FromChanges turns parent's records into a table: a record with a nil
// value deletes its key, any other sets the key to the value. The table's
// processor is named name, and so is its store.
func FromChanges[K, V any](parent kstreams.Node[K, *V], name string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier, opts ...Option) Table[K, V] {
	return build(parent, name, keys, values, supplier, opts, nil,
		func(_ K, in *V, _ *Row[V], ts time.Time) (*Row[V], error) {
			if in == nil {
				return nil, nil
			}
			return &Row[V]{Value: *in, Timestamp: ts}, nil
		})
}

// build adds a table whose processor, named name, computes each key's new
// row from an input record and the key's current row (nil when absent);
// a nil new row deletes the key. check, if not nil, reports an invalid
// argument of the caller.
func build[K, In, V any](parent kstreams.Node[K, In], name string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier,
	opts []Option, check func() error, update func(key K, in In, old *Row[V], ts time.Time) (*Row[V], error)) Table[K, V] {
	var c config
	for _, o := range opts {
		o(&c)
	}
	t := Table[K, V]{name: name, keys: keys, values: values}
	b := parent.Builder()
	if b == nil {
		return t
	}
	if keys == nil || values == nil {
		b.AddError(fmt.Errorf("table %s: nil key or value serde", name))
		return t
	}
	if check != nil {
		if err := check(); err != nil {
			b.AddError(fmt.Errorf("table %s: %w", name, err))
			return t
		}
	}
	t.st = kstreams.AddStore(b, store.KeyValue(name, keys, RowSerde(values), supplier, c.specOpts...))
	st := t.st
	t.changes = kstreams.Process(parent, name, func() kstreams.Processor[K, In, K, Change[V]] {
		return &updater[K, In, V]{st: st, update: update}
	}, kstreams.WithStores(st))
	t.updates = kstreams.MapValues(t.changes, name+"-updates", func(c Change[V]) (*V, error) { return c.New, nil })
	return t
}

// updater applies a table's updates to its store and forwards them with
// the values they replace, stamped with the new row's timestamp (the
// record's, for a deletion).
type updater[K, In, V any] struct {
	st     kstreams.Store[store.KeyValueStore[K, Row[V]]]
	update func(key K, in In, old *Row[V], ts time.Time) (*Row[V], error)
	kv     store.KeyValueStore[K, Row[V]]
	pc     kstreams.ProcessorContext[K, Change[V]]
}

func (u *updater[K, In, V]) Init(pc kstreams.ProcessorContext[K, Change[V]]) (err error) {
	u.pc = pc
	u.kv, err = u.st.Get(pc)
	return err
}

func (u *updater[K, In, V]) Process(ctx context.Context, r kstreams.Record[K, In]) error {
	old, had, err := u.kv.Get(r.Key)
	if err != nil {
		return fmt.Errorf("table %s: reading a key: %w", u.pc.Node(), err)
	}
	var c Change[V]
	var oldRow *Row[V]
	if had {
		oldRow, c.Old = &old, &old.Value
	}
	row, err := u.update(r.Key, r.Value, oldRow, r.Timestamp)
	if err != nil {
		return fmt.Errorf("table %s: %w", u.pc.Node(), err)
	}
	ts := r.Timestamp
	if row == nil {
		if err := u.kv.Delete(r.Key); err != nil {
			return fmt.Errorf("table %s: deleting a key: %w", u.pc.Node(), err)
		}
	} else {
		if err := u.kv.Put(r.Key, *row); err != nil {
			return fmt.Errorf("table %s: %w", u.pc.Node(), err)
		}
		c.New, ts = &row.Value, row.Timestamp
	}
	return u.pc.Forward(ctx, kstreams.Record[K, Change[V]]{Key: r.Key, Value: c, Timestamp: ts, Headers: r.Headers, Origin: r.Origin})
}

func (u *updater[K, In, V]) Close() error { return nil }
