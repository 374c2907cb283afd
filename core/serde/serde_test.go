package serde_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

func enc[T any](t *testing.T, s serde.Serde[T], v T) []byte {
	t.Helper()
	b, err := s.Serialize(nil, "t", nil, v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	return b
}

// checkOrdered asserts that the encodings sort like the (sorted) values and
// that each round-trips.
func checkOrdered[T comparable](t *testing.T, s serde.Serde[T], sorted []T) {
	t.Helper()
	var prev []byte
	for i, v := range sorted {
		b := enc(t, s, v)
		got, err := s.Deserialize("t", nil, b)
		if err != nil || got != v {
			t.Fatalf("round trip of %v: %v, %v", v, got, err)
		}
		if i > 0 && bytes.Compare(prev, b) >= 0 {
			t.Fatalf("encoding of %v (%x) does not sort after that of %v (%x)", v, b, sorted[i-1], prev)
		}
		prev = b
	}
}

func TestOrderPreserving(t *testing.T) {
	checkOrdered(t, serde.Int64, []int64{math.MinInt64, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64})
	checkOrdered(t, serde.Int32, []int32{math.MinInt32, -70000, -1, 0, 1, 70000, math.MaxInt32})
	checkOrdered(t, serde.Int16, []int16{math.MinInt16, -1, 0, 1, math.MaxInt16})
	checkOrdered(t, serde.Int8, []int8{math.MinInt8, -1, 0, 1, math.MaxInt8})
	checkOrdered(t, serde.Int, []int{math.MinInt, -1, 0, 1, math.MaxInt})
	checkOrdered(t, serde.Uint64, []uint64{0, 1, 255, 256, math.MaxUint64})
	checkOrdered(t, serde.Uint32, []uint32{0, 1, math.MaxUint32})
	checkOrdered(t, serde.Uint16, []uint16{0, 1, math.MaxUint16})
	checkOrdered(t, serde.Uint8, []uint8{0, 1, math.MaxUint8})
	checkOrdered(t, serde.Float64, []float64{math.Inf(-1), -math.MaxFloat64, -1.5, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, 1.5, math.MaxFloat64, math.Inf(1)})
	checkOrdered(t, serde.Float32, []float32{float32(math.Inf(-1)), -3.5, -1, 0, 0.25, 1, float32(math.Inf(1))})
	checkOrdered(t, serde.Bool, []bool{false, true})
	checkOrdered(t, serde.Duration, []time.Duration{-time.Hour, 0, time.Nanosecond, time.Hour})
	checkOrdered(t, serde.String, []string{"", "a", "ab", "b", "\xff"})
}

func TestTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ts := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999, time.UTC),
		time.Date(2026, 3, 29, 2, 30, 0, 1, berlin),
	}
	var prev []byte
	for _, v := range ts {
		b := enc(t, serde.Time, v)
		got, err := serde.Time.Deserialize("t", nil, b)
		if err != nil || !got.Equal(v) {
			t.Fatalf("round trip of %v: %v, %v", v, got, err)
		}
		if prev != nil && bytes.Compare(prev, b) >= 0 {
			t.Fatalf("time encodings out of order at %v", v)
		}
		prev = b
	}
	if _, err := serde.Time.Serialize(nil, "t", nil, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("year 3000 encoded without error")
	}
}

func TestJavaIntegers(t *testing.T) {
	if b := enc(t, serde.JavaInt64, -1); !bytes.Equal(b, bytes.Repeat([]byte{0xff}, 8)) {
		t.Fatalf("JavaInt64(-1) = %x", b)
	}
	if b := enc(t, serde.JavaInt32, 258); !bytes.Equal(b, []byte{0, 0, 1, 2}) {
		t.Fatalf("JavaInt32(258) = %x", b)
	}
	for _, v := range []int64{math.MinInt64, -5, 0, 5, math.MaxInt64} {
		got, err := serde.JavaInt64.Deserialize("t", nil, enc(t, serde.JavaInt64, v))
		if err != nil || got != v {
			t.Fatalf("JavaInt64 round trip of %d: %d, %v", v, got, err)
		}
	}
	got, err := serde.JavaInt32.Deserialize("t", nil, enc(t, serde.JavaInt32, -7))
	if err != nil || got != -7 {
		t.Fatalf("JavaInt32 round trip of -7: %d, %v", got, err)
	}
}

func TestNilIsZeroValue(t *testing.T) {
	if v, err := serde.Int64.Deserialize("t", nil, nil); err != nil || v != 0 {
		t.Fatalf("Int64(nil) = %d, %v", v, err)
	}
	if v, err := serde.String.Deserialize("t", nil, nil); err != nil || v != "" {
		t.Fatalf("String(nil) = %q, %v", v, err)
	}
	if v, err := serde.Time.Deserialize("t", nil, nil); err != nil || !v.IsZero() {
		t.Fatalf("Time(nil) = %v, %v", v, err)
	}
	if b, err := serde.Bytes.Serialize(nil, "t", nil, nil); err != nil || b != nil {
		t.Fatalf("Bytes.Serialize(nil) = %#v, %v; want nil (a tombstone)", b, err)
	}
	if b, err := serde.String.Serialize(nil, "t", nil, ""); err != nil || b == nil {
		t.Fatalf("String.Serialize(\"\") = %#v, %v; want an empty non-nil slice, not a tombstone", b, err)
	}
	if b, err := serde.Bytes.Serialize(nil, "t", nil, []byte{}); err != nil || b == nil {
		t.Fatalf("Bytes.Serialize(empty) = %#v, %v; want an empty non-nil slice", b, err)
	}
}

func TestBadLengthsAreErrors(t *testing.T) {
	var se *serde.SizeError
	if _, err := serde.Int64.Deserialize("t", nil, []byte{1, 2}); !errors.As(err, &se) || se.Type != "int64" || se.Want != 8 || se.Got != 2 {
		t.Fatalf("Int64 of 2 bytes: %v", err)
	}
	if _, err := serde.Float32.Deserialize("t", nil, []byte{}); !errors.As(err, &se) {
		t.Fatalf("Float32 of 0 bytes: %v", err)
	}
	if _, err := serde.Bool.Deserialize("t", nil, []byte{7}); err == nil {
		t.Fatal("Bool accepted 0x07")
	}
}

func TestSerializeAppends(t *testing.T) {
	dst := []byte("prefix")
	b, err := serde.Int32.Serialize(dst, "t", nil, 1)
	if err != nil || !bytes.HasPrefix(b, []byte("prefix")) || len(b) != 10 {
		t.Fatalf("Serialize did not append: %x, %v", b, err)
	}
}

func TestFuncs(t *testing.T) {
	s := serde.Funcs[[]string]{
		Ser: func(dst []byte, _ string, _ []serde.Header, v []string) ([]byte, error) {
			for _, x := range v {
				dst = append(append(dst, x...), 0)
			}
			return dst, nil
		},
	}
	b, err := s.Serialize(nil, "t", nil, []string{"a", "b"})
	if err != nil || string(b) != "a\x00b\x00" {
		t.Fatalf("Funcs.Serialize = %q, %v", b, err)
	}
	if _, err := s.Deserialize("t", nil, b); err == nil {
		t.Fatal("Funcs without De deserialized")
	}
	_ = slices.Clone(b)
}

// FuzzDecoders feeds arbitrary bytes to every built-in decoder: they must
// return an error or a value that re-encodes to the same bytes, never panic.
func FuzzDecoders(f *testing.F) {
	for _, seed := range [][]byte{nil, {}, {0}, {1}, {0x80, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 8), {1, 2, 3}, bytes.Repeat([]byte{0x7f}, 9)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, serde.Int64, data)
		roundTrip(t, serde.Int32, data)
		roundTrip(t, serde.Int16, data)
		roundTrip(t, serde.Int8, data)
		roundTrip(t, serde.Uint64, data)
		roundTrip(t, serde.Uint16, data)
		roundTrip(t, serde.Bool, data)
		roundTrip(t, serde.String, data)
		roundTrip(t, serde.JavaInt64, data)
		roundTrip(t, serde.JavaInt32, data)
		roundTrip(t, serde.Duration, data)
		if v, err := serde.Float64.Deserialize("t", nil, data); err == nil && data != nil && !math.IsNaN(v) {
			if b := enc(t, serde.Float64, v); !bytes.Equal(b, data) {
				t.Fatalf("Float64: %x decodes to %v, re-encodes to %x", data, v, b)
			}
		}
		if v, err := serde.Time.Deserialize("t", nil, data); err == nil && data != nil {
			if b := enc(t, serde.Time, v); !bytes.Equal(b, data) {
				t.Fatalf("Time: %x decodes to %v, re-encodes to %x", data, v, b)
			}
		}
	})
}

func roundTrip[T any](t *testing.T, s serde.Serde[T], data []byte) {
	v, err := s.Deserialize("t", nil, data)
	if err != nil || data == nil {
		return
	}
	if b := enc(t, s, v); !bytes.Equal(b, data) {
		t.Fatalf("%T: %x decodes to %v, re-encodes to %x", s, data, v, b)
	}
}
