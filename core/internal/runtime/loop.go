package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The poll loop: it polls, runs the records of synchronous tasks (on its
// own goroutine, and different tasks in parallel) and hands the others to
// dispatch, and runs punctuations and commits on schedule.

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
		r.observeLoop()
		r.checkFetchSizes()
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

// process runs a poll's records: records of concurrent tasks go to the
// workers; the partitions of synchronous tasks are processed each in offset
// order, different tasks in parallel (see processSyncTasks).
func (r *Runtime) process(ctx context.Context, fetches kgo.Fetches) error {
	var err error
	work := r.syncWork[:0]
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
		if ts.restoring.Load() {
			// Polled before the pause took effect: fetched again once the
			// task is ready.
			r.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.Topic: {p.Partition: {Epoch: -1, Offset: p.Records[0].Offset}}})
			return
		}
		r.observeFetch(&p)
		if ts.async {
			r.dispatchPartition(ts, p)
			return
		}
		work = append(work, syncPartition{ts, p})
	})
	serr := r.processSyncTasks(ctx, work)
	clear(work)
	r.syncWork = work[:0]
	if err != nil {
		return err
	}
	return serr
}

// parallelMinCost is the processing time per record (ns) from which the
// synchronous tasks of a poll run in parallel.
const parallelMinCost = 5000

// measureSync folds the processing time per record of records processed
// since start on goroutines into r.syncCost (in parallel, the time on each
// goroutine is taken to be the whole: an overestimate if they were not all
// busy to the end).
func (r *Runtime) measureSync(start time.Time, records, goroutines int) {
	if records < 64 {
		return // too few to tell
	}
	cost := int64(time.Since(start)) * int64(goroutines) / int64(records)
	if r.syncCost == 0 {
		r.syncCost = cost
	}
	r.syncCost += (cost - r.syncCost) / 8
}

// syncPartition is a polled partition of a synchronous task.
type syncPartition struct {
	ts *taskState
	p  kgo.FetchTopicPartition
}

// processSyncTasks processes the polled partitions of synchronous tasks.
// A task's partitions run one after another on one goroutine, in poll
// order; different tasks run in parallel on up to GOMAXPROCS goroutines
// (the loop's among them), as their state, trackers and completions are
// their own, and the loop waits for all of them: commits, rebalances and
// the next poll see every task between two polls, as when they ran on the
// loop alone. A task stops at its first error; the first task's error (in
// poll order) is returned.
func (r *Runtime) processSyncTasks(ctx context.Context, work []syncPartition) error {
	if len(work) == 0 {
		return nil
	}
	procs := goruntime.GOMAXPROCS(0)
	one := len(work) == 1 || procs == 1
	if !one {
		one = true
		for _, w := range work[1:] {
			if w.ts != work[0].ts {
				one = false
				break
			}
		}
	}
	start := time.Now()
	if one {
		records := 0
		for _, w := range work {
			if err := r.processSync(ctx, w.ts, w.p); err != nil {
				return err
			}
			records += len(w.p.Records)
		}
		r.measureSync(start, records, 1)
		return nil
	}
	// Group by task, keeping poll order within each.
	groups := r.syncGroups[:0]
	for i := range work {
		g := -1
		for j := range groups {
			if work[groups[j][0]].ts == work[i].ts {
				g = j
				break
			}
		}
		if g < 0 {
			groups = append(groups, nil)
			g = len(groups) - 1
		}
		groups[g] = append(groups[g], i)
	}
	errs := make([]error, len(groups))
	runGroup := func(g int) {
		for _, i := range groups[g] {
			if err := r.processSync(ctx, work[i].ts, work[i].p); err != nil {
				errs[g] = err
				return
			}
		}
	}
	// Cheap work stays on the loop: in parallel, records of a few
	// microseconds cost more CPU each (count on the embedded cluster: 2.3-2.6
	// µs per record on one goroutine, 3.0-3.3 µs on two) and leave less CPU
	// to the client's fetching and producing. Until the records are known
	// to cost parallelMinCost, tasks run one after another, measured, and
	// the rest go parallel once this poll's show they do.
	first := 0
	if r.syncCost < parallelMinCost {
		records := 0
		for first < len(groups) {
			runGroup(first)
			for _, i := range groups[first] {
				records += len(work[i].p.Records)
			}
			first++
			if records >= 64 && int64(time.Since(start))/int64(records) >= parallelMinCost {
				break
			}
		}
		r.measureSync(start, records, 1)
	}
	if rest := groups[first:]; len(rest) > 0 {
		pstart := time.Now()
		var next atomic.Int64
		run := func() {
			for {
				g := first + int(next.Add(1)-1)
				if g >= len(groups) {
					return
				}
				runGroup(g)
			}
		}
		var wg sync.WaitGroup
		n := min(procs, len(rest))
		for range n - 1 {
			wg.Go(run)
		}
		run()
		wg.Wait()
		records := 0
		for _, g := range rest {
			for _, i := range g {
				records += len(work[i].p.Records)
			}
		}
		r.measureSync(pstart, records, n)
	}
	for i := range groups {
		groups[i] = groups[i][:0]
	}
	r.syncGroups = groups[:0]
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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

// punctuateWallClock fires due wall-clock punctuators. Their outputs are
// tracked as punctuation units, which commits wait for.
func (r *Runtime) punctuateWallClock(ctx context.Context) error {
	now := time.Now()
	for _, ts := range r.tasks {
		if ts.stopped.Load() || ts.restoring.Load() || !ts.t.WallClockDue(now) {
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
