package kstreams

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
)

// Processor processes records of type Record[KIn, VIn] and forwards records
// of type Record[KOut, VOut] to its children through its ProcessorContext.
//
// Init is called once per task before the first record, Close once when the
// task closes. Process returns an error to fail the record; what happens then
// is the application's error policy (by default the application stops with
// an error naming the record's topic, partition and offset).
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(pc ProcessorContext[KOut, VOut]) error
	Process(ctx context.Context, r Record[KIn, VIn]) error
	Close() error
}

// ProcessorContext is a processor's view of its task.
type ProcessorContext[K, V any] interface {
	// Forward sends r to every child, one after another, and returns the
	// first error.
	Forward(ctx context.Context, r Record[K, V]) error
	// ForwardTo sends r to the child named child only.
	ForwardTo(ctx context.Context, child string, r Record[K, V]) error
	// Schedule calls fn every interval of stream time or wall-clock time
	// (see PunctuationType) on the task, never concurrently with the task's
	// records in the synchronous ordering mode. Call the returned Cancel to
	// stop it.
	Schedule(kind PunctuationType, interval time.Duration, fn Punctuator) (Cancel, error)
	// StreamTime returns the task's stream time: the greatest record
	// timestamp it has seen (zero before the first record).
	StreamTime() time.Time
	// TaskID identifies the task.
	TaskID() TaskID
	// Node returns the processor's node name.
	Node() string
	// Logger returns the application's logger, annotated with the task.
	Logger() *slog.Logger
	// Store returns the store named name, untyped; it must be attached to
	// this processor. The typed way is the handle AddStore returned:
	// handle.Get(pc).
	Store(name string) (any, error)
}

// Punctuator is a function scheduled with ProcessorContext.Schedule. It
// receives the time that triggered it (stream time or wall-clock time).
type Punctuator func(ctx context.Context, at time.Time) error

// Cancel stops a scheduled punctuator.
type Cancel func()

// PunctuationType selects the clock of a punctuator.
type PunctuationType uint8

// Punctuation clocks.
const (
	// StreamTime punctuators advance with the timestamps of the task's
	// records; they do not fire while no records arrive.
	StreamTime PunctuationType = iota + 1
	// WallClockTime punctuators advance with the system clock (the test
	// driver's clock in tests).
	WallClockTime
)

func (p PunctuationType) String() string {
	switch p {
	case StreamTime:
		return "stream time"
	case WallClockTime:
		return "wall-clock time"
	}
	return fmt.Sprintf("PunctuationType(%d)", uint8(p))
}

// TaskID identifies a task: a sub-topology and a partition. Its String is
// "<sub-topology>_<partition>", as in state directory names.
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// child is a typed receiver of records: a processor or sink node instance.
type receiver[K, V any] interface {
	receive(ctx context.Context, r Record[K, V]) error
}

type namedReceiver[K, V any] struct {
	name string
	recv receiver[K, V]
}

// procContext implements ProcessorContext for one node of one task.
type procContext[K, V any] struct {
	node     string
	env      graph.Env
	children []namedReceiver[K, V]
	stores   []string
}

func (c *procContext[K, V]) Forward(ctx context.Context, r Record[K, V]) error {
	for i := range c.children {
		if err := c.children[i].recv.receive(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (c *procContext[K, V]) ForwardTo(ctx context.Context, child string, r Record[K, V]) error {
	for i := range c.children {
		if c.children[i].name == child {
			return c.children[i].recv.receive(ctx, r)
		}
	}
	return fmt.Errorf("processor %s has no child named %q", c.node, child)
}

func (c *procContext[K, V]) Schedule(kind PunctuationType, interval time.Duration, fn Punctuator) (Cancel, error) {
	cancel, err := c.env.Schedule(graph.PunctuationType(kind), interval, fn)
	if err != nil {
		return nil, fmt.Errorf("processor %s: %w", c.node, err)
	}
	return Cancel(cancel), nil
}

func (c *procContext[K, V]) StreamTime() time.Time { return c.env.StreamTime() }
func (c *procContext[K, V]) TaskID() TaskID        { return TaskID(c.env.TaskID()) }
func (c *procContext[K, V]) Node() string          { return c.node }
func (c *procContext[K, V]) Logger() *slog.Logger  { return c.env.Logger().With("node", c.node) }

func (c *procContext[K, V]) Store(name string) (any, error) {
	if !slices.Contains(c.stores, name) {
		return nil, fmt.Errorf("processor %s: store %q is not attached to it (attach it with kstreams.WithStores)", c.node, name)
	}
	return c.env.Store(name)
}
