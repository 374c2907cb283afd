package prometheus

import (
	"github.com/kstreams-go/kstreams/core/store"
)

// Supplier returns a store.Supplier that opens backends with s and, for
// those that implement store.StatsReporter (remote stores: Redis,
// Bigtable, object storage), exports their traffic: requests, errors,
// bytes and time, by store and operation (and task, WithPartitionLabels).
// The backends are returned as s opened them, with all their interfaces.
//
//	counts := store.KeyValue("counts", serde.String, serde.Int64, c.Supplier(redis.Supplier(client)))
//
// The counters of a backend closed since the last scrape are kept, so the
// totals never go down when tasks move.
func (c *Collector) Supplier(s store.Supplier) store.Supplier {
	return func(ctx store.BackendContext) (store.Backend, error) {
		b, err := s(ctx)
		if err != nil {
			return b, err
		}
		if r, ok := b.(store.StatsReporter); ok {
			c.mu.Lock()
			c.reporters = append(c.reporters, reporter{storeTask{ctx.Store, ctx.Task}, r})
			c.mu.Unlock()
		}
		return b, nil
	}
}

// reporter is an open backend whose stats c reads.
type reporter struct {
	storeTask
	r store.StatsReporter
}

// remoteKey names one series of the remote-store metrics.
type remoteKey struct{ store, task, op string }

func addStats(a, b store.OpStats) store.OpStats {
	a.RoundTrips += b.RoundTrips
	a.Errors += b.Errors
	a.BytesSent += b.BytesSent
	a.BytesReceived += b.BytesReceived
	a.Duration += b.Duration
	return a
}

// remoteStatsLocked returns the remote-store counts by series: those of the
// backends closed (kept in c.retired) plus those of the open ones, read
// now. Backends found closed move to c.retired. The task is "" unless
// WithPartitionLabels.
func (c *Collector) remoteStatsLocked() map[remoteKey]store.OpStats {
	if len(c.reporters) == 0 && len(c.retired) == 0 {
		return nil
	}
	out := make(map[remoteKey]store.OpStats, len(c.retired))
	open := c.reporters[:0]
	for _, r := range c.reporters {
		s := r.r.StoreStats()
		task := ""
		if c.cfg.partitions {
			task = r.task
		}
		into := out
		if s.Closed {
			into = c.retired // final: kept, and the backend forgotten
		} else {
			open = append(open, r)
		}
		for op, st := range s.Ops {
			k := remoteKey{r.store, task, op}
			into[k] = addStats(into[k], st)
		}
	}
	clear(c.reporters[len(open):])
	c.reporters = open
	for k, st := range c.retired {
		out[k] = addStats(out[k], st)
	}
	return out
}
