package kstreams

import (
	"context"
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// ProcessOption configures a processor node: pass it to Process, Func or
// ProcessBatch. Make one with WithStores, WithOrdering, WithRetry or
// WithBatching. An option that does not apply to the node it is given to
// (WithBatching for a processor that is not a batch processor, say) is a
// Build error naming the node and the option.
type ProcessOption struct {
	name   string // the function that made it, for errors
	apply  func(*graph.Node) error
	stores []*store.Spec // WithStores: the attached specs, checked at Build
}

func processOption(name string, apply func(*graph.Node) error) ProcessOption {
	return ProcessOption{name: name, apply: apply}
}

// applyOptions applies opts to processor node d, recording for Build the
// options that do not apply.
func (b *Builder) applyOptions(d *nodeDef, opts []ProcessOption) {
	for _, o := range opts {
		if o.apply == nil {
			b.errorf("processor %q: a zero ProcessOption (make options with WithStores, WithOrdering, WithRetry or WithBatching)", d.Name)
			continue
		}
		if err := o.apply(&d.Node); err != nil {
			b.errorf("processor %q: %s: %v", d.Name, o.name, err)
			continue
		}
		d.storeSpecs = append(d.storeSpecs, o.stores...)
	}
}

// WithStores attaches stores declared with AddStore to the processor; it
// gets them in Init with Store.Get. Processors sharing a store belong to the
// same sub-topology, so their source topics must be co-partitioned.
func WithStores(stores ...AnyStore) ProcessOption {
	o := processOption("WithStores", nil)
	var names []string
	for _, s := range stores {
		var spec *store.Spec
		if s != nil {
			spec = s.storeSpec()
		}
		if spec == nil {
			o.apply = func(*graph.Node) error {
				return errors.New("a zero or nil store handle (declare stores with kstreams.AddStore; a window store is declared by the aggregation that uses it, so attach its Handle after adding the aggregation)")
			}
			return o
		}
		o.stores = append(o.stores, spec)
		names = append(names, spec.Name())
	}
	o.apply = func(n *graph.Node) error {
		n.Stores = append(n.Stores, names...)
		return nil
	}
	return o
}

// Process adds a processor node reading parent's output. newProcessor is
// called once per task to create the task's processor.
func Process[KIn, VIn, KOut, VOut any](parent Node[KIn, VIn], name string, newProcessor func() Processor[KIn, VIn, KOut, VOut], opts ...ProcessOption) Node[KOut, VOut] {
	return processMany(name, []Node[KIn, VIn]{parent}, newProcessor, opts)
}

// Merge adds a node that forwards the records of all parents unchanged: a
// processor with several parents.
func Merge[K, V any](name string, parents ...Node[K, V]) Node[K, V] {
	return processMany(name, parents, func() Processor[K, V, K, V] { return &mergeProcessor[K, V]{} }, nil)
}

type mergeProcessor[K, V any] struct {
	pc ProcessorContext[K, V]
}

func (m *mergeProcessor[K, V]) Init(pc ProcessorContext[K, V]) error { m.pc = pc; return nil }
func (m *mergeProcessor[K, V]) Close() error                         { return nil }
func (m *mergeProcessor[K, V]) Process(ctx context.Context, r Record[K, V]) error {
	return m.pc.Forward(ctx, r)
}

func processMany[KIn, VIn, KOut, VOut any](name string, parents []Node[KIn, VIn], newProcessor func() Processor[KIn, VIn, KOut, VOut], opts []ProcessOption) Node[KOut, VOut] {
	b, defs := parentDefs(name, parents...)
	if b == nil {
		// No usable parent handle: there is no Builder to report to. A
		// handle without a Builder makes the error surface at its first use.
		return Node[KOut, VOut]{}
	}
	if newProcessor == nil {
		b.errorf("processor %q has a nil constructor", name)
	}
	d := b.add(name, graph.KindProcessor, defs)
	if d == nil {
		return Node[KOut, VOut]{b: b}
	}
	b.applyOptions(d, opts)
	d.instantiate = func(in *instance) (any, error) {
		p := newProcessor()
		if p == nil {
			return nil, fmt.Errorf("processor constructor returned nil")
		}
		pc := &procContext[KOut, VOut]{node: name, env: in.env, children: childReceivers[KOut, VOut](in, d), stores: d.Stores}
		if err := p.Init(pc); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		in.closers = append(in.closers, func() error {
			if err := p.Close(); err != nil {
				return fmt.Errorf("processor %s: close: %w", name, err)
			}
			return nil
		})
		return &processorNode[KIn, VIn, KOut, VOut]{name: name, proc: p, retry: d.Retry}, nil
	}
	return Node[KOut, VOut]{b: b, def: d}
}

type processorNode[KIn, VIn, KOut, VOut any] struct {
	name  string
	proc  Processor[KIn, VIn, KOut, VOut]
	retry *graph.Retry
}

func (n *processorNode[KIn, VIn, KOut, VOut]) receive(ctx context.Context, r Record[KIn, VIn]) error {
	var err error
	if n.retry == nil {
		err = n.proc.Process(ctx, r)
	} else {
		err = retrying(ctx, n.retry, func() error { return n.proc.Process(ctx, r) })
	}
	if err != nil {
		return graph.WrapNode(n.name, graph.StageProcess, err)
	}
	return nil
}

// ProcessFunc is a stateless processor written as one function. It gets the
// context of its node to forward records.
type ProcessFunc[KIn, VIn, KOut, VOut any] func(ctx context.Context, pc ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error

// Func adds a processor node that calls fn for each record.
func Func[KIn, VIn, KOut, VOut any](parent Node[KIn, VIn], name string, fn ProcessFunc[KIn, VIn, KOut, VOut], opts ...ProcessOption) Node[KOut, VOut] {
	return Process(parent, name, func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{fn: fn} }, opts...)
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	fn ProcessFunc[KIn, VIn, KOut, VOut]
	pc ProcessorContext[KOut, VOut]
}

func (f *funcProcessor[KIn, VIn, KOut, VOut]) Init(pc ProcessorContext[KOut, VOut]) error {
	f.pc = pc
	return nil
}
func (f *funcProcessor[KIn, VIn, KOut, VOut]) Close() error { return nil }
func (f *funcProcessor[KIn, VIn, KOut, VOut]) Process(ctx context.Context, r Record[KIn, VIn]) error {
	return f.fn(ctx, f.pc, r)
}

// Map adds a node that transforms each record into one record.
func Map[KIn, VIn, KOut, VOut any](parent Node[KIn, VIn], name string, fn func(Record[KIn, VIn]) (Record[KOut, VOut], error)) Node[KOut, VOut] {
	return Func(parent, name, func(ctx context.Context, pc ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error {
		out, err := fn(r)
		if err != nil {
			return err
		}
		return pc.Forward(ctx, out)
	})
}

// MapValues adds a node that transforms each record's value, keeping its
// key, timestamp, headers and origin.
func MapValues[K, VIn, VOut any](parent Node[K, VIn], name string, fn func(VIn) (VOut, error)) Node[K, VOut] {
	return Func(parent, name, func(ctx context.Context, pc ProcessorContext[K, VOut], r Record[K, VIn]) error {
		v, err := fn(r.Value)
		if err != nil {
			return err
		}
		return pc.Forward(ctx, WithValue(r, v))
	})
}

// Filter adds a node that forwards the records for which keep returns true.
func Filter[K, V any](parent Node[K, V], name string, keep func(Record[K, V]) bool) Node[K, V] {
	return Func(parent, name, func(ctx context.Context, pc ProcessorContext[K, V], r Record[K, V]) error {
		if !keep(r) {
			return nil
		}
		return pc.Forward(ctx, r)
	})
}

// FlatMap adds a node that transforms each record into zero or more records.
func FlatMap[KIn, VIn, KOut, VOut any](parent Node[KIn, VIn], name string, fn func(Record[KIn, VIn]) ([]Record[KOut, VOut], error)) Node[KOut, VOut] {
	return Func(parent, name, func(ctx context.Context, pc ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error {
		out, err := fn(r)
		if err != nil {
			return err
		}
		for _, o := range out {
			if err := pc.Forward(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForEach adds a terminal node that calls fn for each record.
func ForEach[K, V any](parent Node[K, V], name string, fn func(Record[K, V]) error) {
	Func(parent, name, func(_ context.Context, _ ProcessorContext[K, V], r Record[K, V]) error { return fn(r) })
}

// Through writes parent's records to topic and reads them back as a new
// source: a repartition. Records are partitioned by key, so the nodes after
// Through see every record of a key in one task, which stateful processing
// by a new key (counting words of lines, say) needs. The application creates
// topic with the given number of partitions if it does not exist. The
// processing before and after Through are separate sub-topologies, linked
// only by the topic. opts configure the sink "<name>-sink" (for example
// WithPartitioner).
//
// A partitions of 0 derives the count when the application creates the
// topic: that of the topics co-partitioned with it (the other source topics
// of the sub-topology reading it), as a join after the repartition needs.
// It is an error at start if that sub-topology reads no other topic.
func Through[K, V any](parent Node[K, V], name, topic string, partitions int32, keys serde.Serde[K], values serde.Serde[V], opts ...SinkOption[K, V]) Node[K, V] {
	Sink(parent, name+"-sink", topic, keys, values, opts...)
	if parent.b == nil {
		return Node[K, V]{}
	}
	if partitions < 0 {
		parent.b.errorf("through %q: partition count must be positive, or 0 to derive it, got %d", name, partitions)
	}
	parent.b.managed[topic] = partitions
	return Source(parent.b, name, []string{topic}, keys, values)
}
