package runtime

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// changelogBackend logs every write of a store to the store's changelog
// topic, at the task's partition, and applies it to the backend.
//
// Invariant (state agrees with its changelog): a key's writes reach the
// backend and the changelog in the same order. Each write is applied to
// the backend and produced to the changelog under mu, so two writers of
// one store key (records of different keys updating a shared aggregate
// under KeyOrder, say) cannot interleave the two steps; franz-go keeps
// the produce order within the partition.
//
// Writes pass the task's write gate: once the task is fenced they are
// refused (ErrNotOwner) and neither the backend nor the changelog changes.
//
// Range deletions are not logged: they are how window stores drop expired
// segments, and the changelog of a window store expires the same records by
// its own retention (cleanup.policy=compact,delete). A restored window store
// drops what is expired again at its first write.
//
// seq counts the records logged and acked those acknowledged; the brokers
// acknowledge a partition's records in order, so acked >= n means the first
// n are durable. Completions wait on these (see completion). A failed write
// is never counted as durable: it fails the task (see onAcked).
type changelogBackend struct {
	store.Backend
	store     string
	topic     string
	partition int32
	r         *Runtime
	ts        *taskState
	promise   func(*kgo.Record, error)
	seq       atomic.Uint64
	acked     atomic.Uint64
	next      atomic.Int64 // changelog offset after the last write acknowledged (or the end restored)

	mu      sync.Mutex // orders backend writes with their produce calls, and guards the slabs
	slab    []byte
	records []kgo.Record
}

// GetMany reads through to the backend's batch read, if it has one (see
// store.BatchGetter): reads are not logged.
func (c *changelogBackend) GetMany(keys [][]byte) ([][]byte, []bool, error) {
	return store.GetMany(c.Backend, keys)
}

// onAcked is the promise of changelog records. A changelog write is never
// skipped or dead-lettered: the store would hold state that no restore can
// bring back. A failure marks the task failed (nothing more of it is
// committed, so its records are processed again after a restart) and stops
// the instance.
func (c *changelogBackend) onAcked(rec *kgo.Record, err error) {
	c.ts.acked()
	if err != nil {
		if !c.ts.stopped.Load() && !c.r.killed.Load() {
			c.r.setFatal(fmt.Errorf("kstreams: writing changelog %s/%d of store %s (task %s) failed: %w; the store's state is not durable past this write, so nothing more of the task is committed and the application stops (check the changelog topic exists, the client's authorization, and the record size limits: the producer's max batch bytes and the topic's max.message.bytes)",
				c.topic, c.partition, c.store, c.ts.t.ID(), err))
		}
		c.ts.failed.Store(true)
	} else if rec.Offset >= c.next.Load() {
		c.next.Store(rec.Offset + 1) // promises run one at a time
	}
	c.acked.Add(1)
	c.ts.drainWaiters()
}

// lock takes mu and enters the task's write gate: a write applied to the
// backend and logged before unlock is one step.
func (c *changelogBackend) lock() error {
	c.mu.Lock()
	if !c.ts.beginWrite() {
		c.mu.Unlock()
		return fmt.Errorf("writing store %s: %w", c.store, ErrNotOwner)
	}
	return nil
}

func (c *changelogBackend) unlock() {
	c.ts.endWrite()
	c.mu.Unlock()
}

// log produces one changelog record. Called with mu held, inside the
// task's write gate.
func (c *changelogBackend) log(key, value []byte, tombstone bool) {
	if len(c.records) == 0 {
		c.records = make([]kgo.Record, 256)
	}
	r := &c.records[0]
	c.records = c.records[1:]
	n := len(key) + len(value)
	var buf []byte
	if n > 8<<10 {
		buf = make([]byte, 0, n)
	} else {
		if cap(c.slab)-len(c.slab) < n {
			c.slab = make([]byte, 0, 64<<10)
		}
		buf = c.slab[len(c.slab):len(c.slab)]
		c.slab = c.slab[:len(c.slab)+n]
	}
	buf = append(append(buf, key...), value...)
	r.Topic, r.Partition = c.topic, c.partition
	r.Key = buf[:len(key):len(key)]
	if !tombstone {
		r.Value = buf[len(key):]
		if r.Value == nil {
			r.Value = []byte{}
		}
	}
	c.seq.Add(1)
	c.ts.unacked.Add(1)
	c.r.cl.Produce(c.r.produceCtx, r, c.promise)
}

// Set implements store.Backend.
func (c *changelogBackend) Set(key, value []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Set(key, value); err != nil {
		return err
	}
	c.log(key, value, false)
	return nil
}

// Delete implements store.Backend.
func (c *changelogBackend) Delete(key []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Delete(key); err != nil {
		return err
	}
	c.log(key, nil, true)
	return nil
}

// DeleteRange implements store.Backend. Range deletions are not logged
// (see above), but a fenced task's are refused like its other writes.
func (c *changelogBackend) DeleteRange(start, end []byte) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	return c.Backend.DeleteRange(start, end)
}

// Write implements store.Backend.
func (c *changelogBackend) Write(b *store.Batch) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.Backend.Write(b); err != nil {
		return err
	}
	for _, op := range b.Ops() {
		switch op.Kind {
		case store.OpSet:
			c.log(op.Key, op.Value, false)
		case store.OpDelete:
			c.log(op.Key, nil, true)
		}
	}
	return nil
}

// changelogOf returns the changelog writer of ts's store name.
func (ts *taskState) changelogOf(name string) *changelogBackend {
	for _, cb := range ts.changelogs {
		if cb.store == name {
			return cb
		}
	}
	panic("kstreams: no changelog for store " + name) // callers pass logged stores only
}
