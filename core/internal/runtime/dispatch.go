package runtime

import (
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
