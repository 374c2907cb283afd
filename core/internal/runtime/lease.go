package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	hbRead  atomic.Int64 // unix ns when the last heartbeat answer was read
	hbEvery atomic.Int64 // the heartbeat interval, ns
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
			l.hbRead.Store(time.Now().UnixNano())
		}
	case keyJoinGroup, keySyncGroup:
		if err == nil {
			l.extend(time.Now().UnixNano())
		}
		l.joining.Store(false)
	}
}

// heartbeating reports whether a heartbeat was answered within the last
// two heartbeat intervals: the member is in a group session, not waiting
// to rejoin.
func (l *lease) heartbeating(now time.Time) bool {
	return now.UnixNano()-l.hbRead.Load() <= 2*l.hbEvery.Load()
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
				r.fence(ts, true)
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
// valid again and the group did not take them away (and, with
// transactions, the tasks whose transaction aborted): each is closed and
// opened again, restoring its stores from their changelogs from scratch
// (the local state may hold writes whose changelog records were aborted),
// and its partitions rewind to the committed offsets. A task whose
// processor still runs is rebuilt once it returned (see rebuildPending).
// Called by the loop with r.mu held.
func (r *Runtime) readopt(ctx context.Context) error {
	if !r.suspended.Load() || r.lease.expired(time.Now()) {
		return nil
	}
	r.suspended.Store(false)
	r.txnSuspendDone = false
	var fenced []*taskState
	for _, ts := range r.tasks {
		if ts.stopped.Load() {
			fenced = append(fenced, ts)
		}
	}
	if len(fenced) == 0 {
		return nil
	}
	r.log.Warn("rebuilding the tasks fenced while the group kept them", "tasks", len(fenced))
	for _, old := range fenced {
		r.dirty(old)
		r.closeTask(old)
		r.rebuilds = append(r.rebuilds, old)
		r.rebuilding.Store(true)
		r.cl.PauseFetchPartitions(partitionsOf(old))
	}
	return r.rebuildPending(ctx)
}

// rebuildPending opens again the tasks readopt closed whose processors
// returned. Called by the loop with r.mu held.
func (r *Runtime) rebuildPending(ctx context.Context) error {
	if len(r.rebuilds) == 0 {
		return nil
	}
	var committed kadm.OffsetResponses
	rewind := map[string]map[int32]kgo.EpochOffset{}
	restoring := map[string]bool{} // "topic/partition" of rebuilt tasks whose restore resumes them
	left := r.rebuilds[:0]
	for _, old := range r.rebuilds {
		select {
		case <-old.closed:
		default:
			left = append(left, old)
			continue
		}
		if committed == nil {
			committed = r.fetchCommitted(ctx)
		}
		id := old.t.ID()
		ts, err := r.newTask(ctx, old.sub, id.Partition, committed)
		if err != nil && r.stopCtx.Err() != nil && errors.Is(err, context.Canceled) {
			r.log.Info("shutting down: task not rebuilt", "task", id.String())
			left = append(left, old)
			continue
		}
		if err != nil {
			return fmt.Errorf("kstreams: rebuilding task %s: %w", id, err)
		}
		r.addTask(ts)
		if ts.restoring.Load() {
			for _, t := range old.sub.SourceTopics {
				restoring[t+"/"+strconv.Itoa(int(id.Partition))] = true
			}
		}
		commits := map[string]int64{}
		for _, topic := range old.sub.SourceTopics {
			if o, ok := committed.Lookup(topic, id.Partition); ok && o.Err == nil && o.At >= 0 {
				commits[topic] = o.At
			}
		}
		seek, err := r.resumeInputs(ts, commits)
		if err != nil {
			return fmt.Errorf("kstreams: rebuilding task %s: %w", id, err)
		}
		for _, topic := range old.sub.SourceTopics {
			at := int64(0) // nothing committed: from the start (reset if out of range)
			if c, ok := commits[topic]; ok {
				at = c
			}
			if s, ok := seek[topic]; ok {
				at = s
				ts.trackers[topic].resumeAt(s)
			}
			if rewind[topic] == nil {
				rewind[topic] = map[int32]kgo.EpochOffset{}
			}
			rewind[topic][id.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
		r.log.Info("task rebuilt", "task", id.String())
	}
	clear(r.rebuilds[len(left):])
	r.rebuilds = left
	r.rebuilding.Store(len(left) > 0)
	if len(rewind) > 0 {
		// Records of these partitions polled before the rewind are
		// dropped (see process): processed now, they would start the new
		// tasks' trackers past the committed offset.
		if r.rewound == nil {
			r.rewound = map[string]map[int32]bool{}
		}
		for t, ps := range rewind {
			if r.rewound[t] == nil {
				r.rewound[t] = map[int32]bool{}
			}
			for p := range ps {
				r.rewound[t][p] = true
			}
		}
		r.cl.SetOffsets(rewind)
		resume := rewind2parts(rewind)
		for t, ps := range resume {
			resume[t] = slices.DeleteFunc(ps, func(p int32) bool { return restoring[t+"/"+strconv.Itoa(int(p))] })
		}
		r.cl.ResumeFetchPartitions(resume)
		r.publishTasks()
	}
	return nil
}

// partitionsOf returns ts's source partitions.
func partitionsOf(ts *taskState) map[string][]int32 {
	m := map[string][]int32{}
	for _, t := range ts.sub.SourceTopics {
		m[t] = []int32{ts.t.ID().Partition}
	}
	return m
}

func rewind2parts(rewind map[string]map[int32]kgo.EpochOffset) map[string][]int32 {
	m := map[string][]int32{}
	for t, ps := range rewind {
		for p := range ps {
			m[t] = append(m[t], p)
		}
	}
	return m
}

// forgetRebuilds drops the pending rebuilds of tasks of parts (revoked or
// lost meanwhile).
func (r *Runtime) forgetRebuilds(parts map[string][]int32) {
	left := r.rebuilds[:0]
	for _, old := range r.rebuilds {
		gone := false
		for _, t := range old.sub.SourceTopics {
			if slices.Contains(parts[t], old.t.ID().Partition) {
				gone = true
			}
		}
		if !gone {
			left = append(left, old)
			continue
		}
		// franz-go keeps a pause across assignments: undo it.
		r.cl.ResumeFetchPartitions(partitionsOf(old))
	}
	clear(r.rebuilds[len(left):])
	r.rebuilds = left
	r.rebuilding.Store(len(left) > 0)
}

// awaitsRebuild reports whether the task of topic/partition is closed for a
// rebuild (see readopt).
func (r *Runtime) awaitsRebuild(topic string, partition int32) bool {
	for _, old := range r.rebuilds {
		if old.t.ID().Partition == partition && slices.Contains(old.sub.SourceTopics, topic) {
			return true
		}
	}
	return false
}
