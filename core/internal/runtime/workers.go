package runtime

import (
	"errors"
	"sync"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The worker pool: units of concurrent tasks queued per key (KeyOrder),
// per partition (PartitionOrder) or in groups (Unordered), run by a fixed
// number of goroutines.

type item struct {
	rec *kgo.Record
	tr  *partTracker
	e   *trackEntry
}

type unitQueue struct {
	ts    *taskState
	key   string
	keyed bool
	items []item
	first [1]item // items starts here: most queues hold one record
}

func newQueue(ts *taskState, it item) *unitQueue {
	q := &unitQueue{ts: ts}
	q.first[0] = it
	q.items = q.first[:1]
	return q
}

// submit queues a record of ts for the workers. Called by the poll loop.
func (r *Runtime) submit(ts *taskState, it item) {
	var q *unitQueue
	ts.qmu.Lock()
	switch ts.sub.Order {
	case graph.OrderUnordered:
		// Consecutive records form one group up to the batch size, so that
		// batch processors get batches; without batching each record is its
		// own group. A group goes to the workers when full or at flushOpen,
		// and is never appended to after that.
		if ts.open == nil {
			ts.open = newQueue(ts, it)
		} else {
			ts.open.items = append(ts.open.items, it)
		}
		if len(ts.open.items) < ts.batchMax() {
			ts.qmu.Unlock()
			return
		}
		q, ts.open = ts.open, nil
	default:
		key := ""
		if ts.sub.Order == graph.OrderKey {
			key = string(it.rec.Key)
		}
		if existing, ok := ts.queues[key]; ok {
			existing.items = append(existing.items, it)
			ts.qmu.Unlock()
			return
		}
		q = newQueue(ts, it)
		q.key, q.keyed = key, true
		ts.queues[key] = q
	}
	ts.qmu.Unlock()
	r.hand(q)
}

// hand passes a ready queue to the workers. When processing is cheap, a
// channel hand-off per queue would cost more than the work, so queues go
// in chunks sized by the measured processing time: one at a time for slow
// (I/O-bound) work, which must not wait behind other queues, up to 64 for
// work of a few microseconds. The loop flushes the chunk after each
// partition batch.
func (r *Runtime) hand(q *unitQueue) {
	if q.ts.retries {
		// A retry sleeps its backoff on the worker: a queue of a task
		// that retries goes alone, so that no other key waits for it.
		r.ready.push([]*unitQueue{q})
		return
	}
	r.chunk = append(r.chunk, q)
	if len(r.chunk) >= r.chunkSize() {
		r.flushChunk()
	}
}

func (r *Runtime) flushChunk() {
	if len(r.chunk) == 0 {
		return
	}
	r.ready.push(r.chunk)
	r.chunk = make([]*unitQueue, 0, cap(r.chunk))
}

// readyQueue hands chunks of queues to the workers. It is unbounded so that
// the poll loop never blocks on it: what it holds is bounded by the
// in-flight limit per partition.
type readyQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	chunks [][]*unitQueue
	closed bool
}

func newReadyQueue() *readyQueue {
	q := &readyQueue{}
	q.cond.L = &q.mu
	return q
}

func (q *readyQueue) push(c []*unitQueue) {
	q.mu.Lock()
	q.chunks = append(q.chunks, c)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop blocks until a chunk is ready; ok is false once closed and empty.
func (q *readyQueue) pop() (c []*unitQueue, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.chunks) == 0 {
		return nil, false
	}
	c = q.chunks[0]
	q.chunks[0] = nil
	q.chunks = q.chunks[1:]
	return c, true
}

func (q *readyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// chunkSize is how many queues go to a worker at once: about 50µs of
// work, from the moving average of the time a unit takes.
func (r *Runtime) chunkSize() int {
	avg := r.avgUnit.Load()
	if avg <= 0 {
		return 1
	}
	return int(min(64, max(1, int64(50*time.Microsecond)/avg)))
}

// flushOpen hands the open UNORDERED group of ts to the workers.
func (r *Runtime) flushOpen(ts *taskState) {
	ts.qmu.Lock()
	q := ts.open
	ts.open = nil
	ts.qmu.Unlock()
	if q != nil {
		r.hand(q)
	}
}

func (ts *taskState) batchMax() int {
	if ts.sub.Batch != nil {
		return ts.sub.Batch.MaxSize
	}
	return 1
}

// worker runs queues until the ready channel closes.
func (r *Runtime) worker() {
	defer r.workers.Done()
	var buf []item
	for {
		chunk, ok := r.ready.pop()
		if !ok {
			return
		}
		for _, q := range chunk {
			buf = r.runQueue(q, buf)
		}
	}
}

func (r *Runtime) runQueue(q *unitQueue, buf []item) []item {
	ts := q.ts
	for {
		ts.qmu.Lock()
		items := take(q, ts.batchMax(), buf[:0])
		if len(items) == 0 {
			if q.keyed {
				delete(ts.queues, q.key)
			}
			ts.qmu.Unlock()
			return items
		}
		if len(items) < ts.batchMax() && ts.sub.Batch != nil && ts.sub.Batch.Linger > 0 {
			ts.qmu.Unlock()
			time.Sleep(ts.sub.Batch.Linger)
			ts.qmu.Lock()
			items = take(q, ts.batchMax()-len(items), items)
		}
		ts.qmu.Unlock()
		buf = items
		// Counted active and running before the draining check, so that a
		// drain either waits for the unit or makes it skip, and a task is
		// not closed under it; runItems' completion releases active.
		ts.active.Add(1)
		ts.running.Add(1)
		if ts.draining.Load() || r.killed.Load() {
			ts.active.Add(-1)
			ts.running.Add(-1)
			continue // abandoned: never completed, so never committed
		}
		start := time.Now()
		r.runItems(ts, items)
		ts.running.Add(-1)
		// Moving average of a unit's processing time, for chunkSize.
		d := time.Since(start)
		old := r.avgUnit.Load()
		r.avgUnit.Store(old + (int64(d)-old)/16)
		ts.observe(d, int64(len(items)), r.slowRecord())
	}
}

// take moves up to n items from q to dst.
func take(q *unitQueue, n int, dst []item) []item {
	n = min(n, len(q.items))
	dst = append(dst, q.items[:n]...)
	clear(q.items[:n])
	q.items = q.items[n:]
	return dst
}

// runItems processes one unit (a record, or a batch) and completes it. The
// caller counted it in ts.active.
func (r *Runtime) runItems(ts *taskState, items []item) {
	c := newCompletion(r, ts)
	if len(items) == 1 {
		c.one[0] = entryRef{items[0].tr, items[0].e}
		c.entries = c.one[:]
	} else {
		c.entries = make([]entryRef, len(items))
		for i, it := range items {
			c.entries[i] = entryRef{it.tr, it.e}
		}
	}
	ctx := c.context(ts.ctx)
	if ts.sub.Batch == nil {
		// A record of a fenced task does not complete, whatever its error
		// (its writes were refused): see completion.release.
		r.enterProcess(ts)
		err := ts.t.Process(ctx, items[0].rec)
		r.exitProcess(ts)
		if err != nil && !ts.stopped.Load() {
			if ferr := r.handleRecordError(ctx, items[0].rec, err); ferr != nil {
				r.abandon(c, ferr)
				return
			}
		}
		c.processed()
		return
	}
	recs := make([]*kgo.Record, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	for len(recs) > 0 {
		r.enterProcess(ts)
		err := ts.t.ProcessBatch(ctx, recs)
		r.exitProcess(ts)
		if err == nil || ts.stopped.Load() {
			break
		}
		var be *graph.BatchError
		if errors.As(err, &be) {
			// One record could not be decoded: its policy, then the rest.
			if ferr := r.handleRecordError(ctx, recs[be.Index], graph.NewRecordError(recs[be.Index], be.Err)); ferr != nil {
				r.abandon(c, ferr)
				return
			}
			recs = append(recs[:be.Index:be.Index], recs[be.Index+1:]...)
			continue
		}
		// The batch failed as a whole: the policy applies to each record.
		for _, rec := range recs {
			if ferr := r.handleRecordError(ctx, rec, graph.NewRecordError(rec, err)); ferr != nil {
				r.abandon(c, ferr)
				return
			}
		}
		break
	}
	c.processed()
}

// abandon ends a unit whose failure stops the application: its records
// are never marked complete, so never committed, but it stops counting as
// active so that the shutdown does not wait for it.
func (r *Runtime) abandon(c *completion, err error) {
	r.setFatal(err)
	c.entries = nil
	c.processed()
}

func (r *Runtime) setFatal(err error) {
	r.fatal.CompareAndSwap(nil, &err)
}
