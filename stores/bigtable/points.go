package bigtable

import (
	"bytes"
	"unsafe"
)

// pointSet is the sorted set of a layer's point writes: a skip list for
// ordered walks and a map for lookups. Each write costs one buffer (the key
// and the tagged value together), and one node the first time a key is
// written; the map's key shares the buffer's bytes.
//
// It is not safe for concurrent use by itself: the backend's mutex guards
// it (writers hold it exclusively, readers shared).
type pointSet struct {
	head  pointNode
	level int
	index map[string]*pointNode
	rnd   uint64
}

// pointNode is one key of a pointSet.
type pointNode struct {
	key    []byte // immutable: the index's key points into it
	tagged []byte // tag byte and value, as a cell holds them; immutable, replaced whole
	next   []*pointNode
	inline [2]*pointNode // next's storage for nodes of up to 2 levels (15 in 16)
}

const pointMaxLevel = 16

func newPointSet() *pointSet {
	s := &pointSet{level: 1, index: map[string]*pointNode{}, rnd: 0x9E3779B97F4A7C15}
	s.head.next = make([]*pointNode, pointMaxLevel)
	return s
}

// Len returns the number of keys.
func (s *pointSet) Len() int { return len(s.index) }

// Get returns the tagged value of key.
func (s *pointSet) Get(key []byte) ([]byte, bool) {
	if n, ok := s.index[string(key)]; ok {
		return n.tagged, true
	}
	return nil, false
}

// seek returns the first node with a key at or above key, filling prev
// with the last node before it at each level.
func (s *pointSet) seek(key []byte, prev *[pointMaxLevel]*pointNode) *pointNode {
	x := &s.head
	for i := s.level - 1; i >= 0; i-- {
		for x.next[i] != nil && bytes.Compare(x.next[i].key, key) < 0 {
			x = x.next[i]
		}
		if prev != nil {
			prev[i] = x
		}
	}
	return x.next[0]
}

// Set writes tag + value for key, copying both.
func (s *pointSet) Set(key []byte, tag byte, value []byte) {
	if n, ok := s.index[string(key)]; ok {
		tagged := make([]byte, 1+len(value))
		tagged[0] = tag
		copy(tagged[1:], value)
		n.tagged = tagged
		return
	}
	buf := make([]byte, len(key)+1+len(value))
	copy(buf, key)
	buf[len(key)] = tag
	copy(buf[len(key)+1:], value)
	s.set(buf[:len(key):len(key)], buf[len(key):])
}

// set adds or replaces key, whose bytes, like tagged's, the set keeps.
func (s *pointSet) set(key, tagged []byte) {
	if n, ok := s.index[string(key)]; ok {
		n.tagged = tagged
		return
	}
	var prev [pointMaxLevel]*pointNode
	s.seek(key, &prev)
	lvl := 1
	for lvl < pointMaxLevel && s.random()&3 == 0 {
		lvl++
	}
	if lvl > s.level {
		for i := s.level; i < lvl; i++ {
			prev[i] = &s.head
		}
		s.level = lvl
	}
	n := &pointNode{key: key, tagged: tagged}
	if lvl <= len(n.inline) {
		n.next = n.inline[:lvl]
	} else {
		n.next = make([]*pointNode, lvl)
	}
	for i := range lvl {
		n.next[i] = prev[i].next[i]
		prev[i].next[i] = n
	}
	// The key's bytes never change (a rewrite replaces tagged only), so
	// the index may share them instead of copying them into a string.
	s.index[unsafe.String(unsafe.SliceData(key), len(key))] = n
}

func (s *pointSet) random() uint64 { // xorshift64
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	return s.rnd
}

// DeleteRange removes the keys k with lo <= k < hi (a nil hi: no bound).
func (s *pointSet) DeleteRange(lo, hi []byte) {
	var prev [pointMaxLevel]*pointNode
	n := s.seek(lo, &prev)
	for n != nil && (hi == nil || bytes.Compare(n.key, hi) < 0) {
		for i := range n.next {
			prev[i].next[i] = n.next[i]
		}
		delete(s.index, string(n.key))
		n = n.next[0]
	}
}

// Range calls fn with the keys in [lo, hi) in order (nil bounds: none) and
// their tagged values, until fn returns false.
func (s *pointSet) Range(lo, hi []byte, fn func(key, tagged []byte) bool) {
	n := s.head.next[0]
	if lo != nil {
		n = s.seek(lo, nil)
	}
	for ; n != nil && (hi == nil || bytes.Compare(n.key, hi) < 0); n = n.next[0] {
		if !fn(n.key, n.tagged) {
			return
		}
	}
}
