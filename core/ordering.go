package kstreams

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
)

// Order says how the records of a sub-topology may be processed
// concurrently by a running App. Set it with WithOrdering on any processor;
// it applies to the whole sub-topology (from its sources to its sinks),
// because a record runs through the sub-topology as one unit.
//
// What a processor may do under each mode:
//
//   - PartitionOrder (the default): one record at a time per partition, in
//     offset order, on the task's goroutine. Any store access is safe.
//   - KeyOrder: records with equal keys (the source record's key bytes) in
//     offset order, records with different keys concurrently. A processor's
//     reads and writes of its own key's state see every earlier record of
//     that key: no lost updates. Access to other keys' state, and to fields
//     of the processor shared across keys, races with other records: that
//     is the processor's to synchronize. Stores themselves are safe for
//     concurrent use.
//   - Unordered: any record concurrently with any other; only state the
//     processor synchronizes itself is consistent.
//
// Under KeyOrder and Unordered, punctuators run concurrently with records in
// flight (never with each other), and offsets are committed up to the lowest
// record not yet complete, with the complete ones above it recorded in the
// commit metadata so that a restart skips them. When the work is measured
// to be cheap, records whose key has nothing in flight run in offset order
// on one goroutine per task instead of one by one on the workers (see
// WithInlineWork): the guarantees above are the same, and a processor must
// not count on two records of different keys running at once.
type Order uint8

// Ordering modes.
const (
	PartitionOrder Order = iota + 1 // one record at a time per partition, in offset order (the default)
	KeyOrder                        // records with equal keys in offset order, other keys concurrently
	Unordered                       // any record concurrently with any other
)

func (o Order) String() string {
	switch o {
	case PartitionOrder:
		return "partition"
	case KeyOrder:
		return "key"
	case Unordered:
		return "unordered"
	}
	return fmt.Sprintf("Order(%d)", uint8(o))
}

// WithOrdering sets the ordering mode of the processor's sub-topology (see
// Order). Processors of one sub-topology that ask for different modes are a
// Build error, and so is a mode other than the three above.
func WithOrdering(o Order) ProcessOption {
	return processOption("WithOrdering", func(n *graph.Node) error {
		if o != PartitionOrder && o != KeyOrder && o != Unordered {
			return fmt.Errorf("unknown ordering mode %d (use PartitionOrder, KeyOrder or Unordered)", uint8(o))
		}
		n.Order = graph.Order(o)
		return nil
	})
}

// Retry configures retries of a processor's Process (or ProcessBatch) that
// returns an error: up to Attempts calls in all, waiting Backoff, then twice
// that each time up to MaxBackoff, each wait with up to 20% random jitter.
// After the last attempt the App's processing error policy applies. A
// retried record blocks what its ordering mode says it blocks: its key under
// KeyOrder, its partition under PartitionOrder, nothing else under
// Unordered. Records a failed attempt already forwarded are forwarded again
// by the next attempt.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// WithRetry retries the processor's failures as r says. Attempts below 1
// and negative durations are a Build error.
func WithRetry(r Retry) ProcessOption {
	return processOption("WithRetry", func(n *graph.Node) error {
		if r.Attempts < 1 {
			return fmt.Errorf("attempts must be at least 1 (1: no retry), got %d", r.Attempts)
		}
		if r.Backoff < 0 || r.MaxBackoff < 0 {
			return fmt.Errorf("backoff %v and max backoff %v must not be negative", r.Backoff, r.MaxBackoff)
		}
		n.Retry = &graph.Retry{Attempts: r.Attempts, Backoff: r.Backoff, MaxBackoff: r.MaxBackoff}
		return nil
	})
}

// retrying calls fn until it succeeds, the attempts run out, or ctx ends.
func retrying(ctx context.Context, r *graph.Retry, fn func() error) error {
	err := fn()
	if err == nil || r == nil {
		return err
	}
	backoff := r.Backoff
	for attempt := 2; attempt <= r.Attempts; attempt++ {
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/5+1))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if r.Retried != nil {
			r.Retried()
		}
		if err = fn(); err == nil {
			return nil
		}
		backoff = min(2*backoff, max(r.MaxBackoff, r.Backoff))
	}
	return err
}
