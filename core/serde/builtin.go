package serde

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Built-in serdes. On topics, the fixed-width numbers are Kafka's wire
// format: what Java's ShortSerializer, IntegerSerializer, LongSerializer,
// FloatSerializer and DoubleSerializer write (big-endian two's complement,
// IEEE 754 big-endian). In stores, the numeric, Time and Duration serdes are
// encoded in their order-preserving form (see StoreForm and the Ordered*
// serdes).
var (
	// Bytes passes byte slices through unchanged. A nil slice encodes as a
	// Kafka null. Deserialize returns data itself, without copying.
	Bytes Serde[[]byte] = bytesSerde{}
	// String encodes a string as its UTF-8 bytes (no validation, no length).
	String Serde[string] = stringSerde{}
	// Bool encodes false as 0x00 and true as 0x01, as Java's
	// BooleanSerializer.
	Bool Serde[bool] = boolSerde{}

	// Int8 encodes an int8 as one byte, two's complement.
	Int8 Serde[int8] = kafkaInt[int8]{twosInt[int8]{size: 1}}
	// Int16 encodes an int16 as 2 bytes, big-endian two's complement, as
	// Java's ShortSerializer.
	Int16 Serde[int16] = kafkaInt[int16]{twosInt[int16]{size: 2}}
	// Int32 encodes an int32 as 4 bytes, big-endian two's complement, as
	// Java's IntegerSerializer.
	Int32 Serde[int32] = kafkaInt[int32]{twosInt[int32]{size: 4}}
	// Int64 encodes an int64 as 8 bytes, big-endian two's complement, as
	// Java's LongSerializer.
	Int64 Serde[int64] = kafkaInt[int64]{twosInt[int64]{size: 8}}
	// Int encodes an int as 8 bytes, big-endian two's complement, as Java's
	// LongSerializer.
	Int Serde[int] = kafkaInt[int]{twosInt[int]{size: 8}}

	// Uint8 is the 1-byte encoding of uint8.
	Uint8 Serde[uint8] = unsigned[uint8]{size: 1}
	// Uint16 is the big-endian 2-byte encoding of uint16.
	Uint16 Serde[uint16] = unsigned[uint16]{size: 2}
	// Uint32 is the big-endian 4-byte encoding of uint32.
	Uint32 Serde[uint32] = unsigned[uint32]{size: 4}
	// Uint64 is the big-endian 8-byte encoding of uint64.
	Uint64 Serde[uint64] = unsigned[uint64]{size: 8}

	// Float32 encodes a float32 as its 4 IEEE 754 bits, big-endian, as
	// Java's FloatSerializer.
	Float32 Serde[float32] = kafkaFloat32{}
	// Float64 encodes a float64 as its 8 IEEE 754 bits, big-endian, as
	// Java's DoubleSerializer.
	Float64 Serde[float64] = kafkaFloat64{}

	// Time encodes an instant as int64 nanoseconds since the Unix epoch
	// (UTC), as Int64 does. The location and monotonic reading are not
	// kept. Instants outside the years 1678..2262 are rejected.
	Time Serde[time.Time] = timeSerde{ints: Int64, store: OrderedTime}
	// Duration encodes a time.Duration as int64 nanoseconds, as Int64 does.
	Duration Serde[time.Duration] = kafkaInt[time.Duration]{twosInt[time.Duration]{size: 8}}

	// OrderedInt8 is the order-preserving 1-byte encoding of int8: two's
	// complement with the sign bit flipped, so that the bytes sort like
	// the numbers.
	OrderedInt8 Serde[int8] = orderedInt[int8]{size: 1}
	// OrderedInt16 is the order-preserving 2-byte encoding of int16:
	// big-endian with the sign bit flipped.
	OrderedInt16 Serde[int16] = orderedInt[int16]{size: 2}
	// OrderedInt32 is the order-preserving 4-byte encoding of int32:
	// big-endian with the sign bit flipped.
	OrderedInt32 Serde[int32] = orderedInt[int32]{size: 4}
	// OrderedInt64 is the order-preserving 8-byte encoding of int64:
	// big-endian with the sign bit flipped.
	OrderedInt64 Serde[int64] = orderedInt[int64]{size: 8}
	// OrderedInt is the order-preserving 8-byte encoding of int: big-endian
	// with the sign bit flipped.
	OrderedInt Serde[int] = orderedInt[int]{size: 8}
	// OrderedFloat32 is the order-preserving 4-byte encoding of float32
	// (NaNs sort after +Inf or before -Inf depending on their sign bit).
	OrderedFloat32 Serde[float32] = orderedFloat32{}
	// OrderedFloat64 is the order-preserving 8-byte encoding of float64.
	OrderedFloat64 Serde[float64] = orderedFloat64{}
	// OrderedTime encodes an instant as OrderedInt64 nanoseconds since the
	// Unix epoch (UTC); otherwise as Time.
	OrderedTime Serde[time.Time] = timeSerde{ints: OrderedInt64}
	// OrderedDuration encodes a time.Duration as OrderedInt64 nanoseconds.
	OrderedDuration Serde[time.Duration] = orderedInt[time.Duration]{size: 8}

	// JavaInt32 encodes an int32 as Int32 does, and keeps that encoding in
	// stores too (Int32 is order-preserving there).
	//
	// Deprecated: use Int32, which writes Java's IntegerSerializer format
	// on topics. Keep JavaInt32 only for the stores that were created with it.
	JavaInt32 Serde[int32] = twosInt[int32]{size: 4}
	// JavaInt64 encodes an int64 as Int64 does, and keeps that encoding in
	// stores too (Int64 is order-preserving there).
	//
	// Deprecated: use Int64, which writes Java's LongSerializer format on
	// topics. Keep JavaInt64 only for the stores that were created with it.
	JavaInt64 Serde[int64] = twosInt[int64]{size: 8}
)

// StoreForm returns the serde that stores use to encode what s encodes: for
// the built-in Int*, Float*, Time and Duration serdes, their
// order-preserving form (OrderedInt64 for Int64, and so on), so that a
// store's range scans over numeric keys come out in numeric order,
// negative numbers included; for any other serde, s itself. The typed
// stores of package store apply it to their key and value serdes. A serde
// that combines built-in serdes into one key (a composite key) and needs
// its parts to sort as values should use the Ordered* serdes for them.
func StoreForm[T any](s Serde[T]) Serde[T] {
	if f, ok := s.(storeFormer[T]); ok {
		return f.storeForm()
	}
	return s
}

// storeFormer is implemented by the built-in serdes whose store form
// differs from their topic form.
type storeFormer[T any] interface {
	storeForm() Serde[T]
}

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

// orderedInt flips the sign bit so that negative numbers sort before
// positive ones.
type orderedInt[T signedInt] struct{ size int }

func (s orderedInt[T]) Serialize(dst []byte, _ string, _ []Header, v T) ([]byte, error) {
	return putUint(dst, s.size, uint64(int64(v))^(1<<(s.size*8-1))), nil
}

func (s orderedInt[T]) Deserialize(_ string, _ []Header, data []byte) (T, error) {
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

// twosInt is big-endian two's complement, as Java's DataOutput writes.
type twosInt[T signedInt] struct{ size int }

func (s twosInt[T]) Serialize(dst []byte, _ string, _ []Header, v T) ([]byte, error) {
	return putUint(dst, s.size, uint64(int64(v))), nil
}

func (s twosInt[T]) Deserialize(_ string, _ []Header, data []byte) (T, error) {
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

// kafkaInt is twosInt on topics and orderedInt in stores.
type kafkaInt[T signedInt] struct{ twosInt[T] }

func (s kafkaInt[T]) storeForm() Serde[T] { return orderedInt[T]{size: s.size} }

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

type kafkaFloat32 struct{}

func (kafkaFloat32) Serialize(dst []byte, _ string, _ []Header, v float32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(v)), nil
}

func (kafkaFloat32) Deserialize(_ string, _ []Header, data []byte) (float32, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, 4, func() string { return "float32" })
	return math.Float32frombits(uint32(u)), err
}

func (kafkaFloat32) storeForm() Serde[float32] { return OrderedFloat32 }

type kafkaFloat64 struct{}

func (kafkaFloat64) Serialize(dst []byte, _ string, _ []Header, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v)), nil
}

func (kafkaFloat64) Deserialize(_ string, _ []Header, data []byte) (float64, error) {
	if data == nil {
		return 0, nil
	}
	u, err := getUint(data, 8, func() string { return "float64" })
	return math.Float64frombits(u), err
}

func (kafkaFloat64) storeForm() Serde[float64] { return OrderedFloat64 }

type orderedFloat32 struct{}

func (orderedFloat32) Serialize(dst []byte, _ string, _ []Header, v float32) ([]byte, error) {
	b := math.Float32bits(v)
	if b&(1<<31) != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return binary.BigEndian.AppendUint32(dst, b), nil
}

func (orderedFloat32) Deserialize(_ string, _ []Header, data []byte) (float32, error) {
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

type orderedFloat64 struct{}

func (orderedFloat64) Serialize(dst []byte, _ string, _ []Header, v float64) ([]byte, error) {
	b := math.Float64bits(v)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b), nil
}

func (orderedFloat64) Deserialize(_ string, _ []Header, data []byte) (float64, error) {
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

// timeSerde encodes instants as int64 nanoseconds with ints. store, if
// set, is its store form.
type timeSerde struct {
	ints  Serde[int64]
	store Serde[time.Time]
}

func (s timeSerde) Serialize(dst []byte, _ string, _ []Header, v time.Time) ([]byte, error) {
	if v.Before(minTime) || v.After(maxTime) {
		return dst, fmt.Errorf("serde: encoding time %v: outside the int64 nanosecond range", v)
	}
	return s.ints.Serialize(dst, "", nil, v.UnixNano())
}

func (s timeSerde) Deserialize(_ string, _ []Header, data []byte) (time.Time, error) {
	if data == nil {
		return time.Time{}, nil
	}
	n, err := s.ints.Deserialize("", nil, data)
	if err != nil {
		return time.Time{}, fmt.Errorf("serde: decoding time.Time: %w", err)
	}
	return time.Unix(0, n).UTC(), nil
}

func (s timeSerde) storeForm() Serde[time.Time] {
	if s.store == nil {
		return s
	}
	return s.store
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
