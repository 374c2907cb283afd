package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/task"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Assignment callbacks: tasks are created (and restored) when assigned,
// drained, fenced and committed when revoked, fenced and aborted when lost,
// and closed once their processors returned.

// onAssigned creates and restores the tasks of newly assigned partitions.
func (r *Runtime) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	if r.killed.Load() {
		return
	}
	defer r.observeRebalance(RebalanceAssigned, assigned)()
	r.mu.Lock()
	defer r.mu.Unlock()
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
			// The completed offsets above the committed ones come with
			// the committed offsets, which franz-go fetches next (see
			// onOffsetsFetched).
			ts, err := r.newTask(ctx, st, p, nil)
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

// onOffsetsFetched reads, in the commit metadata of the committed offsets
// franz-go fetched for the partitions just assigned, the records above the
// committed offsets that were already complete: their trackers skip them.
// It runs after onAssigned created the tasks and before any of their
// records is fetched.
func (r *Runtime) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	skip := func(topic string, p int32, offset int64, meta *string) {
		ts := r.byTP[topic][p]
		if ts == nil || offset < 0 || meta == nil || *meta == "" {
			return
		}
		tr := ts.trackers[topic]
		if tr == nil || tr.dispatched() {
			return // not a task just created
		}
		done, err := decodeDone(offset, *meta)
		if err != nil {
			r.log.Warn("ignoring unreadable commit metadata; completed records will be processed again", "topic", topic, "partition", p, "error", err)
		}
		tr.setSkip(done)
	}
	for _, g := range resp.Groups {
		if g.Group != r.cfg.AppID {
			continue
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					skip(t.Topic, p.Partition, p.Offset, p.Metadata)
				}
			}
		}
	}
	for _, t := range resp.Topics { // responses before version 8
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				skip(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	return nil
}

// addTask registers ts as owned, and starts its restore if it has stores
// to restore.
func (r *Runtime) addTask(ts *taskState) {
	id := ts.t.ID()
	r.tasks[id] = ts
	if ts.restoring.Load() {
		r.cl.PauseFetchPartitions(partitionsOf(ts))
		ts.running.Add(1) // closing the task waits for the restore
		go r.restoreTask(ts)
	}
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
	defer r.observeRebalance(RebalanceRevoked, revoked)()
	r.dropTasks(ctx, revoked, false)
}

// onLost gives up the tasks of lost partitions at once, without committing:
// another member may own them already. Everything the instance has
// buffered or in flight is aborted before this returns.
func (r *Runtime) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	defer r.observeRebalance(RebalanceLost, lost)()
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
	if ts.restoring.Load() {
		r.log.Info("task given up while restoring; it closes once the restore stops", "task", id.String())
	} else {
		r.log.Warn("a processor of a task given up is still running; the task closes when it returns (its writes are refused meanwhile)", "task", id.String())
	}
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
		sub: st, async: isAsync(st), inlineOK: mayInline(st), retries: hasRetry(st), ctx: tctx, cancel: cancel,
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
	h := &taskHost{r: r, ts: ts}
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
	t, err := task.Open(st, p, h, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	ts.t = t
	if len(ts.restores) == 0 {
		if err := t.Init(); err != nil {
			t.Close()
			cancel()
			return nil, err
		}
	} else {
		ts.restoring.Store(true) // addTask starts the restore
	}
	r.touchTaskDir(id.String(), time.Now())
	return ts, nil
}
