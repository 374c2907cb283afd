package store

import (
	"iter"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// Window is a half-open time interval [Start, End). Both bounds are stored:
// calendar windows (days, months, ...) have variable length, so an end cannot
// be derived from a start and a fixed size.
type Window struct {
	Start, End time.Time
}

// String formats w as [start, end) in RFC 3339 with the times' locations.
func (w Window) String() string {
	return "[" + w.Start.Format(time.RFC3339Nano) + ", " + w.End.Format(time.RFC3339Nano) + ")"
}

// Windowed is one entry of a WindowStore.
type Windowed[K, V any] struct {
	Key    K
	Window Window
	Value  V
}

// WindowStore is a typed store of values per (key, window). Windows are kept
// for the store's retention period, counted back from the latest window start
// put into the store; older windows are invisible to reads and are deleted in
// whole segments (one Backend.DeleteRange each), so the store does not grow
// without bound.
type WindowStore[K, V any] interface {
	// Name returns the store's name.
	Name() string
	// Retention returns how long windows are kept.
	Retention() time.Duration
	// Put stores value for key and w.
	Put(key K, w Window, value V) error
	// Get returns the value for key and w.
	Get(key K, w Window) (V, bool, error)
	// Delete removes the value for key and w.
	Delete(key K, w Window) error
	// Fetch yields key's windows whose start is in [from, to], by start
	// time (then end time).
	Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error]
	// FetchAll yields every key's windows whose start is in [from, to],
	// ordered by segment, then encoded key, then start.
	FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error]
}

// WithSegmentInterval sets, for a window store, the width of the time
// segments dropped as a whole when they expire. Default: half the retention,
// at least one minute. Smaller segments free space sooner but cost more seeks
// per Fetch. It has no effect on key-value stores.
func WithSegmentInterval(d time.Duration) SpecOption {
	return func(s *Spec) { s.segment = d }
}

// Windows declares a window store named name keeping windows for retention
// (which must cover the window size plus the grace period).
func Windows[K, V any](name string, retention time.Duration, keys serde.Serde[K], values serde.Serde[V], supplier Supplier, opts ...SpecOption) TypedSpec[WindowStore[K, V]] {
	s := &Spec{name: name, kind: KindWindow, supplier: supplier, logged: true, retention: retention}
	for _, o := range opts {
		o(s)
	}
	s.open = func(b Backend, topic string) any {
		return NewWindowStore(name, topic, b, retention, s.segment, keys, values)
	}
	return TypedSpec[WindowStore[K, V]]{s}
}

// NewWindowStore returns a typed window store over b; segment is the
// segment interval (0 for the default). Most code gets its stores from the
// processor context instead.
func NewWindowStore[K, V any](name, topic string, b Backend, retention, segment time.Duration, keys serde.Serde[K], values serde.Serde[V]) WindowStore[K, V] {
	return &windowStore[K, V]{newSegmented("window", false, name, topic, b, retention, segment, keys, values)}
}

// windowStore places windows in time by their start: segment =
// floor(start / segment interval), and within a segment one key's windows
// are ordered by start, then end (see segmented for the key layout).
type windowStore[K, V any] struct{ *segmented[K, V] }

func (s *windowStore[K, V]) Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	last := to.UnixNano()
	return s.fetch(&key, from, last, s.segmentOf(last), nil)
}

func (s *windowStore[K, V]) FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	last := to.UnixNano()
	return s.fetch(nil, from, last, s.segmentOf(last), nil)
}
