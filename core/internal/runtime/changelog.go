package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// changelogBackend logs every write of a store to the store's changelog
// topic, at the task's partition, and applies it to the backend.
//
// Invariant (state agrees with its changelog): a key's writes reach the
// backend and the changelog in the same order. Each write is applied to
// the backend and produced to the changelog under mu, so two writers of
// one store key (records of different keys updating a shared aggregate
// under KeyOrder, say) cannot interleave the two steps; franz-go keeps
// the produce order within the partition.
//
// Writes pass the task's write gate: once the task is fenced they are
// refused (ErrNotOwner) and neither the backend nor the changelog changes.
//
// Range deletions are not logged: they are how window stores drop expired
// segments, and the changelog of a window store expires the same records by
// its own retention (cleanup.policy=compact,delete). A restored window store
// drops what is expired again at its first write.
//
// seq counts the records logged and acked those acknowledged; the brokers
// acknowledge a partition's records in order, so acked >= n means the first
// n are durable. Completions wait on these (see completion). A failed write
// is never counted as durable: it fails the task (see onAcked).
type changelogBackend struct {
	store.Backend
	store     string
	topic     string
	partition int32
	r         *Runtime
	ts        *taskState
	promise   func(*kgo.Record, error)
	seq       atomic.Uint64
	acked     atomic.Uint64
	next      atomic.Int64 // changelog offset after the last write acknowledged (or the end restored)

	mu      sync.Mutex // orders backend writes with their produce calls, and guards the slabs
	slab    []byte
	records []kgo.Record
}

// onAcked is the promise of changelog records. A changelog write is never
// skipped or dead-lettered: the store would hold state that no restore can
// bring back. A failure marks the task failed (nothing more of it is
// committed, so its records are processed again after a restart) and stops
// the instance.
func (c *changelogBackend) onAcked(rec *kgo.Record, err error) {
	c.ts.acked()
	if err != nil {
		if !c.ts.stopped.Load() && !c.r.killed.Load() {
			c.r.setFatal(fmt.Errorf("kstreams: writing changelog %s/%d of store %s (task %s) failed: %w; the store's state is not durable past this write, so nothing more of the task is committed and the application stops (check the changelog topic exists, the client's authorization, and the record size limits: the producer's max batch bytes and the topic's max.message.bytes)",
				c.topic, c.partition, c.store, c.ts.t.ID(), err))
		}
		c.ts.failed.Store(true)
	} else if rec.Offset >= c.next.Load() {
		c.next.Store(rec.Offset + 1) // promises run one at a time
	}
	c.acked.Add(1)
	c.ts.drainWaiters()
}

// lock takes mu and enters the task's write gate: a write applied to the
// backend and logged before unlock is one step.
func (c *changelogBackend) lock() error {
	c.mu.Lock()
	if !c.ts.beginWrite() {
		c.mu.Unlock()
		return fmt.Errorf("writing store %s: %w", c.store, ErrNotOwner)
	}
	return nil
}

func (c *changelogBackend) unlock() {
	c.ts.endWrite()
	c.mu.Unlock()
}

// log produces one changelog record. Called with mu held, inside the
// task's write gate.
func (c *changelogBackend) log(key, value []byte, tombstone bool) {
	if len(c.records) == 0 {
		c.records = make([]kgo.Record, 256)
	}
	r := &c.records[0]
	c.records = c.records[1:]
	n := len(key) + len(value)
	var buf []byte
	if n > 8<<10 {
		buf = make([]byte, 0, n)
	} else {
		if cap(c.slab)-len(c.slab) < n {
			c.slab = make([]byte, 0, 64<<10)
		}
		buf = c.slab[len(c.slab):len(c.slab)]
		c.slab = c.slab[:len(c.slab)+n]
	}
	buf = append(append(buf, key...), value...)
	r.Topic, r.Partition = c.topic, c.partition
	r.Key = buf[:len(key):len(key)]
	if !tombstone {
		r.Value = buf[len(key):]
		if r.Value == nil {
			r.Value = []byte{}
		}
	}
	c.seq.Add(1)
	c.ts.unacked.Add(1)
	c.r.cl.Produce(c.r.produceCtx, r, c.promise)
}

// Set implements store.Backend.
func (c *changelogBackend) Set(key, value []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Set(key, value); err != nil {
		return err
	}
	c.log(key, value, false)
	return nil
}

// Delete implements store.Backend.
func (c *changelogBackend) Delete(key []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Delete(key); err != nil {
		return err
	}
	c.log(key, nil, true)
	return nil
}

// DeleteRange implements store.Backend. Range deletions are not logged
// (see above), but a fenced task's are refused like its other writes.
func (c *changelogBackend) DeleteRange(start, end []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	return c.Backend.DeleteRange(start, end)
}

// Write implements store.Backend.
func (c *changelogBackend) Write(b *store.Batch) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Write(b); err != nil {
		return err
	}
	for _, op := range b.Ops() {
		switch op.Kind {
		case store.OpSet:
			c.log(op.Key, op.Value, false)
		case store.OpDelete:
			c.log(op.Key, nil, true)
		}
	}
	return nil
}

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
func (r *Runtime) restore(ctx context.Context, b store.Backend, p RestoreProgress) (int64, error) {
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
	cl, err := kgo.NewClient(append(r.baseOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.Topic: {p.Partition: kgo.NewOffset().At(p.Start)}}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(32<<20),
		// Transaction markers take offsets too: seeing them is how the
		// restore reaches an end that is a marker.
		kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(r.isolation()),
	)...)
	if err != nil {
		return 0, fmt.Errorf("restore client for %s: %w", p.Topic, err)
	}
	defer cl.Close()
	var batch store.Batch
	next := p.Start
	lastLog := started
	for next < p.End {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var ferr error
		fs.EachError(func(t string, part int32, err error) { ferr = fmt.Errorf("fetching changelog %s/%d: %w", t, part, err) })
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= p.End {
				return
			}
			next = rec.Offset + 1
			if rec.Attrs.IsControl() {
				return
			}
			if rec.Value == nil {
				batch.Delete(rec.Key)
			} else {
				batch.Set(rec.Key, rec.Value)
			}
		})
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
	if err := b.Flush(); err != nil {
		return 0, fmt.Errorf("flushing restored store %s: %w", p.Store, err)
	}
	p.Elapsed = time.Since(started)
	p.Done = true
	r.reportRestore(p)
	return p.End, nil
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

// offsetRange returns the log start and end offsets of topic/partition,
// retried as endOffset.
func (r *Runtime) offsetRange(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	if start, err = r.listOffset(ctx, topic, partition, r.adm.ListStartOffsets); err != nil {
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
	return r.listOffset(ctx, topic, partition, r.adm.ListEndOffsets)
}

// listOffset returns an offset of topic/partition listed by list, retrying
// for up to two minutes: brokers restarting answer with errors for a while.
func (r *Runtime) listOffset(ctx context.Context, topic string, partition int32,
	list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
	var last error
	for attempt := range 600 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		ends, err := list(ctx, topic)
		if err != nil {
			last = err
			continue
		}
		if eo, ok := ends.Lookup(topic, partition); ok && eo.Err == nil {
			return eo.Offset, nil
		}
		last = errors.New("partition not in the response")
		ends.Each(func(eo kadm.ListedOffset) {
			if eo.Err != nil {
				last = eo.Err
			}
		})
	}
	return 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, last)
}

// changelogOf returns the changelog writer of ts's store name.
func (ts *taskState) changelogOf(name string) *changelogBackend {
	for _, cb := range ts.changelogs {
		if cb.store == name {
			return cb
		}
	}
	panic("kstreams: no changelog for store " + name) // callers pass logged stores only
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
		lso, err := r.listOffset(ctx, p.Topic, p.Partition, r.adm.ListCommittedOffsets)
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
