package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/kstreams-go/kstreams/core/store"
)

// DBDir is the name of the directory, inside a store instance's directory,
// that holds Pebble's files.
const DBDir = "pebble"

// Supplier returns a store.Supplier that opens one Pebble database per store
// instance (store × task) in <BackendContext.Dir>/pebble. Every database it
// opens shares one block cache and one table-file cache, sized by the
// options.
//
// When BackendContext.Dir is empty (the test driver, or an application
// without a state directory) the database lives in a new temporary directory
// that is removed on Close; such a backend reports Persistent() == false.
func Supplier(opts ...Option) store.Supplier {
	res := &resources{cfg: newConfig(opts)}
	return func(bc store.BackendContext) (store.Backend, error) {
		log := bc.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		log = log.With("store", bc.Store, "task", bc.Task)
		dir, temp := bc.Dir, false
		if dir == "" {
			d, err := os.MkdirTemp("", "kstreams-pebble-"+safeName(bc.Store)+"-"+safeName(bc.Task)+"-")
			if err != nil {
				return nil, fmt.Errorf("pebble store %s (task %s): no state directory given, creating a temporary one: %w", bc.Store, bc.Task, err)
			}
			dir, temp = d, true
			log.Warn("pebble store has no state directory; using a temporary one removed on close", "dir", d)
		}
		cache, memTable := res.cfg.budgetSizes(bc.MemoryBudget, bc.StoreInstances)
		b, err := res.open(dir, log, cache, memTable)
		if err != nil {
			if temp {
				os.RemoveAll(dir)
			}
			return nil, err
		}
		if temp {
			b.removeOnClose = dir
		}
		return b, nil
	}
}

// Open opens (creating if needed) the store kept in dir, with the same
// layout a Supplier uses: Pebble's files are in dir/pebble. The store has a
// block cache of its own. Open is for tools and tests; applications use
// Supplier.
func Open(dir string, opts ...Option) (*Backend, error) {
	res := &resources{cfg: newConfig(opts)}
	log := res.cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return res.open(dir, log, res.cfg.cacheSize, res.cfg.memTableSize)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// resources are shared by every database one Supplier opens: the block
// cache and the table-file cache. They exist while at least one database is
// open.
type resources struct {
	cfg config

	mu        sync.Mutex
	users     int
	cache     *pebbledb.Cache
	fileCache *pebbledb.FileCache
}

// acquire returns the shared caches, creating them for the first user
// with a block cache of cacheSize bytes.
func (r *resources) acquire(cacheSize int64) (*pebbledb.Cache, *pebbledb.FileCache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users == 0 {
		r.cache = pebbledb.NewCache(cacheSize)
		r.fileCache = pebbledb.NewFileCache(runtime.GOMAXPROCS(0), r.cfg.maxOpenFiles)
	}
	r.users++
	return r.cache, r.fileCache
}

// release drops one user; it is called after that user's database is closed
// (the database holds references of its own while open).
func (r *resources) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users--
	if r.users == 0 {
		r.cache.Unref()
		r.fileCache.Unref()
		r.cache, r.fileCache = nil, nil
	}
}

// pebbleOptions returns the options of one database.
func (r *resources) pebbleOptions(cache *pebbledb.Cache, fileCache *pebbledb.FileCache, log *slog.Logger, memTable uint64) *pebbledb.Options {
	cfg := &r.cfg
	o := &pebbledb.Options{
		Cache:     cache,
		FileCache: fileCache,
		// The newest on-disk format this Pebble version knows: a new store
		// gets the most compact tables; an older store is upgraded on open.
		FormatMajorVersion: pebbledb.FormatNewest,
		// The log is on, written without fsync; Flush syncs it. See the
		// package documentation (Durability).
		DisableWAL:   !cfg.wal,
		MemTableSize: memTable,
		// Two memtables: one taking writes while the other is written out.
		MemTableStopWritesThreshold: 2,
		// One compaction at a time per store, up to two when L0 backs up
		// (after a restore, say). With a few dozen stores on two cores,
		// more would only make them compete; compactions of different
		// stores still run in parallel.
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
		Logger:                     slogLogger{log},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	for _, f := range cfg.tune {
		f(o)
	}
	return o
}

func (r *resources) open(dir string, log *slog.Logger, cacheSize int64, memTable uint64) (*Backend, error) {
	dbDir := filepath.Join(dir, DBDir)
	cache, fileCache := r.acquire(cacheSize)
	opts := r.pebbleOptions(cache, fileCache, log, memTable)
	db, err := pebbledb.Open(dbDir, opts)
	if err != nil {
		r.release()
		return nil, fmt.Errorf("pebble store %s: open: %w", dbDir, err)
	}
	b := &Backend{
		db:   db,
		dir:  dbDir,
		res:  r,
		ttl:  r.cfg.ttl,
		now:  r.cfg.now,
		wal:  !opts.DisableWAL, // as WithPebbleOptions left it
		log:  log.With("dir", dbDir),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := b.checkFormat(); err != nil {
		return nil, errors.Join(err, b.closeDB())
	}
	if b.ttl > 0 {
		go b.sweepLoop(r.cfg.sweepEvery)
	} else {
		close(b.done)
	}
	return b, nil
}

// slogLogger routes Pebble's log messages to a slog.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on errors it cannot continue after (a failed
// write to its manifest, say); it must not return.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	s.l.Error(msg)
	panic(msg)
}
