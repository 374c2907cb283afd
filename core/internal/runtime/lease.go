package runtime

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The membership lease closes the gap between the group coordinator giving
// an instance's tasks away and the instance learning of it. The coordinator
// expires a member session.timeout after the last heartbeat it received;
// franz-go reports the loss only once its own heartbeat retries (bounded by
// the same timeout, counted from a later moment) give up, and a network
// that heals in between lets buffered produce retries land after the new
// owner's writes. So the instance keeps a lease: a heartbeat written at t
// and answered extends it to t + session timeout - margin, before the
// coordinator can expire the member. A JoinGroup or SyncGroup in flight
// holds it (the coordinator keeps members that are joining), and an answer
// to one extends it from the moment it is read.
//
// When the lease runs out while the instance owns tasks, it fences them all
// and aborts its buffered and in-flight records, as for lost partitions, but
// keeps them as suspended tasks: if the group then confirms the membership
// (the lease is extended again, no loss reported), the suspended tasks are
// rebuilt from their changelogs and their partitions rewound to the
// committed offsets (see readopt).
type lease struct {
	span    atomic.Int64 // session timeout less the margin, ns; 0 until known
	until   atomic.Int64 // unix ns; 0 before the first membership
	hbSent  atomic.Int64 // unix ns when the last heartbeat was written
	joining atomic.Bool  // a JoinGroup or SyncGroup is in flight
}

const (
	keyJoinGroup = 11
	keyHeartbeat = 12
	keySyncGroup = 14
)

// setSession sets the group's session timeout, which the lease follows.
func (l *lease) setSession(session time.Duration) {
	l.span.Store(int64(session - max(session/10, 500*time.Millisecond)))
}

// extend moves the lease's end to from + span, if that is later.
func (l *lease) extend(from int64) {
	span := l.span.Load()
	if span <= 0 {
		return
	}
	until := from + span
	for {
		old := l.until.Load()
		if until <= old || l.until.CompareAndSwap(old, until) {
			return
		}
	}
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (l *lease) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, timeToWrite time.Duration, err error) {
	if err != nil {
		return
	}
	switch key {
	case keyHeartbeat:
		l.hbSent.Store(time.Now().Add(-timeToWrite).UnixNano())
	case keyJoinGroup, keySyncGroup:
		l.joining.Store(true)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (l *lease) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	switch key {
	case keyHeartbeat:
		if err == nil {
			l.extend(l.hbSent.Load())
		}
	case keyJoinGroup, keySyncGroup:
		if err == nil {
			l.extend(time.Now().UnixNano())
		}
		l.joining.Store(false)
	}
}

// expired reports whether the lease ran out at now.
func (l *lease) expired(now time.Time) bool {
	if l.joining.Load() {
		return false
	}
	u := l.until.Load()
	return u != 0 && now.UnixNano() > u
}

// watchLease fences the instance's tasks when its lease runs out, until
// ctx is done. It does not take r.mu: the loop may hold it for a long
// poll's processing; it works on the tasks the loop published.
func (r *Runtime) watchLease(ctx context.Context) {
	tick := time.NewTicker(min(100*time.Millisecond, max(time.Duration(r.lease.span.Load())/20, time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if r.suspended.Load() || !r.lease.expired(now) {
				continue
			}
			tasks := r.owned.Load()
			if tasks == nil || len(*tasks) == 0 {
				continue
			}
			r.suspended.Store(true)
			r.log.Warn("no heartbeat answered within the session timeout: fencing every task and aborting the records in flight (the group may have given the tasks to another member)",
				"tasks", len(*tasks))
			for _, ts := range *tasks {
				ts.orphaned.Store(true)
				ts.fence(100*time.Millisecond, r.cl.UnsafeAbortBufferedRecords)
			}
			r.abortProduce(time.Now().Add(time.Second))
		}
	}
}

// publishTasks makes the current tasks visible to watchLease. Called with
// r.mu held whenever r.tasks changes.
func (r *Runtime) publishTasks() {
	ts := r.allTasks()
	r.owned.Store(&ts)
}

// readopt rebuilds the tasks suspended by watchLease once the lease is
// valid again and the group did not take them away: each is closed and
// opened again, restoring its stores from their changelogs from scratch
// (the local state may hold writes whose changelog records were aborted),
// and its partitions rewind to the committed offsets. Called by the loop
// with r.mu held.
func (r *Runtime) readopt(ctx context.Context) error {
	if !r.suspended.Load() || r.lease.expired(time.Now()) {
		return nil
	}
	r.suspended.Store(false)
	var fenced []*taskState
	for _, ts := range r.tasks {
		if ts.stopped.Load() {
			fenced = append(fenced, ts)
		}
	}
	if len(fenced) == 0 {
		return nil
	}
	r.log.Warn("the group kept this member: rebuilding the tasks fenced when its lease ran out", "tasks", len(fenced))
	committed := r.fetchCommitted(ctx)
	rewind := map[string]map[int32]kgo.EpochOffset{}
	for _, old := range fenced {
		id := old.t.ID()
		r.dirty(old)
		r.closeTask(old)
		ts, err := r.newTask(ctx, old.sub, id.Partition, committed)
		if err != nil {
			return fmt.Errorf("kstreams: rebuilding task %s: %w", id, err)
		}
		r.addTask(ts)
		for _, topic := range old.sub.SourceTopics {
			at := int64(0) // nothing committed: from the start (reset if out of range)
			if o, ok := committed.Lookup(topic, id.Partition); ok && o.Err == nil && o.At >= 0 {
				at = o.At
			}
			if rewind[topic] == nil {
				rewind[topic] = map[int32]kgo.EpochOffset{}
			}
			rewind[topic][id.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	r.cl.SetOffsets(rewind)
	r.publishTasks()
	return nil
}

// dirty drops the checkpoints of ts's persistent stores: ts was given up
// with writes possibly aborted, so the local state may hold writes its
// changelog lacks, and the next open of the store must restore it from
// scratch.
func (r *Runtime) dirty(ts *taskState) {
	for name, dir := range ts.stateDirs {
		if err := os.Remove(checkpointFile(dir)); err != nil && !os.IsNotExist(err) {
			r.log.Warn("could not drop the checkpoint of a store given up dirty; it will restore from that checkpoint", "task", ts.t.ID().String(), "store", name, "error", err)
		}
	}
}
