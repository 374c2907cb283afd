package runtime

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Stores without changelog whose backend keeps the input offsets its data
// covers (store.InputOffsetKeeper: object-storage snapshots, remote stores).
//
// At a commit, such a store is flushed with the offsets about to be
// committed (commitTasks, commitTxn), after the task's work in flight was
// given a moment to finish (settleInputs): then the store holds the effects
// of exactly the records below them. When the task opens, its partitions
// resume from the stored offsets where they differ from the committed ones
// (resumeInputs): a crash between the flush and the commit leaves the store
// ahead of the committed offsets, and resuming from them applies no record
// twice. Under the async ordering modes a unit may still run at the flush;
// it is then applied again after a crash, as with a changelog.

// keepsInputs reports whether ts has stores that keep input offsets.
func (ts *taskState) keepsInputs() bool {
	for _, ds := range ts.durable {
		if ds.inputs != nil {
			return true
		}
	}
	return false
}

// settleInputs waits, up to a bound, until every unit dispatched to the
// partition-ordered tasks among tasks that keep input offsets is complete
// (their outputs acknowledged), so their commit points are where their
// processing is. Called by the loop, which processes those tasks: nothing
// new starts meanwhile. It returns the tasks that did not settle: their
// stores hold effects of records above their commit points, so they are
// not flushed and committed this round (see exactInputs).
func (r *Runtime) settleInputs(tasks []*taskState) map[*taskState]bool {
	var wait []*taskState
	for _, ts := range tasks {
		if !ts.async && !ts.stopped.Load() && ts.keepsInputs() {
			wait = append(wait, ts)
		}
	}
	if len(wait) == 0 {
		return nil
	}
	var late map[*taskState]bool
	deadline := time.Now().Add(min(time.Second, max(r.cfg.CommitInterval/2, 10*time.Millisecond)))
	for _, ts := range wait {
		for _, tr := range ts.trackers {
			for !tr.settled() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			if !tr.settled() {
				if late == nil {
					late = map[*taskState]bool{}
				}
				late[ts] = true
			}
		}
	}
	return late
}

// unsettledLimit is how long a task keeping input offsets may go without
// settling at a commit before it is committed anyway, at its commit points.
func (r *Runtime) unsettledLimit() time.Duration {
	return max(30*time.Second, 10*r.cfg.CommitInterval)
}

// exactInputs reports whether ts, which keeps input offsets, is committed
// this round: it settled (late does not hold it), or it has not for
// unsettledLimit (a produce outage, acknowledgements slower than the wait),
// and is then flushed at its commit points, with effects of records above
// them that a crash would apply again, as with a changelog.
func (r *Runtime) exactInputs(ts *taskState, late map[*taskState]bool, now time.Time) bool {
	if !late[ts] {
		ts.unsettledSince = time.Time{}
		return true
	}
	if ts.unsettledSince.IsZero() {
		ts.unsettledSince = now
	}
	if now.Sub(ts.unsettledSince) < r.unsettledLimit() {
		return false
	}
	r.log.Warn("outputs of a task keeping input offsets in its stores are not acknowledged at commits; flushing its stores at its commit points (after a crash, records above them are applied to the stores again)",
		"task", ts.t.ID().String(), "since", ts.unsettledSince)
	return true
}

// resumeInputs returns where ts's partitions resume, per source topic,
// where that differs from committed (the group's committed offsets; a topic
// without a commit is absent), given the input offsets its stores keep.
//
//   - No store holds offsets: the committed ones (the stores are new).
//   - All hold the same: those. Ahead of the committed offsets, a crash
//     came between the flush and the commit (the records in between are
//     complete: the flush came after them); behind, the store lost its
//     latest flushes, and the records in between are processed again.
//   - They differ (a crash between the stores' flushes): every store not at
//     the committed offsets is rewound to them (store.InputRewinder), or the
//     task cannot start: store.ErrInputsDisagree.
func (r *Runtime) resumeInputs(ts *taskState, committed map[string]int64) (map[string]int64, error) {
	type held struct {
		ds *durableStore
		in store.InputOffsets
	}
	var hs []held
	for _, ds := range ts.durable {
		if ds.inputs == nil {
			continue
		}
		in, err := ds.inputs.StoredInputs()
		if err != nil {
			return nil, fmt.Errorf("reading the input offsets stored in store %s: %w", ds.name, err)
		}
		if in != nil {
			hs = append(hs, held{ds, in})
		}
	}
	if len(hs) == 0 {
		return nil, nil
	}
	agree := true
	for _, h := range hs[1:] {
		agree = agree && h.in.Equal(hs[0].in)
	}
	if agree {
		var seek map[string]int64
		for topic, off := range hs[0].in {
			if _, ok := ts.trackers[topic]; !ok {
				continue // a topic the task no longer reads
			}
			if c, ok := committed[topic]; !ok || c != off {
				if seek == nil {
					seek = map[string]int64{}
				}
				seek[topic] = off
			}
		}
		return seek, nil
	}
	describe := func() string {
		var b strings.Builder
		for i, h := range hs {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "store %s at %v", h.ds.name, h.in)
		}
		fmt.Fprintf(&b, "; committed %v", store.InputOffsets(committed))
		return b.String()
	}
	for _, h := range hs {
		want := store.InputOffsets{}
		for topic := range h.in {
			c, ok := committed[topic]
			if !ok {
				return nil, fmt.Errorf("%w (%s): nothing is committed for topic %s, so there is nothing to rewind store %s to",
					store.ErrInputsDisagree, describe(), topic, h.ds.name)
			}
			want[topic] = c
		}
		if want.Equal(h.in) {
			continue
		}
		rw, ok := h.ds.inputs.(store.InputRewinder)
		if !ok {
			return nil, fmt.Errorf("%w (%s): store %s cannot be rewound to the committed offsets (its backend keeps no earlier flushes); a crash came between the stores' flushes at a commit. Give the task's stores a changelog, or restore store %s to the committed offsets",
				store.ErrInputsDisagree, describe(), h.ds.name, h.ds.name)
		}
		done, err := rw.RewindInputs(want)
		if err != nil {
			return nil, fmt.Errorf("rewinding store %s to the committed offsets %v: %w", h.ds.name, want, err)
		}
		if !done {
			return nil, fmt.Errorf("%w (%s): store %s keeps no flush at the committed offsets", store.ErrInputsDisagree, describe(), h.ds.name)
		}
		r.log.Warn("store rewound to the committed offsets: a crash came between the flushes of the task's stores",
			"task", ts.t.ID().String(), "store", h.ds.name, "from", h.in.String(), "to", want.String())
	}
	return nil, nil
}

// adjustFetchOffsets moves where the partitions just assigned start to the
// input offsets their tasks' stores keep (see resumeInputs). franz-go calls
// it after onOffsetsFetched, before any record of them is fetched.
func (r *Runtime) adjustFetchOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[*taskState]bool{}
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		for p := range offsets[topic] {
			ts := r.byTP[topic][p]
			if ts == nil || seen[ts] || !ts.keepsInputs() {
				continue
			}
			seen[ts] = true
			committed := map[string]int64{}
			for _, t := range ts.sub.SourceTopics {
				if o, ok := offsets[t][p]; ok && o.EpochOffset().Offset >= 0 {
					committed[t] = o.EpochOffset().Offset
				}
			}
			seek, err := r.resumeInputs(ts, committed)
			if err != nil {
				r.setFatal(fmt.Errorf("kstreams: starting task %s: %w", ts.t.ID(), err))
				r.log.Error("the task's stores disagree on where to resume; not processing it", "task", ts.t.ID().String(), "error", err)
				r.cl.PauseFetchPartitions(partitionsOf(ts))
				continue
			}
			for t, off := range seek {
				if offsets[t] == nil {
					offsets[t] = map[int32]kgo.Offset{}
				}
				offsets[t][p] = kgo.NewOffset().At(off).WithEpoch(-1)
				ts.trackers[t].resumeAt(off)
				r.log.Info("resuming from the input offsets stored with the task's state", "task", ts.t.ID().String(),
					"topic", t, "partition", p, "offset", off, "committed", committedString(committed, t))
			}
		}
	}
	return offsets, nil
}

func committedString(committed map[string]int64, topic string) string {
	if c, ok := committed[topic]; ok {
		return fmt.Sprint(c)
	}
	return "none"
}
