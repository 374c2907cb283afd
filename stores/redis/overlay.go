package redis

import (
	"bytes"

	"github.com/google/btree"
)

// A layer holds writes not yet in Redis: range deletions, which come first,
// and the newest write of each key (a value or a deletion), which comes after
// every range deletion of the same layer. A store instance has one layer
// taking writes and, during a flush, the layer being flushed under it.
type layer struct {
	entries *btree.BTreeG[*pending]
	ranges  []keyRange
	bytes   int // of keys and values held
}

// pending is the newest unflushed write of a key.
type pending struct {
	key     []byte
	value   []byte // nil when deleted
	deleted bool
}

// keyRange is [lo, hi); a nil lo is the first key, a nil hi the end.
type keyRange struct{ lo, hi []byte }

// pendingOverhead approximates the memory a pending write takes beyond its
// key and value, for the byte bound.
const pendingOverhead = 64

func lessPending(a, b *pending) bool { return bytes.Compare(a.key, b.key) < 0 }

func newLayer() *layer {
	return &layer{entries: btree.NewG(32, lessPending)}
}

func (r keyRange) contains(k []byte) bool {
	return (r.lo == nil || bytes.Compare(k, r.lo) >= 0) && (r.hi == nil || bytes.Compare(k, r.hi) < 0)
}

// empty reports whether the range holds no key.
func (r keyRange) empty() bool {
	return r.lo != nil && r.hi != nil && bytes.Compare(r.lo, r.hi) >= 0
}

// size is what WithMaxBufferedWrites counts.
func (l *layer) size() int { return l.entries.Len() + len(l.ranges) }

func (l *layer) isEmpty() bool { return l.size() == 0 }

func (l *layer) put(p *pending) {
	if old, ok := l.entries.ReplaceOrInsert(p); ok {
		l.bytes -= len(old.key) + len(old.value) + pendingOverhead
	}
	l.bytes += len(p.key) + len(p.value) + pendingOverhead
}

// set records value for key; both are copied.
func (l *layer) set(key, value []byte) {
	v := make([]byte, len(value))
	copy(v, value)
	l.put(&pending{key: bytes.Clone(key), value: v})
}

// delete records the deletion of key (copied).
func (l *layer) delete(key []byte) {
	l.put(&pending{key: bytes.Clone(key), deleted: true})
}

// deleteRange records the deletion of [lo, hi): the layer's writes in the
// range are dropped and the range is deleted in Redis before the layer's
// remaining writes.
func (l *layer) deleteRange(lo, hi []byte) {
	r := keyRange{lo: cloneBound(lo), hi: cloneBound(hi)}
	if r.empty() {
		return
	}
	var doomed []*pending
	visit := func(p *pending) bool {
		if r.hi != nil && bytes.Compare(p.key, r.hi) >= 0 {
			return false
		}
		doomed = append(doomed, p)
		return true
	}
	if r.lo == nil {
		l.entries.Ascend(visit)
	} else {
		l.entries.AscendGreaterOrEqual(&pending{key: r.lo}, visit)
	}
	for _, p := range doomed {
		l.entries.Delete(p)
		l.bytes -= len(p.key) + len(p.value) + pendingOverhead
	}
	l.ranges = append(l.ranges, r)
	l.bytes += len(r.lo) + len(r.hi) + pendingOverhead
}

// cloneBound copies a range bound, keeping nil (unbounded) apart from empty.
func cloneBound(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// lookup returns the layer's verdict on key: its pending write, or a deletion
// if a range deletion of the layer covers it; known is false when the layer
// says nothing about key.
func (l *layer) lookup(key []byte) (p *pending, known bool) {
	if p, ok := l.entries.Get(&pending{key: key}); ok {
		return p, true
	}
	if l.covers(key) {
		return &pending{key: key, deleted: true}, true
	}
	return nil, false
}

func (l *layer) covers(key []byte) bool {
	for _, r := range l.ranges {
		if r.contains(key) {
			return true
		}
	}
	return false
}

// ascend calls fn, in key order, for the layer's writes from from (included
// if inclusive; a nil from: the first key) to hi (excluded; nil: the end)
// until fn returns false.
func (l *layer) ascend(from []byte, inclusive bool, hi []byte, fn func(*pending) bool) {
	visit := func(p *pending) bool {
		if !inclusive && from != nil && bytes.Equal(p.key, from) {
			return true
		}
		if hi != nil && bytes.Compare(p.key, hi) >= 0 {
			return false
		}
		return fn(p)
	}
	if from == nil {
		l.entries.Ascend(visit)
	} else {
		l.entries.AscendGreaterOrEqual(&pending{key: from}, visit)
	}
}

// under merges older, a layer whose flush failed, under l: l's writes stay
// the newest, older's range deletions are kept, and older's writes that l
// neither overwrote nor deleted are kept. Flushing the result leaves Redis
// as flushing older and then l would.
func (l *layer) under(older *layer) {
	older.entries.Ascend(func(p *pending) bool {
		if _, ok := l.entries.Get(p); ok || l.covers(p.key) {
			return true
		}
		l.put(p)
		return true
	})
	for _, r := range older.ranges {
		l.bytes += len(r.lo) + len(r.hi) + pendingOverhead
	}
	l.ranges = append(append([]keyRange{}, older.ranges...), l.ranges...)
}
