package runtime

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Segments: cheap records of a concurrent task run in offset order on one
// goroutine instead of through the workers; a segment that stalls on a
// slow record is taken back (see checkSegment).

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
