package serde

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Built-in serdes. Integers, floats, bools and times use order-preserving
// big-endian encodings: comparing encodings byte-wise gives the same result as
// comparing the values. Note that the signed integer encodings therefore differ
// from Java's IntegerSerializer/LongSerializer for negative numbers (the sign
// bit is flipped); use JavaInt32/JavaInt64 to exchange such numbers with Java
// applications.
var (
	// Bytes passes byte slices through unchanged. A nil slice encodes as a
	// Kafka null. Deserialize returns data itself, without copying.
	Bytes Serde[[]byte] = bytesSerde{}
	// String encodes a string as its UTF-8 bytes (no validation, no length).
	String Serde[string] = stringSerde{}
	// Bool encodes false as 0x00 and true as 0x01.
	Bool Serde[bool] = boolSerde{}

	// Int8 is the order-preserving 1-byte encoding of int8.
	Int8 Serde[int8] = signed[int8]{size: 1}
	// Int16 is the order-preserving 2-byte encoding of int16.
	Int16 Serde[int16] = signed[int16]{size: 2}
	// Int32 is the order-preserving 4-byte encoding of int32.
	Int32 Serde[int32] = signed[int32]{size: 4}
	// Int64 is the order-preserving 8-byte encoding of int64.
	Int64 Serde[int64] = signed[int64]{size: 8}
	// Int is the order-preserving 8-byte encoding of int.
	Int Serde[int] = signed[int]{size: 8}

	// Uint8 is the 1-byte encoding of uint8.
	Uint8 Serde[uint8] = unsigned[uint8]{size: 1}
	// Uint16 is the big-endian 2-byte encoding of uint16.
	Uint16 Serde[uint16] = unsigned[uint16]{size: 2}
	// Uint32 is the big-endian 4-byte encoding of uint32.
	Uint32 Serde[uint32] = unsigned[uint32]{size: 4}
	// Uint64 is the big-endian 8-byte encoding of uint64.
	Uint64 Serde[uint64] = unsigned[uint64]{size: 8}

	// Float32 is the order-preserving 4-byte encoding of float32 (NaNs sort
	// after +Inf or before -Inf depending on their sign bit).
	Float32 Serde[float32] = float32Serde{}
	// Float64 is the order-preserving 8-byte encoding of float64.
	Float64 Serde[float64] = float64Serde{}

	// Time encodes an instant as order-preserving int64 nanoseconds since the
	// Unix epoch (UTC). The location and monotonic reading are not kept.
	// Instants outside the years 1678..2262 are rejected.
	Time Serde[time.Time] = timeSerde{}
	// Duration encodes a time.Duration as order-preserving int64 nanoseconds.
	Duration Serde[time.Duration] = signed[time.Duration]{size: 8}

	// JavaInt32 is the two's complement big-endian encoding used by Java's
	// IntegerSerializer. It is not order-preserving for negative numbers.
	JavaInt32 Serde[int32] = javaInt[int32]{size: 4}
	// JavaInt64 is the two's complement big-endian encoding used by Java's
	// LongSerializer. It is not order-preserving for negative numbers.
	JavaInt64 Serde[int64] = javaInt[int64]{size: 8}
)

// SizeError reports encoded data whose length is wrong for its type.
type SizeError struct {
	Type string // the Go type being decoded
	Want int    // the required length in bytes
	Got  int    // the length of the data
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("serde: decoding %s: want %d bytes, got %d", e.Type, e.Want, e.Got)
}

type bytesSerde struct{}

func (bytesSerde) Serialize(dst []byte, _ string, _ []Header, v []byte) ([]byte, error) {
	if len(dst) == 0 {
		if v == nil {
			return nil, nil // a Kafka null
		}
		if dst == nil {
			dst = make([]byte, 0, len(v)) // empty, not null
		}
	}
	return append(dst, v...), nil
}

func (bytesSerde) Deserialize(_ string, _ []Header, data []byte) ([]byte, error) {
	return data, nil
}

type stringSerde struct{}

func (stringSerde) Serialize(dst []byte, _ string, _ []Header, v string) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, len(v)) // "" is empty, not a Kafka null
	}
	return append(dst, v...), nil
}

func (stringSerde) Deserialize(_ string, _ []Header, data []byte) (string, error) {
	return string(data), nil
}

type boolSerde struct{}

func (boolSerde) Serialize(dst []byte, _ string, _ []Header, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func (boolSerde) Deserialize(_ string, _ []Header, data []byte) (bool, error) {
	if data == nil {
		return false, nil
	}
	if len(data) != 1 {
		return false, &SizeError{Type: "bool", Want: 1, Got: len(data)}
	}
	switch data[0] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("serde: decoding bool: invalid byte 0x%02x", data[0])
}

type signedInt interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int
}

type unsignedInt interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

// signed flips the sign bit so that negative numbers sort before positive ones.
type signed[T signedInt] struct{ size int }

func (s signed[T]) Serialize(dst []byte, _ string, _ []Header, v T) ([]byte, error) {
	return putUint(dst, s.size, uint64(int64(v))^(1<<(s.size*8-1))), nil
}

func (s signed[T]) Deserialize(_ string, _ []Header, data []byte) (T, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, s.size, typeName[T])
	if err != nil {
		return 0, err
	}
	u ^= 1 << (s.size*8 - 1)
	// Sign-extend from size bytes.
	shift := 64 - s.size*8
	return T(int64(u<<shift) >> shift), nil
}

type unsigned[T unsignedInt] struct{ size int }

func (s unsigned[T]) Serialize(dst []byte, _ string, _ []Header, v T) ([]byte, error) {
	return putUint(dst, s.size, uint64(v)), nil
}

func (s unsigned[T]) Deserialize(_ string, _ []Header, data []byte) (T, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, s.size, typeName[T])
	return T(u), err
}

type javaInt[T ~int32 | ~int64] struct{ size int }

func (s javaInt[T]) Serialize(dst []byte, _ string, _ []Header, v T) ([]byte, error) {
	return putUint(dst, s.size, uint64(int64(v))), nil
}

func (s javaInt[T]) Deserialize(_ string, _ []Header, data []byte) (T, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, s.size, typeName[T])
	if err != nil {
		return 0, err
	}
	shift := 64 - s.size*8
	return T(int64(u<<shift) >> shift), nil
}

type float32Serde struct{}

func (float32Serde) Serialize(dst []byte, _ string, _ []Header, v float32) ([]byte, error) {
	b := math.Float32bits(v)
	if b&(1<<31) != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return binary.BigEndian.AppendUint32(dst, b), nil
}

func (float32Serde) Deserialize(_ string, _ []Header, data []byte) (float32, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, 4, func() string { return "float32" })
	if err != nil {
		return 0, err
	}
	b := uint32(u)
	if b&(1<<31) != 0 {
		b &^= 1 << 31
	} else {
		b = ^b
	}
	return math.Float32frombits(b), nil
}

type float64Serde struct{}

func (float64Serde) Serialize(dst []byte, _ string, _ []Header, v float64) ([]byte, error) {
	b := math.Float64bits(v)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b), nil
}

func (float64Serde) Deserialize(_ string, _ []Header, data []byte) (float64, error) {
	if data == nil {
		return 0, nil
	}
	b, err := getUint(data, 8, func() string { return "float64" })
	if err != nil {
		return 0, err
	}
	if b&(1<<63) != 0 {
		b &^= 1 << 63
	} else {
		b = ^b
	}
	return math.Float64frombits(b), nil
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

type timeSerde struct{}

func (timeSerde) Serialize(dst []byte, _ string, _ []Header, v time.Time) ([]byte, error) {
	if v.Before(minTime) || v.After(maxTime) {
		return dst, fmt.Errorf("serde: encoding time %v: outside the int64 nanosecond range", v)
	}
	return Int64.Serialize(dst, "", nil, v.UnixNano())
}

func (timeSerde) Deserialize(_ string, _ []Header, data []byte) (time.Time, error) {
	if data == nil {
		return time.Time{}, nil
	}
	n, err := Int64.Deserialize("", nil, data)
	if err != nil {
		return time.Time{}, fmt.Errorf("serde: decoding time.Time: %w", err)
	}
	return time.Unix(0, n).UTC(), nil
}

func putUint(dst []byte, size int, u uint64) []byte {
	switch size {
	case 1:
		return append(dst, byte(u))
	case 2:
		return binary.BigEndian.AppendUint16(dst, uint16(u))
	case 4:
		return binary.BigEndian.AppendUint32(dst, uint32(u))
	default:
		return binary.BigEndian.AppendUint64(dst, u)
	}
}

// getUint decodes a big-endian integer of exactly size bytes. typ is called
// only on error, to keep the type name's formatting off the hot path.
func getUint(data []byte, size int, typ func() string) (uint64, error) {
	if len(data) != size {
		return 0, &SizeError{Type: typ(), Want: size, Got: len(data)}
	}
	switch size {
	case 1:
		return uint64(data[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(data)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(data)), nil
	default:
		return binary.BigEndian.Uint64(data), nil
	}
}

func typeName[T any]() string {
	var zero T
	return fmt.Sprintf("%T", zero)
}
