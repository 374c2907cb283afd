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

// segmented is what the window and session stores share: the key layout,
// expiry by whole segments, and the segment-by-segment scans. Each entry is
// placed in time by one bound of its window, its primary time (a window's
// Start, a session's End). Key layout, every part order-preserving:
//
//	segment (8 bytes) | key length (4 bytes) | key | primary (8 bytes) | other bound (8 bytes)
//
// segment = floor(primary / segment interval). Segments first lets expiry
// drop old entries with one range deletion; the length prefix keeps one key's
// entries contiguous within a segment, ordered by primary time.
type segmented[K, V any] struct {
	name      string
	topic     string
	b         Backend
	keys      serde.Serde[K]
	values    serde.Serde[V]
	retention time.Duration
	segment   int64
	kind      string // "window" or "session", for errors
	byEnd     bool   // the primary time is End (sessions), not Start (windows)

	mu       sync.Mutex
	observed int64 // greatest primary time put, in Unix nanoseconds
	dropped  int64 // segments below this have been deleted
}

// newSegmented returns the shared part of a store over b; segment is the
// segment interval (0 for the default: half the retention, at least one
// minute).
func newSegmented[K, V any](kind string, byEnd bool, name, topic string, b Backend, retention, segment time.Duration, keys serde.Serde[K], values serde.Serde[V]) *segmented[K, V] {
	if segment <= 0 {
		segment = max(retention/2, time.Minute)
	}
	return &segmented[K, V]{
		name: name, topic: topic, b: b, keys: serde.StoreForm(keys), values: serde.StoreForm(values),
		retention: retention, segment: int64(segment), kind: kind, byEnd: byEnd,
		observed: math.MinInt64, dropped: math.MinInt64,
	}
}

func (s *segmented[K, V]) Name() string             { return s.name }
func (s *segmented[K, V]) Retention() time.Duration { return s.retention }

func orderedInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func readOrderedInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// times returns w's primary time and its other bound, in key order.
func (s *segmented[K, V]) times(w Window) (primary, other int64) {
	if s.byEnd {
		return w.End.UnixNano(), w.Start.UnixNano()
	}
	return w.Start.UnixNano(), w.End.UnixNano()
}

func (s *segmented[K, V]) segmentOf(t int64) int64 {
	q := t / s.segment
	if t%s.segment < 0 {
		q--
	}
	return q
}

// keyPrefix appends segment | len | key.
func (s *segmented[K, V]) keyPrefix(dst []byte, seg int64, key K) ([]byte, error) {
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

func (s *segmented[K, V]) fullKey(dst []byte, key K, w Window) ([]byte, error) {
	primary, other := s.times(w)
	dst, err := s.keyPrefix(dst, s.segmentOf(primary), key)
	if err != nil {
		return nil, err
	}
	dst = orderedInt64(dst, primary)
	return orderedInt64(dst, other), nil
}

// cutoff returns the earliest primary time still retained.
func (s *segmented[K, V]) cutoff() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observed == math.MinInt64 {
		return math.MinInt64
	}
	return s.observed - int64(s.retention)
}

func (s *segmented[K, V]) Put(key K, w Window, value V) error {
	primary, _ := s.times(w)
	if primary < s.cutoff() {
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
	return s.observe(primary)
}

// observe advances the observed time and drops segments that fell out of
// retention.
func (s *segmented[K, V]) observe(t int64) error {
	s.mu.Lock()
	if t <= s.observed {
		s.mu.Unlock()
		return nil
	}
	s.observed = t
	// A segment is dropped once every time it can hold is before the cutoff.
	keep := s.segmentOf(t - int64(s.retention))
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

func (s *segmented[K, V]) Get(key K, w Window) (V, bool, error) {
	var zero V
	if primary, _ := s.times(w); primary < s.cutoff() {
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

func (s *segmented[K, V]) Delete(key K, w Window) error {
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

// fetch yields the entries of key (of every key if key is nil) in the
// segments up to lastSeg whose primary time is in [max(from, cutoff), last]
// and that keep (if not nil) accepts, by segment, then encoded key, then
// primary time.
func (s *segmented[K, V]) fetch(key *K, from time.Time, last, lastSeg int64, keep func(Window) bool) iter.Seq2[Windowed[K, V], error] {
	return func(yield func(Windowed[K, V], error) bool) {
		lo := max(from.UnixNano(), s.cutoff())
		for seg, err := range s.segments(s.segmentOf(lo), lastSeg) {
			if err != nil {
				yield(Windowed[K, V]{}, fmt.Errorf("store %s: fetch: %w", s.name, err))
				return
			}
			var rlo, rhi []byte
			if key == nil {
				rlo = orderedInt64(nil, seg)
				rhi = PrefixEnd(rlo)
			} else {
				prefix, err := s.keyPrefix(nil, seg, *key)
				if err != nil {
					yield(Windowed[K, V]{}, err)
					return
				}
				// Both bounds extend prefix: cap it so they do not share memory.
				prefix = prefix[:len(prefix):len(prefix)]
				rlo, rhi = orderedInt64(prefix, lo), PrefixEnd(orderedInt64(prefix, last))
			}
			if !s.scan(rlo, rhi, lo, last, keep, yield) {
				return
			}
		}
	}
}

// segments yields the ids of the non-empty segments in [lo, hi], seeking
// from one to the next so that sparse data costs one seek per segment.
func (s *segmented[K, V]) segments(lo, hi int64) iter.Seq2[int64, error] {
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
					yield(0, fmt.Errorf("malformed %s key %x", s.kind, e.Key))
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

// scan decodes the entries in [lo, hi) whose primary time is within
// [from, to] and that keep (if not nil) accepts. It returns false if the
// caller stopped or an error was yielded.
func (s *segmented[K, V]) scan(lo, hi []byte, from, to int64, keep func(Window) bool, yield func(Windowed[K, V], error) bool) bool {
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
		if t, _ := s.times(w.Window); t < from || t > to || (keep != nil && !keep(w.Window)) {
			continue
		}
		if !yield(w, nil) {
			return false
		}
	}
	return true
}

func (s *segmented[K, V]) decode(e Entry) (Windowed[K, V], error) {
	var w Windowed[K, V]
	k := e.Key
	if len(k) < 12 {
		return w, fmt.Errorf("store %s: malformed %s key %x", s.name, s.kind, k)
	}
	n := int(binary.BigEndian.Uint32(k[8:12]))
	if len(k) != 12+n+16 {
		return w, fmt.Errorf("store %s: malformed %s key %x", s.name, s.kind, k)
	}
	key, err := s.keys.Deserialize(s.topic, nil, clone(k[12:12+n]))
	if err != nil {
		return w, fmt.Errorf("store %s: decoding key %x: %w", s.name, k, err)
	}
	start, end := readOrderedInt64(k[12+n:]), readOrderedInt64(k[20+n:])
	if s.byEnd {
		start, end = end, start
	}
	v, err := s.values.Deserialize(s.topic, nil, clone(e.Value))
	if err != nil {
		return w, fmt.Errorf("store %s: decoding value of key %x: %w", s.name, k, err)
	}
	w.Key, w.Value = key, v
	w.Window = Window{Start: time.Unix(0, start), End: time.Unix(0, end)}
	return w, nil
}
