package store

import (
	"iter"
	"math"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// SessionStore is a typed store of values per (key, session). A session is a
// Window whose bounds come from the data: Start is the timestamp of its first
// record and End the timestamp of its last one, both included (a session of
// one record has Start == End). A key's sessions never overlap: the session
// aggregation merges them.
//
// Sessions are kept for the store's retention period, counted back from the
// latest session end put into the store; older sessions are invisible to
// reads and are deleted in whole segments (one Backend.DeleteRange each), as
// in a WindowStore. Segments are by session end, so a long-lived session is
// kept as long as it keeps growing.
type SessionStore[K, V any] interface {
	// Name returns the store's name.
	Name() string
	// Retention returns how long sessions are kept after their end.
	Retention() time.Duration
	// Put stores value for key and session s.
	Put(key K, s Window, value V) error
	// Get returns the value for key and session s.
	Get(key K, s Window) (V, bool, error)
	// Delete removes the value for key and session s.
	Delete(key K, s Window) error
	// Fetch yields key's sessions that overlap [from, to] (End >= from and
	// Start <= to), by end time. Fetch(key, t-gap, t+gap) finds the
	// sessions a record at t merges with.
	Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error]
	// FetchAll yields every key's sessions that overlap [from, to],
	// ordered by segment, then encoded key, then end.
	FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error]
}

// Sessions declares a session store named name keeping sessions for
// retention after their end (which must cover the inactivity gap plus the
// grace period). For the runtime a session store is a window store: its Kind
// is KindWindow, so its changelog is compacted and also expires by
// retention. WithSegmentInterval applies.
func Sessions[K, V any](name string, retention time.Duration, keys serde.Serde[K], values serde.Serde[V], supplier Supplier, opts ...SpecOption) TypedSpec[SessionStore[K, V]] {
	s := &Spec{name: name, kind: KindWindow, supplier: supplier, logged: true, retention: retention}
	for _, o := range opts {
		o(s)
	}
	s.open = func(b Backend, topic string) any {
		return NewSessionStore(name, topic, b, retention, s.segment, keys, values)
	}
	return TypedSpec[SessionStore[K, V]]{s}
}

// NewSessionStore returns a typed session store over b; segment is the
// segment interval (0 for the default: half the retention, at least one
// minute). Most code gets its stores from the processor context instead.
func NewSessionStore[K, V any](name, topic string, b Backend, retention, segment time.Duration, keys serde.Serde[K], values serde.Serde[V]) SessionStore[K, V] {
	return &sessionStore[K, V]{newSegmented("session", true, name, topic, b, retention, segment, keys, values)}
}

// sessionStore places sessions in time by their end: segment =
// floor(end / segment interval), so sessions expire by their end (see
// segmented for the key layout). Within a segment one key's sessions are
// contiguous and ordered by end, so finding the sessions that end at or after
// a time is one seek per segment. Ends are not bounded above in a fetch: a
// session that starts by the fetch's end may end at any time after it.
type sessionStore[K, V any] struct{ *segmented[K, V] }

func (s *sessionStore[K, V]) Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return s.fetch(&key, from, math.MaxInt64, math.MaxInt64, startsBy(to))
}

func (s *sessionStore[K, V]) FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return s.fetch(nil, from, math.MaxInt64, math.MaxInt64, startsBy(to))
}

// startsBy reports whether a session starts at or before to.
func startsBy(to time.Time) func(Window) bool {
	t := to.UnixNano()
	return func(w Window) bool { return w.Start.UnixNano() <= t }
}
