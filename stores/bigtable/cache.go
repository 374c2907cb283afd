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
type cache struct {
	mu    sync.Mutex
	max   int
	size  int
	lru   list.List // of *cached, most recent at the front
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	instance uint64 // one per opened Backend: a reopened instance starts cold
	row      string
}

type cached struct {
	key   cacheKey
	value []byte
	found bool
}

// cacheOverhead approximates the bookkeeping bytes of an entry.
const cacheOverhead = 96

func newCache(max int) *cache {
	return &cache{max: max, items: map[cacheKey]*list.Element{}}
}

func (c *cache) get(k cacheKey) (value []byte, found, ok bool) {
	if c.max <= 0 {
		return nil, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false, false
	}
	c.lru.MoveToFront(e)
	it := e.Value.(*cached)
	return it.value, it.found, true
}

// fill caches a row read from Bigtable at generation gen of the backend's
// commits: a read that raced with a commit is not cached.
func (c *cache) fill(b *Backend, gen uint64, k cacheKey, value []byte, found bool) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.cacheGen != gen {
		return
	}
	c.putLocked(k, value, found)
}

func (c *cache) putLocked(k cacheKey, value []byte, found bool) {
	if c.max <= 0 {
		return
	}
	if e, ok := c.items[k]; ok {
		it := e.Value.(*cached)
		c.size += len(value) - len(it.value)
		it.value, it.found = value, found
		c.lru.MoveToFront(e)
	} else {
		c.items[k] = c.lru.PushFront(&cached{key: k, value: value, found: found})
		c.size += len(k.row) + len(value) + cacheOverhead
	}
	for c.size > c.max && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

func (c *cache) removeLocked(e *list.Element) {
	it := e.Value.(*cached)
	c.lru.Remove(e)
	delete(c.items, it.key)
	c.size -= len(it.key.row) + len(it.value) + cacheOverhead
}

// dropInstance removes every row of a closed instance.
func (c *cache) dropInstance(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*cached).key.instance == id {
			c.removeLocked(e)
		}
		e = next
	}
}
