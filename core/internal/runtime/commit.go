package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offset commits without transactions (see txn.go for those with).

// commitTasks commits, per input partition of tasks, the lowest offset not
// yet complete, with the complete offsets above it in the metadata.
//
// Invariant (at-least-once): an offset is committable only when its record
// and all earlier records of its partition are complete: processed, every
// record they produced (outputs, dead letters) acknowledged, and every
// changelog write made by then acknowledged (see completion). Persistent
// stores are flushed and checkpointed before the commit, stores keeping
// input offsets flushed with them (see inputs.go). Wall-clock
// punctuations are not tied to offsets: the commit waits for their outputs.
func (r *Runtime) commitTasks(ctx context.Context, tasks []*taskState) error {
	if r.killed.Load() || r.cl == nil {
		return nil
	}
	// Outputs of wall-clock punctuations (and dead letters of failed
	// outputs) are not tied to an offset: a commit waits for them a
	// little, and is skipped if they are late (a produce outage): the next
	// round tries again.
	for deadline := time.Now().Add(min(time.Second, r.cfg.CommitInterval/2)); r.punctPending.Load() > 0; {
		if time.Now().After(deadline) {
			r.log.Warn("outputs of punctuations not acknowledged yet; skipping this commit round", "pending", r.punctPending.Load())
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	late := r.settleInputs(tasks)
	now := time.Now()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	metadata := map[string]map[int32]string{}
	type pending struct {
		ts    *taskState
		topic string
		key   string
		off   int64
		meta  string
	}
	var updates []pending
	for _, ts := range tasks {
		if ts.failed.Load() || ts.orphaned.Load() {
			// A changelog write failed (its state is not durable), or the
			// task was fenced when the membership lease ran out or by its
			// store: another member may own it, and write its changelog.
			continue
		}
		part := ts.t.ID().Partition
		var mine []pending
		var in store.InputOffsets // for stores keeping input offsets: every topic's commit point
		if ts.keepsInputs() {
			if !r.exactInputs(ts, late, now) {
				continue // not settled: its stores hold effects above its commit points
			}
			in = store.InputOffsets{}
		}
		for topic, tr := range ts.trackers {
			off, done, ok := tr.commitPoint()
			if !ok {
				continue
			}
			if in != nil {
				in[topic] = off
			}
			meta := encodeDone(off, done)
			if len(meta) > r.cfg.MaxMetadataBytes {
				// Too many completed records above a slow one: commit
				// without the map; they will be processed again.
				r.stats.metaDropped.Add(1)
				r.log.Warn("completed-offsets metadata exceeds the broker's limit; committing without it, so completed records above the committed offset will be replayed after a restart",
					"topic", topic, "partition", part, "committed", off, "completed_above", len(done), "bytes", len(meta), "limit", r.cfg.MaxMetadataBytes)
				meta = ""
			}
			key := fmt.Sprintf("%d|%s", off, meta)
			if ts.committed[topic] == key {
				continue
			}
			mine = append(mine, pending{ts, topic, key, off, meta})
		}
		if len(mine) == 0 {
			continue
		}
		if err := r.flushStores(ts, allStores, in); err != nil {
			// Without the flush the task's offsets are not committed this
			// round: its records are reprocessed after a crash, nothing is
			// lost.
			r.log.Warn("flushing stores failed; not committing the task's offsets this round", "task", ts.t.ID().String(), "error", err)
			continue
		}
		for _, u := range mine {
			if offsets[u.topic] == nil {
				offsets[u.topic] = map[int32]kgo.EpochOffset{}
				metadata[u.topic] = map[int32]string{}
			}
			offsets[u.topic][part] = kgo.EpochOffset{Epoch: -1, Offset: u.off}
			metadata[u.topic][part] = u.meta
		}
		updates = append(updates, mine...)
	}
	if len(offsets) == 0 {
		return nil
	}
	cctx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if m := metadata[t.Topic][t.Partitions[j].Partition]; m != "" {
					t.Partitions[j].Metadata = &m
				}
			}
		}
		return nil
	})
	var commitErr error
	defer r.observeCommit(time.Now(), &commitErr)
	r.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					commitErr = errors.Join(commitErr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e))
				}
			}
		}
	})
	if commitErr != nil {
		// Offsets not committed are processed again by the next owner:
		// duplicates, not loss. A rebalance in progress causes this.
		r.log.Warn("offset commit failed; the records since the last commit will be reprocessed by their next owner", "error", commitErr)
		return nil
	}
	for _, u := range updates {
		u.ts.committed[u.topic] = u.key
	}
	r.stats.commits.Add(1)
	return nil
}
