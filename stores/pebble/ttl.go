package pebble

import (
	"encoding/binary"
	"errors"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// With a TTL, each stored value is prefixed with its write time:
//
//	write time (8 bytes, big-endian Unix nanoseconds) | value
//
// An entry is live while now < write time + ttl. Reads hide the others; the
// sweep deletes them.
const ttlHeader = 8

func putTTLHeader(dst []byte, ts int64) {
	binary.BigEndian.PutUint64(dst, uint64(ts))
}

// unwrapTTL returns the value stored in v and whether it is live at now.
func (b *Backend) unwrapTTL(v []byte, now time.Time) ([]byte, bool, error) {
	if len(v) < ttlHeader {
		return nil, false, b.errorf("value of %d bytes has no TTL header (store corrupt, or not written with a TTL)", len(v))
	}
	ts := int64(binary.BigEndian.Uint64(v))
	return v[ttlHeader:], now.UnixNano()-ts < int64(b.ttl), nil
}

// sweepBatch is how many expired keys a sweep deletes at a time. The
// deletion holds the store's lock exclusively (see sweepChunk), so a chunk
// is kept small enough to pause other users for well under a millisecond
// per hundred keys.
const sweepBatch = 256

// sweepLoop runs sweep every interval until Close.
func (b *Backend) sweepLoop(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			n, err := b.sweep()
			if err != nil {
				b.log.Error("pebble store: TTL sweep", "err", err)
			} else if n > 0 {
				b.log.Debug("pebble store: TTL sweep", "deleted", n)
			}
		}
	}
}

var errSweepStopped = errors.New("sweep stopped")

// sweep deletes the entries that expired, and returns how many it deleted.
// It runs only on the sweep goroutine (or in tests while no sweep goroutine
// runs), which Close stops before closing the database, so it may use the
// database without holding mu except where it must exclude writers.
func (b *Backend) sweep() (int, error) {
	lower, upper := bounds(nil, nil)
	it, err := b.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, b.errorf("TTL sweep: %w", err)
	}
	defer it.Close()
	now := b.now()
	var (
		expired [][]byte
		deleted int
	)
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return deleted, b.errorf("TTL sweep: %w", err)
		}
		if _, live, err := b.unwrapTTL(v, now); err != nil {
			return deleted, err
		} else if live {
			continue
		}
		expired = append(expired, append([]byte(nil), it.Key()...))
		if len(expired) == sweepBatch {
			n, err := b.sweepChunk(expired)
			deleted += n
			if errors.Is(err, errSweepStopped) {
				return deleted, nil
			}
			if err != nil {
				return deleted, err
			}
			expired = expired[:0]
		}
	}
	if err := it.Error(); err != nil {
		return deleted, b.errorf("TTL sweep: %w", err)
	}
	n, err := b.sweepChunk(expired)
	deleted += n
	if errors.Is(err, errSweepStopped) {
		err = nil
	}
	return deleted, err
}

// sweepChunk deletes those of keys (namespaced) that are still expired.
// The iterator that found them reads a snapshot: a key may have been
// written since. Holding mu exclusively keeps writers out between the check
// and the deletion, so a fresh write is never deleted.
func (b *Backend) sweepChunk(keys [][]byte) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	select {
	case <-b.stop:
		return 0, errSweepStopped
	default:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errSweepStopped
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	now := b.now()
	for _, k := range keys {
		v, closer, err := b.db.Get(k)
		if errors.Is(err, pebbledb.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, b.errorf("TTL sweep: %w", err)
		}
		_, live, err := b.unwrapTTL(v, now)
		closer.Close()
		if err != nil {
			return 0, err
		}
		if !live {
			if err := batch.Delete(k, nil); err != nil {
				return 0, b.errorf("TTL sweep: %w", err)
			}
		}
	}
	n := int(batch.Count())
	if n == 0 {
		return 0, nil
	}
	if err := batch.Commit(pebbledb.NoSync); err != nil {
		return 0, b.errorf("TTL sweep: %w", err)
	}
	b.writes.Add(1)
	return n, nil
}
