package pebble

import (
	"log/slog"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// Defaults, sized for a small (2-core) machine running a few dozen store
// instances (stores × partitions) in one process.
const (
	// DefaultCacheSize is the default total size of the block cache shared by
	// every store a Supplier opens: 64 MiB. The cache holds uncompressed
	// blocks of recently read files; the operating system's page cache keeps
	// the compressed files as well, so a modest cache is enough for working
	// sets that fit in memory. Raise it when reads (Get) miss and the
	// working set is larger than the page cache can hold.
	DefaultCacheSize = 64 << 20

	// DefaultMemTableSize is the default size of one store's memtable: 8 MiB.
	// See WithMemTableSize.
	DefaultMemTableSize = 8 << 20

	// DefaultMaxOpenFiles is the default number of table files kept open,
	// in total, by every store a Supplier opens. See WithMaxOpenFiles.
	DefaultMaxOpenFiles = 1000

	// bloomBitsPerKey sizes the Bloom filters of table files: 10 bits per
	// key give about 1% false positives, so a Get of a missing key almost
	// never reads a data block. Stream processors Get before they Put
	// (aggregations, joins), often for new keys.
	bloomBitsPerKey = 10
)

// Option configures a Supplier or Open.
type Option func(*config)

type config struct {
	cacheSize    int64
	memTableSize uint64
	cacheSet     bool // WithCacheSize given: the memory budget's hint does not apply
	memTableSet  bool // WithMemTableSize given: the same
	maxOpenFiles int
	wal          bool
	ttl          time.Duration
	sweepEvery   time.Duration
	tune         []func(*pebbledb.Options)
	logger       *slog.Logger
	now          func() time.Time // tests replace the clock
}

func newConfig(opts []Option) config {
	c := config{
		cacheSize:    DefaultCacheSize,
		memTableSize: DefaultMemTableSize,
		maxOpenFiles: DefaultMaxOpenFiles,
		wal:          true,
		now:          time.Now,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.ttl > 0 && c.sweepEvery <= 0 {
		c.sweepEvery = min(max(c.ttl/2, time.Second), time.Hour)
	}
	return c
}

// WithCacheSize sets the total size in bytes of the block cache shared by
// every store the Supplier opens (default DefaultCacheSize, or half the
// application's memory budget for stores when it gives one: see
// budgetSizes). The cache is
// created when the Supplier opens its first store and released when the
// last one is closed, so a Supplier whose tasks were all revoked holds no
// cache memory.
//
// One cache for all stores, rather than one per store as Kafka Streams'
// RocksDB default has, keeps memory bounded however many partitions an
// instance is assigned, and lets the busy stores use the space the idle ones
// do not need.
func WithCacheSize(bytes int64) Option {
	return func(c *config) {
		if bytes > 0 {
			c.cacheSize, c.cacheSet = bytes, true
		}
	}
}

// WithMemTableSize sets the size in bytes of each store's memtable (default
// DefaultMemTableSize, or less under the application's memory budget: see
// budgetSizes). Writes go to the memtable and, when it is full, are
// written out as a table file in the background; at most two memtables per
// store exist at once, so the memory bound is 2 × size × number of stores.
// Pebble starts each store with a 256 KiB memtable and doubles it up to
// this size, so idle stores stay small.
//
// Larger memtables mean fewer, larger files (less compaction work) during a
// restore or a burst of writes, at the cost of memory per store. Restoring 1M
// random keys on a 2-core machine ran 2.4 times faster with 8 MiB than with
// Pebble's default of 4 MiB (write amplification 3 instead of 8); 16 MiB
// gained little more. With one or two large stores, 16-64 MiB is reasonable;
// with hundreds of stores per instance, lower it.
func WithMemTableSize(bytes int) Option {
	return func(c *config) {
		if bytes > 0 {
			c.memTableSize, c.memTableSet = uint64(bytes), true
		}
	}
}

// WithMaxOpenFiles bounds the number of table files kept open by all the
// stores of the Supplier together (default DefaultMaxOpenFiles). Files beyond
// the bound are closed and reopened on demand, which costs a few system calls
// per reopen. Each store also keeps about five other files open (the write-
// ahead log, manifest, lock, directory).
func WithMaxOpenFiles(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxOpenFiles = n
		}
	}
}

// WithoutWAL turns Pebble's write-ahead log off. Flush then writes the
// memtables out as table files (and syncs them and the manifest) instead of
// syncing the log.
//
// Writes get about 20% cheaper (each is written once, not twice), but Flush
// gets expensive: on the 2-core reference machine it took 5-7 ms after 10 to
// 1,000 writes, against 0.4-0.8 ms for a log sync, and 14-20 ms against
// 4-11 ms after 10,000; each Flush also leaves a small table file for
// compaction to merge. It pays only when Flush is rare and many writes come
// between Flushes (a long commit interval, a store that is only restored
// and read); see docs/stores-pebble.md for the figures.
func WithoutWAL() Option {
	return func(c *config) { c.wal = false }
}

// WithTTL makes a key-value store forget keys ttl after they were last
// written: Get and Range no longer return them, and a background sweep
// deletes them from disk.
//
// Each value is stored with its write time (8 bytes more per entry). The
// time is that of the write to this store: values restored from a changelog
// count from the restore, so a key may live up to ttl longer than since its
// original write. The sweep's deletions are not written to the changelog
// either: configure the changelog topic with a retention (cleanup.policy
// compact,delete and retention.ms of at least ttl) so that it forgets them
// too.
//
// A store's directory remembers whether it was created with a TTL; opening it
// the other way fails, because the stored values differ. Window stores need
// no TTL: they drop expired windows by segment. A ttl <= 0 means no TTL.
func WithTTL(ttl time.Duration) Option {
	return func(c *config) { c.ttl = ttl }
}

// WithTTLSweepInterval sets how often a store with a TTL scans for expired
// keys and deletes them (default: half the TTL, between one second and one
// hour). Each sweep reads the whole store, so a short interval on a large
// store costs I/O; a long one leaves expired (already invisible) entries on
// disk for longer.
func WithTTLSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepEvery = d }
}

// WithPebbleOptions lets f adjust the pebble.Options of every store after
// kstreams has set its own (for compression, compaction concurrency, L0
// thresholds, ...). Do not change Comparer, Merger or FS: the store's key
// layout relies on them. (DisableWAL may be set here as with WithoutWAL;
// Flush follows it.) f is called once per store opened.
func WithPebbleOptions(f func(*pebbledb.Options)) Option {
	return func(c *config) { c.tune = append(c.tune, f) }
}

// WithLogger sets the logger of stores opened with Open or OpenCheckpoint
// (stores opened by a Supplier log to the application's logger). Pebble's
// informational messages go to it at debug level.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// The range of memtable sizes the memory budget may choose. Pebble starts
// each memtable at 256 KiB anyway; 1 MiB keeps flushes of busy stores
// from producing many tiny table files.
const minBudgetMemTable = 1 << 20

// budgetSizes returns the block cache and memtable sizes for the memory
// budget an application gives its stores (store.BackendContext): half the
// budget for the cache shared by the Supplier's stores, the other half for
// memtables, two per store instance at most, and neither above the
// defaults. Options given explicitly win.
func (c *config) budgetSizes(budget int64, instances int) (cache int64, memTable uint64) {
	cache, memTable = c.cacheSize, c.memTableSize
	if budget <= 0 {
		return cache, memTable
	}
	if !c.cacheSet {
		cache = min(DefaultCacheSize, max(budget/2, 1<<20))
	}
	if !c.memTableSet {
		per := budget / 2 / int64(max(instances, 1)) / 2
		memTable = uint64(min(DefaultMemTableSize, max(per, minBudgetMemTable)))
	}
	return cache, memTable
}
