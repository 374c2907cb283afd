package kstreams

import (
	"context"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SourceOption configures a source node.
type SourceOption[K, V any] func(*sourceConfig[K, V])

type sourceConfig[K, V any] struct {
	extract func(Record[K, V]) (time.Time, error)
}

// WithTimestampExtractor sets the source's event time from the deserialized
// record (for example from a field of the value). The record passed in
// carries the Kafka record timestamp. An error, or a time outside the range
// kstreams represents (see Source), fails the record like a
// deserialization error. Default: the Kafka record timestamp.
func WithTimestampExtractor[K, V any](fn func(Record[K, V]) (time.Time, error)) SourceOption[K, V] {
	return func(c *sourceConfig[K, V]) { c.extract = fn }
}

// Source adds a node reading topics, decoding keys and values with the given
// serdes. A source may read several topics; a topic is read by one source.
//
// A record's event time (its Kafka timestamp, or what the timestamp
// extractor returns) must lie between 1677-09-21 and 2262-04-11: stream
// time, windows and window stores keep instants as int64 nanoseconds since
// 1970. A record outside that range fails at deserialization, with an
// error naming its topic, partition, offset and timestamp, and is handled
// by the deserialization error policy (see WithDeserializationErrors): by
// default the application stops; with SkipOnError it is counted and
// skipped; with DeadLetterOnError it is written to the dead-letter topic,
// its exact timestamp in the header kstreams.source.timestamp (franz-go's
// producer cannot write a record timestamp past 2262, so the dead letter's
// own timestamp is not it). franz-go's consumer turns timestamps past 2262
// into dates before 1970; kstreams reads them exactly, so such records are
// neither processed at a wrong time nor lost.
func Source[K, V any](b *Builder, name string, topics []string, keys serde.Serde[K], values serde.Serde[V], opts ...SourceOption[K, V]) Node[K, V] {
	var cfg sourceConfig[K, V]
	for _, o := range opts {
		if o == nil {
			b.errorf("source %q: a nil SourceOption", name)
			continue
		}
		o(&cfg)
	}
	if len(topics) == 0 {
		b.errorf("source %q reads no topic", name)
	}
	if keys == nil || values == nil {
		b.errorf("source %q has a nil serde", name)
	}
	d := b.add(name, graph.KindSource, nil)
	if d == nil {
		return Node[K, V]{b: b}
	}
	d.Topics = append([]string(nil), topics...)
	d.instantiate = func(in *instance) (any, error) {
		s := &sourceNode[K, V]{name: name, env: in.env, keys: keys, values: values, extract: cfg.extract,
			children: childReceivers[K, V](in, d)}
		for _, t := range topics {
			in.sources[t] = s.process
			in.batchSources[t] = s.processBatch
		}
		return nil, nil
	}
	return Node[K, V]{b: b, def: d}
}

type sourceNode[K, V any] struct {
	name     string
	env      graph.Env
	keys     serde.Serde[K]
	values   serde.Serde[V]
	extract  func(Record[K, V]) (time.Time, error)
	children []namedReceiver[K, V]
}

func (s *sourceNode[K, V]) process(ctx context.Context, raw *kgo.Record) error {
	r, err := s.decode(raw)
	if err != nil {
		return err
	}
	s.env.ObserveTimestamp(r.Timestamp)
	for i := range s.children {
		if err := s.children[i].recv.receive(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *sourceNode[K, V]) decode(raw *kgo.Record) (Record[K, V], error) {
	k, err := s.keys.Deserialize(raw.Topic, raw.Headers, raw.Key)
	if err != nil {
		return Record[K, V]{}, &graph.NodeError{Node: s.name, Stage: graph.StageDeserialize, Err: fmt.Errorf("key: %w", err)}
	}
	v, err := s.values.Deserialize(raw.Topic, raw.Headers, raw.Value)
	if err != nil {
		return Record[K, V]{}, &graph.NodeError{Node: s.name, Stage: graph.StageDeserialize, Err: fmt.Errorf("value: %w", err)}
	}
	r := Record[K, V]{
		Key: k, Value: v, Timestamp: raw.Timestamp, Headers: raw.Headers,
		Origin: Origin{Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset},
	}
	if s.extract != nil {
		ts, err := s.extract(r)
		if err != nil {
			return Record[K, V]{}, &graph.NodeError{Node: s.name, Stage: graph.StageDeserialize, Err: fmt.Errorf("timestamp extractor: %w", err)}
		}
		if err := checkEventTime(ts); err != nil {
			return Record[K, V]{}, &graph.NodeError{Node: s.name, Stage: graph.StageDeserialize, Err: fmt.Errorf("timestamp extractor: %w", err)}
		}
		r.Timestamp = ts
	} else if err := checkEventTime(r.Timestamp); err != nil {
		return Record[K, V]{}, &graph.NodeError{Node: s.name, Stage: graph.StageDeserialize, Err: fmt.Errorf("record timestamp: %w", err)}
	}
	return r, nil
}
