package runtime

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// completion tracks one unit of work (a record, a batch, or a run of
// records of a partition processed synchronously) until it is complete:
// its processing returned, every record it produced is acknowledged, and
// every changelog write made up to the moment its processing returned is
// acknowledged. Then its tracker entries are marked done and become
// committable.
//
// pending counts the processing (1, until processed is called) plus the
// produced records not yet acknowledged.
type completion struct {
	// The completion is the context its unit's processing gets: it
	// carries the parent's deadline and values and itself (see Value), with
	// no allocation of its own.
	context.Context
	ts      *taskState
	entries []entryRef
	pending atomic.Int32
	failed  atomic.Bool // never mark the entries done: a write was refused or failed
	need    []uint64    // changelog sequence numbers to wait for, per store
	promise func(*kgo.Record, error)
	r       *Runtime
	punct   bool // a wall-clock punctuation, counted in Runtime.punctPending
	one     [1]entryRef
	seg     *segment    // set on a segment's first unit: produce through the segment
	then    *completion // released once c is complete
}

type entryRef struct {
	tr *partTracker
	e  *trackEntry
}

type completionKey struct{}

func newCompletion(r *Runtime, ts *taskState) *completion {
	c := &completion{ts: ts, r: r}
	c.pending.Store(1)
	c.promise = c.onProduced
	return c
}

func completionFrom(ctx context.Context) *completion {
	c, _ := ctx.Value(completionKey{}).(*completion)
	return c
}

// context returns c as the context for its unit's processing.
func (c *completion) context(parent context.Context) context.Context {
	c.Context = parent
	return c
}

// Value implements context.Context.
func (c *completion) Value(key any) any {
	if key == (completionKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// produce sends rec as part of this unit. It returns ErrNotOwner, and
// the unit will never complete, if the task is fenced.
func (c *completion) produce(rec *kgo.Record) error {
	if c.seg != nil {
		return c.seg.produce(rec)
	}
	c.pending.Add(1)
	if !c.r.produce(c.ts, rec, c.promise) {
		c.failed.Store(true)
		c.release()
		return ErrNotOwner
	}
	return nil
}

func (c *completion) onProduced(rec *kgo.Record, err error) {
	c.ts.acked()
	if err != nil && !c.r.onProduced(c.ts, rec, err) {
		c.failed.Store(true)
	}
	c.release()
}

// processed is called once when the unit's processing returned (whatever
// the outcome: a failed unit under a continue policy completes too).
func (c *completion) processed() {
	if c.ts != nil && len(c.ts.changelogs) > 0 {
		c.need = make([]uint64, len(c.ts.changelogs))
		waiting := false
		for i, cl := range c.ts.changelogs {
			c.need[i] = cl.seq.Load()
			if cl.acked.Load() < c.need[i] {
				waiting = true
			}
		}
		if waiting {
			c.ts.waitChangelog(c)
			return
		}
	}
	c.release()
}

func (c *completion) changelogDone() bool {
	if c.ts.failed.Load() {
		return true // released as not complete (see release)
	}
	for i, cl := range c.ts.changelogs {
		if cl.acked.Load() < c.need[i] {
			return false
		}
	}
	return true
}

func (c *completion) release() {
	if c.pending.Add(-1) != 0 {
		return
	}
	if c.failed.Load() || c.ts != nil && (c.ts.stopped.Load() || c.ts.failed.Load()) {
		// Not complete: a write was refused or failed, or the task was
		// fenced, and its next owner processes the records again. (A unit
		// complete before the fence marked its entries already.)
		c.entries = nil
	}
	for es := c.entries; len(es) > 0; {
		es = es[es[0].tr.markDoneAll(es):]
	}
	if c.ts != nil {
		c.ts.active.Add(-1)
	}
	if c.punct {
		c.r.punctPending.Add(-1)
	}
	if c.then != nil {
		c.then.release()
	}
}

// waiters are completions whose changelog writes are not all acknowledged
// yet. Changelog acknowledgements arrive in order per store, so waiters
// are released in order too.
type waiters struct {
	mu   sync.Mutex
	list []*completion
}

func (ts *taskState) waitChangelog(c *completion) {
	ts.waiters.mu.Lock()
	ts.waiters.list = append(ts.waiters.list, c)
	ts.waiters.mu.Unlock()
	ts.drainWaiters() // an ack may have arrived meanwhile
}

// drainWaiters releases the waiting completions whose changelog writes are
// acknowledged.
func (ts *taskState) drainWaiters() {
	ts.waiters.mu.Lock()
	i := 0
	for i < len(ts.waiters.list) && ts.waiters.list[i].changelogDone() {
		i++
	}
	ready := append([]*completion(nil), ts.waiters.list[:i]...)
	ts.waiters.list = ts.waiters.list[i:]
	ts.waiters.mu.Unlock()
	for _, c := range ready {
		c.release()
	}
}
