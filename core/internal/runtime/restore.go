package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Restoring stores from their changelogs.

// RestoreProgress describes the restoration of one store of one task.
type RestoreProgress struct {
	Store     string
	Task      string
	Topic     string
	Partition int32
	Start     int64 // first changelog offset to restore
	End       int64 // changelog end offset when restoration began
	Restored  int64 // records applied so far
	Elapsed   time.Duration
	Done      bool
}

// restore replays the changelog partition into b, from p.Start (the
// store's checkpoint, or -1 for none) up to the partition's current end, in
// large batches, then flushes b.
//
// A checkpoint outside the changelog's current range cannot be trusted and
// b is wiped first: past the end, the topic was deleted and recreated;
// before the log start, records the store never saw are gone (deleted, or
// aged out by retention) and with them tombstones, so deleted keys would
// come back. Without a checkpoint, b is wiped too (see OpenStore). The
// restore starts at the log start, not at 0, so it ends even when
// retention or DeleteRecords emptied the partition.
//
// A store whose changelog is a source topic (pr.apply set, see
// store.WithSourceChangelog) is restored from the log start up to the
// group's committed offset, each record applied through its typed store.
func (r *Runtime) restore(ctx context.Context, pr *pendingRestore) (int64, error) {
	b, p := pr.b, pr.p
	if r.stopCtx != nil {
		// Shutting down interrupts a restore.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer context.AfterFunc(r.stopCtx, cancel)()
		defer cancel()
	}
	logStart, end, err := r.offsetRange(ctx, p.Topic, p.Partition)
	if err == nil && r.txn != nil {
		end, err = r.stableEnd(ctx, p, end)
	}
	if err == nil && pr.apply != nil {
		var committed int64
		committed, err = r.committedOffset(ctx, p.Topic, p.Partition)
		end = max(logStart, min(end, committed))
	}
	if err != nil {
		return 0, err
	}
	p.End = end
	if p.Start >= 0 && (p.Start > end || p.Start < logStart) {
		r.log.Warn("store checkpoint outside its changelog's range; wiping the store and restoring it from the changelog",
			"store", p.Store, "task", p.Task, "checkpoint", p.Start, "changelog", p.Topic, "partition", p.Partition,
			"log_start", logStart, "log_end", end)
		if err := b.DeleteRange(nil, nil); err != nil {
			return 0, fmt.Errorf("wiping store %s (task %s): %w", p.Store, p.Task, err)
		}
		p.Start = -1
	}
	p.Start = max(p.Start, logStart)
	started := time.Now()
	r.reportRestore(p)
	if p.Start == p.End {
		p.Done = true
		r.reportRestore(p)
		return p.End, nil
	}
	rc, err := r.restoreConsumer()
	if err != nil {
		return 0, err
	}
	feed, err := rc.open(p.Topic, p.Partition, p.Start)
	if err != nil {
		return 0, err
	}
	defer feed.close()
	var batch store.Batch
	var skipped int64 // source-topic records apply refused
	next := p.Start
	lastLog := started
	for next < p.End {
		fetched, err := feed.take(ctx)
		if err != nil {
			return 0, err
		}
		for _, recs := range fetched {
			for _, rec := range recs {
				if rec.Offset < next || rec.Offset >= p.End {
					continue // fetched again after a pause, or past the end
				}
				next = rec.Offset + 1
				if rec.Attrs.IsControl() {
					continue
				}
				switch {
				case pr.apply != nil:
					if err := pr.apply(rec.Key, rec.Value, rec.Headers, rec.Timestamp); err != nil {
						skipped++
						r.log.Warn("skipping a record of a store's source topic it cannot restore", "store", p.Store, "task", p.Task,
							"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error", err)
					} else {
						p.Restored++
					}
				case rec.Value == nil:
					batch.Delete(rec.Key)
				default:
					batch.Set(rec.Key, rec.Value)
				}
			}
		}
		if batch.Len() >= 10000 || next >= p.End {
			if err := b.Write(&batch); err != nil {
				return 0, fmt.Errorf("applying changelog %s/%d to store %s: %w", p.Topic, p.Partition, p.Store, err)
			}
			p.Restored += int64(batch.Len())
			batch.Reset()
		}
		if now := time.Now(); now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			p.Elapsed = now.Sub(started)
			r.reportRestore(p)
		}
	}
	if skipped > 0 {
		r.log.Warn("records of a store's source topic skipped by its restore", "store", p.Store, "task", p.Task, "skipped", skipped)
	}
	if err := b.Flush(); err != nil {
		return 0, fmt.Errorf("flushing restored store %s: %w", p.Store, err)
	}
	p.Elapsed = time.Since(started)
	p.Done = true
	r.reportRestore(p)
	return p.End, nil
}

// restoreConsumer returns the instance's restore consumer, created on
// first use; Run closes it.
func (r *Runtime) restoreConsumer() (*restoreConsumer, error) {
	r.restorerMu.Lock()
	defer r.restorerMu.Unlock()
	if r.restorerClosed {
		return nil, errors.New("the app is stopping")
	}
	if r.restorer == nil {
		share := sharesOf(r.cfg.MemoryBudget).restore
		part, mx := restoreFetchSizes(share)
		rc, err := newRestoreConsumer(share/2, append(r.baseOpts(),
			kgo.FetchMaxBytes(mx), kgo.FetchMaxPartitionBytes(part),
			// Transaction markers take offsets too: seeing them is how the
			// restore reaches an end that is a marker.
			kgo.KeepControlRecords(),
			kgo.FetchIsolationLevel(r.isolation()),
		))
		if err != nil {
			return nil, fmt.Errorf("creating the restore consumer: %w", err)
		}
		r.restorer = rc
	}
	return r.restorer, nil
}

// closeRestoreConsumer closes the restore consumer, if one was created.
func (r *Runtime) closeRestoreConsumer() {
	r.restorerMu.Lock()
	defer r.restorerMu.Unlock()
	r.restorerClosed = true
	if r.restorer != nil {
		r.restorer.close()
		r.restorer = nil
	}
}

func (r *Runtime) reportRestore(p RestoreProgress) {
	if p.Done {
		r.stats.restored.Add(p.Restored)
	}
	total := p.End - p.Start
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(p.Restored) / float64(total)
	}
	rate := 0.0
	if p.Elapsed > 0 {
		rate = float64(p.Restored) / p.Elapsed.Seconds()
	}
	switch {
	case p.Done:
		r.log.Info("store restored", "store", p.Store, "task", p.Task, "records", p.Restored,
			"from_offset", p.Start, "to_offset", p.End, "elapsed", p.Elapsed.Round(time.Millisecond), "records_per_sec", int64(rate))
	case p.Restored == 0:
		r.log.Info("restoring store", "store", p.Store, "task", p.Task, "changelog", p.Topic, "partition", p.Partition,
			"from_offset", p.Start, "to_offset", p.End)
	default:
		r.log.Info("restoring store", "store", p.Store, "task", p.Task, "percent", int(pct), "records_per_sec", int64(rate))
	}
	if r.cfg.OnRestore != nil {
		r.cfg.OnRestore(p)
	}
}

// committedOffset returns the group's committed offset of topic/partition
// (stable: after any transaction that committed it ended), or -1 if none.
// Errors are retried as listOffset's.
func (r *Runtime) committedOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	var last error
	for attempt := range 600 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		offs, err := r.adm.FetchOffsets(kadm.RequireStable(ctx), r.cfg.AppID)
		if errors.Is(err, kerr.GroupIDNotFound) {
			return -1, nil
		}
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			last = err
			continue
		}
		if o, ok := offs.Lookup(topic, partition); ok && o.At >= 0 {
			return o.At, nil
		}
		return -1, nil
	}
	return 0, fmt.Errorf("reading the committed offset of %s/%d: %w", topic, partition, last)
}

// offsetRange returns the log start and end offsets of topic/partition,
// retried as endOffset.
func (r *Runtime) offsetRange(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	if start, err = r.listOffset(ctx, topic, partition, 0, -2); err != nil {
		return 0, 0, err
	}
	if end, err = r.endOffset(ctx, topic, partition); err != nil {
		return 0, 0, err
	}
	return start, end, nil
}

// endOffset returns the end offset of topic/partition. A topic created
// moments ago may be missing from the client's metadata: that is retried.
func (r *Runtime) endOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	return r.listOffset(ctx, topic, partition, 0, -1)
}

// listOffset returns an offset of topic/partition (timestamp -2: the log
// start, -1: the end; isolation 1: the last stable offset for -1),
// retrying for up to two minutes: brokers restarting answer with errors
// for a while, and a topic created moments ago may be missing from the
// client's metadata.
//
// It lists that one partition: kadm's listings take whole topics, and
// every task restoring a store listed all the changelog's partitions (and
// asked for its metadata), which made starting an instance with 1,000
// tasks quadratic (40% of the start-up's CPU).
func (r *Runtime) listOffset(ctx context.Context, topic string, partition int32, isolation int8, timestamp int64) (int64, error) {
	var last error
	for attempt := range 600 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		o, err := r.listPartitionOffset(ctx, topic, partition, isolation, timestamp)
		if err == nil {
			return o, nil
		}
		last = err
	}
	return 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, last)
}

// listPartitionOffset sends one ListOffsets request for topic/partition
// (franz-go routes it to the partition's leader).
func (r *Runtime) listPartitionOffset(ctx context.Context, topic string, partition int32, isolation int8, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for _, shard := range r.admCl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return 0, shard.Err
		}
		resp, ok := shard.Resp.(*kmsg.ListOffsetsResponse)
		if !ok {
			continue
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if t.Topic != topic || p.Partition != partition {
					continue
				}
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, err
				}
				return p.Offset, nil
			}
		}
	}
	return 0, errors.New("partition not in the response")
}

// isolation is what restores and inputs read: with transactions, only what
// they committed.
func (r *Runtime) isolation() kgo.IsolationLevel {
	if r.cfg.Transactions {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}

// stableEnd returns where a restore of a transactional changelog ends: the
// last stable offset once it reached hw, the end when the restore began.
// A transaction still open below hw (a stale owner's, say) holds the last
// stable offset back; records committed after it are part of the state, so
// the restore waits for that transaction to end (commit, abort, or time
// out: at most the transaction timeout).
func (r *Runtime) stableEnd(ctx context.Context, p RestoreProgress, hw int64) (int64, error) {
	for waited := false; ; waited = true {
		lso, err := r.listOffset(ctx, p.Topic, p.Partition, 1, -1)
		if err != nil || lso >= hw {
			return lso, err
		}
		if !waited {
			r.log.Info("a transaction is open in the changelog; waiting for it to end before restoring",
				"store", p.Store, "task", p.Task, "changelog", p.Topic, "partition", p.Partition, "stable", lso, "end", hw)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pendingRestore is a store of a task opened and not restored yet.
type pendingRestore struct {
	b  store.Backend     // the backend, written directly (not through cb)
	cb *changelogBackend // nil for a store restored from a source topic
	p  RestoreProgress
	// apply writes a record of the store's source topic into the store
	// (see store.WithSourceChangelog); nil for a changelog.
	apply func(key, value []byte, headers []kgo.RecordHeader, ts time.Time) error
}

// restoreTask restores the stores of ts in the background, its partitions
// paused, while the other tasks go on; then it initializes the task's
// processors and resumes its partitions. A task given up meanwhile (its
// context canceled) or a shutdown stops the restore; closing the task waits
// for it (ts.running).
func (r *Runtime) restoreTask(ts *taskState) {
	defer r.updateState() // Restoring → Running
	defer ts.running.Add(-1)
	id := ts.t.ID()
	for _, pr := range ts.restores {
		end, err := r.restore(ts.ctx, pr)
		if err != nil {
			if ts.ctx.Err() != nil || r.stopCtx.Err() != nil {
				return
			}
			r.setFatal(fmt.Errorf("kstreams: restoring store %s of task %s: %w", pr.p.Store, id, err))
			r.log.Error("restoring a store failed", "task", id.String(), "store", pr.p.Store, "error", err)
			return
		}
		if pr.cb != nil {
			pr.cb.next.Store(end)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tasks[id] != ts || ts.stopped.Load() {
		return // given up meanwhile: its partitions are not ours to resume
	}
	if err := ts.t.Init(); err != nil {
		r.setFatal(fmt.Errorf("kstreams: creating task %s: %w", id, err))
		return
	}
	ts.restores = nil
	ts.restoring.Store(false)
	r.cl.ResumeFetchPartitions(partitionsOf(ts))
	r.log.Info("task ready", "task", id.String())
}
