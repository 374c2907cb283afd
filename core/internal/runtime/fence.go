package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Ownership (fencing): only a task's current owner may write its outputs
// and its changelog. A task stops owning when it is revoked, lost, closed
// or failed; from then on:
//
//   - no write of it starts: Emit and changelog writes pass the task's
//     write gate (beginWrite), which is shut by fence;
//   - no unit of it completes after the gate shut, so no offset it covers
//     is committed by anyone but the next owner;
//   - nothing it already produced may land after the callback that gave
//     the task up returns: a revoke waits until those records are
//     acknowledged; a loss (another member may own the task already)
//     aborts every buffered and in-flight record of the instance. When
//     that cannot be done in time, the instance aborts its records and
//     stops with an error (see releaseTasks).
//
// Records a stale owner sent to a broker before the fence, and that the
// broker still appends later (a request already on the wire), can only be
// fenced by the broker; see docs/architecture.md, "Ownership".

// ErrNotOwner is returned by writes of a task this instance no longer owns:
// outputs and store writes of a record still running when its task was
// revoked, lost or closed. The record is not committed; its next owner
// processes it again. Package kstreams sets it to kstreams.ErrNotOwner at
// init, so that errors.Is matches the public value.
var ErrNotOwner = errors.New("kstreams: task no longer owned by this instance (revoked, lost or closing); write refused")

// beginWrite enters ts's write gate; false means ts is fenced and the write
// must not happen. Every true is paired with endWrite. The check and the
// count are two sequentially consistent atomics: fence either sees the
// writer counted or the writer sees the fence.
func (ts *taskState) beginWrite() bool {
	ts.gate.Add(1)
	if ts.stopped.Load() {
		ts.gate.Add(-1)
		return false
	}
	return true
}

func (ts *taskState) endWrite() { ts.gate.Add(-1) }

// produce sends rec for ts through the write gate; it counts rec as unacked
// until promise runs (promise must call ts.acked). It returns false if ts
// is fenced (rec was not sent). ts may be nil (a write of no task).
func (r *Runtime) produce(ts *taskState, rec *kgo.Record, promise func(*kgo.Record, error)) bool {
	if ts == nil {
		r.cl.Produce(r.produceCtx, rec, promise)
		return true
	}
	if !ts.beginWrite() {
		return false
	}
	ts.unacked.Add(1)
	r.cl.Produce(r.produceCtx, rec, promise)
	ts.endWrite()
	return true
}

// acked is called by the promise of a record produced through produce.
func (ts *taskState) acked() {
	if ts != nil {
		ts.unacked.Add(-1)
	}
}

// fence shuts ts's write gate and waits until no write of it is between
// its check and its Produce call. A Produce can block on a full produce
// buffer: if the wait lasts longer than abortAfter, abort is called (again
// every abortAfter) to free it; fence then returns true.
func (ts *taskState) fence(abortAfter time.Duration, abort func()) (aborted bool) {
	ts.draining.Store(true)
	ts.stopped.Store(true)
	start := time.Now()
	for ts.gate.Load() > 0 {
		if abort != nil && time.Since(start) >= abortAfter {
			abort()
			aborted = true
			start = time.Now()
		}
		time.Sleep(100 * time.Microsecond)
	}
	return aborted
}

// releaseTasks makes sure nothing produced by the fenced tasks ts can land
// after it returns. lost: another member may own them already, so the
// instance's buffered and in-flight records are aborted at once when these
// are all its tasks; otherwise their records get until deadline to be
// acknowledged. Failing that, every record of the instance is aborted and
// the instance stops: records of tasks it still owns were aborted too, and
// a restart restores them from their changelogs.
func (r *Runtime) releaseTasks(tasks []*taskState, lost bool, deadline time.Time) {
	all := len(tasks) == len(r.tasks)
	if lost && all {
		r.abortProduce(deadline)
		return
	}
	for time.Now().Before(deadline) {
		if unacked(tasks) == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	n := unacked(tasks)
	if n == 0 {
		return
	}
	r.abortProduce(time.Now().Add(time.Second))
	if !all {
		r.setFatal(fmt.Errorf("kstreams: %d records produced by tasks this instance gave up were not acknowledged in time; they were aborted with every record in flight, so the instance stops (restart it: its tasks restore from their changelogs)", n))
	}
}

func unacked(tasks []*taskState) int64 {
	var n int64
	for _, ts := range tasks {
		n += ts.unacked.Load()
	}
	return n
}

// abortProduce fails every buffered record of the instance, waiting for the
// requests in flight until deadline, then abandoning them.
func (r *Runtime) abortProduce(deadline time.Time) {
	if r.txn != nil {
		r.abortProduceTxn(deadline)
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := r.cl.AbortBufferedRecords(ctx); err != nil {
		r.log.Warn("produce requests still in flight; abandoning them", "error", err)
		r.cl.UnsafeAbortBufferedRecords()
	}
}
