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
func Windows[K, V any](name string, retention time.Duration, keys serde.Serde[K], values serde.Serde[V], supplier Supplier, opts ...SpecOption) *Spec {
	s := &Spec{name: name, kind: KindWindow, supplier: supplier, logged: true, retention: retention}
	for _, o := range opts {
		o(s)
	}
	s.open = func(b Backend, topic string) any {
		return NewWindowStore(name, topic, b, retention, s.segment, keys, values)
	}
	return s
}

// NewWindowStore returns a typed window store over b; segment is the
// segment interval (0 for the default). Most code gets its stores from the
// processor context instead.
func NewWindowStore[K, V any](name, topic string, b Backend, retention, segment time.Duration, keys serde.Serde[K], values serde.Serde[V]) WindowStore[K, V] {
	if segment <= 0 {
		segment = max(retention/2, time.Minute)
	}
	return &windowStore[K, V]{
		name: name, topic: topic, b: b, keys: keys, values: values,
		retention: retention, segment: int64(segment),
		observed: math.MinInt64, dropped: math.MinInt64,
	}
}

// Key layout, every part order-preserving:
//
//	segment (8 bytes) | key length (4 bytes) | key | start (8 bytes) | end (8 bytes)
//
// segment = floor(start / segment interval). Segments first lets expiry drop
// old windows with one range deletion; the length prefix keeps one key's
// windows contiguous within a segment.
type windowStore[K, V any] struct {
	name      string
	topic     string
	b         Backend
	keys      serde.Serde[K]
	values    serde.Serde[V]
	retention time.Duration
	segment   int64

	mu       sync.Mutex
	observed int64 // greatest window start put, in Unix nanoseconds
	dropped  int64 // segments below this have been deleted
}

func (s *windowStore[K, V]) Name() string             { return s.name }
func (s *windowStore[K, V]) Retention() time.Duration { return s.retention }

func orderedInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func readOrderedInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func (s *windowStore[K, V]) segmentOf(t int64) int64 {
	q := t / s.segment
	if t%s.segment < 0 {
		q--
	}
	return q
}

// keyPrefix appends segment | len | key.
func (s *windowStore[K, V]) keyPrefix(dst []byte, seg int64, key K) ([]byte, error) {
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

func (s *windowStore[K, V]) fullKey(dst []byte, key K, w Window) ([]byte, error) {
	start := w.Start.UnixNano()
	dst, err := s.keyPrefix(dst, s.segmentOf(start), key)
	if err != nil {
		return nil, err
	}
	dst = orderedInt64(dst, start)
	return orderedInt64(dst, w.End.UnixNano()), nil
}

// cutoff returns the earliest window start still retained.
func (s *windowStore[K, V]) cutoff() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observed == math.MinInt64 {
		return math.MinInt64
	}
	return s.observed - int64(s.retention)
}

func (s *windowStore[K, V]) Put(key K, w Window, value V) error {
	start := w.Start.UnixNano()
	if start < s.cutoff() {
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
	return s.observe(start)
}

// observe advances the observed time and drops segments that fell out of
// retention.
func (s *windowStore[K, V]) observe(start int64) error {
	s.mu.Lock()
	if start <= s.observed {
		s.mu.Unlock()
		return nil
	}
	s.observed = start
	// A segment is dropped once every start it can hold is before the cutoff.
	keep := s.segmentOf(start - int64(s.retention))
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

func (s *windowStore[K, V]) Get(key K, w Window) (V, bool, error) {
	var zero V
	if w.Start.UnixNano() < s.cutoff() {
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

func (s *windowStore[K, V]) Delete(key K, w Window) error {
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

// segments yields the ids of the non-empty segments in [lo, hi], seeking
// from one to the next so that sparse data costs one seek per segment.
func (s *windowStore[K, V]) segments(lo, hi int64) iter.Seq2[int64, error] {
	return func(yield func(int64, error) bool) {
		for lo <= hi {
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
					yield(0, fmt.Errorf("malformed window key %x", e.Key))
					return
				}
				seg, found = readOrderedInt64(e.Key), true
				break
			}
			if !found || seg > hi {
				return
			}
			if !yield(seg, nil) || seg == math.MaxInt64 {
				return
			}
			lo = seg + 1
		}
	}
}

func (s *windowStore[K, V]) Fetch(key K, from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return func(yield func(Windowed[K, V], error) bool) {
		lo, hi := max(from.UnixNano(), s.cutoff()), to.UnixNano()
		for seg, err := range s.segments(s.segmentOf(lo), s.segmentOf(hi)) {
			if err != nil {
				yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
				return
			}
			prefix, err := s.keyPrefix(nil, seg, key)
			if err != nil {
				yield(Windowed[K, V]{}, err)
				return
			}
			// Both bounds extend prefix: cap it so they do not share memory.
			prefix = prefix[:len(prefix):len(prefix)]
			if !s.scan(orderedInt64(prefix, lo), PrefixEnd(orderedInt64(prefix, hi)), lo, hi, yield) {
				return
			}
		}
	}
}

func (s *windowStore[K, V]) FetchAll(from, to time.Time) iter.Seq2[Windowed[K, V], error] {
	return func(yield func(Windowed[K, V], error) bool) {
		lo, hi := max(from.UnixNano(), s.cutoff()), to.UnixNano()
		for seg, err := range s.segments(s.segmentOf(lo), s.segmentOf(hi)) {
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

// scan decodes the entries in [lo, hi) whose window start is within
// [from, to]. It returns false if the caller stopped or an error was yielded.
func (s *windowStore[K, V]) scan(lo, hi []byte, from, to int64, yield func(Windowed[K, V], error) bool) bool {
	for e, err := range s.b.Range(lo, hi) {
		if err != nil {
			yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
			return false
		}
		w, ok, err := s.decode(e)
		if err != nil {
			yield(Windowed[K, V]{}, err)
			return false
		}
		if !ok {
			continue
		}
		if start := w.Window.Start.UnixNano(); start < from || start > to {
			continue
		}
		if !yield(w, nil) {
			return false
		}
	}
	return true
}

func (s *windowStore[K, V]) decode(e Entry) (Windowed[K, V], bool, error) {
	var w Windowed[K, V]
	k := e.Key
	if len(k) < 12 {
		return w, false, fmt.Errorf("store %s: malformed window key %x", s.name, k)
	}
	n := int(binary.BigEndian.Uint32(k[8:12]))
	if len(k) != 12+n+16 {
		return w, false, fmt.Errorf("store %s: malformed window key %x", s.name, k)
	}
	key, err := s.keys.Deserialize(s.topic, nil, clone(k[12:12+n]))
	if err != nil {
		return w, false, fmt.Errorf("store %s: decoding key %x: %w", s.name, k, err)
	}
	start, end := readOrderedInt64(k[12+n:]), readOrderedInt64(k[20+n:])
	v, err := s.values.Deserialize(s.topic, nil, clone(e.Value))
	if err != nil {
		return w, false, fmt.Errorf("store %s: decoding value of key %x: %w", s.name, k, err)
	}
	w.Key, w.Value = key, v
	w.Window = Window{Start: time.Unix(0, start), End: time.Unix(0, end)}
	return w, true, nil
}
