package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
)

// layoutVersion is recorded in each store instance's meta hash; an instance
// written with another layout is refused rather than misread.
const layoutVersion = "1"

// Supplier returns a store.Supplier of backends kept in Redis through
// client, one store instance (store × partition) per task, namespaced by
// application id (see the package documentation for the key layout). The
// caller owns client (its address, TLS and credentials are go-redis
// options): the backends never close it.
func Supplier(client redis.UniversalClient, opts ...Option) store.Supplier {
	return func(bctx store.BackendContext) (store.Backend, error) {
		return Open(client, bctx, opts...)
	}
}

// Backend is a store instance kept in Redis, with its unflushed writes and a
// read cache in memory. It implements store.Backend and store.OffsetKeeper,
// and is safe for concurrent use.
type Backend struct {
	client redis.UniversalClient
	opts   options
	keys   instanceKeys
	name   string // for errors: app/store/partition
	owner  string // "<epoch>/<token>", checked by every flush
	epoch  int64

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	flushMu sync.Mutex // held by the flush in progress

	mu        sync.Mutex
	cur       *layer // takes writes
	flushing  *layer // being flushed, under cur; nil between flushes
	cache     *readCache
	gen       uint64 // flushes completed; a read racing one is not cached
	complete  bool   // the cache holds every entry in Redis: a miss is final
	preloaded bool   // a preload was tried
	entries   int64  // in Redis when opened
	offset    int64  // the stored changelog offset, -1 if none
	inputs    []byte // the stored input offsets, encoded; nil if none
	// metaUnknown: a flush failed, maybe applied: offset and inputs may
	// not be what Redis holds, and the next flush writes them anyway.
	metaUnknown bool
	fencedErr   error // set once a flush was refused
	closed      bool

	stats backendStats
}

var (
	_ store.Backend      = (*Backend)(nil)
	_ store.OffsetKeeper = (*Backend)(nil)
	_ store.BatchGetter  = (*Backend)(nil)

	_ store.InputOffsetKeeper = (*Backend)(nil)
	_ store.StatsReporter     = (*Backend)(nil)
)

// Open opens the store instance named by bctx (App, Store, Partition) and
// claims it: the instance's owner epoch is raised, and from then on flushes
// of any earlier owner fail with store.ErrFenced. One round trip.
func Open(client redis.UniversalClient, bctx store.BackendContext, opts ...Option) (*Backend, error) {
	name := fmt.Sprintf("%s/%s/%d", bctx.App, bctx.Store, bctx.Partition)
	if client == nil {
		return nil, fmt.Errorf("redis store %s: nil client", name)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("redis store %s: %w", name, err)
	}
	var token [12]byte
	if _, err := rand.Read(token[:]); err != nil {
		return nil, fmt.Errorf("redis store %s: owner token: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		client: client,
		opts:   o,
		keys:   keysOf(bctx),
		name:   name,
		ctx:    ctx,
		cancel: cancel,
		cur:    newLayer(),
		cache:  newReadCache(o.readCacheBytes),
		offset: -1,
	}
	start := time.Now()
	res, err := claimScript.Run(ctx, client, []string{b.keys.meta, b.keys.index}, hex.EncodeToString(token[:]), layoutVersion).Slice()
	b.stats.open.Add(2*len(token)+len(layoutVersion), replyBytes(res), time.Since(start), err)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("redis store %s: claiming ownership of %s: %w", name, b.keys.meta, err)
	}
	if len(res) != 4 {
		cancel()
		return nil, fmt.Errorf("redis store %s: claiming ownership: unexpected reply %v", name, res)
	}
	b.owner, _ = res[0].(string)
	epoch, _, _ := strings.Cut(b.owner, "/")
	if b.epoch, err = strconv.ParseInt(epoch, 10, 64); err != nil {
		cancel()
		return nil, fmt.Errorf("redis store %s: claiming ownership: unexpected owner %q", name, b.owner)
	}
	if s, ok := res[1].(string); ok {
		if b.offset, err = strconv.ParseInt(s, 10, 64); err != nil || b.offset < 0 {
			cancel()
			return nil, fmt.Errorf("redis store %s: corrupt changelog offset %q in %s", name, s, b.keys.meta)
		}
	}
	b.entries, _ = res[2].(int64)
	if s, ok := res[3].(string); ok {
		if _, err := store.ParseInputOffsets([]byte(s)); err != nil {
			cancel()
			return nil, fmt.Errorf("redis store %s: field inputs of %s: %w", name, b.keys.meta, err)
		}
		b.inputs = []byte(s)
	}
	b.complete = b.entries == 0 && o.readCacheBytes > 0
	if bctx.Logger != nil {
		bctx.Logger.Debug("redis store opened", "store", bctx.Store, "task", bctx.Task, "owner_epoch", b.epoch, "stored_offset", b.offset)
	}
	return b, nil
}

// Epoch returns the owner epoch this instance claimed when it opened.
func (b *Backend) Epoch() int64 { return b.epoch }

// usableLocked returns why b cannot take writes, if it cannot.
func (b *Backend) usableLocked() error {
	if b.closed {
		return store.ErrClosed
	}
	return b.fencedErr
}

// lookupLocked returns what the unflushed writes say about key.
func (b *Backend) lookupLocked(key []byte) (p *pending, known bool) {
	if p, ok := b.cur.lookup(key); ok {
		return p, true
	}
	if b.flushing != nil {
		return b.flushing.lookup(key)
	}
	return nil, false
}

// Get returns key's value: the unflushed write of key if there is one, else
// the cached value, else Redis' (one round trip, then cached).
func (b *Backend) Get(key []byte) ([]byte, bool, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, false, store.ErrClosed
	}
	if p, ok := b.lookupLocked(key); ok {
		b.mu.Unlock()
		return p.value, !p.deleted, nil
	}
	if v, found, hit := b.cache.get(key); hit {
		b.mu.Unlock()
		return v, found, nil
	}
	if b.complete {
		b.mu.Unlock()
		return nil, false, nil
	}
	gen := b.gen
	preload := !b.preloaded && b.entries <= int64(b.opts.preload) && b.opts.readCacheBytes > 0
	b.preloaded = true
	b.mu.Unlock()

	if preload {
		if err := b.preload(gen); err != nil {
			return nil, false, err
		}
		b.mu.Lock()
		if v, found, hit := b.cache.get(key); hit || b.complete {
			b.mu.Unlock()
			return v, found && hit, nil
		}
		gen = b.gen
		b.mu.Unlock()
	}

	start := time.Now()
	s, err := b.client.HGet(b.ctx, b.keys.data, string(key)).Result()
	b.stats.get.Add(len(key), len(s), time.Since(start), ignoreNil(err))
	found := true
	if errors.Is(err, redis.Nil) {
		found, err = false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis store %s: get: %w", b.name, b.ctxErr(err))
	}
	var v []byte
	if found {
		v = []byte(s)
	}
	b.mu.Lock()
	if b.gen == gen && !b.closed && !b.cache.put(key, v, found) {
		b.complete = false
	}
	b.mu.Unlock()
	return v, found, nil
}

// GetMany returns the values of keys (values[i] and found[i] for keys[i]),
// reading every key that is neither buffered nor cached in one HMGET: one
// round trip at most, however many keys. It implements store.BatchGetter:
// processors reach it through KeyValueStore.GetMany.
func (b *Backend) GetMany(keys [][]byte) (values [][]byte, found []bool, err error) {
	values, found = make([][]byte, len(keys)), make([]bool, len(keys))
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, nil, store.ErrClosed
	}
	var missing []int
	var fields []string
	for i, k := range keys {
		if p, ok := b.lookupLocked(k); ok {
			values[i], found[i] = p.value, !p.deleted
			continue
		}
		if v, ok, hit := b.cache.get(k); hit {
			values[i], found[i] = v, ok
			continue
		}
		if !b.complete {
			missing = append(missing, i)
			fields = append(fields, string(k))
		}
	}
	gen := b.gen
	b.mu.Unlock()
	if len(missing) == 0 {
		return values, found, nil
	}
	start, sent := time.Now(), 0
	for _, f := range fields {
		sent += len(f)
	}
	res, err := b.client.HMGet(b.ctx, b.keys.data, fields...).Result()
	b.stats.getMany.Add(sent, replyBytes(res), time.Since(start), err)
	if err != nil {
		return nil, nil, fmt.Errorf("redis store %s: reading %d keys: %w", b.name, len(fields), b.ctxErr(err))
	}
	if len(res) != len(missing) {
		return nil, nil, fmt.Errorf("redis store %s: reading %d keys: %d values in the reply", b.name, len(fields), len(res))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for j, i := range missing {
		if s, ok := res[j].(string); ok {
			values[i], found[i] = []byte(s), true
		}
		if b.gen == gen && !b.closed && !b.cache.put(keys[i], values[i], found[i]) {
			b.complete = false
		}
	}
	return values, found, nil
}

// preload reads the whole store instance into the cache, if it fits and no
// flush completes meanwhile (gen).
func (b *Backend) preload(gen uint64) error {
	var all []store.Entry
	size := 0
	min := "-"
	for {
		start := time.Now()
		res, err := rangeScript.Run(b.ctx, b.client, []string{b.keys.data, b.keys.index}, min, "+", maxRangePageSize).Slice()
		b.stats.preload.Add(len(min), replyBytes(res), time.Since(start), err)
		if err != nil {
			return fmt.Errorf("redis store %s: preloading: %w", b.name, b.ctxErr(err))
		}
		for i := 0; i+1 < len(res); i += 2 {
			k, ok := res[i].(string)
			if !ok {
				return fmt.Errorf("redis store %s: preloading: unexpected reply %T", b.name, res[i])
			}
			v, ok := res[i+1].(string)
			if !ok {
				continue // indexed without a value: not an entry
			}
			all = append(all, store.Entry{Key: []byte(k), Value: []byte(v)})
			if size += len(k) + len(v) + cachedOverhead; size > b.opts.readCacheBytes {
				return nil // does not fit
			}
		}
		if len(res)/2 < maxRangePageSize {
			break
		}
		min = "(" + res[len(res)-2].(string) // a string: checked above
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != gen || b.closed {
		return nil
	}
	complete := true
	for _, e := range all {
		if !b.cache.put(e.Key, e.Value, true) {
			complete = false
		}
	}
	b.complete = complete
	return nil
}

// ctxErr reports a call canceled by Close as store.ErrClosed.
func (b *Backend) ctxErr(err error) error {
	if b.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return store.ErrClosed
	}
	return err
}

// Set buffers a write of value for key.
func (b *Backend) Set(key, value []byte) error {
	return b.write(func(l *layer) { l.set(key, value) })
}

// Delete buffers a deletion of key.
func (b *Backend) Delete(key []byte) error {
	return b.write(func(l *layer) { l.delete(key) })
}

// DeleteRange buffers a deletion of the keys in [lo, hi).
func (b *Backend) DeleteRange(lo, hi []byte) error {
	return b.write(func(l *layer) { l.deleteRange(lo, hi) })
}

// Write buffers the operations of batch. They reach Redis in one flush
// script, so they are applied atomically.
func (b *Backend) Write(batch *store.Batch) error {
	return b.write(func(l *layer) {
		for _, op := range batch.Ops() {
			switch op.Kind {
			case store.OpSet:
				l.set(op.Key, op.Value)
			case store.OpDelete:
				l.delete(op.Key)
			case store.OpDeleteRange:
				l.deleteRange(op.Key, op.End)
			}
		}
	})
}

// full reports whether the writes buffer has reached its bounds.
func (b *Backend) fullLocked() bool {
	return b.cur.size() >= b.opts.maxBufferedWrites || b.cur.bytes >= b.opts.maxBufferedBytes
}

// write applies fn to the writes buffer, flushing the buffer first if it is
// full (an early flush, which also drops the stored changelog offset: see
// flush).
func (b *Backend) write(fn func(*layer)) error {
	for {
		b.mu.Lock()
		if err := b.usableLocked(); err != nil {
			b.mu.Unlock()
			return err
		}
		if !b.fullLocked() {
			fn(b.cur)
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		if err := b.flush(flushArgs{offset: offsetKept}, true); err != nil {
			return err
		}
	}
}

// offsetKept is flush's offset argument for flushes that store no offset
// of their own (Flush, early flushes).
const offsetKept = -2

// Flush writes the buffered writes to Redis in one atomic script. The data
// is then newer than the stored changelog offset and input offsets, if any:
// the same script drops them (FlushAt and FlushInputs store them). It fails with store.ErrFenced if a newer
// owner opened the store instance; with nothing buffered it does nothing.
func (b *Backend) Flush() error { return b.flush(flushArgs{offset: offsetKept}, false) }

// FlushAt writes the buffered writes and offset to Redis in one atomic
// script (one round trip, two the first time a connection's server lacks the
// script), and drops the stored input offsets, if any. It fails with
// store.ErrFenced if a newer owner opened the store instance. With no
// buffered writes and offset already stored it does nothing.
func (b *Backend) FlushAt(offset int64) error {
	if offset < -1 {
		return fmt.Errorf("redis store %s: FlushAt(%d): offsets are -1 or more", b.name, offset)
	}
	return b.flush(flushArgs{offset: offset}, false)
}

// StoredOffset returns the changelog offset stored with the data, as read
// when the instance was opened or stored by its FlushAt since.
func (b *Backend) StoredOffset() (int64, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, false, store.ErrClosed
	}
	return b.offset, b.offset >= 0, nil
}

// FlushInputs implements store.InputOffsetKeeper: it writes the buffered
// writes and the input offsets to Redis in one atomic script, the flush
// script FlushAt uses (one round trip), and drops the stored changelog
// offset, if any. A Redis that stops or fails over holds both or neither
// (see the package documentation for what it keeps). It fails with
// store.ErrFenced if a newer owner opened the store instance. With no
// buffered writes and the same offsets already stored it does nothing.
func (b *Backend) FlushInputs(offsets store.InputOffsets) error {
	enc, err := offsets.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("redis store %s: FlushInputs: %w", b.name, err)
	}
	return b.flush(flushArgs{offset: -1, inputs: enc}, false)
}

// StoredInputs implements store.InputOffsetKeeper: the input offsets
// stored with the data, as read when the instance was opened or stored by
// its FlushInputs since; nil if none.
func (b *Backend) StoredInputs() (store.InputOffsets, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, store.ErrClosed
	}
	if b.inputs == nil {
		return nil, nil
	}
	o, err := store.ParseInputOffsets(b.inputs)
	if err != nil {
		return nil, fmt.Errorf("redis store %s: stored input offsets: %w", b.name, err)
	}
	return o, nil
}

// flushArgs says what a flush stores in the meta hash with the buffered
// writes.
type flushArgs struct {
	offset int64  // the changelog offset, -1 for none; offsetKept for Flush
	inputs []byte // encoded input offsets, for FlushInputs; else nil
}

// flush writes the buffered writes and the offsets of a in one script. An
// offset is only ever stored with the data it matches, so the flush that
// writes data stores one kind of offset and drops the other: FlushInputs
// stores the input offsets and drops the changelog offset, FlushAt the
// reverse, and a flush without offsets of its own (Flush, an early flush)
// drops both. An early flush (the buffer is full, between two commits) for
// example writes data of records not committed yet, which a crash or an
// aborted transaction would leave the changelog without; with no offset
// stored, a new owner restores the instance from the whole changelog rather
// than replay its tail over those writes.
func (b *Backend) flush(a flushArgs, early bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	if err := b.usableLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
	if early && !b.fullLocked() {
		b.mu.Unlock() // another writer flushed it
		return nil
	}
	l := b.cur
	// What the meta hash holds once the flush is applied.
	offset, inputs := b.offset, b.inputs
	switch {
	case a.inputs != nil:
		offset, inputs = -1, a.inputs
	case a.offset != offsetKept:
		offset, inputs = a.offset, nil
	case !l.isEmpty():
		offset, inputs = -1, nil
	}
	if l.isEmpty() && !b.metaUnknown && offset == b.offset && bytes.Equal(inputs, b.inputs) {
		b.mu.Unlock()
		return nil
	}
	b.cur, b.flushing = newLayer(), l
	b.mu.Unlock()

	err := b.runFlush(l, offset, inputs)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushing = nil
	if err != nil {
		if code, msg := scriptError(err); code == "KSFENCED" {
			b.fencedErr = fmt.Errorf("redis store %s: flush refused, this owner (epoch %d) was replaced (%s): %w", b.name, b.epoch, msg, store.ErrFenced)
			b.cur = newLayer() // can never be written
			return b.fencedErr
		}
		// Not applied, or applied with the reply lost: the next flush
		// applies the writes again, which leaves the same state, and
		// writes the offsets whatever b believes Redis holds.
		b.cur.under(l)
		b.metaUnknown = true
		if b.closed {
			return store.ErrClosed
		}
		return fmt.Errorf("redis store %s: flush of %d writes: %w", b.name, l.size(), b.ctxErr(err))
	}
	b.gen++
	b.offset, b.inputs, b.metaUnknown = offset, inputs, false
	for _, r := range l.ranges {
		b.cache.removeRange(r)
		if r.lo == nil && r.hi == nil && b.opts.readCacheBytes > 0 {
			b.complete = true // Redis holds what the cache does: nothing
		}
	}
	l.entries.Ascend(func(p *pending) bool {
		if !b.cache.put(p.key, p.value, !p.deleted) {
			b.complete = false
		}
		return true
	})
	return nil
}

// runFlush sends l's writes and the offsets (-1, nil: none) in one flush
// script.
func (b *Backend) runFlush(l *layer, offset int64, inputs []byte) error {
	var sets, dels int
	l.entries.Ascend(func(p *pending) bool {
		if p.deleted {
			dels++
		} else {
			sets++
		}
		return true
	})
	off, in := "-", "-"
	if offset >= 0 {
		off = strconv.FormatInt(offset, 10)
	}
	if inputs != nil {
		in = string(inputs)
	}
	args := make([]any, 0, 6+2*len(l.ranges)+2*sets+dels)
	args = append(args, b.owner, off, in, len(l.ranges), sets, dels)
	sent := len(b.owner) + len(off) + len(in)
	for _, r := range l.ranges {
		lo, hi := lexMin(r.lo, false), lexMax(r.hi)
		args = append(args, lo, hi)
		sent += len(lo) + len(hi)
	}
	l.entries.Ascend(func(p *pending) bool {
		if !p.deleted {
			args = append(args, p.key, p.value)
			sent += len(p.key) + len(p.value)
		}
		return true
	})
	l.entries.Ascend(func(p *pending) bool {
		if p.deleted {
			args = append(args, p.key)
			sent += len(p.key)
		}
		return true
	})
	start := time.Now()
	err := flushScript.Run(b.ctx, b.client, []string{b.keys.meta, b.keys.data, b.keys.index}, args...).Err()
	b.stats.flush.Add(sent, 0, time.Since(start), err)
	return err
}

// Range yields the entries in [lo, hi): the unflushed writes merged with
// Redis' entries, read in pages of WithRangePageSize entries (one round trip
// each).
func (b *Backend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	lo, hi = cloneBound(lo), cloneBound(hi)
	return func(yield func(store.Entry, error) bool) {
		from, inclusive := lo, true
		for {
			page, next, done, err := b.rangePage(from, inclusive, hi)
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if done {
				return
			}
			from, inclusive = next, false
		}
	}
}

// rangePage returns the entries from from (included if inclusive) up to
// next (included), next's successor being where the following page starts;
// done when the page reaches hi.
func (b *Backend) rangePage(from []byte, inclusive bool, hi []byte) (page []store.Entry, next []byte, done bool, err error) {
	n := b.opts.rangePageSize
	// The unflushed writes first: a flush completing between this snapshot
	// and the server read only moves writes the snapshot holds to Redis.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, nil, false, store.ErrClosed
	}
	buffered := b.bufferedPageLocked(from, inclusive, hi, n)
	var ranges []keyRange
	ranges = append(ranges, b.cur.ranges...)
	if b.flushing != nil {
		ranges = append(ranges, b.flushing.ranges...)
	}
	b.mu.Unlock()

	start := time.Now()
	res, err := rangeScript.Run(b.ctx, b.client, []string{b.keys.data, b.keys.index}, lexMin(from, !inclusive), lexMax(hi), n).Slice()
	b.stats.rangePage.Add(len(from)+len(hi), replyBytes(res), time.Since(start), err)
	if err != nil {
		return nil, nil, false, fmt.Errorf("redis store %s: range: %w", b.name, b.ctxErr(err))
	}
	server := make([]store.Entry, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		k, ok := res[i].(string)
		if !ok {
			return nil, nil, false, fmt.Errorf("redis store %s: range: unexpected reply %T", b.name, res[i])
		}
		v, ok := res[i+1].(string)
		if !ok {
			continue // indexed without a value: not an entry
		}
		server = append(server, store.Entry{Key: []byte(k), Value: []byte(v)})
	}

	// Each source is complete up to its last key if it filled its page,
	// else up to hi: the page ends at the smaller of the two.
	var limit []byte
	done = true
	if len(buffered) == n {
		limit, done = buffered[n-1].key, false
	}
	if len(res)/2 == n {
		if k := []byte(res[len(res)-2].(string)); done || bytes.Compare(k, limit) < 0 { // a string: checked above
			limit, done = k, false
		}
	}
	within := func(k []byte) bool { return done || bytes.Compare(k, limit) <= 0 }

	page = make([]store.Entry, 0, len(buffered)+len(server))
	i, j := 0, 0
	for i < len(buffered) || j < len(server) {
		switch {
		case j == len(server) || i < len(buffered) && bytes.Compare(buffered[i].key, server[j].Key) < 0:
			p := buffered[i]
			i++
			if !within(p.key) {
				i = len(buffered)
				continue
			}
			if !p.deleted {
				page = append(page, store.Entry{Key: p.key, Value: p.value})
			}
		case i == len(buffered) || bytes.Compare(server[j].Key, buffered[i].key) < 0:
			e := server[j]
			j++
			if !within(e.Key) {
				j = len(server)
				continue
			}
			if !coveredBy(ranges, e.Key) {
				page = append(page, e)
			}
		default: // the same key: the unflushed write wins
			p := buffered[i]
			i, j = i+1, j+1
			if within(p.key) && !p.deleted {
				page = append(page, store.Entry{Key: p.key, Value: p.value})
			}
		}
	}
	return page, limit, done, nil
}

func coveredBy(ranges []keyRange, k []byte) bool {
	for _, r := range ranges {
		if r.contains(k) {
			return true
		}
	}
	return false
}

// bufferedPageLocked returns up to n unflushed writes (values and
// deletions) from from to hi in key order, the writes being flushed merged
// under the newer ones.
func (b *Backend) bufferedPageLocked(from []byte, inclusive bool, hi []byte, n int) []*pending {
	var newer, older []*pending
	b.cur.ascend(from, inclusive, hi, func(p *pending) bool {
		newer = append(newer, p)
		return len(newer) < n
	})
	if b.flushing != nil {
		b.flushing.ascend(from, inclusive, hi, func(p *pending) bool {
			if b.cur.covers(p.key) {
				p = &pending{key: p.key, deleted: true}
			}
			older = append(older, p)
			return len(older) < n
		})
	}
	if len(older) == 0 {
		return newer
	}
	merged := make([]*pending, 0, min(n, len(newer)+len(older)))
	i, j := 0, 0
	for len(merged) < n && (i < len(newer) || j < len(older)) {
		switch {
		case j == len(older) || i < len(newer) && bytes.Compare(newer[i].key, older[j].key) < 0:
			merged = append(merged, newer[i])
			i++
		case i == len(newer) || bytes.Compare(older[j].key, newer[i].key) < 0:
			merged = append(merged, older[j])
			j++
		default:
			merged = append(merged, newer[i])
			i, j = i+1, j+1
		}
	}
	return merged
}

// Close drops the unflushed writes and the cache. It does not flush: the
// runtime flushes before each commit, and the writes since the last commit
// are made again from the input after a restart. The client stays open.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return store.ErrClosed
	}
	b.closed = true
	b.cancel()
	b.cur, b.flushing = newLayer(), nil
	b.cache = newReadCache(0)
	return nil
}
