package bigtable

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"
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
	// complete holds the instances whose every row is cached (found or
	// not): a key they lack is not in Bigtable either. An eviction of one
	// of their rows removes them.
	complete map[uint64]bool
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
	return &cache{max: max, items: map[uint64]map[string]*list.Element{}, complete: map[uint64]bool{}}
}

func (c *cache) get(instance uint64, key []byte) (value []byte, found, ok bool) {
	if c.max <= 0 {
		return nil, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[instance][string(key)]
	if !ok {
		return nil, false, c.complete[instance]
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
	delete(c.complete, it.instance)
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
	delete(c.complete, id)
}

// setComplete records that every row of the instance is cached (see
// complete), if the cache is on.
func (c *cache) setCompleteLocked(id uint64) {
	if c.max > 0 {
		c.complete[id] = true
	}
}

// preloadOnce reports whether the caller is the first to miss the cache
// and should preload the instance.
func (b *Backend) preloadOnce() bool {
	return b.cfg.preload > 0 && b.cfg.cacheBytes > 0 && !b.preloaded.Load() && b.preloaded.CompareAndSwap(false, true)
}

// preload reads the whole instance into the cache if it has at most
// WithPreload rows, and marks it complete, unless a commit happened since
// view and gen were read (the rows read may then be stale).
func (b *Backend) preload(view readView, gen uint64) error {
	type row struct {
		key   string
		value []byte
		found bool
	}
	var rows []row
	tooMany := false
	ctx, cancel := context.WithTimeout(b.base, b.cfg.timeout)
	defer cancel()
	start, received := time.Now(), 0
	err := b.tbl.ReadRows(ctx, bigtable.NewRange(string(b.dataPrefix), string(b.dataEnd)), func(r bigtable.Row) bool {
		if len(rows) == b.cfg.preload {
			tooMany = true
			return false
		}
		received += rowBytes(r)
		v, ok := b.resolve(view, r)
		rows = append(rows, row{r.Key()[len(b.dataPrefix):], v, ok})
		return true
	}, bigtable.LimitRows(int64(b.cfg.preload+1)))
	b.stats.preload.Add(len(b.dataPrefix)+len(b.dataEnd), received, time.Since(start), err)
	if err != nil {
		return b.wrapCtx(fmt.Errorf("bigtable store %s: preloading: %w", b.name, err))
	}
	if tooMany {
		return nil
	}
	c := b.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.cacheGen != gen {
		return nil
	}
	// Rows put now may evict earlier ones of the instance: that removes
	// the mark again.
	c.setCompleteLocked(b.id)
	for _, r := range rows {
		c.putLocked(b.id, r.key, r.value, r.found)
	}
	return nil
}
