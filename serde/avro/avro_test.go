package avro_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/serde/avro"
)

func mustNew[T any](t testing.TB, schema string, opts ...avro.Option) *avro.Serde[T] {
	t.Helper()
	s, err := avro.New[T](schema, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := mustNew[Record](t, recordSchema)
	want := sampleRecord()
	b, err := s.Serialize([]byte("p"), "t", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 'p' {
		t.Fatalf("prefix overwritten: %q", b)
	}
	// id 1234567890 as a zig-zag varint, then "Ada Lovelace" with its length.
	if string(b[1:6]) != "\xa4\x8b\xb0\x99\x09" || string(b[6:19]) != "\x18Ada Lovelace" {
		t.Fatalf("unexpected encoding % x", b)
	}
	got, err := s.Deserialize("t", nil, b[1:])
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestNilAndTombstones(t *testing.T) {
	s := mustNew[*Record](t, recordSchema)
	if b, err := s.Serialize(nil, "t", nil, nil); b != nil || err != nil {
		t.Fatalf("nil pointer: got %q, %v; want nil, nil", b, err)
	}
	if b, err := s.Serialize([]byte("x"), "t", nil, nil); string(b) != "x" || err != nil {
		t.Fatalf("nil pointer after prefix: got %q, %v", b, err)
	}
	if v, err := s.Deserialize("t", nil, nil); v != nil || err != nil {
		t.Fatalf("nil data: got %v, %v", v, err)
	}
	if _, err := s.Deserialize("t", nil, []byte{}); err == nil {
		t.Fatal("empty data for a record with fields: no error")
	}
	r := sampleRecord()
	b, err := s.Serialize(nil, "t", nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize("t", nil, b)
	if err != nil || got == nil || !reflect.DeepEqual(*got, r) {
		t.Fatalf("pointer round trip: %+v, %v", got, err)
	}
	v, err := mustNew[Record](t, recordSchema).Deserialize("t", nil, nil)
	if err != nil || !reflect.DeepEqual(v, Record{}) {
		t.Fatalf("nil data into struct: %+v, %v", v, err)
	}
}

func TestBadInput(t *testing.T) {
	s := mustNew[Record](t, recordSchema)
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		_, err := s.Deserialize("t", nil, good[:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(good))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated to %d bytes: %v does not wrap io.ErrUnexpectedEOF", n, err)
		}
	}
	if _, err := s.Deserialize("t", nil, append(append([]byte{}, good...), 0)); err == nil || !strings.Contains(err.Error(), "bytes left after the value") {
		t.Fatalf("trailing byte: got %v", err)
	}

	tagsSchema := `{"type":"record","name":"T","fields":[{"name":"tags","type":{"type":"array","items":"null"}}]}`
	type nulls struct {
		Tags []any `avro:"tags"`
	}
	// An array block claiming 2^40 elements of zero bytes each.
	huge := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0}
	if _, err := mustNew[nulls](t, tagsSchema).Deserialize("t", nil, huge); err == nil || !strings.Contains(err.Error(), "MaxSliceAllocSize") {
		t.Fatalf("huge array: got %v", err)
	}
	// A string claiming 2 MiB.
	str := `{"type":"record","name":"S","fields":[{"name":"s","type":"string"}]}`
	type strRec struct {
		S string `avro:"s"`
	}
	long := []byte{0x80, 0x80, 0x80, 0x02, 'x'}
	if _, err := mustNew[strRec](t, str).Deserialize("t", nil, long); err == nil || !strings.Contains(err.Error(), "MaxByteSliceSize") {
		t.Fatalf("huge string: got %v", err)
	}
	if _, err := mustNew[strRec](t, str, avro.MaxByteSliceSize(4<<20)).Deserialize("t", nil, long); err == nil || strings.Contains(err.Error(), "MaxByteSliceSize") {
		t.Fatalf("raised limit: got %v, want a truncation error", err)
	}
}

func TestBadSchema(t *testing.T) {
	if _, err := avro.New[Record](`{"type":"record","name":"R","fields":[{"name":"x","type":"nope"}]}`); err == nil || !strings.HasPrefix(err.Error(), "avro: parsing schema: ") {
		t.Fatalf("got %v", err)
	}
	// A schema whose fields T lacks fails at encode time, with context.
	s := mustNew[struct{ A int }](t, `{"type":"record","name":"R","fields":[{"name":"missing","type":"long"}]}`)
	if _, err := s.Serialize(nil, "t", nil, struct{ A int }{1}); err == nil || !strings.HasPrefix(err.Error(), "avro: encoding ") {
		t.Fatalf("got %v", err)
	}
}

// TestSchemasIndependent checks that two serdes with different versions of a
// named record do not see each other's definition (hamba's global schema
// cache is keyed by name).
func TestSchemasIndependent(t *testing.T) {
	type v1 struct {
		A int64 `avro:"a"`
	}
	type v2 struct {
		A int64  `avro:"a"`
		B string `avro:"b"`
	}
	s1 := mustNew[v1](t, `{"type":"record","name":"Same","fields":[{"name":"a","type":"long"}]}`)
	s2 := mustNew[v2](t, `{"type":"record","name":"Same","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}`)
	b1, err := s1.Serialize(nil, "t", nil, v1{A: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s1.Deserialize("t", nil, b1); err != nil || got.A != 3 {
		t.Fatalf("v1: %+v, %v", got, err)
	}
	if _, err := s2.Deserialize("t", nil, b1); err == nil {
		t.Fatal("v1 data read with v2 schema without resolution: no error")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := mustNew[Record](t, recordSchema)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for i := range 200 {
				r := sampleRecord()
				r.ID = int64(g*1000 + i)
				r.Tags = r.Tags[:i%4]
				b, err := s.Serialize(buf[:0], "t", nil, r)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Deserialize("t", nil, b)
				if err != nil || got.ID != r.ID || len(got.Tags) != len(r.Tags) {
					t.Errorf("got %+v, %v; want %+v", got, err, r)
					return
				}
			}
		})
	}
	wg.Wait()
}
