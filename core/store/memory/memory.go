// Package memory provides an in-memory, ordered store.Backend.
//
// It keeps entries in a skip list guarded by a read-write mutex. It is not
// durable by itself: with the default changelog, its contents are restored
// from the changelog topic when a task starts.
package memory

import (
	"bytes"
	"iter"
	"math/rand/v2"
	"sync"

	"github.com/kstreams-go/kstreams/core/store"
)

// Supplier returns a store.Supplier that opens a new, empty in-memory backend
// for each task.
func Supplier() store.Supplier {
	return func(store.BackendContext) (store.Backend, error) { return New(), nil }
}

const maxLevel = 24

type node struct {
	key, value []byte
	next       []*node
}

// Backend is an in-memory ordered store.Backend, safe for concurrent use.
type Backend struct {
	mu      sync.RWMutex
	head    node
	index   map[string]*node // point lookups without a seek
	level   int
	len     int
	version uint64 // bumped by every write; lets a Range continue without re-seeking
	closed  bool
	rnd     *rand.PCG
}

// New returns an empty Backend.
func New() *Backend {
	return &Backend{head: node{next: make([]*node, maxLevel)}, index: map[string]*node{}, level: 1, rnd: rand.NewPCG(1, 2)}
}

var _ store.Backend = (*Backend)(nil)

// Len returns the number of entries.
func (b *Backend) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.len
}

// seek fills prev with the last node before key at each level and returns
// the first node with key >= key.
func (b *Backend) seek(key []byte, prev *[maxLevel]*node) *node {
	x := &b.head
	for i := b.level - 1; i >= 0; i-- {
		for x.next[i] != nil && bytes.Compare(x.next[i].key, key) < 0 {
			x = x.next[i]
		}
		if prev != nil {
			prev[i] = x
		}
	}
	return x.next[0]
}

// Get implements store.Backend.
func (b *Backend) Get(key []byte) ([]byte, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, false, store.ErrClosed
	}
	if n, ok := b.index[string(key)]; ok {
		// Values are never modified in place, so handing out the stored slice
		// is safe.
		return n.value, true, nil
	}
	return nil, false, nil
}

// Set implements store.Backend.
func (b *Backend) Set(key, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return store.ErrClosed
	}
	b.set(key, value)
	return nil
}

func (b *Backend) set(key, value []byte) {
	v := append(make([]byte, 0, len(value)), value...)
	if n, ok := b.index[string(key)]; ok {
		// Replacing a value keeps the list's shape: running ranges need not
		// re-seek, so the version stays.
		n.value = v
		return
	}
	b.version++
	var prev [maxLevel]*node
	n := b.seek(key, &prev)
	lvl := 1
	for lvl < maxLevel && b.rnd.Uint64()&3 == 0 {
		lvl++
	}
	if lvl > b.level {
		for i := b.level; i < lvl; i++ {
			prev[i] = &b.head
		}
		b.level = lvl
	}
	n = &node{key: bytes.Clone(key), value: v, next: make([]*node, lvl)}
	b.index[string(n.key)] = n
	for i := range lvl {
		n.next[i] = prev[i].next[i]
		prev[i].next[i] = n
	}
	b.len++
}

// Delete implements store.Backend.
func (b *Backend) Delete(key []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return store.ErrClosed
	}
	b.deleteRange(key, append(bytes.Clone(key), 0))
	return nil
}

// DeleteRange implements store.Backend.
func (b *Backend) DeleteRange(lo, hi []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return store.ErrClosed
	}
	b.deleteRange(lo, hi)
	return nil
}

func (b *Backend) deleteRange(lo, hi []byte) {
	b.version++
	var prev [maxLevel]*node
	n := b.seek(lo, &prev)
	for n != nil && (hi == nil || bytes.Compare(n.key, hi) < 0) {
		// A running Range may hold n: its next pointers stay intact so it can
		// still step forward (and re-seeks anyway, as version changed).
		for i := 0; i < len(n.next); i++ {
			if prev[i].next[i] == n {
				prev[i].next[i] = n.next[i]
			}
		}
		delete(b.index, string(n.key))
		b.len--
		n = n.next[0]
	}
}

// Range implements store.Backend. Each step takes the read lock briefly, so
// the caller may write to the backend while ranging.
func (b *Backend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		var (
			cur     *node
			version uint64
			last    []byte
		)
		for {
			b.mu.RLock()
			if b.closed {
				b.mu.RUnlock()
				yield(store.Entry{}, store.ErrClosed)
				return
			}
			switch {
			case cur == nil && last == nil:
				if lo == nil {
					cur = b.head.next[0]
				} else {
					cur = b.seek(lo, nil)
				}
			case version == b.version:
				cur = cur.next[0]
			default:
				// The list changed since the last step: find the successor of
				// the last key yielded.
				cur = b.seek(append(append(make([]byte, 0, len(last)+1), last...), 0), nil)
			}
			version = b.version
			var e store.Entry
			if cur != nil {
				e = store.Entry{Key: cur.key, Value: cur.value}
			}
			b.mu.RUnlock()
			if cur == nil || (hi != nil && bytes.Compare(e.Key, hi) >= 0) {
				return
			}
			last = e.Key
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Write implements store.Backend. The batch is applied under one lock, so
// readers see all of it or none of it.
func (b *Backend) Write(batch *store.Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return store.ErrClosed
	}
	for _, op := range batch.Ops() {
		switch op.Kind {
		case store.OpSet:
			b.set(op.Key, op.Value)
		case store.OpDelete:
			b.deleteRange(op.Key, append(bytes.Clone(op.Key), 0))
		case store.OpDeleteRange:
			b.deleteRange(op.Key, op.End)
		}
	}
	return nil
}

// Flush implements store.Backend; it has nothing to do.
func (b *Backend) Flush() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	return nil
}

// Close implements store.Backend and releases the entries.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	clear(b.head.next)
	clear(b.index)
	b.len = 0
	return nil
}
