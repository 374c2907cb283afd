package store

import (
	"fmt"
	"iter"
	"sync"

	"github.com/kstreams-go/kstreams/core/serde"
)

// KeyValueStore is a typed key-value store. Its key order is the byte order
// of the key serde's encoding in stores (serde.StoreForm): the built-in
// serdes are order-preserving there, so ranges over int64 keys, for
// example, come out in numeric order.
type KeyValueStore[K, V any] interface {
	// Name returns the store's name.
	Name() string
	// Get returns the value for key and whether it exists.
	Get(key K) (V, bool, error)
	// Put sets the value for key.
	Put(key K, value V) error
	// Delete removes key; a missing key is not an error.
	Delete(key K) error
	// Range yields the entries with from <= key < to, in key order.
	Range(from, to K) iter.Seq2[KV[K, V], error]
	// Prefix yields the entries whose encoded key starts with the encoding
	// of prefix, in key order (for string keys: the keys with that prefix).
	Prefix(prefix K) iter.Seq2[KV[K, V], error]
	// All yields every entry in key order.
	All() iter.Seq2[KV[K, V], error]
	// GetMany returns the values of keys: values[i] and found[i] answer
	// keys[i]. It reads them in one round trip when the backend can
	// (store.BatchGetter: the Redis and Bigtable stores), else with one Get
	// per key. Batch processors read the keys of a whole batch with it.
	GetMany(keys []K) (values []V, found []bool, err error)
}

// KV is one entry of a KeyValueStore.
type KV[K, V any] struct {
	Key   K
	Value V
}

// KeyValue declares a key-value store named name, with keys and values
// encoded by the given serdes and kept in the backends supplier opens.
func KeyValue[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], supplier Supplier, opts ...SpecOption) TypedSpec[KeyValueStore[K, V]] {
	s := &Spec{name: name, kind: KindKeyValue, supplier: supplier, logged: true}
	s.open = func(b Backend, topic string) any {
		return NewKeyValueStore(name, topic, b, keys, values)
	}
	for _, o := range opts {
		o(s)
	}
	return TypedSpec[KeyValueStore[K, V]]{s}
}

// NewKeyValueStore returns a typed view of b, encoding keys and values with
// serde.StoreForm of the given serdes. topic is passed to the serdes. Most
// code gets its stores from the processor context instead.
func NewKeyValueStore[K, V any](name, topic string, b Backend, keys serde.Serde[K], values serde.Serde[V]) KeyValueStore[K, V] {
	return &kvStore[K, V]{name: name, topic: topic, b: b, keys: serde.StoreForm(keys), values: serde.StoreForm(values)}
}

type kvStore[K, V any] struct {
	name   string
	topic  string
	b      Backend
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// bufPool holds scratch buffers for encoding keys and values. Backends do
// not retain the slices they are given, so a buffer is reusable as soon as
// the call returns.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:0]; bufPool.Put(b) }

func (s *kvStore[K, V]) Name() string { return s.name }

func (s *kvStore[K, V]) encodeKey(dst []byte, key K) ([]byte, error) {
	k, err := s.keys.Serialize(dst, s.topic, nil, key)
	if err != nil {
		return nil, fmt.Errorf("store %s: encoding key: %w", s.name, err)
	}
	return k, nil
}

func (s *kvStore[K, V]) Get(key K) (V, bool, error) {
	var zero V
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.encodeKey(*buf, key)
	if err != nil {
		return zero, false, err
	}
	*buf = k
	raw, ok, err := s.b.Get(k)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("store %s: get: %w", s.name, err)
		}
		return zero, false, err
	}
	v, err := s.values.Deserialize(s.topic, nil, raw)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: decoding value: %w", s.name, err)
	}
	return v, true, nil
}

func (s *kvStore[K, V]) Put(key K, value V) error {
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.encodeKey(*buf, key)
	if err != nil {
		return err
	}
	kv, err := s.values.Serialize(k, s.topic, nil, value)
	if err != nil {
		return fmt.Errorf("store %s: encoding value: %w", s.name, err)
	}
	*buf = kv
	if err := s.b.Set(kv[:len(k):len(k)], kv[len(k):]); err != nil {
		return fmt.Errorf("store %s: put: %w", s.name, err)
	}
	return nil
}

func (s *kvStore[K, V]) Delete(key K) error {
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.encodeKey(*buf, key)
	if err != nil {
		return err
	}
	*buf = k
	if err := s.b.Delete(k); err != nil {
		return fmt.Errorf("store %s: delete: %w", s.name, err)
	}
	return nil
}

func (s *kvStore[K, V]) Range(from, to K) iter.Seq2[KV[K, V], error] {
	lo, err := s.encodeKey(nil, from)
	if err != nil {
		return errSeq[KV[K, V]](err)
	}
	hi, err := s.encodeKey(nil, to)
	if err != nil {
		return errSeq[KV[K, V]](err)
	}
	return s.scan(lo, hi)
}

func (s *kvStore[K, V]) Prefix(prefix K) iter.Seq2[KV[K, V], error] {
	p, err := s.encodeKey(nil, prefix)
	if err != nil {
		return errSeq[KV[K, V]](err)
	}
	return s.scan(p, PrefixEnd(p))
}

func (s *kvStore[K, V]) All() iter.Seq2[KV[K, V], error] { return s.scan(nil, nil) }

func (s *kvStore[K, V]) scan(lo, hi []byte) iter.Seq2[KV[K, V], error] {
	return func(yield func(KV[K, V], error) bool) {
		for e, err := range s.b.Range(lo, hi) {
			if err != nil {
				yield(KV[K, V]{}, fmt.Errorf("store %s: range: %w", s.name, err))
				return
			}
			// Backends may reuse e's memory on the next step; deserializers
			// may alias their input, so hand them copies.
			k, err := s.keys.Deserialize(s.topic, nil, clone(e.Key))
			if err != nil {
				yield(KV[K, V]{}, fmt.Errorf("store %s: decoding key %x: %w", s.name, e.Key, err))
				return
			}
			v, err := s.values.Deserialize(s.topic, nil, clone(e.Value))
			if err != nil {
				yield(KV[K, V]{}, fmt.Errorf("store %s: decoding value of key %x: %w", s.name, e.Key, err))
				return
			}
			if !yield(KV[K, V]{Key: k, Value: v}, nil) {
				return
			}
		}
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func errSeq[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}
