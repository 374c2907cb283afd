package bigtable

import (
	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// backendStats counts a backend's requests to Bigtable by operation (see
// StoreStats).
type backendStats struct {
	open, get, getMany, preload, rangeRead, mark, list, write, commit, cleanup store.StatsCounter
}

// StoreStats implements store.StatsReporter: the backend's requests to
// Bigtable since it opened, by operation: "open" (raising the epoch,
// reading the meta row, claiming it), "get" (ReadRow), "get_many",
// "preload" and "range" (a ReadRows each), and a flush's steps: "mark" and "commit"
// (CheckAndMutateRow of the meta row), "list" (the rows of deleted ranges),
// "write" (each ApplyBulk call), and "cleanup" (the removal of obsolete
// cells at Close). Bytes are those of row keys and cells; the client's own
// retries inside a call are not seen.
func (b *Backend) StoreStats() store.Stats {
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	s := &b.stats
	return store.Stats{
		Ops: map[string]store.OpStats{
			"open":     s.open.Load(),
			"get":      s.get.Load(),
			"get_many": s.getMany.Load(),
			"preload":  s.preload.Load(),
			"range":    s.rangeRead.Load(),
			"mark":     s.mark.Load(),
			"list":     s.list.Load(),
			"write":    s.write.Load(),
			"commit":   s.commit.Load(),
			"cleanup":  s.cleanup.Load(),
		},
		Closed: closed,
	}
}

// rowBytes returns the bytes of a row's key and cell values.
func rowBytes(r bigtable.Row) int {
	n := len(r.Key())
	for _, items := range r {
		for _, it := range items {
			n += len(it.Value)
		}
	}
	return n
}
