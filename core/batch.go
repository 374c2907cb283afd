package kstreams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BatchProcessor processes many records at once, for bulk I/O: one
// multi-get or bulk write for hundreds of records instead of one call per
// record. It gets the records of one partition in offset order under
// PartitionOrder, of one key in offset order under KeyOrder, and any records
// under Unordered. If ProcessBatch returns an error, the App's processing
// error policy applies to every record of the batch.
type BatchProcessor[KIn, VIn, KOut, VOut any] interface {
	Init(pc ProcessorContext[KOut, VOut]) error
	ProcessBatch(ctx context.Context, rs []Record[KIn, VIn]) error
	Close() error
}

// WithBatching bounds the batches of a batch processor: at most maxSize
// records (default 500), and a batch smaller than that waits up to linger
// for more records (default 0: take what is there). It applies only to
// batch processors (ProcessBatch): given to another processor, it is a
// Build error.
func WithBatching(maxSize int, linger time.Duration) ProcessOption {
	return processOption("WithBatching", func(n *graph.Node) error {
		if n.Batch == nil {
			return errors.New("applies only to batch processors (ProcessBatch)")
		}
		if maxSize <= 0 {
			return fmt.Errorf("batch size must be positive, got %d", maxSize)
		}
		if linger < 0 {
			return fmt.Errorf("linger must not be negative, got %v", linger)
		}
		n.Batch.MaxSize, n.Batch.Linger = maxSize, linger
		return nil
	})
}

// ProcessBatch adds a batch processor node reading source's records.
// newProcessor is called once per task. The parent must be a source: the
// runtime forms batches from the source's records (see WithBatching).
func ProcessBatch[KIn, VIn, KOut, VOut any](source Node[KIn, VIn], name string, newProcessor func() BatchProcessor[KIn, VIn, KOut, VOut], opts ...ProcessOption) Node[KOut, VOut] {
	b, defs := parentDefs(name, source)
	if b == nil {
		return Node[KOut, VOut]{}
	}
	if len(defs) == 1 && defs[0].Kind != graph.KindSource {
		b.errorf("batch processor %q must be a direct child of a source, not of %q", name, defs[0].Name)
	}
	if newProcessor == nil {
		b.errorf("batch processor %q has a nil constructor", name)
	}
	d := b.add(name, graph.KindProcessor, defs)
	if d == nil {
		return Node[KOut, VOut]{b: b}
	}
	d.Batch = &graph.BatchConfig{MaxSize: 500}
	b.applyOptions(d, opts)
	d.instantiate = func(in *instance) (any, error) {
		p := newProcessor()
		if p == nil {
			return nil, fmt.Errorf("batch processor constructor returned nil")
		}
		pc := &procContext[KOut, VOut]{node: name, env: in.env, children: childReceivers[KOut, VOut](in, d), stores: d.Stores}
		if err := p.Init(pc); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		in.closers = append(in.closers, func() error {
			if err := p.Close(); err != nil {
				return fmt.Errorf("batch processor %s: close: %w", name, err)
			}
			return nil
		})
		return &batchNode[KIn, VIn, KOut, VOut]{name: name, proc: p, retry: d.Retry}, nil
	}
	return Node[KOut, VOut]{b: b, def: d}
}

type batchNode[KIn, VIn, KOut, VOut any] struct {
	name  string
	proc  BatchProcessor[KIn, VIn, KOut, VOut]
	retry *graph.Retry
}

// batchReceiver is implemented by batch nodes; sources hand them whole batches.
type batchReceiver[K, V any] interface {
	receiveBatch(ctx context.Context, rs []Record[K, V]) error
}

func (n *batchNode[KIn, VIn, KOut, VOut]) receiveBatch(ctx context.Context, rs []Record[KIn, VIn]) error {
	err := retrying(ctx, n.retry, func() error { return n.proc.ProcessBatch(ctx, rs) })
	if err != nil {
		return graph.WrapNode(n.name, graph.StageProcess, err)
	}
	return nil
}

// receive makes a batch node usable on the per-record path too (a batch of one).
func (n *batchNode[KIn, VIn, KOut, VOut]) receive(ctx context.Context, r Record[KIn, VIn]) error {
	return n.receiveBatch(ctx, []Record[KIn, VIn]{r})
}

// processBatch decodes raws and hands them to the source's children: batch
// nodes get the batch, others each record. A record that fails to decode
// stops the batch with a *graph.BatchError naming it; the caller applies
// the error policy to it and calls again with the rest.
func (s *sourceNode[K, V]) processBatch(ctx context.Context, raws []*kgo.Record) error {
	rs := make([]Record[K, V], len(raws))
	for i, raw := range raws {
		r, err := s.decode(raw)
		if err != nil {
			return &graph.BatchError{Index: i, Err: err}
		}
		rs[i] = r
		s.env.ObserveTimestamp(r.Timestamp)
	}
	for i := range s.children {
		if br, ok := s.children[i].recv.(batchReceiver[K, V]); ok {
			if err := br.receiveBatch(ctx, rs); err != nil {
				return err
			}
			continue
		}
		for _, r := range rs {
			if err := s.children[i].recv.receive(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}
