// Package avro provides an Apache Avro [serde.Serde] for kstreams, typed over
// a Go type T (usually a struct with `avro:"name"` field tags) and an Avro
// schema given as JSON text, built on github.com/hamba/avro/v2.
//
// [New] writes bare Avro binary data; [NewRegistry] writes the Confluent
// schema-registry wire format (magic byte 0, 4-byte big-endian schema id,
// Avro binary data) and reads data written with other versions of the schema
// by resolving them against T's schema, as Avro's schema evolution rules
// allow.
//
// # Robustness
//
// Deserialize rejects truncated data and data with bytes left over after the
// value. Corrupt length prefixes cannot make it allocate without bound:
// strings and bytes are limited to [MaxByteSliceSize] bytes and arrays to
// [MaxSliceAllocSize] elements.
//
// # Nil and tombstones
//
// If T is a pointer or interface type, Serialize of a nil value returns nil
// (a Kafka null, i.e. a tombstone) when dst is empty, and appends nothing
// otherwise. Deserialize of nil data returns the zero value of T. Empty but
// non-nil data is decoded as Avro (it is a valid encoding of, for example, a
// record without fields), and is an error for most schemas.
package avro

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/kstreams-go/kstreams/core/serde"
)

// Default decoding limits.
const (
	// DefaultMaxByteSliceSize is the default of [MaxByteSliceSize]: 1 MiB.
	DefaultMaxByteSliceSize = 1 << 20
	// DefaultMaxSliceAllocSize is the default of [MaxSliceAllocSize]: about
	// a million elements.
	DefaultMaxSliceAllocSize = 1 << 20
)

// Option configures a Serde created by [New] or [NewRegistry].
type Option func(*config)

type config struct {
	maxBytes int
	maxElems int
	registry registryConfig
}

// MaxByteSliceSize limits the length of a decoded string or bytes value
// (default [DefaultMaxByteSliceSize], 1 MiB); longer ones are an error.
func MaxByteSliceSize(n int) Option { return func(c *config) { c.maxBytes = n } }

// MaxSliceAllocSize limits the number of elements of a decoded array
// (default [DefaultMaxSliceAllocSize]); longer ones are an error. Avro arrays
// of nulls or of empty records take no bytes per element, so the length of
// the data alone does not bound the allocation.
func MaxSliceAllocSize(n int) Option { return func(c *config) { c.maxElems = n } }

// Serde is an Avro serde for values of type T. It is safe for concurrent use.
type Serde[T any] struct {
	schema   avro.Schema
	writers  sync.Pool // *avro.Writer
	readers  sync.Pool // *avro.Reader
	mayBeNil bool
}

var _ serde.Serde[int] = (*Serde[int])(nil)

// New parses schema (Avro schema JSON) and returns a serde that encodes
// values of T with it. Named types are resolved within schema only.
func New[T any](schema string, opts ...Option) (*Serde[T], error) {
	c := newConfig(opts)
	sch, err := parse(schema)
	if err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	return newSerde[T](sch, c), nil
}

func newConfig(opts []Option) config {
	c := config{maxBytes: DefaultMaxByteSliceSize, maxElems: DefaultMaxSliceAllocSize}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// parse parses schema with a schema cache of its own: hamba's default cache
// is global, and keyed by type name, so two versions of a record would
// overwrite each other there.
func parse(schema string) (avro.Schema, error) {
	sch, err := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parsing schema: %w", err)
	}
	return sch, nil
}

func newSerde[T any](sch avro.Schema, c config) *Serde[T] {
	api := avro.Config{
		MaxByteSliceSize:  c.maxBytes,
		MaxSliceAllocSize: c.maxElems,
	}.Freeze()
	k := reflect.TypeFor[T]().Kind()
	s := &Serde[T]{schema: sch, mayBeNil: k == reflect.Pointer || k == reflect.Interface}
	s.writers.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(api)) }
	s.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	return s
}

// Schema returns the parsed schema the serde writes with.
func (s *Serde[T]) Schema() avro.Schema { return s.schema }

// Serialize appends the Avro binary encoding of v to dst.
func (s *Serde[T]) Serialize(dst []byte, _ string, _ []serde.Header, v T) ([]byte, error) {
	if s.mayBeNil && isNil(v) {
		if len(dst) == 0 {
			return nil, nil
		}
		return dst, nil
	}
	return s.appendAvro(dst, v)
}

// maxPooledBuffer bounds the buffer a pooled writer keeps, so that one huge
// value does not pin its memory for the life of the pool.
const maxPooledBuffer = 64 << 10

func (s *Serde[T]) appendAvro(dst []byte, v T) ([]byte, error) {
	w := s.writers.Get().(*avro.Writer)
	w.Reset(nil)
	w.WriteVal(s.schema, &v)
	err := w.Error
	if err == nil {
		dst = append(dst, w.Buffer()...)
	}
	w.Error = nil
	if cap(w.Buffer()) <= maxPooledBuffer {
		s.writers.Put(w)
	}
	if err != nil {
		return dst, fmt.Errorf("avro: encoding %T: %w", v, err)
	}
	return dst, nil
}

// Deserialize decodes the Avro binary data in data. Nil data decodes to the
// zero value of T.
func (s *Serde[T]) Deserialize(_ string, _ []serde.Header, data []byte) (T, error) {
	var zero T
	if data == nil {
		return zero, nil
	}
	return s.decode(s.schema, data)
}

// decode decodes data written with schema (s.schema, or a writer schema
// resolved against it) into a T.
func (s *Serde[T]) decode(schema avro.Schema, data []byte) (T, error) {
	var v T
	r := s.readers.Get().(*avro.Reader)
	r.Reset(data)
	r.Error = nil
	r.ReadVal(schema, &v)
	err := r.Error
	if err == nil {
		// Peek sets io.EOF when nothing follows the value.
		r.Peek()
		if r.Error == nil {
			err = errTrailing(len(data))
		}
	} else if errors.Is(err, io.EOF) {
		err = fmt.Errorf("truncated data: %w", io.ErrUnexpectedEOF)
	}
	r.Reset(nil)
	r.Error = nil
	s.readers.Put(r)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("avro: decoding %T: %w", v, err)
	}
	return v, nil
}

func errTrailing(n int) error {
	return fmt.Errorf("bytes left after the value (of %d bytes of data)", n)
}

// isNil reports whether v, of pointer or interface type, is nil.
func isNil[T any](v T) bool {
	a := any(v)
	if a == nil {
		return true
	}
	rv := reflect.ValueOf(a)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
