// Package kstreamstest runs a topology without a broker, deterministically
// and synchronously, for tests: pipe typed records into source topics, read
// typed records from sink topics, read stores, and advance the wall clock to
// fire punctuators.
//
// Each piped record is processed completely (including records that its
// output produces into topics the topology itself reads) before Pipe
// returns. Topics have one partition unless WithPartitions says otherwise;
// each (sub-topology, partition) gets its own task with its own stores, as in
// a running application.
package kstreamstest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/task"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	g          *graph.Topology
	appID      string
	now        time.Time
	partitions map[string]int32
	logger     *slog.Logger
	ctx        context.Context

	bySource map[string]*graph.Subtopology
	tasks    map[graph.TaskID]*task.Task
	taskList []*task.Task

	offsets map[topicPartition]int64
	outputs map[string][]*kgo.Record // produced records not yet read, per topic
	pending []*kgo.Record            // produced records to feed back into sources
	hashers map[string]kgo.TopicPartitioner
	closed  bool

	globals       map[string]*globalStore // by store name (see global.go)
	globalByTopic map[string]*globalStore
}

type topicPartition struct {
	topic     string
	partition int32
}

// Option configures a Driver.
type Option func(*Driver)

// WithStartTime sets the driver's initial wall-clock time (default
// 2026-01-01T00:00:00Z). Piped records without a timestamp get the current
// wall-clock time.
func WithStartTime(t time.Time) Option { return func(d *Driver) { d.now = t } }

// WithPartitions gives topic n partitions (default 1; a repartition topic
// whose count is derived has that of the topics co-partitioned with it).
func WithPartitions(topic string, n int32) Option {
	return func(d *Driver) { d.partitions[topic] = n }
}

// WithApplicationID sets the application id used to name changelog topics
// (default "kstreamstest"). New refuses an id that kstreams.NewApp would
// refuse (one Kafka would refuse in a changelog topic's name).
func WithApplicationID(id string) Option { return func(d *Driver) { d.appID = id } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Driver) { d.logger = l } }

// New returns a driver for t.
func New(t *kstreams.Topology, opts ...Option) (*Driver, error) {
	d := &Driver{
		g:          graph.FromTopology(t),
		appID:      "kstreamstest",
		now:        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		partitions: map[string]int32{},
		logger:     slog.New(slog.DiscardHandler),
		ctx:        context.Background(),
		bySource:   map[string]*graph.Subtopology{},
		tasks:      map[graph.TaskID]*task.Task{},
		offsets:    map[topicPartition]int64{},
		outputs:    map[string][]*kgo.Record{},
		hashers:    map[string]kgo.TopicPartitioner{},
	}
	for _, o := range opts {
		o(d)
	}
	if err := graph.CheckAppID(d.appID, d.g); err != nil {
		return nil, fmt.Errorf("kstreamstest: %w", err)
	}
	// Repartition topics of derived count (0) take that of the topics
	// co-partitioned with them.
	derived, err := d.g.DerivePartitions(func(t string) (int32, bool) {
		if n, ok := d.partitions[t]; ok && n > 0 {
			return n, true
		}
		if n, managed := d.g.ManagedTopics[t]; managed && n == 0 {
			return 0, false
		}
		return 1, true
	})
	if err != nil {
		return nil, fmt.Errorf("kstreamstest: %w", err)
	}
	for t, n := range derived {
		d.partitions[t] = n
	}
	for _, st := range d.g.Subtopologies {
		var n int32 = -1
		for _, topic := range st.SourceTopics {
			d.bySource[topic] = st
			p := d.partitionCount(topic)
			if n >= 0 && p != n {
				return nil, fmt.Errorf("kstreamstest: sub-topology %d reads topics with different partition counts (%s has %d, others %d); co-partitioned topics need equal counts", st.ID, topic, p, n)
			}
			n = p
		}
	}
	if err := d.openGlobals(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Driver) partitionCount(topic string) int32 {
	if n, ok := d.partitions[topic]; ok && n > 0 {
		return n
	}
	return 1
}

// task returns the task for (sub-topology, partition), creating it on first use.
func (d *Driver) task(st *graph.Subtopology, partition int32) (*task.Task, error) {
	id := graph.TaskID{Subtopology: st.ID, Partition: partition}
	if t, ok := d.tasks[id]; ok {
		return t, nil
	}
	t, err := task.New(st, partition, (*host)(d), task.Options{})
	if err != nil {
		return nil, err
	}
	d.tasks[id] = t
	d.taskList = append(d.taskList, t)
	return t, nil
}

// pipe processes one raw input record and everything it leads to.
func (d *Driver) pipe(r *kgo.Record) error {
	if d.closed {
		return errors.New("kstreamstest: driver is closed")
	}
	st := d.bySource[r.Topic]
	g := d.globalByTopic[r.Topic]
	if st == nil && g == nil {
		return fmt.Errorf("kstreamstest: no source reads topic %q", r.Topic)
	}
	n := d.partitionCount(r.Topic)
	if r.Partition < 0 || r.Partition >= n {
		return fmt.Errorf("kstreamstest: partition %d of topic %s does not exist (it has %d; see WithPartitions)", r.Partition, r.Topic, n)
	}
	tp := topicPartition{r.Topic, r.Partition}
	r.Offset = d.offsets[tp]
	d.offsets[tp]++
	if g != nil {
		if err := d.applyGlobal(g, r); err != nil {
			return err
		}
		return d.drain()
	}
	t, err := d.task(st, r.Partition)
	if err != nil {
		return err
	}
	if err := t.Process(d.ctx, r); err != nil {
		d.pending = d.pending[:0]
		return err
	}
	return d.drain()
}

// drain processes records that sinks wrote to topics the topology reads.
func (d *Driver) drain() error {
	for len(d.pending) > 0 {
		r := d.pending[0]
		d.pending = d.pending[1:]
		if g := d.globalByTopic[r.Topic]; g != nil {
			if err := d.applyGlobal(g, r); err != nil {
				d.pending = d.pending[:0]
				return err
			}
			continue
		}
		st := d.bySource[r.Topic]
		t, err := d.task(st, r.Partition)
		if err != nil {
			return err
		}
		in := *r // the output copy stays readable as produced
		if err := t.Process(d.ctx, &in); err != nil {
			d.pending = d.pending[:0]
			return err
		}
	}
	return nil
}

// Now returns the driver's wall-clock time.
func (d *Driver) Now() time.Time { return d.now }

// AdvanceWallClock moves the wall clock forward by by and fires the
// wall-clock punctuators that became due, task by task.
func (d *Driver) AdvanceWallClock(by time.Duration) error {
	if by < 0 {
		return fmt.Errorf("kstreamstest: cannot move the wall clock backwards (%v)", by)
	}
	d.now = d.now.Add(by)
	for _, t := range d.taskList {
		if err := t.PunctuateWallClock(d.ctx, d.now); err != nil {
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every task and its stores.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.taskList {
		errs = append(errs, t.Close())
	}
	errs = append(errs, d.closeGlobals())
	return errors.Join(errs...)
}

// Tasks returns the ids of the tasks created so far, in creation order.
func (d *Driver) Tasks() []kstreams.TaskID {
	ids := make([]kstreams.TaskID, len(d.taskList))
	for i, t := range d.taskList {
		ids[i] = kstreams.TaskID(t.ID())
	}
	return ids
}

// host adapts the driver to task.Host without adding methods to Driver.
type host Driver

func (h *host) Emit(_ context.Context, r *kgo.Record) error {
	d := (*Driver)(h)
	n := d.partitionCount(r.Topic)
	if r.Partition < 0 {
		if r.Key == nil {
			r.Partition = 0
		} else {
			// The Java client's murmur2 key hash, as the runtime's producer uses.
			p, ok := d.hashers[r.Topic]
			if !ok {
				p = kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic)
				d.hashers[r.Topic] = p
			}
			r.Partition = int32(p.Partition(r, int(n)))
		}
	}
	tp := topicPartition{r.Topic, r.Partition}
	r.Offset = d.offsets[tp]
	d.offsets[tp]++
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
	if d.bySource[r.Topic] != nil || d.globalByTopic[r.Topic] != nil {
		d.pending = append(d.pending, r)
	}
	return nil
}

func (h *host) Partitions(topic string) (int32, error) {
	return (*Driver)(h).partitionCount(topic), nil
}

func (h *host) OpenStore(spec *store.Spec, bctx store.BackendContext) (store.Backend, error) {
	return spec.Supplier()(bctx)
}

func (h *host) StoreTopic(spec *store.Spec) string {
	return graph.ChangelogTopic((*Driver)(h).appID, spec.Name())
}

func (h *host) Now() time.Time       { return h.now }
func (h *host) Logger() *slog.Logger { return h.logger }

// InputTopic pipes typed records into a source topic.
type InputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Input returns a handle that pipes records into topic, encoding them with
// the given serdes.
func Input[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// Pipe processes a record with the driver's current wall-clock time as its
// timestamp, in partition 0.
func (in *InputTopic[K, V]) Pipe(key K, value V) error {
	return in.PipeRecord(kstreams.Record[K, V]{Key: key, Value: value, Timestamp: in.d.now})
}

// PipeAt processes a record with timestamp ts, in partition 0.
func (in *InputTopic[K, V]) PipeAt(key K, value V, ts time.Time) error {
	return in.PipeRecord(kstreams.Record[K, V]{Key: key, Value: value, Timestamp: ts})
}

// PipeRecord processes r: its key, value, timestamp and headers, in
// partition r.Origin.Partition. The offset is assigned by the driver. A zero
// timestamp is replaced by the current wall-clock time.
func (in *InputTopic[K, V]) PipeRecord(r kstreams.Record[K, V]) error {
	k, err := in.keys.Serialize(nil, in.topic, r.Headers, r.Key)
	if err != nil {
		return fmt.Errorf("kstreamstest: encoding key for %s: %w", in.topic, err)
	}
	v, err := in.values.Serialize(nil, in.topic, r.Headers, r.Value)
	if err != nil {
		return fmt.Errorf("kstreamstest: encoding value for %s: %w", in.topic, err)
	}
	return in.PipeRaw(k, v, r.Timestamp, r.Origin.Partition, r.Headers...)
}

// PipeRaw processes a record given as bytes, for example malformed input.
// A nil key or value is a Kafka null.
func (in *InputTopic[K, V]) PipeRaw(key, value []byte, ts time.Time, partition int32, headers ...kstreams.Header) error {
	if ts.IsZero() {
		ts = in.d.now
	}
	return in.d.pipe(&kgo.Record{Topic: in.topic, Partition: partition, Key: key, Value: value, Timestamp: ts, Headers: headers})
}

// OutputTopic reads typed records a topology wrote to a topic.
type OutputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Output returns a handle that reads the records written to topic,
// decoding them with the given serdes.
func Output[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// Len returns the number of records written and not yet read.
func (out *OutputTopic[K, V]) Len() int { return len(out.d.outputs[out.topic]) }

// Read returns and consumes the oldest unread record. ok is false when
// there is none.
func (out *OutputTopic[K, V]) Read() (r kstreams.Record[K, V], ok bool, err error) {
	q := out.d.outputs[out.topic]
	if len(q) == 0 {
		return r, false, nil
	}
	raw := q[0]
	out.d.outputs[out.topic] = q[1:]
	k, err := out.keys.Deserialize(raw.Topic, raw.Headers, raw.Key)
	if err != nil {
		return r, true, fmt.Errorf("kstreamstest: decoding key of %s/%d@%d: %w", raw.Topic, raw.Partition, raw.Offset, err)
	}
	v, err := out.values.Deserialize(raw.Topic, raw.Headers, raw.Value)
	if err != nil {
		return r, true, fmt.Errorf("kstreamstest: decoding value of %s/%d@%d: %w", raw.Topic, raw.Partition, raw.Offset, err)
	}
	return kstreams.Record[K, V]{
		Key: k, Value: v, Timestamp: raw.Timestamp, Headers: raw.Headers,
		Origin: kstreams.Origin{Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset},
	}, true, nil
}

// ReadAll returns and consumes every unread record.
func (out *OutputTopic[K, V]) ReadAll() ([]kstreams.Record[K, V], error) {
	var rs []kstreams.Record[K, V]
	for {
		r, ok, err := out.Read()
		if err != nil {
			return rs, err
		}
		if !ok {
			return rs, nil
		}
		rs = append(rs, r)
	}
}

// ReadRaw returns and consumes every unread record as produced (bytes).
func (out *OutputTopic[K, V]) ReadRaw() []*kgo.Record {
	q := out.d.outputs[out.topic]
	out.d.outputs[out.topic] = nil
	return slices.Clip(q)
}

// GetStore returns the store named name of the task for partition 0 of its
// sub-topology, as type S (for example store.KeyValueStore[string, int64]).
func GetStore[S any](d *Driver, name string) (S, error) {
	return GetStoreOf[S](d, name, 0)
}

// GetStoreOf returns the store named name of the task for partition. A
// global store (kstreams.AddGlobalStore) has one instance, whatever the
// partition; it is read-only.
func GetStoreOf[S any](d *Driver, name string, partition int32) (S, error) {
	var zero S
	if g, ok := d.globals[name]; ok {
		typed, ok := g.view.(S)
		if !ok {
			return zero, fmt.Errorf("kstreamstest: global store %q is a %T, not a %v", name, g.view, reflect.TypeFor[S]())
		}
		return typed, nil
	}
	for _, st := range d.g.Subtopologies {
		for _, spec := range st.Stores {
			if spec.Name() != name {
				continue
			}
			t, err := d.task(st, partition)
			if err != nil {
				return zero, err
			}
			s, err := t.Store(name)
			if err != nil {
				return zero, err
			}
			typed, ok := s.(S)
			if !ok {
				return zero, fmt.Errorf("kstreamstest: store %q is a %T, not a %v", name, s, reflect.TypeFor[S]())
			}
			return typed, nil
		}
	}
	return zero, fmt.Errorf("kstreamstest: the topology has no store %q", name)
}
