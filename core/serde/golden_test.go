package serde_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// goldenCodec encodes a value written as text in the golden file, and
// decodes bytes back to that text.
type goldenCodec struct {
	ordered bool // encodings sort like values: the file lists values in increasing order
	enc     func(lit string) ([]byte, error)
	dec     func(b []byte) (string, error)
}

func codec[T any](s serde.Serde[T], ordered bool, parse func(string) (T, error), format func(T) string) goldenCodec {
	return goldenCodec{
		ordered: ordered,
		enc: func(lit string) ([]byte, error) {
			v, err := parse(lit)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", lit, err)
			}
			return s.Serialize(nil, "t", nil, v)
		},
		dec: func(b []byte) (string, error) {
			v, err := s.Deserialize("t", nil, b)
			if err != nil {
				return "", err
			}
			return format(v), nil
		},
	}
}

func parseInt[T ~int8 | ~int16 | ~int32 | ~int64 | ~int](bits int) func(string) (T, error) {
	return func(s string) (T, error) {
		n, err := strconv.ParseInt(s, 10, bits)
		return T(n), err
	}
}

func parseUint[T ~uint8 | ~uint16 | ~uint32 | ~uint64](bits int) func(string) (T, error) {
	return func(s string) (T, error) {
		n, err := strconv.ParseUint(s, 10, bits)
		return T(n), err
	}
}

func formatInt[T ~int8 | ~int16 | ~int32 | ~int64 | ~int](v T) string {
	return strconv.FormatInt(int64(v), 10)
}
func formatUint[T ~uint8 | ~uint16 | ~uint32 | ~uint64](v T) string {
	return strconv.FormatUint(uint64(v), 10)
}

func float32Codec(s serde.Serde[float32], ordered bool) goldenCodec {
	return codec(s, ordered,
		func(s string) (float32, error) { f, err := strconv.ParseFloat(s, 32); return float32(f), err },
		func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) })
}

func float64Codec(s serde.Serde[float64], ordered bool) goldenCodec {
	return codec(s, ordered,
		func(s string) (float64, error) { return strconv.ParseFloat(s, 64) },
		func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) })
}

func timeCodec(s serde.Serde[time.Time], ordered bool) goldenCodec {
	return codec(s, ordered,
		func(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) },
		func(v time.Time) string { return v.Format(time.RFC3339Nano) })
}

// storeCodecs are the serdes of testdata/encodings.golden, by name: each
// line must hold for every serde listed under its name. These are the bytes
// stores write (serde.StoreForm): the Ordered* serdes for the numbers, Time
// and Duration.
var storeCodecs = map[string][]goldenCodec{
	"Int8":      {codec(serde.StoreForm(serde.Int8), true, parseInt[int8](8), formatInt[int8]), codec(serde.OrderedInt8, true, parseInt[int8](8), formatInt[int8])},
	"Int16":     {codec(serde.StoreForm(serde.Int16), true, parseInt[int16](16), formatInt[int16]), codec(serde.OrderedInt16, true, parseInt[int16](16), formatInt[int16])},
	"Int32":     {codec(serde.StoreForm(serde.Int32), true, parseInt[int32](32), formatInt[int32]), codec(serde.OrderedInt32, true, parseInt[int32](32), formatInt[int32])},
	"Int64":     {codec(serde.StoreForm(serde.Int64), true, parseInt[int64](64), formatInt[int64]), codec(serde.OrderedInt64, true, parseInt[int64](64), formatInt[int64])},
	"Int":       {codec(serde.StoreForm(serde.Int), true, parseInt[int](64), formatInt[int]), codec(serde.OrderedInt, true, parseInt[int](64), formatInt[int])},
	"Uint8":     {codec(serde.Uint8, true, parseUint[uint8](8), formatUint[uint8]), codec(serde.StoreForm(serde.Uint8), true, parseUint[uint8](8), formatUint[uint8])},
	"Uint16":    {codec(serde.Uint16, true, parseUint[uint16](16), formatUint[uint16]), codec(serde.StoreForm(serde.Uint16), true, parseUint[uint16](16), formatUint[uint16])},
	"Uint32":    {codec(serde.Uint32, true, parseUint[uint32](32), formatUint[uint32]), codec(serde.StoreForm(serde.Uint32), true, parseUint[uint32](32), formatUint[uint32])},
	"Uint64":    {codec(serde.Uint64, true, parseUint[uint64](64), formatUint[uint64]), codec(serde.StoreForm(serde.Uint64), true, parseUint[uint64](64), formatUint[uint64])},
	"JavaInt32": {codec(serde.JavaInt32, false, parseInt[int32](32), formatInt[int32]), codec(serde.StoreForm(serde.JavaInt32), false, parseInt[int32](32), formatInt[int32])},
	"JavaInt64": {codec(serde.JavaInt64, false, parseInt[int64](64), formatInt[int64]), codec(serde.StoreForm(serde.JavaInt64), false, parseInt[int64](64), formatInt[int64])},
	"Float32":   {float32Codec(serde.StoreForm(serde.Float32), true), float32Codec(serde.OrderedFloat32, true)},
	"Float64":   {float64Codec(serde.StoreForm(serde.Float64), true), float64Codec(serde.OrderedFloat64, true)},
	"Bool":      {codec(serde.Bool, true, strconv.ParseBool, strconv.FormatBool), codec(serde.StoreForm(serde.Bool), true, strconv.ParseBool, strconv.FormatBool)},
	"String":    {codec(serde.String, true, strconv.Unquote, strconv.Quote), codec(serde.StoreForm(serde.String), true, strconv.Unquote, strconv.Quote)},
	"Duration":  {codec(serde.StoreForm(serde.Duration), true, time.ParseDuration, time.Duration.String), codec(serde.OrderedDuration, true, time.ParseDuration, time.Duration.String)},
	"Time":      {timeCodec(serde.StoreForm(serde.Time), true), timeCodec(serde.OrderedTime, true)},
}

// kafkaCodecs are the serdes of testdata/kafka.golden, by name: the topic
// forms, Kafka's wire format.
var kafkaCodecs = map[string][]goldenCodec{
	"Int8":     {codec(serde.Int8, false, parseInt[int8](8), formatInt[int8])},
	"Int16":    {codec(serde.Int16, false, parseInt[int16](16), formatInt[int16])},
	"Int32":    {codec(serde.Int32, false, parseInt[int32](32), formatInt[int32]), codec(serde.JavaInt32, false, parseInt[int32](32), formatInt[int32])},
	"Int64":    {codec(serde.Int64, false, parseInt[int64](64), formatInt[int64]), codec(serde.JavaInt64, false, parseInt[int64](64), formatInt[int64])},
	"Int":      {codec(serde.Int, false, parseInt[int](64), formatInt[int])},
	"Float32":  {float32Codec(serde.Float32, false)},
	"Float64":  {float64Codec(serde.Float64, false)},
	"Duration": {codec(serde.Duration, false, time.ParseDuration, time.Duration.String)},
	"Time":     {timeCodec(serde.Time, false)},
}

// TestEncodingsGolden pins the bytes stores write for the built-in serdes
// (testdata/encodings.golden). Store keys and changelogs written by one
// version are read by the next: every version must decode these bytes to
// these values and encode the values to these bytes; and for the
// order-preserving serdes, the bytes of a serde's lines (listed by
// increasing value) must sort in that order.
func TestEncodingsGolden(t *testing.T) {
	checkGolden(t, "testdata/encodings.golden", storeCodecs)
}

// TestKafkaWireFormatGolden pins the bytes the built-in serdes write on
// topics (testdata/kafka.golden): Kafka's wire format, as Java's
// serializers write it.
func TestKafkaWireFormatGolden(t *testing.T) {
	checkGolden(t, "testdata/kafka.golden", kafkaCodecs)
}

func checkGolden(t *testing.T, file string, codecs map[string][]goldenCodec) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prev := map[string][]byte{}
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("line %d: %d fields, want 3 (serde value hex): %q", n, len(fields), line)
		}
		name, lit, hx := fields[0], fields[1], fields[2]
		cs, ok := codecs[name]
		if !ok {
			t.Fatalf("line %d: unknown serde %q", n, name)
		}
		if hx == "-" {
			hx = ""
		}
		want, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		seen[name]++
		for i, c := range cs {
			got, err := c.enc(lit)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("line %d: %s (serde %d of the name) encodes %s to %x, %v; the pinned bytes are %x", n, name, i, lit, got, err, want)
			}
			dec, err := c.dec(want)
			if err != nil || dec != lit {
				t.Errorf("line %d: %s (serde %d of the name) decodes %x to %s, %v; want %s", n, name, i, want, dec, err, lit)
			}
		}
		if p, ok := prev[name]; ok && cs[0].ordered && bytes.Compare(p, want) >= 0 {
			t.Errorf("line %d: %s: %x does not sort after the previous line's %x", n, name, want, p)
		}
		prev[name] = want
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for name := range codecs {
		if seen[name] < 2 {
			t.Errorf("%s: serde %s has %d golden lines, want at least 2", file, name, seen[name])
		}
	}
}
