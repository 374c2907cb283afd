package window

import (
	"encoding/binary"
	"fmt"

	"github.com/kstreams-go/kstreams/core/serde"
)

// pending is an entry of the pending-emission store: a window that has not
// been emitted by EmitFinal yet, listed under the stream time at which it
// closes. The store is a key-value store whose keys order by close time, so
// finding the windows due at stream time T is one seek from the first key,
// and each window is emitted once: its entry is deleted when it is emitted,
// in the same commit as the emitted record.
type pending[K any] struct {
	close int64 // Unix nanoseconds
	win   Window
	key   K
}

// pendingSerde encodes a pending entry as close | start | end | key, the
// times as order-preserving int64s.
type pendingSerde[K any] struct {
	keys serde.Serde[K]
}

func (s pendingSerde[K]) Serialize(dst []byte, topic string, headers []serde.Header, p pending[K]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.close)^(1<<63))
	dst = appendTime(dst, p.win.Start)
	dst = appendTime(dst, p.win.End)
	out, err := s.keys.Serialize(dst, topic, headers, p.key)
	if err != nil {
		return dst, fmt.Errorf("pending window: encoding the key: %w", err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func (s pendingSerde[K]) Deserialize(topic string, headers []serde.Header, data []byte) (pending[K], error) {
	var p pending[K]
	if len(data) < 3*timeSize {
		return p, fmt.Errorf("pending window: %d bytes, want at least %d", len(data), 3*timeSize)
	}
	p.close = int64(binary.BigEndian.Uint64(data) ^ (1 << 63))
	p.win.Start = readTime(data[timeSize:])
	p.win.End = readTime(data[2*timeSize:])
	k, err := s.keys.Deserialize(topic, headers, data[3*timeSize:])
	if err != nil {
		return p, fmt.Errorf("pending window: decoding the key: %w", err)
	}
	p.key = k
	return p, nil
}
