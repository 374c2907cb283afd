package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Window is a time interval with both bounds stored: a start and an end.
// For tumbling, hopping and calendar windows it is half-open, [Start, End).
// For sliding and session windows both bounds are included, as in Kafka
// Streams: a sliding window is [Start, Start+difference], a session
// [first record, last record] (Start == End for a session of one record).
type Window = store.Window

// Key is the key of a windowed aggregation's output: the record key and the
// window. Calendar windows come out in their time zone, the others in UTC.
type Key[K any] struct {
	Key    K
	Window Window
}

// String formats k as key@[start, end).
func (k Key[K]) String() string { return fmt.Sprintf("%v@%v", k.Key, k.Window) }

// In returns k with its window's bounds in loc, for display.
func (k Key[K]) In(loc *time.Location) Key[K] {
	k.Window = Window{Start: k.Window.Start.In(loc), End: k.Window.End.In(loc)}
	return k
}

// KeySerde returns a serde for window keys whose inner key is encoded by
// keys. The encoding is order-preserving, so that byte order equals the
// order by key bytes, then start, then end:
//
//	key bytes, each 0x00 escaped as 0x00 0xFF | 0x00 0x01 | start | end
//
// where start and end are Unix nanoseconds as big-endian int64 with the sign
// bit flipped. Both bounds are written: calendar windows have variable
// length, so an end cannot be derived from a start and a size. Decoded
// bounds are in UTC (see Key.In).
func KeySerde[K any](keys serde.Serde[K]) serde.Serde[Key[K]] {
	return keySerde[K]{keys: keys}
}

type keySerde[K any] struct {
	keys serde.Serde[K]
}

const (
	escByte  = 0x00
	escSelf  = 0xFF // 0x00 0xFF encodes a 0x00 of the key
	escEnd   = 0x01 // 0x00 0x01 ends the key
	timeSize = 8
)

func (s keySerde[K]) Serialize(dst []byte, topic string, headers []serde.Header, v Key[K]) ([]byte, error) {
	start := len(dst)
	dst, err := s.keys.Serialize(dst, topic, headers, v.Key)
	if err != nil {
		return dst[:start], fmt.Errorf("window key: encoding the key: %w", err)
	}
	// Escape in place, from the back, after growing dst by the number of
	// zero bytes.
	zeros := 0
	for _, c := range dst[start:] {
		if c == escByte {
			zeros++
		}
	}
	if zeros > 0 {
		n := len(dst)
		dst = append(dst, make([]byte, zeros)...)
		w := len(dst) - 1
		for r := n - 1; r >= start; r-- {
			c := dst[r]
			if c == escByte {
				dst[w] = escSelf
				w--
			}
			dst[w] = c
			w--
		}
	}
	dst = append(dst, escByte, escEnd)
	dst = appendTime(dst, v.Window.Start)
	return appendTime(dst, v.Window.End), nil
}

func (s keySerde[K]) Deserialize(topic string, headers []serde.Header, data []byte) (Key[K], error) {
	var k Key[K]
	if data == nil {
		return k, nil
	}
	raw, rest, err := unescape(data)
	if err != nil {
		return k, err
	}
	if len(rest) != 2*timeSize {
		return k, fmt.Errorf("window key: %d bytes after the key, want %d", len(rest), 2*timeSize)
	}
	k.Key, err = s.keys.Deserialize(topic, headers, raw)
	if err != nil {
		return k, fmt.Errorf("window key: decoding the key: %w", err)
	}
	k.Window.Start = readTime(rest)
	k.Window.End = readTime(rest[timeSize:])
	return k, nil
}

var errUnterminated = errors.New("window key: unterminated key")

// unescape returns the unescaped key bytes of data and what follows their
// terminator.
func unescape(data []byte) (key, rest []byte, err error) {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c != escByte {
			out = append(out, c)
			continue
		}
		if i+1 >= len(data) {
			return nil, nil, errUnterminated
		}
		switch data[i+1] {
		case escSelf:
			out = append(out, escByte)
			i++
		case escEnd:
			return out, data[i+2:], nil
		default:
			return nil, nil, fmt.Errorf("window key: invalid escape 0x00 0x%02x at byte %d", data[i+1], i)
		}
	}
	return nil, nil, errUnterminated
}

func appendTime(dst []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano())^(1<<63))
}

func readTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

// Stamped is what a windowed aggregation keeps per window: the aggregate
// and the greatest timestamp of the records aggregated into it. Output
// records carry that timestamp, and sliding windows need it to know which
// records a window holds.
type Stamped[A any] struct {
	Value     A
	Timestamp time.Time
}

// StampedSerde returns a serde for Stamped[A]: the timestamp (8 bytes, Unix
// nanoseconds, order-preserving) followed by the aggregate encoded by aggs.
func StampedSerde[A any](aggs serde.Serde[A]) serde.Serde[Stamped[A]] {
	return stampedSerde[A]{aggs: aggs}
}

type stampedSerde[A any] struct {
	aggs serde.Serde[A]
}

func (s stampedSerde[A]) Serialize(dst []byte, topic string, headers []serde.Header, v Stamped[A]) ([]byte, error) {
	dst = appendTime(dst, v.Timestamp)
	n := len(dst)
	out, err := s.aggs.Serialize(dst, topic, headers, v.Value)
	if err != nil {
		return dst[:n-timeSize], fmt.Errorf("window aggregate: encoding: %w", err)
	}
	return out, nil
}

func (s stampedSerde[A]) Deserialize(topic string, headers []serde.Header, data []byte) (Stamped[A], error) {
	var v Stamped[A]
	if data == nil {
		return v, nil
	}
	if len(data) < timeSize {
		return v, fmt.Errorf("window aggregate: %d bytes, want at least %d", len(data), timeSize)
	}
	v.Timestamp = readTime(data)
	var rest []byte
	if len(data) > timeSize {
		rest = data[timeSize:]
	} else {
		rest = []byte{} // empty, not null: an aggregate encoded as nothing
	}
	a, err := s.aggs.Deserialize(topic, headers, rest)
	if err != nil {
		return v, fmt.Errorf("window aggregate: decoding: %w", err)
	}
	v.Value = a
	return v, nil
}
