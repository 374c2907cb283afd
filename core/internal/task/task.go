// Package task runs one sub-topology for one partition: it owns the task's
// stores, stream time and punctuators, and feeds input records through the
// instantiated processors. The runtime and the test driver both drive tasks
// through this package, so they execute topologies identically.
package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Host is what a task needs from whoever runs it.
type Host interface {
	// Emit produces a record written by a sink.
	Emit(ctx context.Context, r *kgo.Record) error
	// Partitions returns the partition count of topic.
	Partitions(topic string) (int32, error)
	// OpenStore opens the backend of spec for the task; the runtime wraps it
	// with the changelog here.
	OpenStore(spec *store.Spec, bctx store.BackendContext) (store.Backend, error)
	// StoreTopic is the topic name serdes of spec see (its changelog topic).
	StoreTopic(spec *store.Spec) string
	// Now returns the wall-clock time.
	Now() time.Time
	Logger() *slog.Logger
}

// GlobalHost is implemented by hosts that run global stores: a task's
// processors get the host's read-only view of a global store by its name.
type GlobalHost interface {
	// GlobalStore returns the typed view of the global store named name,
	// and false when there is none.
	GlobalStore(name string) (any, bool)
}

// Store is one of a task's open stores.
type Store struct {
	Spec    *store.Spec
	Backend store.Backend
	Typed   any
}

// Task is one sub-topology instantiated for one partition.
type Task struct {
	id     graph.TaskID
	sub    *graph.Subtopology
	host   Host
	logger *slog.Logger
	stores map[string]*Store
	order  []*Store
	inst   graph.Instance

	streamTime atomic.Int64 // Unix nanoseconds; math.MinInt64 before the first record

	mu       sync.Mutex
	nPuncts  atomic.Int32 // len(puncts), read without the lock on every record
	puncts   []*punctuator
	firing   bool
	closed   bool
	storeDir func(*store.Spec) (string, error)
	app      string
}

// Options are a task's optional settings.
type Options struct {
	// StoreDir returns the directory for a store of this task; nil means no
	// directory (in-memory and remote backends need none).
	StoreDir func(*store.Spec) (string, error)
	// App is the application id, passed to the store suppliers.
	App string
}

// New opens the stores of sub for partition and instantiates its processors.
// On error, whatever was opened is closed again.
func New(sub *graph.Subtopology, partition int32, host Host, opts Options) (*Task, error) {
	t, err := Open(sub, partition, host, opts)
	if err != nil {
		return nil, err
	}
	if err := t.Init(); err != nil {
		t.closeStores()
		return nil, err
	}
	return t, nil
}

// Open opens the stores of sub for partition, without instantiating its
// processors: Init does, once the stores are ready (restored). Until then
// the task must not process records or punctuate. On error, whatever was
// opened is closed again.
func Open(sub *graph.Subtopology, partition int32, host Host, opts Options) (*Task, error) {
	t := &Task{
		id:       graph.TaskID{Subtopology: sub.ID, Partition: partition},
		sub:      sub,
		host:     host,
		logger:   host.Logger().With("task", graph.TaskID{Subtopology: sub.ID, Partition: partition}.String()),
		stores:   make(map[string]*Store, len(sub.Stores)),
		storeDir: opts.StoreDir,
		app:      opts.App,
	}
	t.streamTime.Store(math.MinInt64)
	if err := t.openStores(); err != nil {
		t.closeStores()
		return nil, err
	}
	return t, nil
}

// Init instantiates the task's processors (their Init methods run). On
// error the task's stores stay open: Close closes them.
func (t *Task) Init() error {
	inst, err := t.sub.New(t)
	if err != nil {
		return fmt.Errorf("task %s: initializing processors: %w", t.id, err)
	}
	t.inst = inst
	return nil
}

func (t *Task) openStores() error {
	for _, spec := range t.sub.Stores {
		bctx := store.BackendContext{App: t.app, Store: spec.Name(), Task: t.id.String(), Partition: t.id.Partition, Logger: t.logger}
		if t.storeDir != nil {
			dir, err := t.storeDir(spec)
			if err != nil {
				return fmt.Errorf("task %s: store %s: %w", t.id, spec.Name(), err)
			}
			bctx.Dir = dir
		}
		b, err := t.host.OpenStore(spec, bctx)
		if err != nil {
			return fmt.Errorf("task %s: opening store %s: %w", t.id, spec.Name(), err)
		}
		s := &Store{Spec: spec, Backend: b, Typed: spec.Open(b, t.host.StoreTopic(spec))}
		t.stores[spec.Name()] = s
		t.order = append(t.order, s)
	}
	return nil
}

// ID returns the task's id.
func (t *Task) ID() graph.TaskID { return t.id }

// Subtopology returns the task's sub-topology.
func (t *Task) Subtopology() *graph.Subtopology { return t.sub }

// Stores returns the task's stores in declaration order.
func (t *Task) Stores() []*Store { return t.order }

// Process runs r through the task's processors, then fires the stream-time
// punctuators that became due. The error, if any, is a *graph.RecordError.
func (t *Task) Process(ctx context.Context, r *kgo.Record) error {
	if err := t.inst.Process(ctx, r); err != nil {
		return graph.NewRecordError(r, err)
	}
	if err := t.punctuate(ctx, graph.StreamTime, t.streamTime.Load()); err != nil {
		return err
	}
	return nil
}

// ProcessBatch runs records of one source topic through the processors as
// one batch (see graph.Instance), then fires due stream-time punctuators.
// A *graph.BatchError (a record that could not be decoded) is returned as
// is; other errors are returned as they are, for the caller to attribute.
func (t *Task) ProcessBatch(ctx context.Context, rs []*kgo.Record) error {
	if err := t.inst.ProcessBatch(ctx, rs); err != nil {
		return err
	}
	return t.punctuate(ctx, graph.StreamTime, t.streamTime.Load())
}

// WallClockDue reports whether a wall-clock punctuator is due at now, so
// that the runtime prepares a unit of work only when one is.
func (t *Task) WallClockDue(now time.Time) bool {
	if t.nPuncts.Load() == 0 {
		return false
	}
	n := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.puncts {
		if p.kind == graph.WallClockTime && !p.canceled && n >= p.next {
			return true
		}
	}
	return false
}

// PunctuateWallClock fires the wall-clock punctuators due at now.
func (t *Task) PunctuateWallClock(ctx context.Context, now time.Time) error {
	return t.punctuate(ctx, graph.WallClockTime, now.UnixNano())
}

// Close closes the processors and the stores. It does not flush: the caller
// commits (or abandons) the task's work first.
func (t *Task) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.puncts = nil
	t.nPuncts.Store(0)
	t.mu.Unlock()
	var errs []error
	if t.inst != nil {
		if err := t.inst.Close(); err != nil {
			errs = append(errs, fmt.Errorf("task %s: closing processors: %w", t.id, err))
		}
	}
	errs = append(errs, t.closeStores())
	return errors.Join(errs...)
}

func (t *Task) closeStores() error {
	var errs []error
	for _, s := range t.order {
		if err := s.Backend.Close(); err != nil {
			errs = append(errs, fmt.Errorf("task %s: closing store %s: %w", t.id, s.Spec.Name(), err))
		}
	}
	t.order = nil
	return errors.Join(errs...)
}

// TaskID implements graph.Env.
func (t *Task) TaskID() graph.TaskID { return t.id }

// Store implements graph.Env.
func (t *Task) Store(name string) (any, error) {
	s, ok := t.stores[name]
	if !ok {
		if gh, isGlobal := t.host.(GlobalHost); isGlobal {
			if g, ok := gh.GlobalStore(name); ok {
				return g, nil
			}
		}
		return nil, fmt.Errorf("task %s has no store %q", t.id, name)
	}
	return s.Typed, nil
}

// Emit implements graph.Env.
func (t *Task) Emit(ctx context.Context, r *kgo.Record) error { return t.host.Emit(ctx, r) }

// Partitions implements graph.Env.
func (t *Task) Partitions(topic string) (int32, error) { return t.host.Partitions(topic) }

// ObserveTimestamp implements graph.Env.
func (t *Task) ObserveTimestamp(ts time.Time) {
	n := ts.UnixNano()
	for {
		cur := t.streamTime.Load()
		if n <= cur || t.streamTime.CompareAndSwap(cur, n) {
			return
		}
	}
}

// StreamTime implements graph.Env.
func (t *Task) StreamTime() time.Time {
	n := t.streamTime.Load()
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Logger implements graph.Env.
func (t *Task) Logger() *slog.Logger { return t.logger }

type punctuator struct {
	kind     graph.PunctuationType
	interval int64
	next     int64 // math.MinInt64: not yet anchored (stream time unknown when scheduled)
	fn       func(context.Context, time.Time) error
	canceled bool
}

// Schedule implements graph.Env. A stream-time punctuator first fires when
// stream time reaches the stream time at scheduling (or the first record's
// timestamp) plus interval; a wall-clock one at now plus interval. When the
// clock jumps over several intervals the punctuator fires once, and the next
// firing stays aligned to the interval grid.
func (t *Task) Schedule(kind graph.PunctuationType, interval time.Duration, fn func(context.Context, time.Time) error) (graph.Cancel, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("task %s: punctuation interval must be positive, got %v", t.id, interval)
	}
	p := &punctuator{kind: kind, interval: int64(interval), fn: fn, next: math.MinInt64}
	switch kind {
	case graph.StreamTime:
		if st := t.streamTime.Load(); st != math.MinInt64 {
			p.next = st + p.interval
		}
	case graph.WallClockTime:
		p.next = t.host.Now().UnixNano() + p.interval
	default:
		return nil, fmt.Errorf("task %s: unknown punctuation type %d", t.id, kind)
	}
	t.mu.Lock()
	t.puncts = append(t.puncts, p)
	t.nPuncts.Store(int32(len(t.puncts)))
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		p.canceled = true
		t.mu.Unlock()
	}, nil
}

// punctuate fires the punctuators of kind that are due at now.
func (t *Task) punctuate(ctx context.Context, kind graph.PunctuationType, now int64) error {
	if now == math.MinInt64 || t.nPuncts.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	if t.firing || len(t.puncts) == 0 {
		// A punctuator that forwards records does not re-enter punctuation.
		t.mu.Unlock()
		return nil
	}
	var due []*punctuator
	live := t.puncts[:0]
	for _, p := range t.puncts {
		if p.canceled {
			continue
		}
		live = append(live, p)
		if p.kind != kind {
			continue
		}
		if p.next == math.MinInt64 {
			p.next = now + p.interval
			continue
		}
		if now >= p.next {
			due = append(due, p)
			p.next += ((now-p.next)/p.interval + 1) * p.interval
		}
	}
	clear(t.puncts[len(live):])
	t.puncts = live
	t.nPuncts.Store(int32(len(live)))
	if len(due) == 0 {
		t.mu.Unlock()
		return nil
	}
	t.firing = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.firing = false
		t.mu.Unlock()
	}()
	at := time.Unix(0, now)
	for _, p := range due {
		t.mu.Lock()
		canceled := p.canceled
		t.mu.Unlock()
		if canceled {
			continue
		}
		if err := p.fn(ctx, at); err != nil {
			kindName := "stream-time"
			if kind == graph.WallClockTime {
				kindName = "wall-clock"
			}
			return fmt.Errorf("task %s: %s punctuator at %v: %w", t.id, kindName, at, err)
		}
	}
	return nil
}
