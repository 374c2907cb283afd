package kstreams

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/kafkatime"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SinkOption configures a sink node.
type SinkOption[K, V any] func(*sinkConfig[K, V])

type sinkConfig[K, V any] struct {
	topicFn     func(Record[K, V]) string
	partitioner func(r Record[K, V], key []byte, partitions int32) int32
}

// WithTopicFunc makes the sink choose each record's topic with fn instead of
// using its fixed topic.
func WithTopicFunc[K, V any](fn func(Record[K, V]) string) SinkOption[K, V] {
	return func(c *sinkConfig[K, V]) { c.topicFn = fn }
}

// WithPartitioner makes the sink choose each record's partition with fn,
// which gets the encoded key and the topic's partition count and returns a
// partition in [0, partitions). Default: the murmur2 hash of the key, as in
// the Java client, so records with equal keys land in equal partitions of
// co-partitioned topics.
func WithPartitioner[K, V any](fn func(r Record[K, V], key []byte, partitions int32) int32) SinkOption[K, V] {
	return func(c *sinkConfig[K, V]) { c.partitioner = fn }
}

// Sink adds a terminal node writing parent's records to topic, encoding keys
// and values with the given serdes. Timestamp and headers are written as the
// record carries them; a zero timestamp is written as the time of
// production. A timestamp outside 1677-09-21 to 2262-04-11, which
// franz-go's producer cannot write, fails the record like an encoding error
// (see WithProcessingErrors).
func Sink[K, V any](parent Node[K, V], name, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...SinkOption[K, V]) {
	var cfg sinkConfig[K, V]
	nilOpt := false
	for _, o := range opts {
		if o == nil {
			nilOpt = true
			continue
		}
		o(&cfg)
	}
	b, defs := parentDefs(name, parent)
	if b == nil {
		return
	}
	if nilOpt {
		b.errorf("sink %q: a nil SinkOption", name)
	}
	if topic == "" && cfg.topicFn == nil {
		b.errorf("sink %q has neither a topic nor a topic function", name)
	}
	if keys == nil || values == nil {
		b.errorf("sink %q has a nil serde", name)
	}
	d := b.add(name, graph.KindSink, defs)
	if d == nil {
		return
	}
	if topic != "" && cfg.topicFn == nil {
		d.Topics = []string{topic}
	}
	d.DynamicTopic = cfg.topicFn != nil
	d.instantiate = func(in *instance) (any, error) {
		return &sinkNode[K, V]{name: name, topic: topic, cfg: cfg, keys: keys, values: values, env: in.env}, nil
	}
}

type sinkNode[K, V any] struct {
	name   string
	topic  string
	cfg    sinkConfig[K, V]
	keys   serde.Serde[K]
	values serde.Serde[V]
	env    graph.Env

	// mu guards the scratch buffer and slabs: async modes call sinks from
	// several goroutines.
	mu      sync.Mutex
	scratch []byte
	slab    []byte       // produced key and value bytes are carved from here
	records []kgo.Record // produced records are carved from here
}

// Slab sizes: produced records are carved out of shared allocations, so a
// sink allocates per slab instead of per record. A slab stays alive until
// every record carved from it is released by the producer.
const (
	byteSlabSize   = 64 << 10
	recordSlabSize = 256
)

func (s *sinkNode[K, V]) receive(ctx context.Context, r Record[K, V]) error {
	topic := s.topic
	if s.cfg.topicFn != nil {
		topic = s.cfg.topicFn(r)
		if topic == "" {
			return &graph.NodeError{Node: s.name, Stage: graph.StageProcess, Err: fmt.Errorf("topic function returned an empty topic")}
		}
	}
	s.mu.Lock()
	rec, err := s.encode(topic, r)
	s.mu.Unlock()
	if err != nil {
		return &graph.NodeError{Node: s.name, Stage: graph.StageProcess, Err: err}
	}
	if s.cfg.partitioner != nil {
		n, err := s.env.Partitions(topic)
		if err != nil {
			return &graph.NodeError{Node: s.name, Stage: graph.StageProduce, Err: err}
		}
		p := s.cfg.partitioner(r, rec.Key, n)
		if p < 0 || p >= n {
			return &graph.NodeError{Node: s.name, Stage: graph.StageProcess,
				Err: fmt.Errorf("partitioner chose partition %d of topic %s, which has %d", p, topic, n)}
		}
		rec.Partition = p
	}
	if err := s.env.Emit(ctx, rec); err != nil {
		return &graph.NodeError{Node: s.name, Stage: graph.StageProduce, Err: err}
	}
	return nil
}

// encode serializes r into a record carved from the slabs. Called with s.mu held.
func (s *sinkNode[K, V]) encode(topic string, r Record[K, V]) (*kgo.Record, error) {
	if !r.Timestamp.IsZero() && !kafkatime.InRange(r.Timestamp) {
		// franz-go's producer takes the milliseconds from UnixNano, which
		// overflows: the record would land at a wrong time.
		return nil, fmt.Errorf("output for topic %s: record timestamp %s is outside the range franz-go's producer writes, %s to %s",
			topic, r.Timestamp.UTC().Format(time.RFC3339Nano), kafkatime.Min.Format(time.RFC3339), kafkatime.Max.Format(time.RFC3339))
	}
	buf, err := s.keys.Serialize(s.scratch[:0], topic, r.Headers, r.Key)
	if err != nil {
		return nil, fmt.Errorf("serializing key for topic %s: %w", topic, err)
	}
	keyNil := buf == nil
	klen := len(buf)
	buf, err = s.values.Serialize(buf, topic, r.Headers, r.Value)
	if err != nil {
		return nil, fmt.Errorf("serializing value for topic %s: %w", topic, err)
	}
	valueNil := len(buf) == klen && valueIsNull(s.values, topic, r)
	s.scratch = buf
	if len(s.records) == 0 {
		s.records = make([]kgo.Record, recordSlabSize)
	}
	rec := &s.records[0]
	s.records = s.records[1:]
	data := s.carve(buf)
	rec.Topic = topic
	rec.Partition = -1
	rec.Timestamp = r.Timestamp
	rec.Headers = r.Headers
	if !keyNil {
		rec.Key = data[:klen:klen]
	}
	if !valueNil {
		rec.Value = data[klen:]
	}
	return rec, nil
}

// valueIsNull reports whether an empty encoding of r's value is a Kafka null
// (tombstone) rather than an empty value: the serde said so by returning nil
// when asked to encode into an empty buffer.
func valueIsNull[K, V any](values serde.Serde[V], topic string, r Record[K, V]) bool {
	b, err := values.Serialize(nil, topic, r.Headers, r.Value)
	return err == nil && b == nil
}

func (s *sinkNode[K, V]) carve(p []byte) []byte {
	if len(p) > byteSlabSize/8 {
		return append([]byte(nil), p...)
	}
	if len(p) > cap(s.slab)-len(s.slab) {
		s.slab = make([]byte, 0, byteSlabSize)
	}
	start := len(s.slab)
	s.slab = append(s.slab, p...)
	return s.slab[start:len(s.slab):len(s.slab)]
}
