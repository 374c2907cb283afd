package table

import (
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// GlobalTable is a table that holds every partition of its topic on every
// instance of the application (Kafka Streams' GlobalKTable). Any processor
// may read it, whatever its input's partitioning: join streams with it by a
// key computed from each record (join.StreamGlobalTable). The zero
// GlobalTable is invalid: joining or reading it is a Build error.
type GlobalTable[K, V any] struct {
	name   string
	topic  string
	st     kstreams.Store[store.KeyValueStore[K, Row[V]]]
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Global adds a global table read from topic: each record of any
// partition sets its key, a tombstone deletes it. The table's store, named
// name, is on the backend supplier returns (it must allow reads concurrent
// with writes; the in-memory and Pebble backends do); it is filled from
// the topic's start before the application processes anything, kept up to
// date while it runs, and refuses processors' writes. See
// kstreams.AddGlobalStore. A record of topic that cannot be decoded is
// logged and skipped.
//
// A global table forwards no updates: it is read, not processed.
func Global[K, V any](b *kstreams.Builder, name, topic string, keys serde.Serde[K], values serde.Serde[V], supplier store.Supplier, opts ...Option) GlobalTable[K, V] {
	t := GlobalTable[K, V]{name: name, topic: topic, keys: keys, values: values}
	if b == nil {
		return t
	}
	if keys == nil || values == nil {
		b.AddError(fmt.Errorf("global table %s: nil key or value serde", name))
		return t
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	rows := Nullable(values)
	apply := store.WithSourceChangelog(topic, func(st any, key, value []byte, headers []serde.Header, ts time.Time) error {
		kv, ok := st.(store.KeyValueStore[K, Row[V]])
		if !ok {
			return fmt.Errorf("global table %s: store of type %T", name, st)
		}
		k, err := keys.Deserialize(topic, headers, key)
		if err != nil {
			return fmt.Errorf("global table %s: decoding a key: %w", name, err)
		}
		v, err := rows.Deserialize(topic, headers, value)
		if err != nil {
			return fmt.Errorf("global table %s: decoding a value: %w", name, err)
		}
		if v == nil {
			return kv.Delete(k)
		}
		return kv.Put(k, Row[V]{Value: *v, Timestamp: ts})
	})
	t.st = kstreams.AddGlobalStore(b, store.KeyValue(name, keys, RowSerde(values), supplier, append(c.specOpts, apply)...))
	return t
}

// Name returns the global table's name: its store's.
func (t GlobalTable[K, V]) Name() string { return t.name }

// Topic returns the topic the global table reads.
func (t GlobalTable[K, V]) Topic() string { return t.topic }

// Store returns the handle of the table's store, to attach it to the
// processors that read it (kstreams.WithStores).
func (t GlobalTable[K, V]) Store() kstreams.Store[store.KeyValueStore[K, Row[V]]] { return t.st }

// Keys returns the serde of the table's keys.
func (t GlobalTable[K, V]) Keys() serde.Serde[K] { return t.keys }

// Values returns the serde of the table's values.
func (t GlobalTable[K, V]) Values() serde.Serde[V] { return t.values }

// Reader returns the view of the global table. Call it in the Init of a
// processor the table's store is attached to, with the context Init
// receives. Every task reads the same, whole table.
func (t GlobalTable[K, V]) Reader(pc kstreams.StoreContext) (Reader[K, V], error) {
	kv, err := t.st.Get(pc)
	if err != nil {
		return Reader[K, V]{}, fmt.Errorf("global table %s: %w", t.name, err)
	}
	return Reader[K, V]{kv: kv}, nil
}
