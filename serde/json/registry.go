package json

import (
	"context"
	"fmt"
	"time"

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

// RegistrySerde is a JSON serde using the Confluent schema-registry wire
// format: a 0 magic byte, the 4-byte big-endian schema id, then the JSON
// value. It is safe for concurrent use.
//
// The JSON Schema is registered for interoperability (Confluent's
// KafkaJsonSchemaDeserializer and other tools read it); values are not
// validated against it.
type RegistrySerde[T any] struct {
	inner *Serde[T]
	id    int
	known *registry.Cache[struct{}]
}

var _ serde.Serde[int] = (*RegistrySerde[int])(nil)

// NewRegistry registers the JSON Schema schema under subject (or, with
// [LookupOnly], looks up its id) and returns a serde that writes that id in
// front of every value.
//
// Deserialize accepts values written with any JSON schema id known to the
// registry: its own id is checked without a request; another id is looked up
// once (see [LookupTimeout]) to check that it exists and is a JSON schema,
// then the payload is decoded into T as with [New]. Data that does not start
// with the magic byte, or names an id the registry does not know, is an
// error saying so.
//
// Options of [New] (Strict, Deterministic) apply to the payload.
func NewRegistry[T any](ctx context.Context, client *sr.Client, subject, schema string, opts ...Option) (*RegistrySerde[T], error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	id, err := registry.Register(ctx, client, subject, sr.Schema{Schema: schema, Type: sr.TypeJSON}, c.registry.lookupOnly)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return &RegistrySerde[T]{
		inner: newSerde[T](c),
		id:    id,
		known: registry.NewCache(client, c.registry.timeout, sr.TypeJSON, func(sr.Schema) (struct{}, error) {
			return struct{}{}, nil
		}),
	}, nil
}

// ID returns the schema id that Serialize writes.
func (s *RegistrySerde[T]) ID() int { return s.id }

// Serialize appends the header and the JSON encoding of v to dst. A nil
// pointer or interface encodes as a Kafka null (no header) when dst is empty.
func (s *RegistrySerde[T]) Serialize(dst []byte, _ string, _ []serde.Header, v T) ([]byte, error) {
	if s.inner.mayBeNil && isNil(v) {
		if len(dst) == 0 {
			return nil, nil
		}
		return dst, nil
	}
	n := len(dst)
	out, err := s.inner.appendJSON(registry.AppendHeader(dst, s.id, nil), v)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// Deserialize checks the header of data and decodes the JSON value after it.
// Nil data decodes to the zero value of T.
func (s *RegistrySerde[T]) Deserialize(topic string, headers []serde.Header, data []byte) (T, error) {
	var zero T
	if data == nil {
		return zero, nil
	}
	id, payload, err := registry.DecodeID(data)
	if err != nil {
		return zero, fmt.Errorf("json: %w", err)
	}
	if id != s.id {
		if _, err := s.known.Get(id); err != nil {
			return zero, fmt.Errorf("json: %w", err)
		}
	}
	return s.inner.Deserialize(topic, headers, payload)
}
