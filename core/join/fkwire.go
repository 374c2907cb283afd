package join

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/core/serde"
)

// The records a foreign-key join exchanges between its two sides, and
// their encodings (version 1). Decoders return errors, never panic, on any
// input (FuzzSubscription, FuzzResponse).

// instruction says what the right side does with a subscription.
type instruction uint8

const (
	// subscribe and answer only if the right table holds the foreign key
	propagateIfFound instruction = iota + 1
	// subscribe and answer with the right row or nil
	propagateNullIfMissing
	// unsubscribe, answer nothing
	unsubscribe
	// unsubscribe and answer nil (the left row was deleted), stamped with
	// the later of the subscription's and the right row's timestamps
	unsubscribeAndPropagate
	// unsubscribe and answer nil stamped with the subscription's timestamp
	// (a left join's deleted row)
	unsubscribeAndPropagateOwnTime
)

const (
	wireVersion = 1
	hashLen     = 16
)

// subscription is a left row's request to the right side: the left key,
// the hash of the left value it was sent for (nil for a deleted row), and
// the left task's partition, where the response goes.
type subscription[K any] struct {
	instr     instruction
	hash      []byte
	partition int32
	key       K
}

// response is the right side's answer for one subscribed left key: the
// subscription's hash and the right row (nil: none).
type response[R any] struct {
	hash      []byte
	value     *R
	partition int32 // where it is written: the subscription's
}

// subscriptionSerde encodes a subscription as
// version, instruction, hash flag, [hash], partition (int32), left key.
type subscriptionSerde[K any] struct{ keys serde.Serde[K] }

func (s subscriptionSerde[K]) Serialize(dst []byte, topic string, headers []serde.Header, v subscription[K]) ([]byte, error) {
	dst = append(dst, wireVersion, byte(v.instr))
	dst = appendHash(dst, v.hash)
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.partition))
	return s.keys.Serialize(dst, topic, headers, v.key)
}

func (s subscriptionSerde[K]) Deserialize(topic string, headers []serde.Header, data []byte) (subscription[K], error) {
	var v subscription[K]
	if len(data) < 2 {
		return v, fmt.Errorf("foreign-key subscription: %d bytes, want at least 2", len(data))
	}
	if data[0] != wireVersion {
		return v, fmt.Errorf("foreign-key subscription: version %d, want %d", data[0], wireVersion)
	}
	v.instr = instruction(data[1])
	if v.instr < propagateIfFound || v.instr > unsubscribeAndPropagateOwnTime {
		return v, fmt.Errorf("foreign-key subscription: unknown instruction %d", data[1])
	}
	hash, rest, err := readHash(data[2:])
	if err != nil {
		return v, fmt.Errorf("foreign-key subscription: %w", err)
	}
	if len(rest) < 4 {
		return v, errors.New("foreign-key subscription: truncated partition")
	}
	v.hash, v.partition = hash, int32(binary.BigEndian.Uint32(rest))
	if v.partition < 0 {
		return v, fmt.Errorf("foreign-key subscription: negative partition %d", v.partition)
	}
	if v.key, err = s.keys.Deserialize(topic, headers, rest[4:]); err != nil {
		return v, fmt.Errorf("foreign-key subscription: decoding the left key: %w", err)
	}
	return v, nil
}

// responseSerde encodes a response as version, flags (1: hash, 2: value),
// [hash], [right value].
type responseSerde[R any] struct{ values serde.Serde[R] }

func (s responseSerde[R]) Serialize(dst []byte, topic string, headers []serde.Header, v response[R]) ([]byte, error) {
	var flags byte
	if v.hash != nil {
		flags |= 1
	}
	if v.value != nil {
		flags |= 2
	}
	dst = append(dst, wireVersion, flags)
	if v.hash != nil {
		dst = append(dst, v.hash...)
	}
	if v.value == nil {
		return dst, nil
	}
	return s.values.Serialize(dst, topic, headers, *v.value)
}

func (s responseSerde[R]) Deserialize(topic string, headers []serde.Header, data []byte) (response[R], error) {
	var v response[R]
	if len(data) < 2 {
		return v, fmt.Errorf("foreign-key response: %d bytes, want at least 2", len(data))
	}
	if data[0] != wireVersion {
		return v, fmt.Errorf("foreign-key response: version %d, want %d", data[0], wireVersion)
	}
	flags, rest := data[1], data[2:]
	if flags&^3 != 0 {
		return v, fmt.Errorf("foreign-key response: unknown flags %#x", flags)
	}
	if flags&1 != 0 {
		if len(rest) < hashLen {
			return v, errors.New("foreign-key response: truncated hash")
		}
		v.hash, rest = rest[:hashLen:hashLen], rest[hashLen:]
	}
	if flags&2 == 0 {
		if len(rest) != 0 {
			return v, fmt.Errorf("foreign-key response: %d bytes after a response without a value", len(rest))
		}
		return v, nil
	}
	r, err := s.values.Deserialize(topic, headers, rest)
	if err != nil {
		return v, fmt.Errorf("foreign-key response: decoding the right value: %w", err)
	}
	v.value = &r
	return v, nil
}

func appendHash(dst, hash []byte) []byte {
	if hash == nil {
		return append(dst, 0)
	}
	return append(append(dst, 1), hash...)
}

func readHash(data []byte) (hash, rest []byte, err error) {
	if len(data) < 1 {
		return nil, nil, errors.New("truncated hash flag")
	}
	switch data[0] {
	case 0:
		return nil, data[1:], nil
	case 1:
		if len(data) < 1+hashLen {
			return nil, nil, errors.New("truncated hash")
		}
		return data[1 : 1+hashLen : 1+hashLen], data[1+hashLen:], nil
	}
	return nil, nil, fmt.Errorf("hash flag %d, want 0 or 1", data[0])
}

// subscriptionKey is the subscription store's key of (foreign key, left
// key): the foreign key's length (uvarint) and bytes, then the left key's
// bytes, so that the subscriptions of one foreign key are one prefix.
func subscriptionKey(fk, key []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(fk)+len(key)), uint64(len(fk)))
	return append(append(out, fk...), key...)
}

// subscriptionPrefix is the prefix of the subscription store's keys of fk.
func subscriptionPrefix(fk []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(fk))), fk...)
}

// storedSubscription is a subscription store's value: the hash flag,
// [hash], and the partition, as in a subscription.
func encodeStored(hash []byte, partition int32) []byte {
	return binary.BigEndian.AppendUint32(appendHash(nil, hash), uint32(partition))
}

func decodeStored(data []byte) (hash []byte, partition int32, err error) {
	hash, rest, err := readHash(data)
	if err != nil {
		return nil, 0, fmt.Errorf("foreign-key subscription store: %w", err)
	}
	if len(rest) != 4 {
		return nil, 0, fmt.Errorf("foreign-key subscription store: %d bytes of partition, want 4", len(rest))
	}
	return hash, int32(binary.BigEndian.Uint32(rest)), nil
}

// leftKeyOf returns the left key's bytes of a subscription store key.
func leftKeyOf(storeKey []byte) ([]byte, error) {
	n, w := binary.Uvarint(storeKey)
	if w <= 0 || uint64(len(storeKey)-w) < n {
		return nil, errors.New("foreign-key subscription store: malformed key")
	}
	return storeKey[w+int(n):], nil
}
