package redis

import "fmt"

// Option configures the backends a Supplier opens.
type Option func(*options)

type options struct {
	maxBufferedWrites int
	maxBufferedBytes  int
	readCacheBytes    int
	rangePageSize     int
	preload           int
}

// Defaults of the options.
const (
	DefaultMaxBufferedWrites = 10_000
	DefaultMaxBufferedBytes  = 16 << 20
	DefaultReadCacheBytes    = 4 << 20
	DefaultRangePageSize     = 512
	DefaultPreload           = 10_000
	maxRangePageSize         = 4000 // Lua's unpack limit is about 8000 values
)

func defaultOptions() options {
	return options{
		maxBufferedWrites: DefaultMaxBufferedWrites,
		maxBufferedBytes:  DefaultMaxBufferedBytes,
		readCacheBytes:    DefaultReadCacheBytes,
		rangePageSize:     DefaultRangePageSize,
		preload:           DefaultPreload,
	}
}

// WithMaxBufferedWrites bounds the writes a store instance buffers between
// flushes: distinct keys written plus range deletions (default 10,000).
// A write that finds the buffer full first flushes it: an early flush, fenced
// like any other, which also drops the stored changelog offset until the
// next FlushAt (the data is then ahead of every committed offset: after a
// crash before that FlushAt, the next owner restores the store from its
// whole changelog). Size it above the writes a task makes in one commit
// interval.
func WithMaxBufferedWrites(n int) Option {
	return func(o *options) { o.maxBufferedWrites = n }
}

// WithMaxBufferedBytes bounds the bytes of keys and values a store instance
// buffers between flushes (default 16 MiB); see WithMaxBufferedWrites.
func WithMaxBufferedBytes(n int) Option {
	return func(o *options) { o.maxBufferedBytes = n }
}

// WithReadCache sets the size in bytes of each store instance's cache of
// values read from Redis (default 4 MiB; 0 disables it). The cache holds
// values known to match the server, found or missing, and the values of
// flushed writes; it is never stale because the owner of a store instance is
// its only writer.
func WithReadCache(bytes int) Option {
	return func(o *options) { o.readCacheBytes = bytes }
}

// WithRangePageSize sets how many entries a Range reads from Redis per round
// trip (default 512, at most 4000).
func WithRangePageSize(n int) Option {
	return func(o *options) { o.rangePageSize = n }
}

// WithPreload sets the size, in entries, up to which a store instance is
// read whole into the read cache (in pages of 4,000 entries, one round trip
// each) at its first read that misses the cache, instead of one round trip
// per key read (default 10,000; 0 disables). Once the cache holds every
// entry, reads of missing keys need no round trip either; an empty instance
// is in that state from the start. It stops when the cache would overflow.
func WithPreload(entries int) Option {
	return func(o *options) { o.preload = entries }
}

func (o *options) validate() error {
	switch {
	case o.maxBufferedWrites < 1:
		return fmt.Errorf("WithMaxBufferedWrites(%d): must be at least 1", o.maxBufferedWrites)
	case o.maxBufferedBytes < 1:
		return fmt.Errorf("WithMaxBufferedBytes(%d): must be at least 1", o.maxBufferedBytes)
	case o.readCacheBytes < 0:
		return fmt.Errorf("WithReadCache(%d): must not be negative", o.readCacheBytes)
	case o.preload < 0:
		return fmt.Errorf("WithPreload(%d): must not be negative", o.preload)
	case o.rangePageSize < 1 || o.rangePageSize > maxRangePageSize:
		return fmt.Errorf("WithRangePageSize(%d): must be between 1 and %d", o.rangePageSize, maxRangePageSize)
	}
	return nil
}
