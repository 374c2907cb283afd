package store

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"sync"
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
func Sessions[K, V any](name string, retention time.Duration, keys serde.Serde[K], values serde.Serde[V], supplier Supplier, opts ...SpecOption) *Spec {
	s := &Spec{name: name, kind: KindWindow, supplier: supplier, logged: true, retention: retention}
	for _, o := range opts {
		o(s)
	}
	s.open = func(b Backend, topic string) any {
		return NewSessionStore(name, topic, b, retention, s.segment, keys, values)
	}
	return s
}

// NewSessionStore returns a typed session store over b; segment is the
// segment interval (0 for the default: half the retention, at least one
// minute). Most code gets its stores from the processor context instead.
func NewSessionStore[K, V any](name, topic string, b Backend, retention, segment time.Duration, keys serde.Serde[K], values serde.Serde[V]) SessionStore[K, V] {
	if segment <= 0 {
		segment = max(retention/2, time.Minute)
	}
	return &sessionStore[K, V]{
		name: name, topic: topic, b: b, keys: keys, values: values,
		retention: retention, segment: int64(segment),
		observed: math.MinInt64, dropped: math.MinInt64,
	}
}

// Key layout, every part order-preserving:
//
//	segment (8 bytes) | key length (4 bytes) | key | end (8 bytes) | start (8 bytes)
//
// segment = floor(end / segment interval): sessions expire by their end.
// Within a segment one key's sessions are contiguous and ordered by end, so
// finding the sessions that end at or after a time is one seek per segment.
type sessionStore[K, V any] struct {
	name      string
	topic     string
	b         Backend
	keys      serde.Serde[K]
	values    serde.Serde[V]
	retention time.Duration
	segment   int64

	mu       sync.Mutex
	observed int64 // greatest session end put, in Unix nanoseconds
	dropped  int64 // segments below this have been deleted
}

func (s *sessionStore[K, V]) Name() string             { return s.name }
func (s *sessionStore[K, V]) Retention() time.Duration { return s.retention }

func (s *sessionStore[K, V]) segmentOf(t int64) int64 {
	q := t / s.segment
	if t%s.segment < 0 {
		q--
	}
	return q
}

// keyPrefix appends segment | len | key.
func (s *sessionStore[K, V]) keyPrefix(dst []byte, seg int64, key K) ([]byte, error) {
	dst = orderedInt64(dst, seg)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := s.keys.Serialize(dst, s.topic, nil, key)
	if err != nil {
		return nil, fmt.Errorf("store %s: encoding key: %w", s.name, err)
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst, nil
}

func (s *sessionStore[K, V]) fullKey(dst []byte, key K, w Window) ([]byte, error) {
	end := w.End.UnixNano()
	dst, err := s.keyPrefix(dst, s.segmentOf(end), key)
	if err != nil {
		return nil, err
	}
	dst = orderedInt64(dst, end)
	return orderedInt64(dst, w.Start.UnixNano()), nil
}

// cutoff returns the earliest session end still retained.
func (s *sessionStore[K, V]) cutoff() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observed == math.MinInt64 {
		return math.MinInt64
	}
	return s.observed - int64(s.retention)
}

func (s *sessionStore[K, V]) Put(key K, w Window, value V) error {
	end := w.End.UnixNano()
	if end < s.cutoff() {
		return nil // expired already: keeping it would resurrect dropped state
	}
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.fullKey(*buf, key, w)
	if err != nil {
		return err
	}
	kv, err := s.values.Serialize(k, s.topic, nil, value)
	if err != nil {
		return fmt.Errorf("store %s: encoding value: %w", s.name, err)
	}
	*buf = kv
	if err := s.b.Set(kv[:len(k):len(k)], kv[len(k):]); err != nil {
		return fmt.Errorf("store %s: put: %w", s.name, err)
	}
	return s.observe(end)
}

// observe advances the observed time and drops segments that fell out of
// retention.
func (s *sessionStore[K, V]) observe(end int64) error {
	s.mu.Lock()
	if end <= s.observed {
		s.mu.Unlock()
		return nil
	}
	s.observed = end
	keep := s.segmentOf(end - int64(s.retention))
	if keep <= s.dropped {
		s.mu.Unlock()
		return nil
	}
	s.dropped = keep
	s.mu.Unlock()
	if err := s.b.DeleteRange(nil, orderedInt64(nil, keep)); err != nil {
		return fmt.Errorf("store %s: dropping expired segments: %w", s.name, err)
	}
	return nil
}

func (s *sessionStore[K, V]) Get(key K, w Window) (V, bool, error) {
	var zero V
	if w.End.UnixNano() < s.cutoff() {
		return zero, false, nil
	}
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.fullKey(*buf, key, w)
	if err != nil {
		return zero, false, err
	}
	*buf = k
	raw, ok, err := s.b.Get(k)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("store %s: get: %w", s.name, err)
		}
		return zero, false, err
	}
	v, err := s.values.Deserialize(s.topic, nil, raw)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: decoding value: %w", s.name, err)
	}
	return v, true, nil
}

func (s *sessionStore[K, V]) Delete(key K, w Window) error {
	buf := getBuf()
	defer putBuf(buf)
	k, err := s.fullKey(*buf, key, w)
	if err != nil {
		return err
	}
	*buf = k
	if err := s.b.Delete(k); err != nil {
		return fmt.Errorf("store %s: delete: %w", s.name, err)
	}
	return nil
}

// segments yields the ids of the non-empty segments from lo on, seeking
// from one to the next.
func (s *sessionStore[K, V]) segments(lo int64) iter.Seq2[int64, error] {
	return func(yield func(int64, error) bool) {
		for {
			var (
				seg   int64
				found bool
			)
			for e, err := range s.b.Range(orderedInt64(nil, lo), nil) {
				if err != nil {
					yield(0, err)
					return
				}
				if len(e.Key) < 8 {
					yield(0, fmt.Errorf("malformed session key %x", e.Key))
					return
				}
				seg, found = readOrderedInt64(e.Key), true
				break
			}
			if !found {
				return
			}
			if !yield(seg, nil) || seg == math.MaxInt64 {
				return
			}
			lo = seg + 1
		}
	}
}

func (s *sessionStore[K, V]) Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return func(yield func(Windowed[K, V], error) bool) {
		lo, hi := max(from.UnixNano(), s.cutoff()), to.UnixNano()
		for seg, err := range s.segments(s.segmentOf(lo)) {
			if err != nil {
				yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
				return
			}
			prefix, err := s.keyPrefix(nil, seg, key)
			if err != nil {
				yield(Windowed[K, V]{}, err)
				return
			}
			prefix = prefix[:len(prefix):len(prefix)]
			if !s.scan(orderedInt64(prefix, lo), PrefixEnd(prefix), lo, hi, yield) {
				return
			}
		}
	}
}

func (s *sessionStore[K, V]) FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return func(yield func(Windowed[K, V], error) bool) {
		lo, hi := max(from.UnixNano(), s.cutoff()), to.UnixNano()
		for seg, err := range s.segments(s.segmentOf(lo)) {
			if err != nil {
				yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
				return
			}
			p := orderedInt64(nil, seg)
			if !s.scan(p, PrefixEnd(p), lo, hi, yield) {
				return
			}
		}
	}
}

// scan decodes the entries in [lo, hi) of sessions that end at or after
// from and start at or before to. It returns false if the caller stopped or
// an error was yielded.
func (s *sessionStore[K, V]) scan(lo, hi []byte, from, to int64, yield func(Windowed[K, V], error) bool) bool {
	for e, err := range s.b.Range(lo, hi) {
		if err != nil {
			yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
			return false
		}
		w, err := s.decode(e)
		if err != nil {
			yield(Windowed[K, V]{}, err)
			return false
		}
		if w.Window.End.UnixNano() < from || w.Window.Start.UnixNano() > to {
			continue
		}
		if !yield(w, nil) {
			return false
		}
	}
	return true
}

func (s *sessionStore[K, V]) decode(e Entry) (Windowed[K, V], error) {
	var w Windowed[K, V]
	k := e.Key
	if len(k) < 12 {
		return w, fmt.Errorf("store %s: malformed session key %x", s.name, k)
	}
	n := int(binary.BigEndian.Uint32(k[8:12]))
	if len(k) != 12+n+16 {
		return w, fmt.Errorf("store %s: malformed session key %x", s.name, k)
	}
	key, err := s.keys.Deserialize(s.topic, nil, clone(k[12:12+n]))
	if err != nil {
		return w, fmt.Errorf("store %s: decoding key %x: %w", s.name, k, err)
	}
	end, start := readOrderedInt64(k[12+n:]), readOrderedInt64(k[20+n:])
	v, err := s.values.Deserialize(s.topic, nil, clone(e.Value))
	if err != nil {
		return w, fmt.Errorf("store %s: decoding value of key %x: %w", s.name, k, err)
	}
	w.Key, w.Value = key, v
	w.Window = Window{Start: time.Unix(0, start), End: time.Unix(0, end)}
	return w, nil
}
