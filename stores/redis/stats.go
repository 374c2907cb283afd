package redis

import (
	"errors"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
)

// backendStats counts a backend's round trips to Redis by operation (see
// StoreStats).
type backendStats struct {
	open, get, getMany, preload, rangePage, flush store.StatsCounter
}

// StoreStats implements store.StatsReporter: the backend's round trips to
// Redis since it opened, by operation: "open" (the claim script), "get"
// (HGET), "get_many" (HMGET), "preload" and "range" (pages of the range
// script), "flush" (the flush script; its retry after NOSCRIPT counts
// once). Bytes are those of keys, values and offsets.
func (b *Backend) StoreStats() store.Stats {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	s := &b.stats
	return store.Stats{
		Ops: map[string]store.OpStats{
			"open":     s.open.Load(),
			"get":      s.get.Load(),
			"get_many": s.getMany.Load(),
			"preload":  s.preload.Load(),
			"range":    s.rangePage.Load(),
			"flush":    s.flush.Load(),
		},
		Closed: closed,
	}
}

// replyBytes returns the bytes of the strings in a reply.
func replyBytes(res []any) int {
	n := 0
	for _, v := range res {
		switch v := v.(type) {
		case string:
			n += len(v)
		case []any:
			n += replyBytes(v)
		}
	}
	return n
}

// ignoreNil returns err unless it is redis.Nil (a key not found, which is
// an answer, not a failure).
func ignoreNil(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
