// Package runtime runs a topology on Kafka with franz-go: group membership
// and task assignment, the poll-process-commit loop, changelogged stores and
// their restoration, error policies and internal topics.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/task"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Runtime is one running application instance.
type Runtime struct {
	cfg   Config
	log   *slog.Logger
	cl    *kgo.Client
	adm   *kadm.Client
	admCl *kgo.Client // adm's client, for requests kadm has no call for

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
	syncWork       []syncPartition           // a poll's partitions of synchronous tasks (loop only; see process)
	syncGroups     [][]int                   // syncWork's indexes by task (loop only)
	syncCost       int64                     // moving average of a synchronous record's processing time, ns (loop only; see processSyncTasks)
	given          map[string]map[int32]bool // partitions given up (revoked, lost) since the loop last processed (guarded by mu)

	lease     *lease                       // see lease.go
	suspended atomic.Bool                  // the tasks were fenced when the lease ran out
	owned     atomic.Pointer[[]*taskState] // the tasks, for watchLease
	sizer     *fetchSizer                  // nil when the fetch sizes are the user's
	sizerSeen *[]*taskState                // owned when the sizer last looked (loop only)

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
	obs        observer        // state and metrics hooks (see observe.go)
	restorerMu sync.Mutex
	restorer   *restoreConsumer // created by the first restore (see restoreConsumer)
	// restorerClosed: Run closed the restore consumer; no restore starts.
	restorerClosed bool
	stats          stats
	globals        *globals // the global stores, once filled (see global.go)
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
	running   atomic.Int64  // units inside the task's processors on workers or segments, and its restore
	restoring atomic.Bool   // its stores are being restored (see restoreTask): its partitions are paused
	inProcess atomic.Int64  // processor calls running, with transactions (see enterProcess)
	closed    chan struct{} // closed once its processors and stores are closed

	changelogs []*changelogBackend
	restores   []*pendingRestore // stores opened and not restored yet
	waiters    waiters

	qmu    sync.Mutex
	queues map[string]*unitQueue // KEY / PARTITION queues in flight
	open   *unitQueue            // UNORDERED group being filled

	inlineOK   bool         // the sub-topology may run records inline (no batches, no retries)
	retries    bool         // a processor of the sub-topology retries failures (see hand)
	avgWork    atomic.Int64 // moving average of a record's processing time, ns
	samples    atomic.Int64 // records measured into avgWork (saturates)
	slowUntil  atomic.Int64 // unix ns: no inline processing before, a record having been slow
	seg        *segment     // running segment (loop only)
	segStalled atomic.Bool  // a segment was taken back and its record in progress still runs

	unsettledSince time.Time // first commit round it did not settle at, since it last did (loop only; see exactInputs)
}

// New validates cfg and returns a runtime; Run starts it.
func New(cfg Config) (*Runtime, error) {
	if cfg.StateCleanupDelay <= 0 {
		cfg.StateCleanupDelay = 10 * time.Minute
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
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
	r.setObserver(cfg.Observer, cfg.OnState)
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
		Consumed: r.stats.consumed.Load(), Produced: r.stats.produced.Load(), InFlight: r.inFlightTotal.Load(), Units: r.unitsInFlight(),
		Paused: r.pausedCount.Load(),
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
	defer r.observeRun(ctx)(&err)
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
	r.adm, r.admCl = kadm.NewClient(admCl), admCl
	defer r.adm.Close()
	defer r.closeRestoreConsumer()
	if err := r.prepareTopicsRetrying(ctx); err != nil {
		return fmt.Errorf("kstreams: preparing topics: %w", err)
	}
	if err := r.startGlobals(ctx); err != nil {
		return fmt.Errorf("kstreams: global stores: %w", err)
	}
	defer r.stopGlobals() // after the tasks that read them are closed (below)

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
		kgo.OnOffsetsFetched(r.onOffsetsFetched),
		kgo.AdjustFetchOffsetsFn(r.adjustFetchOffsets),
		kgo.WithHooks(r.lease, produceHook{r}),
	}, r.cfg.KgoOpts...)
	if !r.cfg.FetchSizesGiven {
		// Fetched records wait in franz-go's buffers until the loop polls
		// them, decompressed: with franz-go's defaults (1 MiB per
		// partition, 50 MiB per fetch) they were most of the process's
		// memory. The sizer sizes the fetches from the memory budget (see
		// memory.go and docs/architecture.md, "Memory"), starting as if
		// this instance owned every input partition.
		total := 0
		for _, t := range sourceTopics {
			if n, err := r.partitionCount(t); err == nil {
				total += int(n)
			}
		}
		r.sizer = newFetchSizer(sharesOf(r.cfg.MemoryBudget).fetch, func() int {
			if n := r.ownedPartitions(); n > 0 {
				return n
			}
			return total
		})
		r.sizer.log = r.log
		part, mx := r.sizer.current()
		opts = append(opts, kgo.FetchMaxPartitionBytes(part), kgo.FetchMaxBytes(mx), kgo.WithHooks(r.sizer))
	}
	var cl *kgo.Client
	// The group's callbacks (which take mu) may run as soon as the client
	// exists: they wait until r.cl is set.
	r.mu.Lock()
	locked := true
	defer func() {
		if locked {
			r.mu.Unlock()
		}
	}()
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
	if r.sizer != nil {
		r.sizer.cl.Store(cl)
	}
	r.mu.Unlock()
	locked = false
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
