package runtime

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The concurrent ordering modes hand records to a pool of worker
// goroutines shared by all tasks. A task keeps one queue per key (KEY), one
// queue for itself (PARTITION with retries or batches), or one queue per
// dispatched group (UNORDERED); a queue is in the ready channel or being
// worked on by exactly one worker, which is what keeps a key's records in
// order.

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

// dispatchPartition tracks and queues one fetched partition's records for
// the workers, skipping those the commit metadata says are done.
//
// When a task's work is measured to be cheap (see Config.InlineBelow), the
// records whose key has nothing queued or running form a segment that one
// goroutine processes in offset order (see segment): handing each to a
// worker would cost more than the work. Records whose key is busy go behind
// it to the workers as usual. If the segment stops making progress (a
// record turned out slow), the loop takes back the records not started and
// hands them to the workers, so a slow key holds up only itself.
func (r *Runtime) dispatchPartition(ts *taskState, p kgo.FetchTopicPartition) {
	tr := ts.trackers[p.Topic]
	if ts.seg != nil {
		// Its keys are busy until it ends; a new segment waits for it.
		r.waitSegment(ts)
	}
	inline := r.inlining(ts)
	// With nothing queued, every key is idle for the whole fetch: only the
	// loop adds queues, and a segment adds none.
	allIdle := inline && ts.noQueues()
	if allIdle && !tr.hasSkip.Load() {
		// The whole fetch is one segment, tracked as one range (split if
		// the segment is taken back).
		seg := make([]item, len(p.Records))
		for i, rec := range p.Records {
			seg[i] = item{rec: rec, tr: tr}
		}
		r.startSegment(ts, seg, tr.add(p.Records[0].Offset, p.Records[len(p.Records)-1].Offset+1))
		r.stats.processed.Add(int64(len(p.Records)))
		r.maybePause(ts, tr, p)
		return
	}
	var seg []item
	if inline {
		seg = make([]item, 0, len(p.Records))
	}
	for _, rec := range p.Records {
		e := tr.add(rec.Offset, rec.Offset+1)
		if tr.hasSkip.Load() && tr.skipDone(rec.Offset) {
			tr.markDone(e)
			r.stats.skippedDone.Add(1)
			continue
		}
		it := item{rec: rec, tr: tr, e: e}
		if allIdle || inline && ts.keyIdle(rec.Key) {
			seg = append(seg, it)
			continue
		}
		r.submit(ts, it)
	}
	if ts.sub.Order == graph.OrderUnordered {
		r.flushOpen(ts)
	}
	r.flushChunk()
	if len(seg) > 0 {
		r.startSegment(ts, seg, nil)
	}
	r.stats.processed.Add(int64(len(p.Records)))
	r.maybePause(ts, tr, p)
}

// maybePause pauses fetching p when its records in flight, or the
// instance's, reached their bound.
func (r *Runtime) maybePause(ts *taskState, tr *partTracker, p kgo.FetchTopicPartition) {
	if !ts.paused[p.Topic] && (tr.inFlight() >= r.cfg.MaxInFlight || r.inFlight() >= r.cfg.MaxInFlightTotal) {
		ts.paused[p.Topic] = true
		r.pausedCount.Add(1)
		r.cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
	}
}

const (
	// A segment that starts no record for this long is taken back. Long
	// enough that a goroutine merely waiting for a CPU on a busy machine
	// is not taken for a stalled one (10 ms was, on a loaded 2-core box).
	stallTick = 50 * time.Millisecond
	slowPause = 10 * time.Second // a slow record stops its task's segments for this long
)

// slowRecord is how long a record must take to count as slow: 1 ms, or 100
// times the cheap-work threshold if that is more.
func (r *Runtime) slowRecord() time.Duration {
	return max(time.Millisecond, 100*r.cfg.InlineBelow)
}

// inlining reports whether ts's records may be processed as segments in
// this fetch: allowed for its sub-topology, its work cheap on average, none
// of it slow lately, and no segment of it stalled on a record still running
// (so a downstream that hangs every call ties up one goroutine per task
// beyond the workers, not one per fetch).
func (r *Runtime) inlining(ts *taskState) bool {
	return ts.inlineOK && r.cfg.InlineBelow > 0 && ts.avgWork.Load() < int64(r.cfg.InlineBelow) &&
		!ts.segStalled.Load() && time.Now().UnixNano() > ts.slowUntil.Load()
}

// noQueues reports whether no record of ts is queued or running on the
// workers.
func (ts *taskState) noQueues() bool {
	ts.qmu.Lock()
	defer ts.qmu.Unlock()
	return len(ts.queues) == 0 && ts.open == nil
}

// keyIdle reports whether no record with key is queued or running. Only the
// loop adds queues, so the answer holds until the loop submits again.
func (ts *taskState) keyIdle(key []byte) bool {
	if ts.sub.Order != graph.OrderKey {
		return true
	}
	ts.qmu.Lock()
	_, busy := ts.queues[string(key)]
	ts.qmu.Unlock()
	return !busy
}

// segment is a run of records processed in offset order by one goroutine.
// A task has at most one segment running; the loop goes on polling and
// dispatching other tasks meanwhile, and checks the segment each time round.
//
// Records are claimed one at a time by advancing next with a CAS; the
// goroutine finishes by claiming len(items) too. The loop takes the rest
// back by swapping next to -1: it then owns the items from the old value
// on, and the item before them may still be in progress.
//
// The segment is one unit of completion, cur, unless taken back: then the
// records done so far complete as one unit and the one in progress as
// another, which also waits for the first (see completion.then); what the
// record in progress produces from then on counts in the second.
type segment struct {
	ts       *taskState
	items    []item
	whole    *trackEntry // one tracker entry for all the items (theirs are nil), or nil
	next     atomic.Int64
	failedAt atomic.Int64  // index of the first record not completed (failed, or the task stopped); -1 if none
	done     chan struct{} // closed when the goroutine stops claiming
	handed   chan struct{} // closed by the loop after taking the rest back; then:
	stuck    *unitQueue    // the key queue of the record in progress, run by the goroutine after it
	split    *completion   // the completion of the record in progress

	mu  sync.Mutex
	cur *completion // where produced records count

	// Loop only.
	start      time.Time
	lastNext   int64     // next at the last check
	lastChange time.Time // when next last changed
}

// produce sends rec as part of the segment's current unit.
func (seg *segment) produce(rec *kgo.Record) error {
	seg.mu.Lock()
	c := seg.cur
	c.pending.Add(1)
	seg.mu.Unlock()
	if !c.r.produce(c.ts, rec, c.promise) {
		c.failed.Store(true)
		c.release()
		return ErrNotOwner
	}
	return nil
}

// entries returns the tracker entries of seg.items[:n], the records
// complete when the segment is.
func (seg *segment) entries(n int64) []entryRef {
	if n == 0 {
		return nil
	}
	if seg.whole == nil {
		es := make([]entryRef, n)
		for i, it := range seg.items[:n] {
			es[i] = entryRef{it.tr, it.e}
		}
		return es
	}
	tr := seg.items[0].tr
	if n == int64(len(seg.items)) {
		return []entryRef{{tr, seg.whole}}
	}
	// Complete up to a failure: the rest of the range never completes.
	parts := tr.splitAt(seg.whole, []int64{seg.items[n].rec.Offset})
	return []entryRef{{tr, parts[0]}}
}

// unwhole gives the items from k on tracker entries of their own, cutting
// the segment's range: items[:k] keep one entry, returned (nil if k is 0).
func (seg *segment) unwhole(k int64) *trackEntry {
	tr := seg.items[0].tr
	cuts := make([]int64, 0, len(seg.items))
	for _, it := range seg.items[max(k, 1):] {
		cuts = append(cuts, it.rec.Offset)
	}
	parts := tr.splitAt(seg.whole, cuts)
	seg.whole = nil
	var head *trackEntry
	if k > 0 {
		head, parts = parts[0], parts[1:]
	}
	for i, e := range parts {
		seg.items[k+int64(i)].e = e
	}
	return head
}

// startSegment starts processing items as ts's segment. whole, if not nil,
// is the one tracker entry of all the items.
func (r *Runtime) startSegment(ts *taskState, items []item, whole *trackEntry) {
	now := time.Now()
	seg := &segment{ts: ts, items: items, whole: whole, done: make(chan struct{}), handed: make(chan struct{}),
		start: now, lastChange: now}
	seg.failedAt.Store(-1)
	seg.cur = newCompletion(r, ts)
	seg.cur.seg = seg
	ts.active.Add(1)
	ts.running.Add(1)
	ts.seg = seg
	go r.segmentWorker(seg)
}

// waitSegment waits until ts's segment ends or is taken back.
func (r *Runtime) waitSegment(ts *taskState) {
	timer := time.NewTimer(stallTick / 2)
	defer timer.Stop()
	for ts.seg != nil {
		select {
		case <-ts.seg.done:
			ts.seg = nil
			return
		case <-timer.C:
			r.checkSegment(ts, time.Now())
			timer.Reset(stallTick / 2)
		}
	}
}

// checkSegments checks the running segments; it returns whether any still
// runs.
func (r *Runtime) checkSegments() bool {
	running := false
	var now time.Time
	for _, ts := range r.tasks {
		if ts.seg == nil {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		r.checkSegment(ts, now)
		running = running || ts.seg != nil
	}
	return running
}

// checkSegment clears ts's segment if it ended, and takes back the records
// it has not started if it made no progress for a stall tick or its records
// so far took far longer than cheap work would.
func (r *Runtime) checkSegment(ts *taskState, now time.Time) {
	seg := ts.seg
	select {
	case <-seg.done:
		ts.seg = nil
		return
	default:
	}
	cur := seg.next.Load()
	if cur != seg.lastNext {
		seg.lastNext, seg.lastChange = cur, now
		if now.Sub(seg.start) <= time.Duration(cur)*4*r.cfg.InlineBelow+stallTick {
			return
		}
	} else if now.Sub(seg.lastChange) < stallTick {
		return
	}
	ts.seg = nil
	n := int64(len(seg.items))
	old := seg.next.Swap(-1)
	if old > n {
		return // finished meanwhile
	}
	r.stats.inlineStalls.Add(1)
	ts.segStalled.Store(true)
	inProgress := max(old-1, 0) // index of the record in progress, if old > 0
	var head *trackEntry        // the entry of items[:inProgress], when they share one
	if seg.whole != nil {
		head = seg.unwhole(inProgress)
	}
	seg.mu.Lock()
	first := seg.cur
	if old > 0 {
		split := newCompletion(r, ts)
		ts.active.Add(1)
		split.pending.Add(1) // released when first completes
		it := seg.items[inProgress]
		split.one[0] = entryRef{it.tr, it.e}
		split.entries = split.one[:]
		first.then = split
		seg.cur, seg.split = split, split
	}
	seg.mu.Unlock()
	done := inProgress // records complete before the one in progress
	if f := seg.failedAt.Load(); f >= 0 && f < done {
		done = f
	}
	switch tr := seg.items[0].tr; {
	case head == nil:
		first.entries = seg.entries(done)
	case done == inProgress:
		first.entries = []entryRef{{tr, head}}
	case done > 0:
		first.entries = []entryRef{{tr, tr.splitAt(head, []int64{seg.items[done].rec.Offset})[0]}}
	}
	first.processed()
	if old > 0 && ts.sub.Order == graph.OrderKey {
		// The record in progress keeps its key busy: later records of the
		// key queue behind it, for the segment's goroutine to run.
		key := string(seg.items[old-1].rec.Key)
		q := &unitQueue{ts: ts, key: key, keyed: true}
		ts.qmu.Lock()
		ts.queues[key] = q
		ts.qmu.Unlock()
		seg.stuck = q
	}
	close(seg.handed)
	for _, it := range seg.items[old:] {
		r.submit(ts, it)
	}
	if ts.sub.Order == graph.OrderUnordered {
		r.flushOpen(ts)
	}
	r.flushChunk()
}

// segmentWorker is the goroutine of a segment.
func (r *Runtime) segmentWorker(seg *segment) {
	ts := seg.ts
	defer ts.running.Add(-1) // counted by startSegment
	ctx := seg.cur.context(ts.ctx)
	n := int64(len(seg.items))
	start := time.Now()
	var claimed int64      // records claimed
	var last time.Duration // when the last record started, since start
	stolen := false
	for {
		i := seg.next.Load()
		if i < 0 || !seg.next.CompareAndSwap(i, i+1) {
			stolen = true
			break
		}
		if i == n {
			break
		}
		claimed = i + 1
		if seg.failedAt.Load() >= 0 {
			continue
		}
		if ts.draining.Load() || r.killed.Load() {
			seg.failedAt.Store(i) // abandoned: not completed, so not committed
			continue
		}
		last = time.Since(start)
		rec := seg.items[i].rec
		r.enterProcess(ts)
		err := ts.t.Process(ctx, rec)
		r.exitProcess(ts)
		switch {
		case ts.stopped.Load():
			seg.failedAt.Store(i) // fenced while it ran: its writes may have been refused
		case err != nil:
			if ferr := r.handleRecordError(ctx, rec, err); ferr != nil {
				r.setFatal(ferr)
				seg.failedAt.Store(i) // never completed: not committed
			}
		}
	}
	close(seg.done)
	processed := claimed
	if f := seg.failedAt.Load(); f >= 0 {
		processed = min(processed, f)
	}
	if !stolen {
		c := seg.cur
		c.entries = seg.entries(processed)
		c.processed()
	}
	if processed > 0 {
		ts.observe(time.Since(start), processed, r.slowRecord())
		r.stats.inline.Add(processed)
	}
	if !stolen {
		return
	}
	<-seg.handed
	if time.Since(start)-last >= r.slowRecord() {
		// Taken back while a record was slow (not just descheduled):
		// this task's work goes to the workers for a while.
		ts.slowUntil.Store(time.Now().Add(slowPause).UnixNano())
	}
	ts.segStalled.Store(false)
	if c := seg.split; c != nil {
		if f := seg.failedAt.Load(); f >= 0 && f < claimed {
			c.entries = nil // the record in progress failed
		}
		c.processed()
	}
	if seg.stuck != nil {
		r.runQueue(seg.stuck, nil)
	}
}

// observe adds n records that took d in all to ts's moving average of a
// record's processing time. A run weighs up to 16 records.
func (ts *taskState) observe(d time.Duration, n int64, slow time.Duration) {
	mean := int64(d) / n
	if mean >= int64(slow) {
		ts.slowUntil.Store(time.Now().Add(slowPause).UnixNano())
	}
	w := min(n, 16)
	old := ts.avgWork.Load()
	ts.avgWork.Store(old + (mean-old)*w/16)
	if ts.samples.Load() < 1<<20 {
		ts.samples.Add(n)
	}
}

// resumeDrained resumes fetching of paused partitions whose in-flight
// records fell below half the partition's bound, while the application's
// are below half its bound.
func (r *Runtime) resumeDrained() {
	if r.pausedCount.Load() == 0 || r.inFlight() >= r.cfg.MaxInFlightTotal/2 {
		return
	}
	for _, ts := range r.tasks {
		for topic, paused := range ts.paused {
			if paused && ts.trackers[topic].inFlight() < r.cfg.MaxInFlight/2 {
				ts.paused[topic] = false
				r.pausedCount.Add(-1)
				r.cl.ResumeFetchPartitions(map[string][]int32{topic: {ts.t.ID().Partition}})
			}
		}
	}
}

// inFlight returns the records dispatched and not yet committable, over all
// tasks.
func (r *Runtime) inFlight() int { return int(r.inFlightTotal.Load()) }

// drain waits until every dispatched unit of tasks is complete or timeout
// passes, after telling the workers to start no new work for them. Units
// still running after it keep their task's writes open until the task is
// fenced.
func (r *Runtime) drain(tasks []*taskState, timeout time.Duration) {
	for _, ts := range tasks {
		ts.draining.Store(true)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		// A segment stalled on a record completes the records it ran
		// before that one once the stall is detected.
		r.checkSegments()
		busy := false
		for _, ts := range tasks {
			if ts.active.Load() > 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.log.Warn("records still in flight after the drain timeout are abandoned; their next owner processes them again", "timeout", timeout)
}
