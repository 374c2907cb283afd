package proto

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	goproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/serde/registry"
)

// DefaultLookupTimeout is the default bound (10 seconds) on a registry
// request made while deserializing. See [LookupTimeout].
const DefaultLookupTimeout = registry.DefaultLookupTimeout

type registryConfig struct {
	lookupOnly bool
	timeout    time.Duration
	refs       []sr.SchemaReference
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

// maxIndexDepth bounds the message-index path read from data, so that a
// corrupt count cannot make the header decoder allocate without bound.
const maxIndexDepth = 64

// References sets the schema references (the imports of the .proto file,
// registered under their own subjects) sent with the schema by
// [NewRegistry].
func References(refs ...sr.SchemaReference) Option {
	return func(c *config) { c.registry.refs = append(c.registry.refs, refs...) }
}

// RegistrySerde is a protobuf serde using the Confluent schema-registry wire
// format: a 0 magic byte, the 4-byte big-endian schema id, the message index
// path (which message of the .proto file the payload is, as varints), then
// the protobuf encoding. It is safe for concurrent use.
type RegistrySerde[T goproto.Message] struct {
	inner  *Serde[T]
	id     int
	index  []int
	header sr.ConfluentHeader // decodes the message index
	known  *registry.Cache[struct{}]
}

var _ serde.Serde[goproto.Message] = (*RegistrySerde[goproto.Message])(nil)

// NewRegistry registers schema, the source text of the .proto file that
// declares T, under subject (or, with [LookupOnly], looks up its id) and
// returns a serde that writes that id and T's message index in front of every
// value. The index is computed from T's descriptor, so schema must be the
// file T was generated from; imports are passed with [References]. T must be
// a generated message type, as for [New].
//
// Deserialize reads data written with any protobuf schema id known to the
// registry. For its own id it checks that the message index is T's, without
// a request. Another id (another version of the file) is looked up once (see
// [LookupTimeout]) to check that it exists and is a protobuf schema; its
// payload is then decoded into T, which protobuf's wire compatibility
// allows, without checking the message index against that schema. Data that
// does not start with the magic byte, names an id the registry does not
// know, or has another message's index is an error saying so.
func NewRegistry[T goproto.Message](ctx context.Context, client *sr.Client, subject, schema string, opts ...Option) (*RegistrySerde[T], error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	inner := newSerde[T](c)
	id, err := registry.Register(ctx, client, subject, sr.Schema{Schema: schema, Type: sr.TypeProtobuf, References: c.registry.refs}, c.registry.lookupOnly)
	if err != nil {
		return nil, fmt.Errorf("proto: %w", err)
	}
	return &RegistrySerde[T]{
		inner: inner,
		id:    id,
		index: MessageIndex(inner.Descriptor()),
		known: registry.NewCache(client, c.registry.timeout, sr.TypeProtobuf, func(sr.Schema) (struct{}, error) {
			return struct{}{}, nil
		}),
	}, nil
}

// MessageIndex returns the Confluent message-index path of md: its position
// among the messages declared at the top level of its file, followed by its
// position among the messages declared in each enclosing message. As in
// Confluent's serializers, which number the messages of the parsed .proto
// source, the entry messages that protoc synthesizes for map fields are not
// counted (protoreflect's Index counts them).
func MessageIndex(md protoreflect.MessageDescriptor) []int {
	var idx []int
	for d := md; ; {
		idx = append(idx, declaredPosition(d))
		p, ok := d.Parent().(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		d = p
	}
	slices.Reverse(idx)
	return idx
}

// declaredPosition is md's position among its siblings, map entries skipped.
func declaredPosition(md protoreflect.MessageDescriptor) int {
	var siblings protoreflect.MessageDescriptors
	switch p := md.Parent().(type) {
	case protoreflect.FileDescriptor:
		siblings = p.Messages()
	case protoreflect.MessageDescriptor:
		siblings = p.Messages()
	default:
		return md.Index()
	}
	n := 0
	for i := range md.Index() {
		if !siblings.Get(i).IsMapEntry() {
			n++
		}
	}
	return n
}

// ID returns the schema id that Serialize writes.
func (s *RegistrySerde[T]) ID() int { return s.id }

// Index returns the message index that Serialize writes.
func (s *RegistrySerde[T]) Index() []int { return slices.Clone(s.index) }

// Serialize appends the header and the protobuf encoding of v to dst. A nil
// message encodes as a Kafka null (no header) when dst is empty.
func (s *RegistrySerde[T]) Serialize(dst []byte, _ string, _ []serde.Header, v T) ([]byte, error) {
	if isNil(v) {
		if len(dst) == 0 {
			return nil, nil
		}
		return dst, nil
	}
	n := len(dst)
	out, err := s.inner.appendProto(registry.AppendHeader(dst, s.id, s.index), v)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// Deserialize checks the header of data and decodes the protobuf encoding
// after it. Nil data decodes to the nil T.
func (s *RegistrySerde[T]) Deserialize(topic string, headers []serde.Header, data []byte) (T, error) {
	var zero T
	if data == nil {
		return zero, nil
	}
	id, rest, err := registry.DecodeID(data)
	if err != nil {
		return zero, fmt.Errorf("proto: %w", err)
	}
	index, payload, err := s.header.DecodeIndex(rest, maxIndexDepth)
	if err != nil {
		if errors.Is(err, sr.ErrNotRegistered) {
			err = fmt.Errorf("message index deeper than %d", maxIndexDepth)
		}
		return zero, fmt.Errorf("proto: decoding message index of schema id %d: %w", id, err)
	}
	if id == s.id {
		if !slices.Equal(index, s.index) {
			return zero, fmt.Errorf("proto: data holds message index %v of schema id %d, but %s is %v",
				index, id, s.inner.Descriptor().FullName(), s.index)
		}
	} else if _, err := s.known.Get(id); err != nil {
		return zero, fmt.Errorf("proto: %w", err)
	}
	// A nil payload (header only) is an empty message, not a null.
	if payload == nil {
		payload = []byte{}
	}
	return s.inner.Deserialize(topic, headers, payload)
}
