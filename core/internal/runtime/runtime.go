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
	Topology          *graph.Topology
	AppID             string
	Brokers           []string
	StateDir          string
	CommitInterval    time.Duration
	Logger            *slog.Logger
	KgoOpts           []kgo.Opt
	Policies          map[graph.Stage]Policy
	ReplicationFactor int16
	MaxPollRecords    int
	OnRestore         func(RestoreProgress)
}

// Stats are the runtime's counters.
type Stats struct {
	Processed    int64 // input records handled: processed, skipped or dead-lettered
	Skipped      int64 // records skipped by a policy
	DeadLettered int64 // records written to a dead-letter topic
	Commits      int64 // offset commits
	Restored     int64 // changelog records applied by restoration
	Tasks        int   // tasks currently owned
}

type stats struct {
	processed, skipped, deadLettered, commits, restored atomic.Int64
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
	mu     sync.Mutex
	tasks  map[graph.TaskID]*taskState
	byTP   map[string]map[int32]*taskState
	subOf  map[string]*graph.Subtopology
	killed atomic.Bool

	partMu     sync.Mutex
	partitions map[string]int32

	// fatal is the first fatal error found outside the loop (a production
	// failure under the Fail policy, a task that could not be created);
	// failed collects production failures under Skip and DeadLetter.
	fatal    atomic.Pointer[error]
	failedMu sync.Mutex
	failed   []producedFailure

	produceCtx context.Context
	promise    func(*kgo.Record, error)
	stats      stats
}

type producedFailure struct {
	rec *kgo.Record
	err error
}

// taskState is a task with the input offsets processed since the last commit.
type taskState struct {
	t         *task.Task
	offsets   map[string]kgo.EpochOffset // next offset to commit, per source topic
	dirty     bool
	stateDirs map[string]string // store name -> dir, persistent logged stores only
}

// New validates cfg and returns a runtime; Run starts it.
func New(cfg Config) (*Runtime, error) {
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
	r := &Runtime{
		cfg:        cfg,
		log:        cfg.Logger.With("app", cfg.AppID),
		tasks:      map[graph.TaskID]*taskState{},
		byTP:       map[string]map[int32]*taskState{},
		subOf:      map[string]*graph.Subtopology{},
		partitions: map[string]int32{},
	}
	for _, st := range cfg.Topology.Subtopologies {
		for _, t := range st.SourceTopics {
			r.subOf[t] = st
		}
	}
	r.promise = r.onProduced
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
		Commits: r.stats.commits.Load(), Restored: r.stats.restored.Load(), Tasks: n,
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
	for _, st := range r.cfg.Topology.Subtopologies {
		sourceTopics = append(sourceTopics, st.SourceTopics...)
	}
	admCl, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	r.adm = kadm.NewClient(admCl)
	defer r.adm.Close()
	if err := r.prepareTopics(ctx); err != nil {
		return fmt.Errorf("kstreams: preparing topics: %w", err)
	}

	produceCtx, cancelProduce := context.WithCancel(context.Background())
	defer cancelProduce()
	r.produceCtx = produceCtx
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumerGroup(r.cfg.AppID),
		kgo.ConsumeTopics(sourceTopics...),
		kgo.Balancers(newTaskBalancer(r.cfg.Topology)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
	}, r.cfg.KgoOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kstreams: creating client: %w", err)
	}
	r.cl = cl
	r.log.Info("started", "subtopologies", len(r.cfg.Topology.Subtopologies), "source_topics", sourceTopics)

	err = r.loop(ctx)
	if r.killed.Load() {
		cancelProduce()
		cl.Close()
		r.closeTasks(false)
		return err
	}
	// Graceful shutdown: records already processed are flushed and
	// committed; records polled but not yet processed are left for the next
	// owner (they are not committed).
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.mu.Lock()
	cerr := r.commitTasks(shutdownCtx, r.allTasks())
	r.mu.Unlock()
	if cerr != nil {
		err = errors.Join(err, cerr)
	}
	cl.Close() // leaves the group; onRevoked closes the tasks
	r.closeTasks(false)
	r.log.Info("stopped", "processed", r.stats.processed.Load())
	return err
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
	for {
		if ctx.Err() != nil || r.killed.Load() {
			return nil
		}
		wait := min(time.Until(nextCommit), time.Until(nextPunctuate))
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
			fetchErr = errors.Join(fetchErr, fmt.Errorf("fetching %s/%d: %w", t, p, err))
		})
		if fetchErr != nil {
			r.cl.AllowRebalance()
			return fmt.Errorf("kstreams: %w (non-retriable fetch error: check the topic exists and the client is authorized)", fetchErr)
		}
		r.mu.Lock()
		err := r.process(ctx, fetches)
		if p := r.fatal.Load(); err == nil && p != nil {
			err = *p
		}
		if err == nil && time.Now().After(nextPunctuate) {
			err = r.punctuateWallClock(ctx)
			nextPunctuate = time.Now().Add(100 * time.Millisecond)
		}
		if err == nil && time.Now().After(nextCommit) {
			err = r.commitTasks(ctx, r.allTasks())
			nextCommit = time.Now().Add(r.cfg.CommitInterval)
		}
		if err != nil && !r.killed.Load() {
			// Commit what was processed before the failure, then stop.
			if cerr := r.commitTasks(context.Background(), r.allTasks()); cerr != nil {
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

// process runs a poll's records through their tasks, partition by
// partition, each partition in offset order.
func (r *Runtime) process(ctx context.Context, fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil || len(p.Records) == 0 || r.killed.Load() {
			return
		}
		ts := r.byTP[p.Topic][p.Partition]
		if ts == nil {
			// Polled before the partition was revoked: not ours any more.
			return
		}
		done := 0
		for _, rec := range p.Records {
			if r.killed.Load() || done&255 == 255 && ctx.Err() != nil {
				break
			}
			if perr := ts.t.Process(ctx, rec); perr != nil {
				if err = r.handleRecordError(rec, perr); err != nil {
					break
				}
			}
			done++
		}
		// Offsets and counters are updated once per partition batch, not per
		// record: they only matter at the next commit.
		if done > 0 {
			last := p.Records[done-1]
			ts.offsets[p.Topic] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
			ts.dirty = true
			r.stats.processed.Add(int64(done))
		}
	})
	return err
}

// handleRecordError applies the policy of the failed stage; it returns the
// error if the policy is to fail.
func (r *Runtime) handleRecordError(rec *kgo.Record, err error) error {
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
		r.deadLetter(rec, re.Stage, re.Node, re.Err)
		return nil
	}
	return fmt.Errorf("kstreams: %w (the record is not committed and will be retried on restart; to move past it, fix the cause or set a skip or dead-letter policy for %s errors)", err, re.Stage)
}

// deadLetter writes the original record to the stage's dead-letter topic
// with headers describing the failure.
func (r *Runtime) deadLetter(rec *kgo.Record, stage graph.Stage, node string, cause error) {
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
	r.produce(&kgo.Record{Topic: p.Topic, Partition: -1, Key: rec.Key, Value: rec.Value, Headers: h, Timestamp: rec.Timestamp})
}

func (r *Runtime) produce(rec *kgo.Record) {
	r.cl.Produce(r.produceCtx, rec, r.promise)
}

// onProduced records failed productions; the loop acts on them at the next
// commit, before any offset covering them is committed.
func (r *Runtime) onProduced(rec *kgo.Record, err error) {
	if err == nil || r.killed.Load() {
		return
	}
	if p := r.cfg.Policies[graph.StageProduce]; p.Action == Fail {
		e := fmt.Errorf("kstreams: producing to %s/%d failed: %w (records produced after this may be reprocessed on restart; check the topic exists, the client's authorization and the record size limits)", rec.Topic, rec.Partition, err)
		r.fatal.CompareAndSwap(nil, &e)
		return
	}
	r.failedMu.Lock()
	r.failed = append(r.failed, producedFailure{rec, err})
	r.failedMu.Unlock()
}

// commitTasks makes the work of tasks durable and commits their offsets.
//
// Invariant (at-least-once): an input offset is committed only after every
// record produced while processing it and the records before it (outputs and
// changelog writes) is acknowledged by the brokers, and the stores' flushed
// state is checkpointed. Flush waits for every buffered record of the client,
// so it covers all tasks.
func (r *Runtime) commitTasks(ctx context.Context, tasks []*taskState) error {
	if r.killed.Load() || r.cl == nil {
		return nil
	}
	if err := r.flushProduced(ctx); err != nil {
		return err
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var checkpoints []*taskState
	for _, ts := range tasks {
		if !ts.dirty {
			continue
		}
		for topic, eo := range ts.offsets {
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[topic][ts.t.ID().Partition] = eo
		}
		if len(ts.stateDirs) > 0 {
			checkpoints = append(checkpoints, ts)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	if err := r.checkpoint(ctx, checkpoints); err != nil {
		return err
	}
	var commitErr error
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
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
	for _, ts := range tasks {
		ts.dirty = false
	}
	r.stats.commits.Add(1)
	return nil
}

// flushProduced waits for all produced records, dead-letters or skips the
// failed ones as their policy says, and reports a failure under Fail.
func (r *Runtime) flushProduced(ctx context.Context) error {
	for range 3 {
		if err := r.cl.Flush(ctx); err != nil {
			return fmt.Errorf("kstreams: flushing produced records: %w", err)
		}
		if p := r.fatal.Load(); p != nil {
			return *p
		}
		r.failedMu.Lock()
		failed := r.failed
		r.failed = nil
		r.failedMu.Unlock()
		if len(failed) == 0 {
			return nil
		}
		policy := r.cfg.Policies[graph.StageProduce]
		for _, f := range failed {
			if policy.Action == DeadLetter && f.rec.Topic != policy.Topic {
				r.deadLetter(f.rec, graph.StageProduce, "", f.err)
				continue
			}
			r.stats.skipped.Add(1)
			r.log.Warn("skipped record that failed to produce", "topic", f.rec.Topic, "partition", f.rec.Partition, "error", f.err)
		}
	}
	return errors.New("kstreams: producing to the dead-letter topic keeps failing")
}

// checkpoint records, for each persistent store of tasks, the changelog
// offset its data covers: flush the store first, then write the offset.
func (r *Runtime) checkpoint(ctx context.Context, tasks []*taskState) error {
	if len(tasks) == 0 {
		return nil
	}
	for _, ts := range tasks {
		for _, s := range ts.t.Stores() {
			dir, ok := ts.stateDirs[s.Spec.Name()]
			if !ok {
				continue
			}
			topic := graph.ChangelogTopic(r.cfg.AppID, s.Spec.Name())
			end, err := r.endOffset(ctx, topic, ts.t.ID().Partition)
			if err != nil {
				return fmt.Errorf("kstreams: checkpointing store %s of task %s: %w", s.Spec.Name(), ts.t.ID(), err)
			}
			if err := s.Backend.Flush(); err != nil {
				return fmt.Errorf("kstreams: flushing store %s of task %s: %w", s.Spec.Name(), ts.t.ID(), err)
			}
			if err := writeCheckpoint(dir, end); err != nil {
				return fmt.Errorf("kstreams: writing checkpoint of store %s of task %s: %w", s.Spec.Name(), ts.t.ID(), err)
			}
		}
	}
	return nil
}

func (r *Runtime) punctuateWallClock(ctx context.Context) error {
	now := time.Now()
	for _, ts := range r.tasks {
		if err := ts.t.PunctuateWallClock(ctx, now); err != nil {
			return fmt.Errorf("kstreams: %w", err)
		}
		ts.dirty = true
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
	for topic, parts := range assigned {
		st := r.subOf[topic]
		if st == nil {
			continue
		}
		for _, p := range parts {
			id := graph.TaskID{Subtopology: st.ID, Partition: p}
			if _, ok := r.tasks[id]; ok {
				continue
			}
			ts, err := r.newTask(ctx, st, p)
			if err != nil {
				// Without its task the partition cannot be processed; fail
				// loudly rather than consume it without processing.
				e := fmt.Errorf("kstreams: creating task %s: %w", id, err)
				r.fatal.CompareAndSwap(nil, &e)
				r.log.Error("creating task failed", "task", id.String(), "error", err)
				r.cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
				continue
			}
			r.tasks[id] = ts
			for _, t := range st.SourceTopics {
				if r.byTP[t] == nil {
					r.byTP[t] = map[int32]*taskState{}
				}
				r.byTP[t][p] = ts
			}
			r.log.Info("task assigned", "task", id.String())
		}
	}
}

// onRevoked commits and closes the tasks of revoked partitions.
func (r *Runtime) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.dropTasks(ctx, revoked, !r.killed.Load())
}

// onLost closes the tasks of lost partitions without committing: another
// member may own them already.
func (r *Runtime) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.dropTasks(ctx, lost, false)
}

func (r *Runtime) dropTasks(ctx context.Context, parts map[string][]int32, commit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var drop []*taskState
	for topic, ps := range parts {
		for _, p := range ps {
			if ts := r.byTP[topic][p]; ts != nil && !containsTask(drop, ts) {
				drop = append(drop, ts)
			}
		}
	}
	if commit {
		if err := r.commitTasks(ctx, drop); err != nil {
			r.log.Error("committing revoked tasks failed; their uncommitted records will be reprocessed", "error", err)
		}
	}
	for _, ts := range drop {
		r.closeTask(ts)
	}
}

func containsTask(ts []*taskState, t *taskState) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func (r *Runtime) closeTask(ts *taskState) {
	id := ts.t.ID()
	if err := ts.t.Close(); err != nil {
		r.log.Error("closing task", "task", id.String(), "error", err)
	}
	delete(r.tasks, id)
	for _, t := range ts.t.Subtopology().SourceTopics {
		delete(r.byTP[t], id.Partition)
	}
	r.log.Info("task closed", "task", id.String())
}

func (r *Runtime) closeTasks(bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range r.allTasks() {
		r.closeTask(ts)
	}
}

// newTask creates the task for partition p of st, restoring its stores.
func (r *Runtime) newTask(ctx context.Context, st *graph.Subtopology, p int32) (*taskState, error) {
	ts := &taskState{offsets: map[string]kgo.EpochOffset{}, stateDirs: map[string]string{}}
	h := &taskHost{r: r, ctx: ctx, ts: ts}
	var opts task.Options
	if r.cfg.StateDir != "" {
		id := graph.TaskID{Subtopology: st.ID, Partition: p}
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
		return nil, err
	}
	ts.t = t
	return ts, nil
}

// taskHost implements task.Host for one task of the runtime.
type taskHost struct {
	r   *Runtime
	ctx context.Context
	ts  *taskState
}

func (h *taskHost) Emit(_ context.Context, rec *kgo.Record) error {
	if p := h.r.fatal.Load(); p != nil {
		return *p
	}
	h.r.produce(rec)
	return nil
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
	if !spec.Logged() {
		return b, nil
	}
	topic := graph.ChangelogTopic(h.r.cfg.AppID, spec.Name())
	start := int64(0)
	persistent := false
	if p, ok := b.(store.Persistent); ok && p.Persistent() && bctx.Dir != "" {
		persistent = true
		cp, err := readCheckpoint(bctx.Dir)
		if err != nil {
			b.Close()
			return nil, err
		}
		if cp >= 0 {
			start = cp
		}
	}
	if _, err := h.r.restore(h.ctx, b, RestoreProgress{Store: spec.Name(), Task: bctx.Task, Topic: topic, Partition: bctx.Partition, Start: start}); err != nil {
		b.Close()
		return nil, err
	}
	if persistent {
		h.ts.stateDirs[spec.Name()] = bctx.Dir
	}
	return &changelogBackend{Backend: b, topic: topic, partition: bctx.Partition, produce: h.r.produce}, nil
}
