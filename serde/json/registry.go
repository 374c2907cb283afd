package json

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/kstreams-go/kstreams/core/serde"
)

// RegistrySerde is a JSON serde using the Confluent schema-registry wire
// format: a 0 magic byte, the 4-byte big-endian schema id, then the JSON
// value. It is safe for concurrent use.
//
// The JSON Schema is registered for interoperability (Confluent's
// KafkaJsonSchemaDeserializer and other tools read it); values are not
// validated against it.
type RegistrySerde[T any] struct {
	inner  *Serde[T]
	id     int
	header sr.ConfluentHeader
	known  *schemaCache[struct{}]
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
	id, err := registerSchema(ctx, client, subject, sr.Schema{Schema: schema, Type: sr.TypeJSON}, c.registry)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return &RegistrySerde[T]{
		inner: newSerde[T](c),
		id:    id,
		known: newSchemaCache(client, c.registry.timeout, sr.TypeJSON, func(sr.Schema) (struct{}, error) {
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
	out, _ := s.header.AppendEncode(dst, s.id, nil) // never fails
	out, err := s.inner.appendJSON(out, v)
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
	id, payload, err := s.header.DecodeID(data)
	if err != nil {
		return zero, fmt.Errorf("json: decoding schema-registry header: %w", headerError(data, err))
	}
	if id != s.id {
		if _, err := s.known.get(id); err != nil {
			return zero, fmt.Errorf("json: %w", err)
		}
	}
	return s.inner.Deserialize(topic, headers, payload)
}
