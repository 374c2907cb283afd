package runtime

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Observation: the application's state for health probes, and the hooks
// metrics are built on. Counters that are cheap to keep always are in
// Stats (read when scraped); what needs a value per event (latencies, lag
// per partition) goes to the Observer's funcs, each called only when set.
// Per-record timings are sampled: one record in SampleEvery.

// Observer receives what the runtime does. Every func may be nil; each is
// called from the runtime's goroutines, concurrently, and must return
// quickly.
type Observer struct {
	// Fetched: a poll's records of one input partition, handed to its task;
	// lag is the partition's end (the last stable offset with transactions)
	// minus the offset after the last record.
	Fetched func(topic string, partition int32, records int, lag int64)
	// Produced: a batch of records written to a topic partition (outputs,
	// changelogs, dead letters).
	Produced func(topic string, partition int32, records, bytes int)
	// Committed: an offset commit (or a transaction's) ended after d.
	Committed func(d time.Duration, err error)
	// Rebalanced: a rebalance callback (assigned, revoked, lost) returned
	// after d, for partitions (franz-go's map: read only).
	Rebalanced func(kind RebalanceKind, partitions map[string][]int32, d time.Duration)
	// StoreOp: a sampled store operation took d.
	StoreOp func(store string, op StoreOp, d time.Duration)
	// Nodes observe the task's nodes (see graph.NodeObserver).
	Nodes *graph.NodeObserver
	// SampleEvery: one in how many store operations is timed (a power of
	// two; the typed layer applies it to nodes).
	SampleEvery uint32
}

// RebalanceKind is the rebalance callback a Rebalanced event reports.
type RebalanceKind uint8

// Rebalance callbacks.
const (
	RebalanceAssigned RebalanceKind = iota + 1
	RebalanceRevoked
	RebalanceLost
)

// StoreOp is a store operation a StoreOp event reports.
type StoreOp uint8

// Store operations.
const (
	StoreGet StoreOp = iota + 1
	StorePut
	StoreDelete
	StoreRange
	StoreWrite // a batch
)

// State is the application's lifecycle state.
type State uint8

// States, in the order a run goes through them.
const (
	StateCreated     State = iota // New returned; Run not called
	StateStarting                 // Run called: preparing topics, joining the group
	StateRebalancing              // inside a rebalance callback
	StateRestoring                // a task owned restores its stores
	StateRunning                  // processing
	StateStopping                 // Run's context is done or a fatal error stops it
	StateStopped                  // Run returned nil
	StateFailed                   // Run returned an error
)

// observer is the runtime's state machine and its hooks.
type observer struct {
	Observer
	onState func(old, new State)

	mu          sync.Mutex // orders state changes and their listener calls
	state       atomic.Uint32
	ranOnce     atomic.Bool  // reached StateRunning once
	assigned    atomic.Bool  // the first assignment callback returned
	rebalancing atomic.Int32 // rebalance callbacks running
	stopping    atomic.Bool
	ended       atomic.Pointer[error] // Run's result, once it returned
	lastLoop    atomic.Int64          // unix ns of the loop's last progress
}

// State returns the application's state.
func (r *Runtime) State() State { return State(r.obs.state.Load()) }

// RanOnce reports whether the application reached StateRunning once.
func (r *Runtime) RanOnce() bool { return r.obs.ranOnce.Load() }

// LoopIdle returns how long ago the poll loop last made progress, 0 when
// it is not expected to (not started, in a rebalance, stopping).
func (r *Runtime) LoopIdle() time.Duration {
	switch r.State() {
	case StateRestoring, StateRunning:
		return time.Duration(time.Now().UnixNano() - r.obs.lastLoop.Load())
	}
	return 0
}

// setObserver installs cfg's observer; called by New.
func (r *Runtime) setObserver(o *Observer, onState func(old, new State)) {
	if o != nil {
		r.obs.Observer = *o
	}
	if r.obs.SampleEvery == 0 {
		r.obs.SampleEvery = 64
	}
	r.obs.onState = onState
}

// updateState recomputes the state and tells the listener of a change.
func (r *Runtime) updateState() {
	o := &r.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	var s State
	switch {
	case o.ended.Load() != nil && *o.ended.Load() != nil:
		s = StateFailed
	case o.ended.Load() != nil:
		s = StateStopped
	case o.stopping.Load() || r.fatal.Load() != nil:
		s = StateStopping
	case o.rebalancing.Load() > 0:
		s = StateRebalancing
	case !o.assigned.Load():
		s = StateStarting
	case r.anyRestoring():
		s = StateRestoring
	default:
		s = StateRunning
	}
	old := State(o.state.Swap(uint32(s)))
	if s == StateRunning && !o.ranOnce.Load() {
		o.ranOnce.Store(true)
	}
	if s == StateRunning || s == StateRestoring {
		o.lastLoop.Store(time.Now().UnixNano()) // the loop's clock starts now
	}
	if old != s && o.onState != nil {
		o.onState(old, s)
	}
}

func (r *Runtime) anyRestoring() bool {
	p := r.owned.Load()
	if p == nil {
		return false
	}
	for _, ts := range *p {
		if ts.restoring.Load() {
			return true
		}
	}
	return false
}

// observeRun tracks Run: Starting now, Stopping once ctx is done, Stopped
// or Failed when the returned func gets Run's result.
func (r *Runtime) observeRun(ctx context.Context) func(*error) {
	r.updateState()
	stop := context.AfterFunc(ctx, func() { r.obs.stopping.Store(true); r.updateState() })
	return func(err *error) {
		stop()
		e := *err
		r.obs.ended.Store(&e)
		r.updateState()
	}
}

// observeRebalance marks a rebalance callback running; the returned func
// ends it. Deferred by the callbacks: defer r.observeRebalance(kind, parts)().
func (r *Runtime) observeRebalance(kind RebalanceKind, parts map[string][]int32) func() {
	start := time.Now()
	r.obs.rebalancing.Add(1)
	r.updateState()
	return func() {
		if kind == RebalanceAssigned {
			r.obs.assigned.Store(true)
		}
		r.obs.rebalancing.Add(-1)
		r.updateState()
		if f := r.obs.Rebalanced; f != nil {
			f(kind, parts, time.Since(start))
		}
	}
}

// observeFetch counts a fetched partition's records handed to its task,
// and marks the loop's progress.
func (r *Runtime) observeFetch(p *kgo.FetchTopicPartition) {
	if len(p.Records) == 0 {
		return
	}
	r.stats.consumed.Add(int64(len(p.Records)))
	r.obs.lastLoop.Store(time.Now().UnixNano())
	if f := r.obs.Fetched; f != nil {
		end := p.HighWatermark
		if r.txn != nil {
			end = p.LastStableOffset
		}
		f(p.Topic, p.Partition, len(p.Records), max(0, end-(p.Records[len(p.Records)-1].Offset+1)))
	}
}

// observeLoop marks the loop's progress (once per iteration).
func (r *Runtime) observeLoop() { r.obs.lastLoop.Store(time.Now().UnixNano()) }

// observeCommit reports a commit that began at start and ended with *err.
func (r *Runtime) observeCommit(start time.Time, err *error) {
	if f := r.obs.Committed; f != nil {
		f(time.Since(start), *err)
	}
}

// unitsInFlight returns the units of work started and not complete.
func (r *Runtime) unitsInFlight() int64 {
	var n int64
	if p := r.owned.Load(); p != nil {
		for _, ts := range *p {
			n += ts.active.Load()
		}
	}
	return n
}

// produceHook counts produced batches (a kgo hook of the main client).
type produceHook struct{ r *Runtime }

func (h produceHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, partition int32, m kgo.ProduceBatchMetrics) {
	h.r.stats.produced.Add(int64(m.NumRecords))
	if f := h.r.obs.Produced; f != nil {
		f(topic, partition, m.NumRecords, m.UncompressedBytes)
	}
}

// NodeObserver implements graph.Observed for the tasks of the runtime.
func (h *taskHost) NodeObserver() *graph.NodeObserver { return h.r.obs.Nodes }

// observeStore wraps b to time its operations (sampled) when a StoreOp
// observer is set; otherwise it returns b.
func (r *Runtime) observeStore(name string, b store.Backend) store.Backend {
	if r.obs.StoreOp == nil {
		return b
	}
	return &timedStore{Backend: b, name: name, r: r}
}

// timedStore times a sample of a store's operations.
type timedStore struct {
	store.Backend
	name string
	r    *Runtime
	n    atomic.Uint32 // operations, for sampling (one counter per task's store: rarely contended)
}

// sample returns the start time of an operation to time, or the zero time.
func (s *timedStore) sample() time.Time {
	if s.n.Add(1)&(s.r.obs.SampleEvery-1) != 0 {
		return time.Time{}
	}
	return time.Now()
}

func (s *timedStore) done(op StoreOp, start time.Time) {
	if !start.IsZero() {
		s.r.obs.StoreOp(s.name, op, time.Since(start))
	}
}

func (s *timedStore) Get(key []byte) ([]byte, bool, error) {
	t := s.sample()
	v, ok, err := s.Backend.Get(key)
	s.done(StoreGet, t)
	return v, ok, err
}

// GetMany forwards to the backend's batch read (store.BatchGetter), timed
// as one Get.
func (s *timedStore) GetMany(keys [][]byte) ([][]byte, []bool, error) {
	t := s.sample()
	v, ok, err := store.GetMany(s.Backend, keys)
	s.done(StoreGet, t)
	return v, ok, err
}

func (s *timedStore) Set(key, value []byte) error {
	t := s.sample()
	err := s.Backend.Set(key, value)
	s.done(StorePut, t)
	return err
}

func (s *timedStore) Delete(key []byte) error {
	t := s.sample()
	err := s.Backend.Delete(key)
	s.done(StoreDelete, t)
	return err
}

func (s *timedStore) Write(b *store.Batch) error {
	t := s.sample()
	err := s.Backend.Write(b)
	s.done(StoreWrite, t)
	return err
}

// Range times the iteration, from its first step to its end (the caller's
// work between steps included).
func (s *timedStore) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	seq := s.Backend.Range(lo, hi)
	return func(yield func(store.Entry, error) bool) {
		t := s.sample()
		seq(yield)
		s.done(StoreRange, t)
	}
}
