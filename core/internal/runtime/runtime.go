// Package runtime runs a topology on Kafka with franz-go: group membership
// and task assignment, the poll-process-commit loop, changelogged stores and
// their restoration, error policies and internal topics.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/task"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Action is what an error policy does with a failed record.
type Action uint8

// Actions.
const (
	Fail       Action = iota // stop the application with the error
	Skip                     // count, log and continue
	DeadLetter               // write the record to a dead-letter topic and continue
)

// Policy is the error policy of one stage.
type Policy struct {
	Action Action
	Topic  string // dead-letter topic
}

// Config is everything the runtime needs.
type Config struct {
	Topology *graph.Topology
	AppID    string
	Brokers  []string
	StateDir string
	// StateCleanupDelay is how long the state directory of a task no
	// longer owned is kept; 0 means 10 minutes.
	StateCleanupDelay time.Duration
	CommitInterval    time.Duration
	Logger            *slog.Logger
	KgoOpts           []kgo.Opt
	Policies          map[graph.Stage]Policy
	ReplicationFactor int16
	MaxPollRecords    int
	OnRestore         func(RestoreProgress)
	// Concurrency is the number of worker goroutines shared by the tasks
	// of the concurrent ordering modes.
	Concurrency int
	// MaxInFlight bounds, per input partition, the records dispatched and
	// not yet committable; past it the partition's fetching pauses.
	MaxInFlight int
	// MaxInFlightTotal bounds the same over all the partitions; past it
	// each partition dispatched pauses.
	MaxInFlightTotal int
	// MaxMetadataBytes is the broker's offset metadata limit
	// (offset.metadata.max.bytes).
	MaxMetadataBytes int
	// Transactions makes every commit a Kafka transaction fenced by the
	// group generation (see txn.go).
	Transactions bool
	// SessionTimeout is the consumer group's session timeout; 0 means
	// franz-go's default (45s).
	SessionTimeout time.Duration
	// InlineBelow: in the concurrent modes, the records of a task whose
	// measured processing time averages less than this are processed in
	// offset-order segments when their key has nothing in flight (see
	// dispatchPartition). 0 means the default, 10µs; negative turns it off.
	InlineBelow time.Duration
}

// Stats are the runtime's counters.
type Stats struct {
	Processed        int64 // input records handled: processed, skipped or dead-lettered (or dispatched, in the concurrent modes)
	Skipped          int64 // records skipped by a policy
	DeadLettered     int64 // records written to a dead-letter topic
	Commits          int64 // offset commits
	Restored         int64 // changelog records applied by restoration
	SkippedCompleted int64 // records not processed again because the commit metadata listed them as complete
	MetadataDropped  int64 // commits whose completed-offsets metadata exceeded the limit (those records will be replayed)
	Inline           int64 // records of the concurrent modes processed in offset-order segments because their work is cheap
	InlineStalls     int64 // segments taken back from a stalled record and handed to the workers
	Tasks            int   // tasks currently owned
}

type stats struct {
	processed, skipped, deadLettered, commits, restored, skippedDone, metaDropped, inline, inlineStalls atomic.Int64
}

// Runtime is one running application instance.
type Runtime struct {
	cfg Config
	log *slog.Logger
	cl  *kgo.Client
	adm *kadm.Client

	// mu guards tasks. The poll loop holds it while processing a poll's
	// records; the rebalance callbacks hold it while creating, committing
	// and closing tasks. BlockRebalanceOnPoll keeps them from overlapping in
	// time anyway; the lock makes the hand-over visible to the race detector.
	// Workers never take it: they reach their task through their queue.
	mu     sync.Mutex
	tasks  map[graph.TaskID]*taskState
	byTP   map[string]map[int32]*taskState
	subOf  map[string]*graph.Subtopology
	killed atomic.Bool

	partMu     sync.Mutex
	partitions map[string]int32

	// closing holds the tasks given up whose processors still run (see
	// closeTask); a task assigned again waits for its earlier instance.
	closingMu sync.Mutex
	closing   map[graph.TaskID]*taskState

	txn            *kgo.GroupTransactSession // Transactions only (see txn.go)
	txnDoomed      bool                      // the open transaction must abort: a rebalance took tasks (guarded by mu)
	txnAborted     atomic.Bool               // records of the open transaction were aborted: it must abort
	inFlightTotal  atomic.Int64              // tracker entries of all tasks (see partTracker.total)
	txnSuspendDone bool                      // the transaction open when the lease ran out was aborted (loop only)
	holdStarts     atomic.Bool               // a transaction commits: no processor call starts
	rebuilds       []*taskState              // tasks closed to be rebuilt once their processors return (guarded by mu)
	rebuilding     atomic.Bool               // len(rebuilds) > 0, for the loop's poll wait
	rewound        map[string]map[int32]bool // partitions rewound in this loop iteration: their polled records are dropped (loop only)
	given          map[string]map[int32]bool // partitions given up (revoked, lost) since the loop last processed (guarded by mu)

	lease     *lease                       // see lease.go
	suspended atomic.Bool                  // the tasks were fenced when the lease ran out
	owned     atomic.Pointer[[]*taskState] // the tasks, for watchLease

	// fatal is the first fatal error found outside the loop's own flow (by
	// a worker, a produce callback, a rebalance callback).
	fatal atomic.Pointer[error]

	ready        *readyQueue
	chunk        []*unitQueue // queues not yet handed to the workers (loop only)
	pausedCount  atomic.Int64 // partitions paused for backpressure (read by the loop outside mu)
	avgUnit      atomic.Int64 // moving average of a unit's processing time, ns
	workers      sync.WaitGroup
	punctPending atomic.Int64

	produceCtx context.Context
	stopCtx    context.Context // Run's context: done when the app shuts down
	stats      stats
}

// taskState is a task with its completion tracking.
type taskState struct {
	t         *task.Task
	sub       *graph.Subtopology
	async     bool                    // dispatched to the workers
	ctx       context.Context         // canceled when the task is dropped
	cancel    context.CancelFunc      //
	trackers  map[string]*partTracker // per source topic
	committed map[string]string       // last committed offset+metadata per topic, to skip no-op commits
	paused    map[string]bool
	durable   []*durableStore // flushed before each commit (see durableStore)
	active    atomic.Int64    // units started and not complete

	// Ownership (see fence.go).
	draining  atomic.Bool   // no new unit starts: the task is being given up
	stopped   atomic.Bool   // fenced: its writes are refused and none of its units completes
	failed    atomic.Bool   // a changelog write failed: nothing more of it is committed
	orphaned  atomic.Bool   // fenced when the membership lease ran out: nothing of it is committed
	gate      atomic.Int64  // writes between their ownership check and their Produce call
	unacked   atomic.Int64  // records produced and not yet acknowledged or failed
	running   atomic.Int64  // units inside the task's processors on workers or segments
	inProcess atomic.Int64  // processor calls running, with transactions (see enterProcess)
	closed    chan struct{} // closed once its processors and stores are closed

	changelogs []*changelogBackend
	waiters    waiters

	qmu    sync.Mutex
	queues map[string]*unitQueue // KEY / PARTITION queues in flight
	open   *unitQueue            // UNORDERED group being filled

	inlineOK   bool         // the sub-topology may run records inline (no batches, no retries)
	avgWork    atomic.Int64 // moving average of a record's processing time, ns
	samples    atomic.Int64 // records measured into avgWork (saturates)
	slowUntil  atomic.Int64 // unix ns: no inline processing before, a record having been slow
	seg        *segment     // running segment (loop only)
	segStalled atomic.Bool  // a segment was taken back and its record in progress still runs
}

// New validates cfg and returns a runtime; Run starts it.
func New(cfg Config) (*Runtime, error) {
	if cfg.StateCleanupDelay <= 0 {
		cfg.StateCleanupDelay = 10 * time.Minute
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 5 * time.Second
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 50000
	}
	if cfg.MaxInFlightTotal <= 0 {
		cfg.MaxInFlightTotal = 200000
	}
	if cfg.InlineBelow == 0 {
		cfg.InlineBelow = 10 * time.Microsecond
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	r := &Runtime{
		cfg:        cfg,
		log:        cfg.Logger.With("app", cfg.AppID),
		tasks:      map[graph.TaskID]*taskState{},
		byTP:       map[string]map[int32]*taskState{},
		subOf:      map[string]*graph.Subtopology{},
		partitions: map[string]int32{},
		closing:    map[graph.TaskID]*taskState{},
		lease:      &lease{},
	}
	for _, st := range cfg.Topology.Subtopologies {
		for _, t := range st.SourceTopics {
			r.subOf[t] = st
		}
	}
	return r, nil
}

func (r *Runtime) baseOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...)}
	return append(opts, r.cfg.KgoOpts...)
}

// Stats returns the current counters.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	n := len(r.tasks)
	r.mu.Unlock()
	return Stats{
		Processed: r.stats.processed.Load(), Skipped: r.stats.skipped.Load(), DeadLettered: r.stats.deadLettered.Load(),
		Commits: r.stats.commits.Load(), Restored: r.stats.restored.Load(), SkippedCompleted: r.stats.skippedDone.Load(),
		MetadataDropped: r.stats.metaDropped.Load(), Inline: r.stats.inline.Load(), InlineStalls: r.stats.inlineStalls.Load(), Tasks: n,
	}
}

// Kill stops the runtime as a crash would: no flush, no commit, no
// checkpoint. Work in flight is lost and redone by the next owner. For tests.
func (r *Runtime) Kill() {
	r.killed.Store(true)
}

// Run runs until ctx is done (then shuts down gracefully), Kill is called,
// or a fatal error happens.
func (r *Runtime) Run(ctx context.Context) (err error) {
	var sourceTopics []string
	async := false
	for _, st := range r.cfg.Topology.Subtopologies {
		sourceTopics = append(sourceTopics, st.SourceTopics...)
		async = async || isAsync(st)
	}
	admCl, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	r.adm = kadm.NewClient(admCl)
	defer r.adm.Close()
	if err := r.prepareTopicsRetrying(ctx); err != nil {
		return fmt.Errorf("kstreams: preparing topics: %w", err)
	}

	r.stopCtx = ctx
	produceCtx, cancelProduce := context.WithCancel(context.Background())
	defer cancelProduce()
	r.produceCtx = produceCtx
	if async {
		r.ready = newReadyQueue()
		for range r.cfg.Concurrency {
			r.workers.Add(1)
			go r.worker()
		}
		defer func() {
			r.ready.close()
			r.workers.Wait()
		}()
	}
	session := r.cfg.SessionTimeout
	if session == 0 {
		session = 45 * time.Second
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(min(3*time.Second, session/3)),
		kgo.ConsumerGroup(r.cfg.AppID),
		kgo.ConsumeTopics(sourceTopics...),
		kgo.Balancers(newTaskBalancer(r.cfg.Topology).withLogger(r.log)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.ProducerLinger(5 * time.Millisecond),
		// A partition resumed after backpressure is fetched only when the
		// fetch in flight returns; franz-go's default wait (5 s) stalled
		// resumed partitions for that long when the others had no new data.
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.WithHooks(r.lease),
	}, r.cfg.KgoOpts...)
	var cl *kgo.Client
	if r.cfg.Transactions {
		id, err := r.transactionalID()
		if err != nil {
			return fmt.Errorf("kstreams: %w", err)
		}
		// A transaction lives a commit interval plus the wait for the
		// work in flight; past the session timeout (or that) the brokers
		// abort it, so a stale owner's open transaction holds back its
		// successor's restore no longer than that.
		txnTimeout := max(session, r.cfg.CommitInterval+txnQuiesce+time.Second)
		txnOpts := append([]kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(txnTimeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)
		r.txn, err = kgo.NewGroupTransactSession(txnOpts...)
		if err != nil {
			return fmt.Errorf("kstreams: creating transactional client: %w", err)
		}
		cl = r.txn.Client()
		if err := r.txn.Begin(); err != nil {
			cl.Close()
			return fmt.Errorf("kstreams: beginning a transaction: %w", err)
		}
	} else if cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("kstreams: creating client: %w", err)
	}
	r.cl = cl
	r.lease.setSession(cl.OptValue(kgo.SessionTimeout).(time.Duration))
	r.lease.hbEvery.Store(int64(cl.OptValue(kgo.HeartbeatInterval).(time.Duration)))
	leaseCtx, stopLease := context.WithCancel(context.Background())
	defer stopLease()
	go r.watchLease(leaseCtx)
	r.log.Info("started", "subtopologies", len(r.cfg.Topology.Subtopologies), "source_topics", sourceTopics)

	err = r.loop(ctx)
	if r.killed.Load() {
		cancelProduce()
		cl.Close()
		r.closeTasks()
		return err
	}
	// Graceful shutdown (bounded by ShutdownBudget): no new work starts;
	// work in flight gets a bounded time to complete; the tasks are fenced
	// and their outputs acknowledged (or aborted); whatever is complete is
	// committed; the rest is left for the next owner.
	// Hold rebalances off while the tasks are committed (a canceled poll
	// blocks them, BlockRebalanceOnPoll): a revoke callback would wait for
	// mu, and with transactions the session's own lock, which End needs.
	done, cancelPoll := context.WithCancel(context.Background())
	cancelPoll()
	cl.PollRecords(done, 1)
	r.mu.Lock()
	tasks := r.allTasks()
	var cerr error
	drainUntil := time.Now().Add(shutdownDrain)
	if r.txn != nil {
		// The transaction commits once the work in flight completed.
		commitCtx, cancel := context.WithTimeout(context.Background(), shutdownRelease+shutdownCommit)
		cerr = r.commitTxn(commitCtx, shutdownDrain, true)
		cancel()
	}
	r.drain(tasks, time.Until(drainUntil))
	for _, ts := range tasks {
		r.fence(ts, false)
	}
	r.releaseTasks(tasks, false, time.Now().Add(shutdownRelease))
	if r.txn == nil {
		commitCtx, cancel := context.WithTimeout(context.Background(), shutdownCommit)
		cerr = r.commitTasks(commitCtx, tasks)
		cancel()
	}
	r.mu.Unlock()
	cl.AllowRebalance()
	if cerr != nil {
		err = errors.Join(err, cerr)
	}
	cl.Close() // leaves the group; onRevoked closes the tasks
	r.closeTasks()
	r.waitClosing(shutdownClose)
	r.log.Info("stopped", "processed", r.stats.processed.Load())
	return err
}

// The parts of a graceful shutdown's budget; they add up to ShutdownBudget.
const (
	shutdownDrain   = 15 * time.Second // work in flight completes
	shutdownRelease = 4 * time.Second  // outputs of fenced tasks acknowledged
	shutdownCommit  = 4 * time.Second  // checkpoints and the offset commit
	shutdownClose   = 2 * time.Second  // processors still running return
	// ShutdownBudget bounds how long Run takes to return once its context
	// is done (leaving the group aside): it fits Kubernetes' default 30 s
	// termination grace period.
	ShutdownBudget = shutdownDrain + shutdownRelease + shutdownCommit + shutdownClose

	revokeDrain   = 10 * time.Second // a revoked task's work in flight completes
	txnQuiesce    = 2 * time.Second  // processor calls running return before a transaction commits
	revokeRelease = 5 * time.Second  // a revoked task's outputs are acknowledged
)

// fatalFetchError reports whether a fetch error needs the operator: a
// non-retriable Kafka error (authorization, for instance). Everything else
// (network errors, retriable Kafka errors, data-loss notices after a
// truncation) franz-go handles by itself. A member kicked from its group
// (a session that expired: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ...) is
// reported here too; franz-go rejoins, so only an authorization or a group
// id the brokers refuse is fatal then.
func fatalFetchError(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) || ke.Retriable {
		return false
	}
	var gs *kgo.ErrGroupSession
	if errors.As(err, &gs) {
		return errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.InvalidGroupID) ||
			errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
	}
	return true
}

// mayInline reports whether st's records may run on the poll loop when
// their processing is cheap: the concurrent modes without batches (which
// need grouping) or retries (whose backoff must not hold up the loop).
func mayInline(st *graph.Subtopology) bool {
	return st.Order != graph.OrderPartition && st.Batch == nil && !hasRetry(st)
}

// isAsync reports whether st's records go to the workers: the concurrent
// modes, and the partition mode when retries or batches need a worker that
// may wait without holding up the other partitions.
func isAsync(st *graph.Subtopology) bool {
	return st.Order != graph.OrderPartition || st.Batch != nil || hasRetry(st)
}

// hasRetry reports whether a processor of st retries its failures.
func hasRetry(st *graph.Subtopology) bool {
	for _, n := range st.Nodes {
		if n.Retry != nil {
			return true
		}
	}
	return false
}

func (r *Runtime) allTasks() []*taskState {
	ts := make([]*taskState, 0, len(r.tasks))
	for _, t := range r.tasks {
		ts = append(ts, t)
	}
	return ts
}

// loop polls and processes until ctx is done, Kill, or a fatal error.
func (r *Runtime) loop(ctx context.Context) error {
	nextCommit := time.Now().Add(r.cfg.CommitInterval)
	nextPunctuate := time.Now().Add(100 * time.Millisecond)
	nextCleanup := time.Now().Add(r.cleanupInterval())
	segments := false // some task has a segment running
	for {
		if ctx.Err() != nil || r.killed.Load() {
			return nil
		}
		wait := min(time.Until(nextCommit), time.Until(nextPunctuate))
		if segments {
			wait = min(wait, stallTick/2) // check them soon
		}
		if r.pausedCount.Load() > 0 || r.rebuilding.Load() {
			// Paused partitions resume only here: look again soon.
			wait = min(wait, 2*time.Millisecond)
		}
		pollCtx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		fetches := r.cl.PollRecords(pollCtx, r.cfg.MaxPollRecords)
		cancel()
		if fetches.IsClientClosed() || r.killed.Load() {
			r.cl.AllowRebalance() // a blocked rebalance would block leaving the group
			return nil
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if !fatalFetchError(err) {
				// Broker restarts, leader moves, dial errors: franz-go retries
				// these itself and reports them for visibility only.
				r.log.Warn("fetch error; retrying", "topic", t, "partition", p, "error", err)
				return
			}
			fetchErr = errors.Join(fetchErr, fmt.Errorf("fetching %s/%d: %w", t, p, err))
		})
		if fetchErr != nil {
			r.cl.AllowRebalance()
			return fmt.Errorf("kstreams: %w (non-retriable fetch error: check the topic exists and the client is authorized)", fetchErr)
		}
		r.mu.Lock()
		clear(r.rewound)
		var err error
		if r.txn != nil && (r.txnDoomed || r.txnAborted.Load() || r.suspended.Load() && !r.txnSuspendDone) {
			// A rebalance took tasks or the lease ran out: the open
			// transaction cannot commit; abort it and rebuild now.
			r.txnSuspendDone = r.suspended.Load()
			err = r.commitTxn(ctx, 0, false)
		}
		if err == nil {
			err = r.readopt(ctx)
		}
		if err == nil {
			err = r.rebuildPending(ctx)
		}
		if err == nil {
			err = r.process(ctx, fetches)
		}
		clear(r.given)
		segments = r.checkSegments()
		r.resumeDrained()
		if p := r.fatal.Load(); err == nil && p != nil {
			err = *p
		}
		if err == nil && time.Now().After(nextPunctuate) {
			err = r.punctuateWallClock(ctx)
			nextPunctuate = time.Now().Add(100 * time.Millisecond)
		}
		if err == nil && time.Now().After(nextCommit) {
			if r.txn != nil {
				err = r.commitTxn(ctx, txnQuiesce, false)
			} else {
				err = r.commitTasks(ctx, r.allTasks())
			}
			nextCommit = time.Now().Add(r.cfg.CommitInterval)
		}
		if err == nil && time.Now().After(nextCleanup) {
			r.cleanState(time.Now())
			nextCleanup = time.Now().Add(r.cleanupInterval())
		}
		if err != nil && !r.killed.Load() && r.txn == nil {
			// Commit what is complete, then stop.
			tasks := r.allTasks()
			r.drain(tasks, 10*time.Second)
			if cerr := r.commitTasks(context.Background(), tasks); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		r.mu.Unlock()
		r.cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// process runs a poll's records: partitions of synchronous tasks one after
// another on this goroutine, each in offset order; records of concurrent
// tasks go to the workers.
func (r *Runtime) process(ctx context.Context, fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil || len(p.Records) == 0 || r.killed.Load() {
			return
		}
		if r.rewound[p.Topic][p.Partition] {
			return // fetched again from the committed offset
		}
		ts := r.byTP[p.Topic][p.Partition]
		if ts == nil {
			err = r.noTask(p)
			return
		}
		if ts.draining.Load() {
			// Polled before the partition was revoked: not ours any more.
			return
		}
		if ts.async {
			r.dispatchPartition(ts, p)
			return
		}
		err = r.processSync(ctx, ts, p)
	})
	return err
}

// processSync processes a partition's records in order on the loop. They
// form one unit of completion: committable once all their outputs and
// changelog writes are acknowledged.
func (r *Runtime) processSync(ctx context.Context, ts *taskState, p kgo.FetchTopicPartition) error {
	tr := ts.trackers[p.Topic]
	c := newCompletion(r, ts)
	ts.active.Add(1)
	pctx := c.context(ts.ctx)
	done := 0
	var err error
	for _, rec := range p.Records {
		if r.killed.Load() || done&255 == 255 && ctx.Err() != nil || ts.stopped.Load() {
			break
		}
		if tr.hasSkip.Load() && tr.skipDone(rec.Offset) {
			r.stats.skippedDone.Add(1)
		} else if perr := ts.t.Process(pctx, rec); perr != nil {
			if ts.stopped.Load() {
				break // fenced: its writes were refused; its next owner processes it
			}
			if err = r.handleRecordError(pctx, rec, perr); err != nil {
				break
			}
		}
		done++
	}
	if done > 0 {
		c.entries = []entryRef{{tr, tr.add(p.Records[0].Offset, p.Records[done-1].Offset+1)}}
		r.stats.processed.Add(int64(done))
	}
	c.processed()
	return err
}

// noTask handles records fetched for a partition without a task: they are
// neither processed nor committed, which is right only where they will be
// fetched again; otherwise the instance stops rather than drop them.
func (r *Runtime) noTask(p kgo.FetchTopicPartition) error {
	switch {
	case r.awaitsRebuild(p.Topic, p.Partition): // fetched again from the committed offset
		return nil
	case r.fatal.Load() != nil: // its task could not be created: Run stops with that error
		return nil
	case r.given[p.Topic][p.Partition]: // polled before it was given up: not ours any more
		return nil
	case r.subOf[p.Topic] == nil: // not this topology's (see onAssigned)
		return nil
	}
	return fmt.Errorf("kstreams: fetched %d records of %s/%d (offsets %d-%d) but this instance has no task for the partition; they are neither processed nor committed (a bug: please report it)",
		len(p.Records), p.Topic, p.Partition, p.Records[0].Offset, p.Records[len(p.Records)-1].Offset)
}

// handleRecordError applies the policy of the failed stage; it returns the
// error if the policy is to fail. ctx carries the record's completion, so a
// dead letter is acknowledged before the record's offset is committed.
func (r *Runtime) handleRecordError(ctx context.Context, rec *kgo.Record, err error) error {
	if c := completionFrom(ctx); c != nil && c.ts != nil && errors.Is(err, store.ErrFenced) {
		// Not the record's fault: the task has a newer owner, which
		// processes the record again.
		r.storeFenced(c.ts, "", err)
		return nil
	}
	var re *graph.RecordError
	if !errors.As(err, &re) {
		return fmt.Errorf("kstreams: %w", err) // a punctuator error: no record to blame
	}
	p := r.cfg.Policies[re.Stage]
	switch p.Action {
	case Skip:
		r.stats.skipped.Add(1)
		r.log.Warn("skipped record after error", "topic", re.Topic, "partition", re.Partition, "offset", re.Offset,
			"node", re.Node, "stage", re.Stage.String(), "error", re.Err)
		return nil
	case DeadLetter:
		r.deadLetter(completionFrom(ctx), rec, re.Stage, re.Node, re.Err)
		return nil
	}
	return fmt.Errorf("kstreams: %w (the record is not committed and will be retried on restart; to move past it, fix the cause or set a skip or dead-letter policy for %s errors)", err, re.Stage)
}

// deadLetter writes the original record to the stage's dead-letter topic
// with headers describing the failure, as part of c.
func (r *Runtime) deadLetter(c *completion, rec *kgo.Record, stage graph.Stage, node string, cause error) {
	p := r.cfg.Policies[stage]
	h := make([]kgo.RecordHeader, 0, len(rec.Headers)+8)
	h = append(h, rec.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: "kstreams.error.stage", Value: []byte(stage.String())},
		kgo.RecordHeader{Key: "kstreams.error.message", Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: "kstreams.error.node", Value: []byte(node)},
		kgo.RecordHeader{Key: "kstreams.source.topic", Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: "kstreams.source.partition", Value: fmt.Appendf(nil, "%d", rec.Partition)},
		kgo.RecordHeader{Key: "kstreams.source.offset", Value: fmt.Appendf(nil, "%d", rec.Offset)},
		kgo.RecordHeader{Key: "kstreams.source.timestamp", Value: fmt.Appendf(nil, "%d", rec.Timestamp.UnixMilli())},
	)
	r.stats.deadLettered.Add(1)
	r.log.Warn("dead-lettered record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
		"dead_letter_topic", p.Topic, "stage", stage.String(), "error", cause)
	// Refused if the task is fenced: then c never completes.
	_ = c.produce(&kgo.Record{Topic: p.Topic, Partition: -1, Key: rec.Key, Value: rec.Value, Headers: h, Timestamp: rec.Timestamp})
}

// onProduced applies the production error policy to a record of ts
// (nil: of no task) that the brokers refused. It runs in franz-go's promise
// goroutine and returns whether the record's unit may still complete.
func (r *Runtime) onProduced(ts *taskState, rec *kgo.Record, err error) bool {
	if r.killed.Load() {
		return false
	}
	if ts != nil && ts.stopped.Load() {
		// Aborted (or failed) after the task was given up: its next owner
		// processes the record again.
		return false
	}
	p := r.cfg.Policies[graph.StageProduce]
	switch {
	case p.Action == Skip || p.Action == DeadLetter && rec.Topic == p.Topic:
		r.stats.skipped.Add(1)
		r.log.Warn("skipped record that failed to produce", "topic", rec.Topic, "partition", rec.Partition, "error", err)
		return true
	case p.Action == DeadLetter:
		// Producing from a promise could block on a full buffer: hand the
		// dead letter to its own goroutine, holding an untracked count.
		// The count taken here is released by c: commits wait for it.
		r.punctPending.Add(1)
		go func() {
			c := newCompletion(r, nil)
			c.punct = true
			r.deadLetter(c, rec, graph.StageProduce, "", err)
			c.processed()
		}()
		return true
	}
	r.setFatal(fmt.Errorf("kstreams: producing to %s/%d failed: %w (check the topic exists, the client's authorization and the record size limits)", rec.Topic, rec.Partition, err))
	return false
}

// commitTasks commits, per input partition of tasks, the lowest offset not
// yet complete, with the complete offsets above it in the metadata.
//
// Invariant (at-least-once): an offset is committable only when its record
// and all earlier records of its partition are complete: processed, every
// record they produced (outputs, dead letters) acknowledged, and every
// changelog write made by then acknowledged (see completion). Persistent
// stores are flushed and checkpointed before the commit. Wall-clock
// punctuations are not tied to offsets: the commit waits for their outputs.
func (r *Runtime) commitTasks(ctx context.Context, tasks []*taskState) error {
	if r.killed.Load() || r.cl == nil {
		return nil
	}
	// Outputs of wall-clock punctuations (and dead letters of failed
	// outputs) are not tied to an offset: a commit waits for them a
	// little, and is skipped if they are late (a produce outage): the next
	// round tries again.
	for deadline := time.Now().Add(min(time.Second, r.cfg.CommitInterval/2)); r.punctPending.Load() > 0; {
		if time.Now().After(deadline) {
			r.log.Warn("outputs of punctuations not acknowledged yet; skipping this commit round", "pending", r.punctPending.Load())
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	metadata := map[string]map[int32]string{}
	type pending struct {
		ts    *taskState
		topic string
		key   string
		off   int64
		meta  string
	}
	var updates []pending
	for _, ts := range tasks {
		if ts.failed.Load() || ts.orphaned.Load() {
			// A changelog write failed (its state is not durable), or the
			// task was fenced when the membership lease ran out or by its
			// store: another member may own it, and write its changelog.
			continue
		}
		part := ts.t.ID().Partition
		var mine []pending
		for topic, tr := range ts.trackers {
			off, done, ok := tr.commitPoint()
			if !ok {
				continue
			}
			meta := encodeDone(off, done)
			if len(meta) > r.cfg.MaxMetadataBytes {
				// Too many completed records above a slow one: commit
				// without the map; they will be processed again.
				r.stats.metaDropped.Add(1)
				r.log.Warn("completed-offsets metadata exceeds the broker's limit; committing without it, so completed records above the committed offset will be replayed after a restart",
					"topic", topic, "partition", part, "committed", off, "completed_above", len(done), "bytes", len(meta), "limit", r.cfg.MaxMetadataBytes)
				meta = ""
			}
			key := fmt.Sprintf("%d|%s", off, meta)
			if ts.committed[topic] == key {
				continue
			}
			mine = append(mine, pending{ts, topic, key, off, meta})
		}
		if len(mine) == 0 {
			continue
		}
		if err := r.flushStores(ts, allStores); err != nil {
			// Without the flush the task's offsets are not committed this
			// round: its records are reprocessed after a crash, nothing is
			// lost.
			r.log.Warn("flushing stores failed; not committing the task's offsets this round", "task", ts.t.ID().String(), "error", err)
			continue
		}
		for _, u := range mine {
			if offsets[u.topic] == nil {
				offsets[u.topic] = map[int32]kgo.EpochOffset{}
				metadata[u.topic] = map[int32]string{}
			}
			offsets[u.topic][part] = kgo.EpochOffset{Epoch: -1, Offset: u.off}
			metadata[u.topic][part] = u.meta
		}
		updates = append(updates, mine...)
	}
	if len(offsets) == 0 {
		return nil
	}
	cctx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if m := metadata[t.Topic][t.Partitions[j].Partition]; m != "" {
					t.Partitions[j].Metadata = &m
				}
			}
		}
		return nil
	})
	var commitErr error
	r.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					commitErr = errors.Join(commitErr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e))
				}
			}
		}
	})
	if commitErr != nil {
		// Offsets not committed are processed again by the next owner:
		// duplicates, not loss. A rebalance in progress causes this.
		r.log.Warn("offset commit failed; the records since the last commit will be reprocessed by their next owner", "error", commitErr)
		return nil
	}
	for _, u := range updates {
		u.ts.committed[u.topic] = u.key
	}
	r.stats.commits.Add(1)
	return nil
}

// punctuateWallClock fires due wall-clock punctuators. Their outputs are
// tracked as punctuation units, which commits wait for.
func (r *Runtime) punctuateWallClock(ctx context.Context) error {
	now := time.Now()
	for _, ts := range r.tasks {
		if ts.stopped.Load() || !ts.t.WallClockDue(now) {
			continue
		}
		c := newCompletion(r, ts)
		c.punct = true
		ts.active.Add(1)
		r.punctPending.Add(1)
		err := ts.t.PunctuateWallClock(c.context(ts.ctx), now)
		c.processed()
		if err != nil {
			return fmt.Errorf("kstreams: %w", err)
		}
	}
	return nil
}

// onAssigned creates and restores the tasks of newly assigned partitions.
func (r *Runtime) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	if r.killed.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var committed kadm.OffsetResponses
	for topic, parts := range assigned {
		st := r.subOf[topic]
		if st == nil {
			// Assigned by a leader running another topology: this one
			// cannot process it; its records stay in Kafka, uncommitted.
			r.log.Error("assigned a topic this instance's topology does not read; not consuming it (finish the rolling upgrade)", "topic", topic, "partitions", parts)
			r.cl.PauseFetchPartitions(map[string][]int32{topic: parts})
			continue
		}
		for _, p := range parts {
			id := graph.TaskID{Subtopology: st.ID, Partition: p}
			if _, ok := r.tasks[id]; ok {
				continue
			}
			if committed == nil && isAsync(st) {
				committed = r.fetchCommitted(ctx)
			}
			ts, err := r.newTask(ctx, st, p, committed)
			if err != nil && r.stopCtx.Err() != nil && errors.Is(err, context.Canceled) {
				r.log.Info("shutting down: task not created", "task", id.String())
				continue
			}
			if err != nil {
				// Without its task the partition cannot be processed; fail
				// loudly rather than consume it without processing.
				r.setFatal(fmt.Errorf("kstreams: creating task %s: %w", id, err))
				r.log.Error("creating task failed", "task", id.String(), "error", err)
				r.cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
				continue
			}
			r.addTask(ts)
			r.log.Info("task assigned", "task", id.String())
		}
	}
	r.publishTasks()
}

// addTask registers ts as owned.
func (r *Runtime) addTask(ts *taskState) {
	id := ts.t.ID()
	r.tasks[id] = ts
	for _, t := range ts.sub.SourceTopics {
		if r.byTP[t] == nil {
			r.byTP[t] = map[int32]*taskState{}
		}
		r.byTP[t][id.Partition] = ts
	}
}

// fetchCommitted reads the group's committed offsets with their metadata,
// stable ones only (KIP-447): offsets a transaction committed are read only
// once it ended, so a rewind never goes back past a committed transaction.
func (r *Runtime) fetchCommitted(ctx context.Context) kadm.OffsetResponses {
	var err error
	for attempt := 0; attempt < 150; attempt++ {
		var offs kadm.OffsetResponses
		offs, err = r.adm.FetchOffsets(kadm.RequireStable(ctx), r.cfg.AppID)
		if err == nil {
			err = offs.Error()
		}
		if err == nil {
			return offs
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // a transaction is ending
	}
	r.log.Warn("reading committed offsets' metadata failed; completed records above the committed offsets will be processed again", "error", err)
	return kadm.OffsetResponses{}
}

// onRevoked gives up the tasks of revoked partitions: their work in flight
// gets a bounded time to complete, they are fenced, their outputs are
// acknowledged, what is complete is committed, and they close.
func (r *Runtime) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.dropTasks(ctx, revoked, false)
}

// onLost gives up the tasks of lost partitions at once, without committing:
// another member may own them already. Everything the instance has
// buffered or in flight is aborted before this returns.
func (r *Runtime) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.dropTasks(ctx, lost, true)
}

// dropTasks gives up the tasks of parts (see onRevoked and onLost).
func (r *Runtime) dropTasks(ctx context.Context, parts map[string][]int32, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetRebuilds(parts)
	if r.given == nil {
		r.given = map[string]map[int32]bool{}
	}
	for t, ps := range parts {
		if r.given[t] == nil {
			r.given[t] = map[int32]bool{}
		}
		for _, p := range ps {
			r.given[t][p] = true
		}
	}
	var drop []*taskState
	for topic, ps := range parts {
		for _, p := range ps {
			if ts := r.byTP[topic][p]; ts != nil && !slices.Contains(drop, ts) {
				drop = append(drop, ts)
			}
		}
	}
	if len(drop) == 0 {
		return
	}
	if !lost && !r.killed.Load() {
		// Tasks fenced already (a shutdown, which drained them) have
		// nothing more to finish.
		var live []*taskState
		for _, ts := range drop {
			if !ts.stopped.Load() {
				live = append(live, ts)
			}
		}
		r.drain(live, revokeDrain)
	}
	for _, ts := range drop {
		r.fence(ts, lost)
	}
	if r.txn != nil {
		// The open transaction holds writes of the tasks given up: it
		// aborts (GroupTransactSession fails it too), and the tasks kept
		// are rebuilt (see commitTxn).
		r.txnDoomed = true
	}
	if !r.killed.Load() {
		r.releaseTasks(drop, lost, time.Now().Add(revokeRelease))
		if !lost && r.txn == nil {
			if err := r.commitTasks(ctx, drop); err != nil {
				r.log.Error("committing revoked tasks failed; their uncommitted records will be reprocessed", "error", err)
			}
		}
	}
	for _, ts := range drop {
		if lost {
			r.dirty(ts)
		}
		r.closeTask(ts)
	}
	r.publishTasks()
}

// fence fences ts (see taskState.fence). A write blocked in Produce on a
// full buffer is freed by aborting the instance's buffered records: at
// once for a lost task, after revokeRelease for a revoked one (then the
// instance stops, see releaseTasks).
func (r *Runtime) fence(ts *taskState, lost bool) {
	after := revokeRelease
	if lost {
		after = 100 * time.Millisecond
	}
	abort := r.cl.UnsafeAbortBufferedRecords
	if r.txn != nil {
		abort = func() { r.abortProduceTxn(time.Now().Add(time.Second)) }
	}
	if ts.fence(after, abort) && !lost {
		r.setFatal(fmt.Errorf("kstreams: a write of task %s was blocked on a full produce buffer for %v while the task was given up; every buffered record was aborted, so the instance stops (restart it)", ts.t.ID(), after))
	}
}

// closeTask closes a fenced task and forgets it. Its processors and stores
// close once no unit runs in them any more: a processor that ignores its
// context keeps them open (logged), and the task assigned again waits for
// that (see newTask).
func (r *Runtime) closeTask(ts *taskState) {
	ts.fence(0, nil) // normally fenced already
	ts.cancel()
	id := ts.t.ID()
	for _, paused := range ts.paused {
		if paused {
			r.pausedCount.Add(-1)
		}
	}
	delete(r.tasks, id)
	for _, tr := range ts.trackers {
		tr.detach()
	}
	for _, t := range ts.sub.SourceTopics {
		delete(r.byTP[t], id.Partition)
	}
	if ts.running.Load() == 0 {
		r.finishClose(ts)
		return
	}
	r.log.Warn("a processor of a task given up is still running; the task closes when it returns (its writes are refused meanwhile)", "task", id.String())
	r.closingMu.Lock()
	r.closing[id] = ts
	r.closingMu.Unlock()
	go func() {
		for ts.running.Load() > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		r.finishClose(ts)
		r.closingMu.Lock()
		if r.closing[id] == ts {
			delete(r.closing, id)
		}
		r.closingMu.Unlock()
	}()
}

func (r *Runtime) finishClose(ts *taskState) {
	id := ts.t.ID()
	if err := ts.t.Close(); err != nil {
		r.log.Error("closing task", "task", id.String(), "error", err)
	}
	r.touchTaskDir(id.String(), time.Now())
	close(ts.closed)
	r.log.Info("task closed", "task", id.String())
}

// waitClosing waits up to timeout for the tasks still closing, and logs
// those whose processors have not returned.
func (r *Runtime) waitClosing(timeout time.Duration) {
	deadline := time.After(timeout)
	r.closingMu.Lock()
	closing := make([]*taskState, 0, len(r.closing))
	for _, ts := range r.closing {
		closing = append(closing, ts)
	}
	r.closingMu.Unlock()
	for _, ts := range closing {
		select {
		case <-ts.closed:
		case <-deadline:
			r.log.Error("a processor did not return after its task was given up (it ignores its context); its stores stay open", "task", ts.t.ID().String())
		}
	}
}

func (r *Runtime) closeTasks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range r.allTasks() {
		r.closeTask(ts)
	}
	r.publishTasks()
}

// newTask creates the task for partition p of st, restoring its stores.
// committed holds the group's committed offsets, whose metadata lists
// records already complete.
func (r *Runtime) newTask(ctx context.Context, st *graph.Subtopology, p int32, committed kadm.OffsetResponses) (*taskState, error) {
	id := graph.TaskID{Subtopology: st.ID, Partition: p}
	r.closingMu.Lock()
	prev := r.closing[id]
	r.closingMu.Unlock()
	if prev != nil {
		// Given up earlier with a processor still running: its stores are
		// still open.
		select {
		case <-prev.closed:
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("the task's earlier instance on this member still runs a processor that ignores its context; its stores are still open")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tctx, cancel := context.WithCancel(context.Background())
	ts := &taskState{closed: make(chan struct{}),
		sub: st, async: isAsync(st), inlineOK: mayInline(st), ctx: tctx, cancel: cancel,
		trackers: map[string]*partTracker{}, committed: map[string]string{}, paused: map[string]bool{},
		queues: map[string]*unitQueue{},
	}
	for _, topic := range st.SourceTopics {
		tr := newPartTracker()
		tr.total = &r.inFlightTotal
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			done, err := decodeDone(o.At, o.Metadata)
			if err != nil {
				r.log.Warn("ignoring unreadable commit metadata; completed records will be processed again", "topic", topic, "partition", p, "error", err)
			}
			tr.setSkip(done)
		}
		ts.trackers[topic] = tr
	}
	h := &taskHost{r: r, ctx: ctx, ts: ts}
	opts := task.Options{App: r.cfg.AppID}
	if r.cfg.StateDir != "" {
		opts.StoreDir = func(spec *store.Spec) (string, error) {
			dir := filepath.Join(r.cfg.StateDir, r.cfg.AppID, id.String(), spec.Name())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", fmt.Errorf("creating state directory: %w", err)
			}
			return dir, nil
		}
	}
	t, err := task.New(st, p, h, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	r.touchTaskDir(id.String(), time.Now())
	ts.t = t
	return ts, nil
}

// taskHost implements task.Host for one task of the runtime.
type taskHost struct {
	r   *Runtime
	ctx context.Context
	ts  *taskState
}

// Emit produces rec as part of the unit in ctx. Every emit happens within
// a unit: record processing, stream-time punctuation (inside a record's
// processing) or wall-clock punctuation.
func (h *taskHost) Emit(ctx context.Context, rec *kgo.Record) error {
	if p := h.r.fatal.Load(); p != nil {
		return *p
	}
	c := completionFrom(ctx)
	if c == nil {
		return errors.New("kstreams: record emitted outside of processing or punctuation (from a goroutine of the processor's own?); it could not be tracked for at-least-once delivery")
	}
	return c.produce(rec)
}

func (h *taskHost) Partitions(topic string) (int32, error) { return h.r.partitionCount(topic) }
func (h *taskHost) Now() time.Time                         { return time.Now() }
func (h *taskHost) Logger() *slog.Logger                   { return h.r.log }

func (h *taskHost) StoreTopic(spec *store.Spec) string {
	return graph.ChangelogTopic(h.r.cfg.AppID, spec.Name())
}

// OpenStore opens the backend, restores it from its changelog and wraps it
// so that writes are logged.
func (h *taskHost) OpenStore(spec *store.Spec, bctx store.BackendContext) (store.Backend, error) {
	b, err := spec.Supplier()(bctx)
	if err != nil {
		return nil, err
	}
	ds := &durableStore{name: spec.Name(), b: b}
	if !spec.Logged() {
		h.ts.durable = append(h.ts.durable, ds)
		return b, nil
	}
	if k, ok := b.(store.OffsetKeeper); ok {
		ds.keeper = k
	} else if p, ok := b.(store.Persistent); ok && p.Persistent() && bctx.Dir != "" {
		ds.dir = bctx.Dir
	} else {
		ds = nil // restored from the changelog's start at every open
	}
	topic := graph.ChangelogTopic(h.r.cfg.AppID, spec.Name())
	start := int64(-1) // no checkpoint: the store is empty
	if ds != nil {
		cp, err := ds.storedOffset()
		if err != nil {
			b.Close()
			return nil, err
		}
		if cp >= 0 {
			start = cp
		} else if err := b.DeleteRange(nil, nil); err != nil {
			// No checkpoint: whatever the store holds is not known to match
			// the changelog (deletes compacted away would resurrect), so
			// restore into an empty store.
			b.Close()
			return nil, fmt.Errorf("clearing store %s without a checkpoint: %w", spec.Name(), err)
		}
	}
	end, err := h.r.restore(h.ctx, b, RestoreProgress{Store: spec.Name(), Task: bctx.Task, Topic: topic, Partition: bctx.Partition, Start: start})
	if err != nil {
		b.Close()
		return nil, err
	}
	cb := &changelogBackend{Backend: b, store: spec.Name(), topic: topic, partition: bctx.Partition, r: h.r, ts: h.ts}
	cb.promise = cb.onAcked
	cb.next.Store(end)
	h.ts.changelogs = append(h.ts.changelogs, cb)
	if ds != nil {
		ds.cl = cb
		h.ts.durable = append(h.ts.durable, ds)
		if h.r.txn != nil {
			// With transactions the store will hold writes of open
			// transactions, which may abort: its checkpoint is valid
			// again only after a clean shutdown (see commitTxn).
			if err := ds.forget(); err != nil {
				b.Close()
				return nil, fmt.Errorf("dropping the checkpoint of store %s: %w", spec.Name(), err)
			}
		}
	}
	return cb, nil
}
