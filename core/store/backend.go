// Package store provides kstreams' state stores: the byte-level Backend
// contract that storage plugins implement, the typed stores processors use
// (KeyValueStore, WindowStore) built on any Backend, and the Spec that
// declares a store in a topology.
//
// The split follows database/sql and its drivers: a backend module (Pebble,
// Redis, Bigtable, the in-memory backend in store/memory) implements only
// Backend; encoding, caching, changelogging and metrics are provided once, for
// every backend, by kstreams.
package store

import (
	"bytes"
	"errors"
	"iter"
)

// Backend is an ordered byte-level key-value store: the contract storage
// plugins implement. Keys are ordered by bytes.Compare.
//
// A Backend belongs to one task. Under the synchronous (PARTITION) ordering
// mode it is used from one goroutine at a time; under the async modes it may
// be used concurrently, so implementations must be safe for concurrent use.
//
// Slices passed in (keys, values, range bounds) are owned by the caller and
// may be reused after the call returns: a backend that keeps them must copy.
// Slices returned (by Get and by Range) must not be modified by the caller.
// The store/storetest package checks all of this.
type Backend interface {
	// Get returns the value stored for key and whether it was found.
	// The returned slice may be retained by the caller.
	Get(key []byte) (value []byte, found bool, err error)
	// Set stores value for key, replacing any previous value. A nil value is
	// stored as an empty value; to delete, use Delete.
	Set(key, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(key []byte) error
	// DeleteRange removes every key k with lo <= k < hi.
	DeleteRange(lo, hi []byte) error
	// Range yields the entries with lo <= key < hi in ascending key order. A
	// nil lo starts at the first key; a nil hi runs to the last. An error
	// ends the iteration: it is yielded as the last element with a zero
	// Entry. The yielded slices are valid only until the next iteration step;
	// copy them to keep them. Writes made while ranging are allowed; whether
	// the running iteration sees them is unspecified.
	Range(lo, hi []byte) iter.Seq2[Entry, error]
	// Write applies all operations of b atomically: after a crash either all
	// or none of them are visible.
	Write(b *Batch) error
	// Flush makes every write that returned before the call durable in the
	// backend's own storage (a no-op for backends that are not durable by
	// themselves, like the in-memory one).
	Flush() error
	// Close releases the backend's resources. A closed backend returns
	// ErrClosed from every method.
	Close() error
}

// Entry is one key-value pair of a Backend.
type Entry struct {
	Key, Value []byte
}

// Checkpointer is implemented by backends that can write an immutable,
// consistent copy of their contents (for example hard links to immutable
// files) into a new directory. Object-storage state uploads such checkpoints.
type Checkpointer interface {
	// Checkpoint writes a consistent copy of the store's current contents to
	// dir, which must not exist yet, and returns once it is complete.
	Checkpoint(dir string) error
}

// Persistent is implemented by backends whose contents survive a process
// restart once Flush has returned (Pebble, for example). For those the
// runtime keeps a checkpoint of the changelog offset the backend holds, so a
// restart on the same disk restores only the changelog's tail; other backends
// are restored from the start of the changelog.
type Persistent interface {
	// Persistent reports whether flushed data survives a restart.
	Persistent() bool
}

// OffsetKeeper is implemented by backends that are durable by themselves
// (remote stores, object-storage snapshots) and keep, atomically with their
// data, the changelog offset their contents cover (as Kafka Streams' KIP-1035
// does). For a logged store the runtime then needs no checkpoint file and no
// local disk: at open it restores only the changelog after StoredOffset, and
// before each commit of the task's input offsets it calls FlushAt with the
// offset after the task's last acknowledged changelog write.
//
// For a store without a changelog the runtime calls Flush, not FlushAt,
// before each commit.
type OffsetKeeper interface {
	// StoredOffset returns the offset stored by the last FlushAt, and
	// ok false if none was stored (or -1 was).
	StoredOffset() (offset int64, ok bool, err error)
	// FlushAt makes every write that returned before the call durable
	// together with offset, in one atomic step: after a crash the backend
	// holds both or neither. An offset of -1 records that the contents match
	// no known changelog offset (the task was given up with writes possibly
	// aborted): the next open then restores the store from scratch.
	FlushAt(offset int64) error
}

// ErrClosed is returned by a Backend's methods after Close.
var ErrClosed = errors.New("store: backend closed")

// ErrFenced is returned (wrapped) by a Backend whose data lives outside the
// process when a newer owner of the task opened the same store instance:
// this instance must not write any more. A remote backend claims ownership
// when it opens (an owner epoch stored with the data, raised atomically) and
// checks that epoch in the same atomic write as every flush, so a stale
// owner can never overwrite its successor's state. The runtime treats it as
// the task being lost.
var ErrFenced = errors.New("store: fenced by a newer owner of the task")

// PrefixEnd returns the smallest key greater than every key that has the
// given prefix, or nil if there is none (the prefix is all 0xff bytes).
// Range(prefix, PrefixEnd(prefix)) scans exactly the keys with that prefix.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Batch is a list of writes applied atomically by Backend.Write. The zero
// value is empty and ready to use. A Batch copies the slices it is given.
type Batch struct {
	ops []Op
	buf []byte
}

// OpKind says what an Op does.
type OpKind uint8

// The kinds of Op.
const (
	OpSet         OpKind = iota + 1 // set Key to Value
	OpDelete                        // delete Key
	OpDeleteRange                   // delete keys in [Key, End)
)

// Op is one write in a Batch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // for OpSet
	End   []byte // for OpDeleteRange
}

func (b *Batch) copy(p []byte) []byte {
	if p == nil {
		return nil
	}
	// Each op's bytes live in the shared buffer; a grown buffer leaves earlier
	// slices pointing into the old array, which stays valid.
	start := len(b.buf)
	b.buf = append(b.buf, p...)
	return b.buf[start:len(b.buf):len(b.buf)]
}

// Set adds a write of value for key.
func (b *Batch) Set(key, value []byte) {
	v := b.copy(value)
	if v == nil {
		v = []byte{}
	}
	b.ops = append(b.ops, Op{Kind: OpSet, Key: b.copy(key), Value: v})
}

// Delete adds a deletion of key.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, Op{Kind: OpDelete, Key: b.copy(key)})
}

// DeleteRange adds a deletion of the keys in [lo, hi).
func (b *Batch) DeleteRange(lo, hi []byte) {
	b.ops = append(b.ops, Op{Kind: OpDeleteRange, Key: b.copy(lo), End: b.copy(hi)})
}

// Len returns the number of operations in b.
func (b *Batch) Len() int { return len(b.ops) }

// Ops returns b's operations in the order they were added. Backends apply
// them in this order.
func (b *Batch) Ops() []Op { return b.ops }

// Reset empties b, keeping its memory for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops = b.ops[:0]
	b.buf = b.buf[:0]
}
