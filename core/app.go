package kstreams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
)

// App runs a Topology on Kafka. Create it with NewApp and start it with Run.
//
// Delivery is at-least-once: an input record's offset is committed only after
// every record produced for it and for the records before it in its partition
// is acknowledged by the brokers and its state changes are durable (logged to
// the store's changelog). After a crash, records since the last commit are
// processed again: their effects may repeat, never vanish.
//
// An App runs once: Run returns ErrRunOnce when called again. To test how
// an application recovers from a crash, kstreamstest.Crash stops an App as
// a crash would.
type App struct {
	topo *Topology
	cfg  runtime.Config
	rt   *runtime.Runtime
	ran  atomic.Bool // Run was called

	observers      []*Observer            // WithObserver (see observe.go)
	stateListeners []func(old, new State) // WithStateListener (see health.go)
}

// ErrRunOnce is returned by a second call of App.Run: an App runs once.
// Create a new App with NewApp to run the topology again.
var ErrRunOnce = errors.New("kstreams: App.Run called again: an App runs once; create a new App with NewApp to run the topology again")

// Option configures an App.
type Option func(*App) error

// WithBrokers sets the seed brokers ("host:port"). Required, unless the
// brokers come from kgo options (WithKgoOptions with kgo.SeedBrokers). For
// an in-process cluster without installing Kafka, see package
// github.com/kstreams-go/kstreams/core/embedded.
func WithBrokers(brokers ...string) Option {
	return func(a *App) error { a.cfg.Brokers = append(a.cfg.Brokers, brokers...); return nil }
}

// WithApplicationID sets the application id (required): the consumer group
// id, and the prefix of the application's internal topics
// ("<id>-<store>-changelog"). Instances with the same id share the work.
//
// As a topic-name prefix, the id may contain only ASCII letters, digits,
// '.', '_' and '-', and every changelog topic it names must be at most 249
// characters long, as Kafka requires of topic names: NewApp refuses an id
// that breaks either rule, naming the topic Kafka would refuse.
func WithApplicationID(id string) Option {
	return func(a *App) error {
		if id == "" {
			return errors.New("empty application id")
		}
		a.cfg.AppID = id
		return nil
	}
}

// WithStateDir sets the directory where stores that keep files (Pebble, for
// example) live, as <dir>/<application id>/<task>/<store>. Default: none,
// which only backends without files (in-memory, remote) accept.
func WithStateDir(dir string) Option {
	return func(a *App) error { a.cfg.StateDir = dir; return nil }
}

// ShutdownBudget bounds the graceful shutdown of Run once its context is
// done (leaving the group aside): work in flight gets 15 s to complete, the
// outputs of the tasks 4 s to be acknowledged, the commit 4 s, processors
// still running 2 s to return. It fits Kubernetes' default termination grace
// period of 30 s.
const ShutdownBudget = 25 * time.Second

// WithStateCleanupDelay sets how long the state directory of a task this
// instance no longer owns is kept before it is deleted (default 10 minutes,
// as Kafka Streams' state.cleanup.delay.ms): a task that comes back within
// the delay restores only its changelog's tail; later it restores from
// scratch, and disk use stays bounded by the tasks owned recently. Only
// directories named like a task (<sub-topology>_<partition>) under
// <state dir>/<application id> are deleted.
func WithStateCleanupDelay(d time.Duration) Option {
	return func(a *App) error {
		if d <= 0 {
			return fmt.Errorf("state cleanup delay must be positive, got %v", d)
		}
		a.cfg.StateCleanupDelay = d
		return nil
	}
}

// WithCommitInterval sets how often processed offsets are committed
// (default 5s). A commit waits for all produced records to be acknowledged,
// so shorter intervals cost throughput; longer ones mean more records
// reprocessed after a crash.
func WithCommitInterval(d time.Duration) Option {
	return func(a *App) error {
		if d <= 0 {
			return fmt.Errorf("commit interval must be positive, got %v", d)
		}
		a.cfg.CommitInterval = d
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(a *App) error { a.cfg.Logger = l; return nil }
}

// WithKgoOptions passes options to the franz-go clients, after kstreams'
// own (so they win): seed brokers, TLS (kgo.DialTLSConfig, kgo.Dialer),
// SASL (kgo.SASL with package sasl/plain, sasl/scram, sasl/oauth, ...),
// client id, rack, logger and hooks, fetch and produce tuning
// (kgo.FetchMaxBytes, kgo.ProducerLinger, kgo.ProducerBatchCompression,
// ...), kgo.HeartbeatInterval and kgo.RequireStableFetchOffsets.
//
// Options that would break kstreams are a NewApp error naming the option:
// what the runtime reads and from where (kgo.ConsumeTopics and its
// siblings, kgo.ConsumeResetOffset, kgo.FetchIsolationLevel,
// kgo.KeepControlRecords); where and how it writes (kgo.RecordPartitioner,
// which would send changelog records to other partitions than their
// task's, kgo.RackAwarePartitioning, kgo.DefaultProduceTopicAlways,
// kgo.TransactionalID, kgo.TransactionTimeout, kgo.DisableIdempotentWrite,
// kgo.RequiredAcks, kgo.ManualFlushing,
// kgo.AllowIdempotentProduceCancellation); and every consumer group option
// but the two above (kgo.ConsumerGroup, kgo.Balancers, kgo.SessionTimeout,
// kgo.RebalanceTimeout, auto-commit, rebalance callbacks, ...): the group
// is the runtime's. Use WithSessionTimeout, WithRebalanceTimeout,
// WithCommitInterval, WithTransactions and a sink's WithPartitioner
// instead.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(a *App) error {
		for i, o := range opts {
			if err := checkKgoOption(o); err != nil {
				return fmt.Errorf("WithKgoOptions: option %d: %w", i+1, err)
			}
			if name, _ := kgoOptionName(o); name == "FetchMaxPartitionBytes" || name == "FetchMaxBytes" {
				a.cfg.FetchSizesGiven = true
			}
		}
		a.cfg.KgoOpts = append(a.cfg.KgoOpts, opts...)
		return nil
	}
}

// WithSessionTimeout sets the consumer group's session timeout (default
// 45s, franz-go's): how long the group waits without a heartbeat from an
// instance before giving its tasks to the others. A SIGKILLed or cut-off
// instance's partitions stand still that long. Shorter moves work sooner
// but turns long GC pauses or network blips into rebalances; the brokers
// accept 6s to 300s by default (group.min/max.session.timeout.ms).
//
// The timeout also bounds the instance's own membership lease: an
// instance that got no heartbeat answered for about this long fences its
// tasks and aborts the records it has in flight before the group can give
// them to another instance, so a stale owner writes nothing after its
// successor (see docs/architecture.md, "Ownership").
func WithSessionTimeout(d time.Duration) Option {
	return func(a *App) error {
		if d <= 0 {
			return fmt.Errorf("session timeout must be positive, got %v", d)
		}
		a.cfg.SessionTimeout = d
		return nil
	}
}

// WithRebalanceTimeout sets how long a rebalance waits for every instance
// to rejoin (default 60s, franz-go's). An instance rejoins once it has
// given up its revoked tasks, which takes up to about 15s (their work in
// flight gets 10s to finish, their outputs 5s to be acknowledged), so keep
// it above that.
func WithRebalanceTimeout(d time.Duration) Option {
	return func(a *App) error {
		if d <= 0 {
			return fmt.Errorf("rebalance timeout must be positive, got %v", d)
		}
		a.cfg.KgoOpts = append(a.cfg.KgoOpts, kgo.RebalanceTimeout(d))
		return nil
	}
}

// WithTransactions (experimental: see below) makes every commit a Kafka
// transaction, so that the
// brokers, not only the instance, fence a stale owner of a task: all that
// an instance produced since its last commit (outputs, changelog records,
// dead letters) and its input offsets commit together, with the consumer
// group's generation (KIP-447). An instance that lost its tasks cannot
// commit: its transaction aborts and nothing it wrote becomes visible.
//
// For a topology that reads from and writes to Kafka only, this is
// exactly-once processing: every input record's outputs and state changes
// are visible once, to consumers reading with isolation level
// read_committed (kgo.FetchIsolationLevel(kgo.ReadCommitted())); inputs and
// restores read that way. It does not cover effects outside Kafka: calls
// a processor makes to other systems happen again when a transaction
// aborts and its records are processed again; nor stores without a
// changelog, whose writes are not part of the transaction. A store's
// checkpoint is kept only across clean shutdowns: after a crash each store
// restores from its changelog from scratch.
//
// The costs: outputs become visible only when their transaction commits
// (every commit interval); a commit holds new processor calls until those
// running return (up to 2s; a processor that takes longer delays the
// commit to a later round); a rebalance that takes tasks from an instance,
// a membership lease that runs out, or a failed commit aborts its
// transaction, and the instance then restores all its tasks from their
// changelogs; and an instance cut off from the brokers for longer than the
// transaction timeout (the session timeout, see WithSessionTimeout) finds
// its producer fenced and stops with an error, for its supervisor to
// restart it. Needs Kafka 2.5 or later. With a state directory, the
// instance keeps its transactional id there, so that after a crash its
// open transaction is aborted as soon as it restarts. After an instance is
// cut off, the next owners wait for its open transaction to be aborted by
// the brokers before they can restore (about 30 s in the chaos partition
// scenario, against 7 s without transactions).
//
// Experimental: the API and the defaults may change.
func WithTransactions() Option {
	return func(a *App) error { a.cfg.Transactions = true; return nil }
}

// WithReplicationFactor sets the replication factor of the internal topics
// the application creates (default: the broker's default).
func WithReplicationFactor(n int16) Option {
	return func(a *App) error { a.cfg.ReplicationFactor = n; return nil }
}

// WithConcurrency sets the number of worker goroutines that process the
// records of sub-topologies in the concurrent ordering modes (KeyOrder,
// Unordered; see Order), shared by all their tasks. Default 64. It bounds
// how many records are processed at once, plus one per task while its work
// is cheap enough to run in segments (see WithInlineWork): for I/O-bound
// work, set it to the number of calls in flight the remote side should see.
func WithConcurrency(n int) Option {
	return func(a *App) error {
		if n <= 0 {
			return fmt.Errorf("concurrency must be positive, got %d", n)
		}
		a.cfg.Concurrency = n
		return nil
	}
}

// WithMaxInFlight bounds, per input partition of a concurrent sub-topology,
// the records dispatched to the workers and not yet committable (default
// 50000; about 0.5 KB of memory each with 100-byte values). A partition that
// reaches it stops fetching until half of them are done; other partitions go
// on. Resuming costs a fetch round trip, so a bound close to the poll size
// (10000 records) costs throughput when the work is cheap.
func WithMaxInFlight(n int) Option {
	return func(a *App) error {
		if n <= 0 {
			return fmt.Errorf("max in-flight must be positive, got %d", n)
		}
		a.cfg.MaxInFlight = n
		return nil
	}
}

// WithMaxInFlightTotal bounds, over all the input partitions of the
// instance, the records dispatched to the workers and not yet committable
// (default 200000, about 100 MB with 1 KB values). Past it, each partition
// that gets records pauses as with WithMaxInFlight, until the total is back
// under half the bound. It caps memory when an instance owns many
// partitions; a partition's bound still applies.
func WithMaxInFlightTotal(n int) Option {
	return func(a *App) error {
		if n <= 0 {
			return fmt.Errorf("max in-flight total must be positive, got %d", n)
		}
		a.cfg.MaxInFlightTotal = n
		return nil
	}
}

// DefaultMemoryBudget is the memory budget of an instance when
// WithMemoryBudget is not given: 128 MiB.
const DefaultMemoryBudget = runtime.DefaultMemoryBudget

// WithMemoryBudget sets the memory an instance aims to use for what it
// buffers and caches (default DefaultMemoryBudget). It is divided as
// follows:
//
//   - a quarter for fetched records not yet processed, counted as they are
//     in memory (decompressed, each with its kgo.Record): the consumer's
//     fetch sizes follow from it, the number of input partitions the
//     instance owns and what the fetched bytes were measured to decode to
//     (between 16 KiB and 1 MiB per partition);
//   - an eighth for restoring stores from their changelogs: the restore
//     consumer's fetch sizes and the records it holds for the stores;
//   - a quarter for the stores, passed to their suppliers as a hint
//     (store.BackendContext.MemoryBudget): stores/pebble sizes its block
//     cache and memtables from it;
//   - the rest is headroom for the produce buffer, Go's heap growth between
//     collections, code and stacks.
//
// It is a target, not a limit: what processors keep in memory, in-memory
// stores, records in flight of the concurrent ordering modes
// (WithMaxInFlightTotal) and Go's garbage are not counted; GOMEMLIMIT is
// left alone (see docs/architecture.md, "Memory", for sizing). Fetch sizes
// given with WithKgoOptions (kgo.FetchMaxPartitionBytes,
// kgo.FetchMaxBytes) and store options given explicitly win over the
// budget. bytes must be at least 16 MiB.
func WithMemoryBudget(bytes int64) Option {
	return func(a *App) error {
		if bytes < 16<<20 {
			return fmt.Errorf("memory budget must be at least 16 MiB, got %d bytes", bytes)
		}
		a.cfg.MemoryBudget = bytes
		return nil
	}
}

// WithInlineWork sets how cheap a record's processing must be, on average,
// for the concurrent ordering modes to stop handing records to the workers
// one by one (default 10µs; 0 turns this off). Handing a record to a worker
// costs about as much as trivial work itself, so when a task's work is
// measured to be that cheap, the records of each fetch whose key has
// nothing in flight are processed in offset order by one goroutine (a
// segment), which keeps KeyOrder's guarantee at close to the cost of
// PartitionOrder. If a record in a segment stops making progress for 50 ms,
// the records after it go to the workers as usual (its own key's wait
// behind it), so a slow record still holds up only its key; a record found
// slow (1 ms or more, or 100 times max if that is more) sends the task's
// work to the workers for 10 s. The
// average is measured per task. AppStats.Inline counts records processed
// in segments, AppStats.InlineStalls the segments handed back.
func WithInlineWork(max time.Duration) Option {
	return func(a *App) error {
		if max < 0 {
			return fmt.Errorf("inline work threshold must not be negative, got %s", max)
		}
		if max == 0 {
			max = -1
		}
		a.cfg.InlineBelow = max
		return nil
	}
}

// ErrorPolicy says what happens to a record whose processing failed.
type ErrorPolicy struct {
	p runtime.Policy
}

// FailOnError stops the application with an error that names the record's
// topic, partition and offset. The record is not committed: a restart tries
// it again. This is the default for every stage.
func FailOnError() ErrorPolicy { return ErrorPolicy{runtime.Policy{Action: runtime.Fail}} }

// SkipOnError logs the failed record (topic, partition, offset, error),
// counts it (AppStats.Skipped) and moves on.
func SkipOnError() ErrorPolicy { return ErrorPolicy{runtime.Policy{Action: runtime.Skip}} }

// DeadLetterOnError writes the failed record to topic and moves on: the
// original key, value, timestamp and headers, plus headers
// kstreams.error.{stage,message,node} and kstreams.source.{topic,partition,
// offset,timestamp}. The topic is created if it does not exist. For
// production errors the dead letter is the record that could not be
// produced.
func DeadLetterOnError(topic string) ErrorPolicy {
	return ErrorPolicy{runtime.Policy{Action: runtime.DeadLetter, Topic: topic}}
}

func (a *App) setPolicy(stage graph.Stage, p ErrorPolicy) error {
	if p.p.Action == runtime.DeadLetter {
		if p.p.Topic == "" {
			return fmt.Errorf("dead-letter policy for %s errors has no topic", stage)
		}
		if err := graph.CheckTopicName(p.p.Topic); err != nil {
			return fmt.Errorf("dead-letter policy for %s errors: %w", stage, err)
		}
	}
	a.cfg.Policies[stage] = p.p
	return nil
}

// WithDeserializationErrors sets the policy for records whose key or value
// cannot be decoded by the source's serdes, whose timestamp extractor
// fails, or whose event time is outside the range kstreams represents
// (1677-09-21 to 2262-04-11; see Source).
func WithDeserializationErrors(p ErrorPolicy) Option {
	return func(a *App) error { return a.setPolicy(graph.StageDeserialize, p) }
}

// WithProcessingErrors sets the policy for records for which a processor
// returned an error (or a sink could not encode the output).
func WithProcessingErrors(p ErrorPolicy) Option {
	return func(a *App) error { return a.setPolicy(graph.StageProcess, p) }
}

// WithProductionErrors sets the policy for output records the brokers
// refused after franz-go's retries (too large, not authorized, ...).
func WithProductionErrors(p ErrorPolicy) Option {
	return func(a *App) error { return a.setPolicy(graph.StageProduce, p) }
}

// RestoreProgress reports the restoration of one store of one task from its
// changelog: at the start, every few seconds, and when done.
type RestoreProgress struct {
	Store     string        // the store's name
	Task      string        // the task, as TaskID.String: "<sub-topology>_<partition>"
	Topic     string        // the changelog topic
	Partition int32         // the changelog partition
	Start     int64         // first changelog offset to restore
	End       int64         // changelog end offset when restoration began
	Restored  int64         // records applied so far
	Elapsed   time.Duration // since restoration began
	Done      bool          // restoration is complete
}

func restoreProgress(p runtime.RestoreProgress) RestoreProgress {
	return RestoreProgress{
		Store: p.Store, Task: p.Task, Topic: p.Topic, Partition: p.Partition,
		Start: p.Start, End: p.End, Restored: p.Restored, Elapsed: p.Elapsed, Done: p.Done,
	}
}

// WithRestoreListener calls fn with restoration progress, for example to
// export metrics. fn must return quickly.
func WithRestoreListener(fn func(RestoreProgress)) Option {
	return func(a *App) error {
		if fn == nil {
			a.cfg.OnRestore = nil
			return nil
		}
		a.cfg.OnRestore = func(p runtime.RestoreProgress) { fn(restoreProgress(p)) }
		return nil
	}
}

// NewApp returns an App that runs t with the given options.
func NewApp(t *Topology, opts ...Option) (*App, error) {
	if t == nil {
		return nil, errors.New("kstreams: NewApp: nil topology")
	}
	a := &App{topo: t, cfg: runtime.Config{Topology: t.g, Policies: map[graph.Stage]runtime.Policy{}}}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("kstreams: NewApp: option %d is nil", i+1)
		}
		if err := o(a); err != nil {
			return nil, fmt.Errorf("kstreams: NewApp: %w", err)
		}
	}
	if a.cfg.AppID == "" {
		return nil, errors.New("kstreams: NewApp: no application id: pass kstreams.WithApplicationID")
	}
	if err := graph.CheckAppID(a.cfg.AppID, t.g); err != nil {
		return nil, fmt.Errorf("kstreams: NewApp: %w", err)
	}
	if len(a.cfg.Brokers) == 0 && len(a.cfg.KgoOpts) == 0 {
		return nil, errors.New("kstreams: NewApp: no brokers: pass kstreams.WithBrokers(\"host:9092\") for a Kafka cluster, " +
			"or start an in-process cluster with embedded.NewCluster (package github.com/kstreams-go/kstreams/core/embedded) and pass its Brokers()")
	}
	// Fetched records get their exact timestamps, also past 2262.
	a.cfg.KgoOpts = append([]kgo.Opt{kgo.WithHooks(exactTimestamps{})}, a.cfg.KgoOpts...)
	a.applyObservers()
	rt, err := runtime.New(a.cfg)
	if err != nil {
		return nil, fmt.Errorf("kstreams: NewApp: %w", err)
	}
	a.rt = rt
	return a, nil
}

// Run joins the group, processes until ctx is done, and shuts down
// gracefully: processing stops between records (checked every 256 records
// of a partition), everything processed is
// flushed and committed, records polled but not processed are left for the
// next owner, and the instance leaves the group. It returns nil after a
// shutdown caused by ctx, or the fatal error that stopped it.
//
// The shutdown takes at most ShutdownBudget plus the time to leave the
// group, even when a processor ignores its context: that processor's
// records are left uncommitted for the next owner, and it is logged.
//
// An App runs once: a second call returns ErrRunOnce, whether the first
// is still running or has returned.
func (a *App) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	return a.rt.Run(ctx)
}

// AppStats are an App's counters, since NewApp.
type AppStats struct {
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
	Consumed         int64 // input records fetched and handed to their tasks
	Produced         int64 // records the brokers acknowledged: outputs, changelog records and dead letters
	InFlight         int64 // records dispatched in the concurrent modes and not yet committable (see WithMaxInFlight)
	Units            int64 // units of work (a record, a batch, a poll's records of a partition) started and not complete
	Paused           int64 // input partitions paused for backpressure
}

func appStats(s runtime.Stats) AppStats {
	return AppStats{
		Processed: s.Processed, Skipped: s.Skipped, DeadLettered: s.DeadLettered, Commits: s.Commits,
		Restored: s.Restored, SkippedCompleted: s.SkippedCompleted, MetadataDropped: s.MetadataDropped,
		Inline: s.Inline, InlineStalls: s.InlineStalls, Tasks: s.Tasks,
		Consumed: s.Consumed, Produced: s.Produced, InFlight: s.InFlight, Units: s.Units, Paused: s.Paused,
	}
}

// Stats returns the App's counters.
func (a *App) Stats() AppStats { return appStats(a.rt.Stats()) }
