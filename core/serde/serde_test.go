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

// TestOrderPreserving: the Ordered* serdes, and what stores write for the
// built-in serdes (StoreForm), sort like the values and round-trip.
func TestOrderPreserving(t *testing.T) {
	int64s := []int64{math.MinInt64, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64}
	checkOrdered(t, serde.OrderedInt64, int64s)
	checkOrdered(t, serde.StoreForm(serde.Int64), int64s)
	int32s := []int32{math.MinInt32, -70000, -1, 0, 1, 70000, math.MaxInt32}
	checkOrdered(t, serde.OrderedInt32, int32s)
	checkOrdered(t, serde.StoreForm(serde.Int32), int32s)
	int16s := []int16{math.MinInt16, -1, 0, 1, math.MaxInt16}
	checkOrdered(t, serde.OrderedInt16, int16s)
	checkOrdered(t, serde.StoreForm(serde.Int16), int16s)
	int8s := []int8{math.MinInt8, -1, 0, 1, math.MaxInt8}
	checkOrdered(t, serde.OrderedInt8, int8s)
	checkOrdered(t, serde.StoreForm(serde.Int8), int8s)
	ints := []int{math.MinInt, -1, 0, 1, math.MaxInt}
	checkOrdered(t, serde.OrderedInt, ints)
	checkOrdered(t, serde.StoreForm(serde.Int), ints)
	checkOrdered(t, serde.Uint64, []uint64{0, 1, 255, 256, math.MaxUint64})
	checkOrdered(t, serde.Uint32, []uint32{0, 1, math.MaxUint32})
	checkOrdered(t, serde.Uint16, []uint16{0, 1, math.MaxUint16})
	checkOrdered(t, serde.Uint8, []uint8{0, 1, math.MaxUint8})
	float64s := []float64{math.Inf(-1), -math.MaxFloat64, -1.5, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, 1.5, math.MaxFloat64, math.Inf(1)}
	checkOrdered(t, serde.OrderedFloat64, float64s)
	checkOrdered(t, serde.StoreForm(serde.Float64), float64s)
	float32s := []float32{float32(math.Inf(-1)), -3.5, -1, 0, 0.25, 1, float32(math.Inf(1))}
	checkOrdered(t, serde.OrderedFloat32, float32s)
	checkOrdered(t, serde.StoreForm(serde.Float32), float32s)
	checkOrdered(t, serde.Bool, []bool{false, true})
	durations := []time.Duration{-time.Hour, -1, 0, time.Nanosecond, time.Hour}
	checkOrdered(t, serde.OrderedDuration, durations)
	checkOrdered(t, serde.StoreForm(serde.Duration), durations)
	checkOrdered(t, serde.String, []string{"", "a", "ab", "b", "\xff"})
}

// TestKafkaWireFormat: on topics, the built-in numbers are what Java's
// serializers write, negative numbers included, and round-trip.
func TestKafkaWireFormat(t *testing.T) {
	ff := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"Int64(-1)", enc(t, serde.Int64, -1), ff(8)},
		{"Int64(1)", enc(t, serde.Int64, 1), []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{"Int64(-2^40)", enc(t, serde.Int64, -1<<40), []byte{0xff, 0xff, 0xff, 0, 0, 0, 0, 0}},
		{"Int(-1)", enc(t, serde.Int, -1), ff(8)},
		{"Int32(-1)", enc(t, serde.Int32, -1), ff(4)},
		{"Int32(258)", enc(t, serde.Int32, 258), []byte{0, 0, 1, 2}},
		{"Int16(-2)", enc(t, serde.Int16, -2), []byte{0xff, 0xfe}},
		{"Int8(-1)", enc(t, serde.Int8, -1), []byte{0xff}},
		{"Float64(-2.5)", enc(t, serde.Float64, -2.5), []byte{0xc0, 0x04, 0, 0, 0, 0, 0, 0}},
		{"Float32(1)", enc(t, serde.Float32, 1), []byte{0x3f, 0x80, 0, 0}},
		{"Duration(-1ns)", enc(t, serde.Duration, -1), ff(8)},
		{"Time(1969-12-31T23:59:59.999999999Z)", enc(t, serde.Time, time.Unix(0, -1)), ff(8)},
		{"JavaInt64(-1)", enc(t, serde.JavaInt64, -1), ff(8)},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, want %x", c.name, c.got, c.want)
		}
	}
	roundTrips(t, serde.Int64, math.MinInt64, -1<<40, -5, -1, 0, 5, math.MaxInt64)
	roundTrips(t, serde.Int, math.MinInt, -1, 0, math.MaxInt)
	roundTrips(t, serde.Int32, math.MinInt32, -7, -1, 0, 1, math.MaxInt32)
	roundTrips(t, serde.Int16, math.MinInt16, -1, 0, math.MaxInt16)
	roundTrips(t, serde.Int8, math.MinInt8, -1, 0, math.MaxInt8)
	roundTrips(t, serde.Float64, math.Inf(-1), -math.MaxFloat64, -1.5, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, math.Inf(1))
	roundTrips(t, serde.Float32, float32(math.Inf(-1)), -3.5, 0, 0.25, float32(math.Inf(1)))
	roundTrips(t, serde.Duration, -time.Hour, -1, 0, time.Hour)
	roundTrips(t, serde.JavaInt64, math.MinInt64, -5, 0, 5, math.MaxInt64)
	roundTrips(t, serde.JavaInt32, math.MinInt32, -7, 0, math.MaxInt32)
	if b := enc(t, serde.Float64, math.NaN()); !math.IsNaN(must(serde.Float64.Deserialize("t", nil, b))) {
		t.Errorf("Float64 NaN (%x) does not decode to NaN", b)
	}
}

func roundTrips[T comparable](t *testing.T, s serde.Serde[T], vs ...T) {
	t.Helper()
	for _, v := range vs {
		got, err := s.Deserialize("t", nil, enc(t, s, v))
		if err != nil || got != v {
			t.Errorf("%T: round trip of %v = %v, %v", s, v, got, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStoreForm: stores write the built-in numbers, Time and Duration in
// their order-preserving form, and the other serdes (JavaInt64 included,
// whose stores hold two's complement) as they are.
func TestStoreForm(t *testing.T) {
	if got, want := enc(t, serde.StoreForm(serde.Int64), -1), enc(t, serde.OrderedInt64, -1); !bytes.Equal(got, want) {
		t.Errorf("StoreForm(Int64) writes -1 as %x, OrderedInt64 as %x", got, want)
	}
	if got := enc(t, serde.StoreForm(serde.JavaInt64), -1); !bytes.Equal(got, bytes.Repeat([]byte{0xff}, 8)) {
		t.Errorf("StoreForm(JavaInt64) writes -1 as %x, want two's complement", got)
	}
	ts := time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)
	if got, want := enc(t, serde.StoreForm(serde.Time), ts), enc(t, serde.OrderedTime, ts); !bytes.Equal(got, want) {
		t.Errorf("StoreForm(Time) writes %v as %x, OrderedTime as %x", ts, got, want)
	}
	if serde.StoreForm(serde.OrderedInt64) != serde.OrderedInt64 || serde.StoreForm(serde.OrderedTime) != serde.OrderedTime {
		t.Error("StoreForm of an order-preserving serde is not itself")
	}
	custom := serde.Funcs[int64]{Ser: func(dst []byte, _ string, _ []serde.Header, v int64) ([]byte, error) {
		return append(dst, byte(v)), nil
	}}
	if got := enc(t, serde.StoreForm[int64](custom), 7); !bytes.Equal(got, []byte{7}) {
		t.Errorf("StoreForm changed a serde of the user: wrote %x", got)
	}
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
	for _, s := range []serde.Serde[time.Time]{serde.Time, serde.OrderedTime} {
		var prev []byte
		for _, v := range ts {
			b := enc(t, s, v)
			got, err := s.Deserialize("t", nil, b)
			if err != nil || !got.Equal(v) {
				t.Fatalf("round trip of %v: %v, %v", v, got, err)
			}
			if s == serde.OrderedTime && prev != nil && bytes.Compare(prev, b) >= 0 {
				t.Fatalf("OrderedTime encodings out of order at %v", v)
			}
			prev = b
		}
		if _, err := s.Serialize(nil, "t", nil, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
			t.Fatal("year 3000 encoded without error")
		}
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
		roundTrip(t, serde.Int, data)
		roundTrip(t, serde.OrderedInt64, data)
		roundTrip(t, serde.OrderedInt32, data)
		roundTrip(t, serde.OrderedInt16, data)
		roundTrip(t, serde.OrderedInt8, data)
		roundTrip(t, serde.OrderedInt, data)
		roundTrip(t, serde.OrderedDuration, data)
		for _, s := range []serde.Serde[float64]{serde.Float64, serde.OrderedFloat64} {
			if v, err := s.Deserialize("t", nil, data); err == nil && data != nil && !math.IsNaN(v) {
				if b := enc(t, s, v); !bytes.Equal(b, data) {
					t.Fatalf("%T: %x decodes to %v, re-encodes to %x", s, data, v, b)
				}
			}
		}
		for _, s := range []serde.Serde[time.Time]{serde.Time, serde.OrderedTime} {
			if v, err := s.Deserialize("t", nil, data); err == nil && data != nil {
				if b := enc(t, s, v); !bytes.Equal(b, data) {
					t.Fatalf("%T: %x decodes to %v, re-encodes to %x", s, data, v, b)
				}
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
