package table

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// Row is a table's value for a key with the timestamp of the record that
// wrote it; joins stamp their results with the later of two rows'
// timestamps.
type Row[V any] struct {
	Value     V
	Timestamp time.Time
}

// RowSerde encodes rows as the timestamp (Unix nanoseconds, 8 bytes
// big-endian) followed by the value as values encodes it on topics, so a
// row holds the bytes of the table's input record.
func RowSerde[V any](values serde.Serde[V]) serde.Serde[Row[V]] { return rowSerde[V]{values} }

type rowSerde[V any] struct{ values serde.Serde[V] }

func (s rowSerde[V]) Serialize(dst []byte, topic string, headers []serde.Header, r Row[V]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Timestamp.UnixNano()))
	return s.values.Serialize(dst, topic, headers, r.Value)
}

func (s rowSerde[V]) Deserialize(topic string, headers []serde.Header, data []byte) (Row[V], error) {
	if data == nil {
		return Row[V]{}, nil
	}
	if len(data) < 8 {
		return Row[V]{}, fmt.Errorf("table row of %d bytes: shorter than its 8-byte timestamp", len(data))
	}
	v, err := s.values.Deserialize(topic, headers, data[8:])
	if err != nil {
		return Row[V]{}, fmt.Errorf("table row value: %w", err)
	}
	return Row[V]{Value: v, Timestamp: time.Unix(0, int64(binary.BigEndian.Uint64(data))).UTC()}, nil
}

// Nullable returns a serde of *V over values: nil is a Kafka null (a
// tombstone) both ways, anything else is encoded by values. Tables read
// their topics with it, and a sink of a table's updates writes deletions as
// tombstones with it.
func Nullable[V any](values serde.Serde[V]) serde.Serde[*V] { return nullable[V]{values} }

type nullable[V any] struct{ values serde.Serde[V] }

func (s nullable[V]) Serialize(dst []byte, topic string, headers []serde.Header, v *V) ([]byte, error) {
	if v == nil {
		// Nothing appended: encoded alone (dst nil) it is nil, a Kafka null.
		return dst, nil
	}
	out, err := s.values.Serialize(dst, topic, headers, *v)
	if err == nil && out == nil {
		// A value whose encoding is empty is not a tombstone.
		out = []byte{}
	}
	return out, err
}

func (s nullable[V]) Deserialize(topic string, headers []serde.Header, data []byte) (*V, error) {
	if data == nil {
		return nil, nil
	}
	v, err := s.values.Deserialize(topic, headers, data)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
