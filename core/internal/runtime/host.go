package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// taskHost is what a task sees of the runtime: Emit, and the stores it
// opens (restored, and wrapped to write their changelogs).

// taskHost implements task.Host for one task of the runtime.
type taskHost struct {
	r  *Runtime
	ts *taskState
}

// Emit produces rec as part of the unit in ctx. Every emit happens within
// a unit: record processing, stream-time punctuation (inside a record's
// processing) or wall-clock punctuation.
func (h *taskHost) Emit(ctx context.Context, rec *kgo.Record) error {
	if p := h.r.fatal.Load(); p != nil {
		return *p
	}
	c := completionFrom(ctx)
	if c == nil {
		return errors.New("kstreams: record emitted outside of processing or punctuation (from a goroutine of the processor's own?); it could not be tracked for at-least-once delivery")
	}
	return c.produce(rec)
}

func (h *taskHost) Partitions(topic string) (int32, error) { return h.r.partitionCount(topic) }

func (h *taskHost) Now() time.Time { return time.Now() }

func (h *taskHost) Logger() *slog.Logger { return h.r.log }

func (h *taskHost) StoreTopic(spec *store.Spec) string {
	return graph.ChangelogTopic(h.r.cfg.AppID, spec.Name())
}

// OpenStore opens the backend, restores it from its changelog and wraps it
// so that writes are logged.
func (h *taskHost) OpenStore(spec *store.Spec, bctx store.BackendContext) (store.Backend, error) {
	bctx.MemoryBudget, bctx.StoreInstances = sharesOf(h.r.cfg.MemoryBudget).stores, h.r.storeInstances()
	b, err := spec.Supplier()(bctx)
	if err != nil {
		return nil, err
	}
	if src := spec.Source(); src != nil {
		return h.openSourceRestored(spec, src, b, bctx)
	}
	ds := &durableStore{name: spec.Name(), b: b}
	if !spec.Logged() {
		if k, ok := b.(store.InputOffsetKeeper); ok {
			ds.inputs = k
		}
		h.ts.durable = append(h.ts.durable, ds)
		return h.r.observeStore(spec.Name(), b), nil
	}
	if k, ok := b.(store.OffsetKeeper); ok {
		ds.keeper = k
	} else if p, ok := b.(store.Persistent); ok && p.Persistent() && bctx.Dir != "" {
		ds.dir = bctx.Dir
	} else {
		ds = nil // restored from the changelog's start at every open
	}
	topic := graph.ChangelogTopic(h.r.cfg.AppID, spec.Name())
	start := int64(-1) // no checkpoint: the store is empty
	if ds != nil {
		cp, err := ds.storedOffset()
		if err != nil {
			b.Close()
			return nil, err
		}
		if cp >= 0 {
			start = cp
		} else if err := b.DeleteRange(nil, nil); err != nil {
			// No checkpoint: whatever the store holds is not known to match
			// the changelog (deletes compacted away would resurrect), so
			// restore into an empty store.
			b.Close()
			return nil, fmt.Errorf("clearing store %s without a checkpoint: %w", spec.Name(), err)
		}
	}
	cb := &changelogBackend{Backend: b, store: spec.Name(), topic: topic, partition: bctx.Partition, r: h.r, ts: h.ts}
	cb.promise = cb.onAcked
	h.ts.changelogs = append(h.ts.changelogs, cb)
	// Restored in the background once the task exists (see restoreTask).
	h.ts.restores = append(h.ts.restores, &pendingRestore{b: b, cb: cb,
		p: RestoreProgress{Store: spec.Name(), Task: bctx.Task, Topic: topic, Partition: bctx.Partition, Start: start}})
	if ds != nil {
		ds.cl = cb
		h.ts.durable = append(h.ts.durable, ds)
		if h.r.txn != nil {
			// With transactions the store will hold writes of open
			// transactions, which may abort: its checkpoint is valid
			// again only after a clean shutdown (see commitTxn).
			if err := ds.forget(); err != nil {
				b.Close()
				return nil, fmt.Errorf("dropping the checkpoint of store %s: %w", spec.Name(), err)
			}
		}
	}
	return h.r.observeStore(spec.Name(), cb), nil
}

// openSourceRestored sets up b, the backend of a store whose changelog is
// a source topic of its sub-topology (store.WithSourceChangelog): it is
// emptied and restored from that topic at every open, and its writes are
// not logged.
func (h *taskHost) openSourceRestored(spec *store.Spec, src *store.SourceChangelog, b store.Backend, bctx store.BackendContext) (store.Backend, error) {
	if !slices.Contains(h.ts.sub.SourceTopics, src.Topic) {
		b.Close()
		return nil, fmt.Errorf("store %s is restored from topic %s, which its sub-topology does not read (it reads %v)", spec.Name(), src.Topic, h.ts.sub.SourceTopics)
	}
	if err := b.DeleteRange(nil, nil); err != nil {
		b.Close()
		return nil, fmt.Errorf("clearing store %s before restoring it from %s: %w", spec.Name(), src.Topic, err)
	}
	typed := spec.Open(b, h.StoreTopic(spec))
	h.ts.restores = append(h.ts.restores, &pendingRestore{b: b,
		p: RestoreProgress{Store: spec.Name(), Task: bctx.Task, Topic: src.Topic, Partition: bctx.Partition, Start: -1},
		apply: func(key, value []byte, headers []kgo.RecordHeader, ts time.Time) error {
			return src.Apply(typed, key, value, headers, ts)
		}})
	return h.r.observeStore(spec.Name(), b), nil
}
