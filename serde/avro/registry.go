package avro

import (
	"context"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/serde/registry"
)

// DefaultLookupTimeout is the default bound (10 seconds) on a registry
// request made while deserializing. See [LookupTimeout].
const DefaultLookupTimeout = registry.DefaultLookupTimeout

type registryConfig struct {
	lookupOnly bool
	timeout    time.Duration
}

// LookupOnly makes [NewRegistry] look up the id of the schema already
// registered under the subject instead of registering it. Use it where
// applications may not register schemas (Confluent's
// auto.register.schemas=false); NewRegistry then fails if the schema is not
// registered.
func LookupOnly() Option { return func(c *config) { c.registry.lookupOnly = true } }

// LookupTimeout bounds each registry request that Deserialize makes to
// resolve a schema id it has not seen before (default
// [DefaultLookupTimeout]). Deserialize has no context of its own; a lookup
// happens once per id and its result is cached.
func LookupTimeout(d time.Duration) Option {
	return func(c *config) { c.registry.timeout = d }
}

// RegistrySerde is an Avro serde using the Confluent schema-registry wire
// format: a 0 magic byte, the 4-byte big-endian schema id, then the Avro
// binary encoding. It is safe for concurrent use.
type RegistrySerde[T any] struct {
	inner   *Serde[T]
	id      int
	writers *registry.Cache[avro.Schema] // writer schema id -> schema resolved against inner.schema
}

var _ serde.Serde[int] = (*RegistrySerde[int])(nil)

// NewRegistry parses schema, registers it under subject (or, with
// [LookupOnly], looks up its id) and returns a serde that writes that id in
// front of every value.
//
// Deserialize reads data written with any Avro schema id known to the
// registry. Its own id is decoded with its own schema, without a request.
// Another id is looked up once (see [LookupTimeout]); its schema is resolved
// against this serde's schema by Avro's schema-resolution rules (fields
// added with defaults, fields removed, promotions such as int to long), and
// data of that id is decoded through the resolution. Data that does not start
// with the magic byte, names an id the registry does not know, or was written
// with an incompatible schema is an error saying so. Schema references
// (named types defined in other subjects) are not supported.
func NewRegistry[T any](ctx context.Context, client *sr.Client, subject, schema string, opts ...Option) (*RegistrySerde[T], error) {
	c := newConfig(opts)
	reader, err := parse(schema)
	if err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	id, err := registry.Register(ctx, client, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, c.registry.lookupOnly)
	if err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	return &RegistrySerde[T]{
		inner: newSerde[T](reader, c),
		id:    id,
		writers: registry.NewCache(client, c.registry.timeout, sr.TypeAvro, func(s sr.Schema) (avro.Schema, error) {
			if len(s.References) > 0 {
				return nil, fmt.Errorf("schema references are not supported")
			}
			writer, err := parse(s.Schema)
			if err != nil {
				return nil, err
			}
			resolved, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
			if err != nil {
				return nil, fmt.Errorf("cannot be read as the serde's schema: %w", err)
			}
			return resolved, nil
		}),
	}, nil
}

// ID returns the schema id that Serialize writes.
func (s *RegistrySerde[T]) ID() int { return s.id }

// Schema returns the parsed schema the serde writes with.
func (s *RegistrySerde[T]) Schema() avro.Schema { return s.inner.schema }

// Serialize appends the header and the Avro encoding of v to dst. A nil
// pointer or interface encodes as a Kafka null (no header) when dst is empty.
func (s *RegistrySerde[T]) Serialize(dst []byte, _ string, _ []serde.Header, v T) ([]byte, error) {
	if s.inner.mayBeNil && isNil(v) {
		if len(dst) == 0 {
			return nil, nil
		}
		return dst, nil
	}
	n := len(dst)
	out, err := s.inner.appendAvro(registry.AppendHeader(dst, s.id, nil), v)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// Deserialize checks the header of data and decodes the Avro data after it.
// Nil data decodes to the zero value of T.
func (s *RegistrySerde[T]) Deserialize(_ string, _ []serde.Header, data []byte) (T, error) {
	var zero T
	if data == nil {
		return zero, nil
	}
	id, payload, err := registry.DecodeID(data)
	if err != nil {
		return zero, fmt.Errorf("avro: %w", err)
	}
	schema := s.inner.schema
	if id != s.id {
		if schema, err = s.writers.Get(id); err != nil {
			return zero, fmt.Errorf("avro: %w", err)
		}
	}
	return s.inner.decode(schema, payload)
}
