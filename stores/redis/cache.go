package redis

import "container/list"

// readCache is a bounded LRU of keys whose value in Redis is known: found
// (with the value) or missing. It is only filled with what the server held
// at a moment after which this owner did not flush (see Backend.gen), and
// with what this owner flushed.
type readCache struct {
	max, used int
	lru       list.List // of *cached, most recently used first
	byKey     map[string]*list.Element
}

type cached struct {
	key   string
	value []byte
	found bool
}

// cachedOverhead approximates the memory of an entry beyond key and value.
const cachedOverhead = 96

func newReadCache(max int) *readCache {
	return &readCache{max: max, byKey: map[string]*list.Element{}}
}

func (c *readCache) get(key []byte) (value []byte, found, hit bool) {
	e, ok := c.byKey[string(key)]
	if !ok {
		return nil, false, false
	}
	c.lru.MoveToFront(e)
	ce := e.Value.(*cached)
	return ce.value, ce.found, true
}

// put records the server's value of key; value is kept, not copied. It
// returns false if it evicted an entry or could not keep this one.
func (c *readCache) put(key []byte, value []byte, found bool) (keptAll bool) {
	cost := len(key) + len(value) + cachedOverhead
	if cost > c.max {
		c.remove(key)
		return false
	}
	if e, ok := c.byKey[string(key)]; ok {
		ce := e.Value.(*cached)
		c.used += len(value) - len(ce.value)
		ce.value, ce.found = value, found
		c.lru.MoveToFront(e)
	} else {
		ce := &cached{key: string(key), value: value, found: found}
		c.byKey[ce.key] = c.lru.PushFront(ce)
		c.used += cost
	}
	keptAll = true
	for c.used > c.max {
		c.evict(c.lru.Back())
		keptAll = false
	}
	return keptAll
}

func (c *readCache) remove(key []byte) {
	if e, ok := c.byKey[string(key)]; ok {
		c.evict(e)
	}
}

func (c *readCache) evict(e *list.Element) {
	ce := c.lru.Remove(e).(*cached)
	delete(c.byKey, ce.key)
	c.used -= len(ce.key) + len(ce.value) + cachedOverhead
}

// removeRange drops the entries in r.
func (c *readCache) removeRange(r keyRange) {
	if r.lo == nil && r.hi == nil {
		c.lru.Init()
		clear(c.byKey)
		c.used = 0
		return
	}
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if r.contains([]byte(e.Value.(*cached).key)) {
			c.evict(e)
		}
		e = next
	}
}

// len returns the number of entries, for tests.
func (c *readCache) len() int { return len(c.byKey) }
