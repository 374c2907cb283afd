package bigtable

import "time"

// Option configures a Supplier.
type Option func(*config)

type config struct {
	family     string
	cacheBytes int
	timeout    time.Duration
	maxBuffer  int
	// obsoleteRows is how many rows may wait with obsolete cells before a
	// flush removes them all (tests set 0: every flush removes them).
	obsoleteRows int
	preload      int
}

func defaultConfig() config {
	return config{family: DefaultFamily, cacheBytes: 64 << 20, timeout: 30 * time.Second, maxBuffer: 32 << 20, obsoleteRows: defaultObsoleteRows, preload: DefaultPreload}
}

// defaultObsoleteRows bounds the rows that wait with obsolete cells (about
// 100 bytes of memory each) until a flush removes them.
const defaultObsoleteRows = 100_000

// DefaultFamily is the column family the store uses unless WithColumnFamily
// names another.
const DefaultFamily = "v"

// WithColumnFamily names the column family that holds the store's cells
// (default "v"). The family must exist and must have no garbage-collection
// policy: cells carry version numbers, not wall-clock times, as timestamps
// (see CreateTable).
func WithColumnFamily(name string) Option {
	return func(c *config) { c.family = name }
}

// WithCacheSize sets the byte budget of the cache of clean rows shared by
// every store instance the Supplier opens (default 64 MiB; 0 disables it).
func WithCacheSize(bytes int) Option {
	return func(c *config) { c.cacheBytes = bytes }
}

// DefaultPreload is WithPreload's default.
const DefaultPreload = 10_000

// WithPreload sets the size, in rows, up to which a store instance is read
// whole into the cache (one ReadRows) at its first read that misses the
// cache, instead of one request per key read (default 10,000; 0 disables
// it). Once the cache holds every row, reads of missing keys need no
// request either, until the cache evicts one of the instance's rows; an
// instance never flushed is in that state from its open.
func WithPreload(rows int) Option {
	return func(c *config) { c.preload = max(0, rows) }
}

// WithTimeout bounds each operation that calls Bigtable: a Get, a Range's
// stream, one step of a flush, the open (default 30 s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithMaxBufferedBytes bounds the unflushed writes of a store instance
// (default 32 MiB, about keys and values): a write that finds the buffer
// full flushes it first, keeping the stored offset, as a restore from a
// changelog does many times. 0 removes the bound.
func WithMaxBufferedBytes(n int) Option {
	return func(c *config) { c.maxBuffer = n }
}
