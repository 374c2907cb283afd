package store

import (
	"sync/atomic"
	"time"
)

// StatsReporter is implemented by backends whose data lives in a service
// they reach over the network (Redis, Bigtable, object storage), to report
// their traffic to it: round trips, bytes and time, by operation. Metrics
// modules (metrics/prometheus) read it from every backend that implements
// it.
type StatsReporter interface {
	// StoreStats returns the backend's counts since it opened. It is safe
	// for concurrent use, cheap (no round trip), and may be called after
	// Close: it then returns the final counts with Closed set.
	StoreStats() Stats
}

// Stats are the counts a StatsReporter reports, cumulative since the
// backend opened.
type Stats struct {
	// Ops holds the counts of each kind of request the backend makes, by a
	// short lowercase name of the backend's choice ("get", "flush",
	// "range", "upload"). Names are a small fixed set (they become metric
	// labels), not keys or object names.
	Ops map[string]OpStats
	// Closed reports that the backend was closed: these counts are final.
	Closed bool
}

// OpStats are the counts of one kind of request.
type OpStats struct {
	// RoundTrips counts requests sent that waited for the service's reply:
	// a pipeline, a script or a bulk request counts once however many keys
	// it carries; a retry counts again.
	RoundTrips int64
	// Errors counts round trips that failed (the service's error, a
	// timeout, a refused fenced write).
	Errors int64
	// BytesSent and BytesReceived count the payload bytes sent and received
	// (keys, values, objects), not the protocol's framing.
	BytesSent, BytesReceived int64
	// Duration is the time spent waiting for replies, summed over the
	// round trips: Duration/RoundTrips is the mean latency.
	Duration time.Duration
}

// StatsCounter is a concurrency-safe accumulator of one operation's
// OpStats, for backends implementing StatsReporter: one per operation,
// updated with Add after each round trip, read with Load.
type StatsCounter struct {
	roundTrips, errs, sent, received, nanos atomic.Int64
}

// Add counts one round trip that sent and received the given payload
// bytes, took d, and failed if err is not nil.
func (c *StatsCounter) Add(sent, received int, d time.Duration, err error) {
	c.roundTrips.Add(1)
	if err != nil {
		c.errs.Add(1)
	}
	if sent != 0 {
		c.sent.Add(int64(sent))
	}
	if received != 0 {
		c.received.Add(int64(received))
	}
	c.nanos.Add(int64(d))
}

// Load returns the counts so far.
func (c *StatsCounter) Load() OpStats {
	return OpStats{
		RoundTrips:    c.roundTrips.Load(),
		Errors:        c.errs.Load(),
		BytesSent:     c.sent.Load(),
		BytesReceived: c.received.Load(),
		Duration:      time.Duration(c.nanos.Load()),
	}
}
