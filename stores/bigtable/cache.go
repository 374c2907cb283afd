package bigtable

import (
	"container/list"
	"sync"
)

// cache keeps clean rows (what Bigtable holds as committed) of the store
// instances opened by one Supplier, least recently used first out, within a
// byte budget. Only an instance's owner changes its rows, so its own cached
// rows stay true until its own flushes change them, which update the cache
// as they commit.
//
// Entries are found by instance, then by store key: a lookup converts the
// caller's key bytes without allocating.
type cache struct {
	mu    sync.Mutex
	max   int
	size  int
	lru   list.List // of *cached, most recent at the front
	items map[uint64]map[string]*list.Element
}

type cached struct {
	instance uint64 // one per opened Backend: a reopened instance starts cold
	key      string
	value    []byte
	found    bool
}

// cacheOverhead approximates the bookkeeping bytes of an entry.
const cacheOverhead = 96

func newCache(max int) *cache {
	return &cache{max: max, items: map[uint64]map[string]*list.Element{}}
}

func (c *cache) get(instance uint64, key []byte) (value []byte, found, ok bool) {
	if c.max <= 0 {
		return nil, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[instance][string(key)]
	if !ok {
		return nil, false, false
	}
	c.lru.MoveToFront(e)
	it := e.Value.(*cached)
	return it.value, it.found, true
}

// fill caches a row read from Bigtable at generation gen of the backend's
// commits: a read that raced with a commit is not cached.
func (c *cache) fill(b *Backend, gen uint64, key string, value []byte, found bool) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.cacheGen != gen {
		return
	}
	c.putLocked(b.id, key, value, found)
}

func (c *cache) putLocked(instance uint64, key string, value []byte, found bool) {
	if c.max <= 0 {
		return
	}
	m := c.items[instance]
	if m == nil {
		m = map[string]*list.Element{}
		c.items[instance] = m
	}
	if e, ok := m[key]; ok {
		it := e.Value.(*cached)
		c.size += len(value) - len(it.value)
		it.value, it.found = value, found
		c.lru.MoveToFront(e)
	} else {
		m[key] = c.lru.PushFront(&cached{instance: instance, key: key, value: value, found: found})
		c.size += len(key) + len(value) + cacheOverhead
	}
	for c.size > c.max && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

func (c *cache) removeLocked(e *list.Element) {
	it := e.Value.(*cached)
	c.lru.Remove(e)
	m := c.items[it.instance]
	delete(m, it.key)
	if len(m) == 0 {
		delete(c.items, it.instance)
	}
	c.size -= len(it.key) + len(it.value) + cacheOverhead
}

// dropInstance removes every row of a closed instance.
func (c *cache) dropInstance(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.items[id] {
		c.removeLocked(e)
	}
}
