package kstreams

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// Observer receives what an App does, for metrics: pass it to WithObserver.
// Module github.com/kstreams-go/kstreams/metrics/prometheus builds
// Prometheus metrics on it; other metric systems can do the same.
//
// Every field is optional: the App calls only the funcs that are set, and
// an App without an Observer pays nothing for it. The funcs are called
// from the App's goroutines, concurrently, while it processes: they must
// be safe for concurrent use and return quickly (update a counter or a
// histogram; never block).
//
// Counters that are cheap to keep always (records processed, skipped,
// dead-lettered, commits, records and units in flight, paused partitions,
// tasks) are not events: read them with App.Stats.
//
// Timings taken per record (Processed, EndToEnd, StoreOp) are sampled:
// one call in SampleEvery is timed and reported. Their counts are then
// samples, not records; rates come from the counters.
type Observer struct {
	// Fetched: the records of one input partition fetched by a poll and
	// handed to its task.
	Fetched func(FetchEvent)
	// Produced: a batch of records written to a topic partition (outputs,
	// changelog records and dead letters alike).
	Produced func(ProduceEvent)
	// Processed (sampled): a processor node's Process call returned.
	Processed func(NodeTiming)
	// EndToEnd (sampled): a record reached a sink node; the duration is
	// the wall clock minus the record's timestamp.
	EndToEnd func(NodeTiming)
	// Retried: a processor with WithRetry calls Process again after a
	// failure.
	Retried func(node string)
	// Committed: an offset commit (or, WithTransactions, the end of a
	// transaction) returned.
	Committed func(CommitEvent)
	// Rebalanced: a rebalance callback returned (tasks assigned, revoked
	// or lost); the instance processes nothing while it runs.
	Rebalanced func(RebalanceEvent)
	// StoreOp (sampled): an operation of a task on one of its stores
	// returned.
	StoreOp func(StoreOpEvent)
	// Restore: the restoration of a store from its changelog progressed,
	// as WithRestoreListener.
	Restore func(RestoreProgress)
	// StateChanged: the App's state changed, as WithStateListener. The
	// first change (to StateStarting) comes from Run, after NewApp
	// returned: from then on the observer may call the App's State and
	// Stats.
	StateChanged func(StateEvent)
	// SampleEvery is the sampling interval of the timed calls: one in
	// SampleEvery, rounded up to a power of two. 0 means 64; 1 times every
	// call.
	SampleEvery int
}

// StateEvent is a change of the App's state.
type StateEvent struct {
	Old, New State
}

// FetchEvent is the records of one input partition handed to its task.
type FetchEvent struct {
	Topic     string
	Partition int32
	Records   int   // records handed over
	Lag       int64 // the partition's end (last stable offset WithTransactions) minus the offset after the last record
}

// ProduceEvent is a batch of records the brokers acknowledged.
type ProduceEvent struct {
	Topic     string
	Partition int32
	Records   int
	Bytes     int // the records' uncompressed size
}

// NodeTiming is a duration measured at a node of the topology.
type NodeTiming struct {
	Node     string
	Duration time.Duration
}

// CommitEvent is an offset commit (or a transaction's end).
type CommitEvent struct {
	Duration time.Duration
	Err      error // nil if the commit succeeded
}

// RebalanceKind says which rebalance callback a RebalanceEvent reports.
type RebalanceKind uint8

// Rebalance callbacks.
const (
	RebalanceAssigned RebalanceKind = iota + 1 // partitions assigned: tasks created
	RebalanceRevoked                           // partitions revoked: tasks drained, committed and closed
	RebalanceLost                              // partitions lost: tasks closed, nothing committed
)

// String returns "assigned", "revoked" or "lost".
func (k RebalanceKind) String() string {
	switch k {
	case RebalanceAssigned:
		return "assigned"
	case RebalanceRevoked:
		return "revoked"
	case RebalanceLost:
		return "lost"
	}
	return "unknown"
}

// RebalanceEvent is a rebalance callback that returned.
type RebalanceEvent struct {
	Kind       RebalanceKind
	Partitions int                // partitions assigned, revoked or lost
	Topics     map[string][]int32 // those partitions by topic
	Duration   time.Duration      // how long the callback ran
}

// StoreOp is an operation on a store.
type StoreOp uint8

// Store operations.
const (
	StoreGet    StoreOp = iota + 1 // a key's value read
	StorePut                       // a key's value written
	StoreDelete                    // a key deleted
	StoreRange                     // a range or prefix scan, from its first step to its end
	StoreWrite                     // a batch of writes
)

// String returns "get", "put", "delete", "range" or "write".
func (o StoreOp) String() string {
	switch o {
	case StoreGet:
		return "get"
	case StorePut:
		return "put"
	case StoreDelete:
		return "delete"
	case StoreRange:
		return "range"
	case StoreWrite:
		return "write"
	}
	return "unknown"
}

// StoreOpEvent is a timed store operation.
type StoreOpEvent struct {
	Store    string
	Op       StoreOp
	Duration time.Duration
}

// WithObserver reports what the App does to o (see Observer). Given more
// than once, every observer is called.
func WithObserver(o *Observer) Option {
	return func(a *App) error {
		if o == nil {
			return errors.New("WithObserver: nil observer")
		}
		if o.SampleEvery < 0 {
			return errors.New("WithObserver: negative SampleEvery")
		}
		a.observers = append(a.observers, o)
		return nil
	}
}

// chain returns a func calling a then b; either may be nil.
func chain[T any](a, b func(T)) func(T) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(v T) { a(v); b(v) }
}

// mergeObservers returns one Observer calling each of os.
func mergeObservers(os []*Observer) *Observer {
	m := &Observer{}
	for _, o := range os {
		m.Fetched = chain(m.Fetched, o.Fetched)
		m.Produced = chain(m.Produced, o.Produced)
		m.Processed = chain(m.Processed, o.Processed)
		m.EndToEnd = chain(m.EndToEnd, o.EndToEnd)
		m.Retried = chain(m.Retried, o.Retried)
		m.Committed = chain(m.Committed, o.Committed)
		m.Rebalanced = chain(m.Rebalanced, o.Rebalanced)
		m.StoreOp = chain(m.StoreOp, o.StoreOp)
		m.Restore = chain(m.Restore, o.Restore)
		m.StateChanged = chain(m.StateChanged, o.StateChanged)
		if o.SampleEvery != 0 && (m.SampleEvery == 0 || o.SampleEvery < m.SampleEvery) {
			m.SampleEvery = o.SampleEvery
		}
	}
	return m
}

// applyObservers hands the observers and the state listeners to the
// runtime's configuration; NewApp calls it.
func (a *App) applyObservers() {
	o := mergeObservers(a.observers)
	ls := a.stateListeners
	if f := o.StateChanged; f != nil {
		ls = append(ls, func(old, new State) { f(StateEvent{Old: old, New: new}) })
	}
	if len(ls) > 0 {
		a.cfg.OnState = func(old, new runtime.State) {
			for _, l := range ls {
				l(State(old), State(new))
			}
		}
	}
	if len(a.observers) == 0 {
		return
	}
	every := uint32(64)
	if o.SampleEvery > 0 {
		every = 1
		for every < uint32(min(o.SampleEvery, 1<<30)) {
			every <<= 1
		}
	}
	ro := &runtime.Observer{SampleEvery: every}
	if f := o.Fetched; f != nil {
		ro.Fetched = func(t string, p int32, n int, lag int64) {
			f(FetchEvent{Topic: t, Partition: p, Records: n, Lag: lag})
		}
	}
	if f := o.Produced; f != nil {
		ro.Produced = func(t string, p int32, n, bytes int) {
			f(ProduceEvent{Topic: t, Partition: p, Records: n, Bytes: bytes})
		}
	}
	if f := o.Committed; f != nil {
		ro.Committed = func(d time.Duration, err error) { f(CommitEvent{Duration: d, Err: err}) }
	}
	if f := o.Rebalanced; f != nil {
		ro.Rebalanced = func(k runtime.RebalanceKind, parts map[string][]int32, d time.Duration) {
			ev := RebalanceEvent{Kind: RebalanceKind(k), Duration: d, Topics: make(map[string][]int32, len(parts))}
			for t, ps := range parts {
				ev.Partitions += len(ps)
				ev.Topics[t] = slices.Clone(ps)
			}
			f(ev)
		}
	}
	if f := o.StoreOp; f != nil {
		ro.StoreOp = func(s string, op runtime.StoreOp, d time.Duration) {
			f(StoreOpEvent{Store: s, Op: StoreOp(op), Duration: d})
		}
	}
	if o.Processed != nil || o.EndToEnd != nil || o.Retried != nil {
		no := &graph.NodeObserver{Retried: o.Retried, SampleEvery: every}
		if f := o.Processed; f != nil {
			no.Process = func(n string, d time.Duration) { f(NodeTiming{Node: n, Duration: d}) }
		}
		if f := o.EndToEnd; f != nil {
			no.EndToEnd = func(n string, d time.Duration) { f(NodeTiming{Node: n, Duration: d}) }
		}
		ro.Nodes = no
	}
	if f := o.Restore; f != nil {
		user := a.cfg.OnRestore
		a.cfg.OnRestore = func(p runtime.RestoreProgress) {
			if user != nil {
				user(p)
			}
			f(restoreProgress(p))
		}
	}
	a.cfg.Observer = ro
}

// observeNode wraps the receiver of child node c to report its timings,
// when the task's host observes nodes; otherwise it returns r.
func observeNode[K, V any](in *instance, c *nodeDef, r receiver[K, V]) receiver[K, V] {
	env, ok := in.env.(graph.Observed)
	if !ok {
		return r
	}
	o := env.NodeObserver()
	if o == nil {
		return r
	}
	switch c.Kind {
	case graph.KindProcessor:
		if rn, ok := r.(retryObserver); ok && o.Retried != nil {
			name := c.Name
			rn.observeRetries(func() { o.Retried(name) })
		}
		if o.Process != nil {
			return &timedNode[K, V]{next: r, name: c.Name, fn: o.Process, mask: o.SampleEvery - 1}
		}
	case graph.KindSink:
		if o.EndToEnd != nil {
			return &endToEndNode[K, V]{next: r, name: c.Name, fn: o.EndToEnd, mask: o.SampleEvery - 1}
		}
	}
	return r
}

// timedNode times a sample of a processor node's calls.
type timedNode[K, V any] struct {
	next receiver[K, V]
	name string
	fn   func(string, time.Duration)
	mask uint32
	n    atomic.Uint32
}

func (t *timedNode[K, V]) receive(ctx context.Context, r Record[K, V]) error {
	if !sampled(&t.n, t.mask, &r) {
		return t.next.receive(ctx, r)
	}
	start := time.Now()
	err := t.next.receive(ctx, r)
	t.fn(t.name, time.Since(start))
	return err
}

// endToEndNode reports, for a sample of the records reaching a sink, the
// time since their timestamp.
type endToEndNode[K, V any] struct {
	next receiver[K, V]
	name string
	fn   func(string, time.Duration)
	mask uint32
	n    atomic.Uint32
}

func (t *endToEndNode[K, V]) receive(ctx context.Context, r Record[K, V]) error {
	if sampled(&t.n, t.mask, &r) && !r.Timestamp.IsZero() {
		t.fn(t.name, time.Since(r.Timestamp))
	}
	return t.next.receive(ctx, r)
}

// sampled reports whether r is one of the records to time: one input
// offset in mask+1 (no shared counter to update per record), or, for a
// record not read from a topic (a punctuator's), one call in mask+1.
func sampled[K, V any](n *atomic.Uint32, mask uint32, r *Record[K, V]) bool {
	if r.Origin.Topic != "" {
		return uint32(r.Origin.Offset)&mask == 0
	}
	return n.Add(1)&mask == 0
}

// retryObserver is implemented by processor nodes, which report their
// retries to the func given.
type retryObserver interface {
	observeRetries(fn func())
}

func (n *processorNode[KIn, VIn, KOut, VOut]) observeRetries(fn func()) {
	if n.retry == nil {
		return
	}
	rc := *n.retry
	rc.Retried = fn
	n.retry = &rc
}
