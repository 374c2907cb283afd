package msgpack_test

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/serde/msgpack"
)

func TestRoundTrip(t *testing.T) {
	for name, s := range map[string]*msgpack.Serde[Record]{
		"map":    msgpack.New[Record](),
		"array":  msgpack.New[Record](msgpack.ArrayStructs()),
		"strict": msgpack.New[Record](msgpack.Strict()),
	} {
		want := sampleRecord()
		b, err := s.Serialize([]byte("p"), "t", nil, want)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b[0] != 'p' {
			t.Fatalf("%s: prefix overwritten: %q", name, b)
		}
		got, err := s.Deserialize("t", nil, b[1:])
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
}

func TestEncodingForms(t *testing.T) {
	m, err := msgpack.New[Record]().Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	a, err := msgpack.New[Record](msgpack.ArrayStructs()).Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	if m[0] != 0x8a { // fixmap of 10 entries
		t.Errorf("map form starts with 0x%02x, want 0x8a", m[0])
	}
	if a[0] != 0x9a { // fixarray of 10 elements
		t.Errorf("array form starts with 0x%02x, want 0x9a", a[0])
	}
	if len(a) >= len(m) {
		t.Errorf("array form (%d bytes) not smaller than map form (%d bytes)", len(a), len(m))
	}
	if !bytes.Contains(m, []byte("\xa5email")) {
		t.Errorf("map form lacks the field name: %q", m)
	}
	// Compact integers: Age 36 is a positive fixint right after its key.
	if !bytes.Contains(m, []byte("\xa3age\x24")) {
		t.Errorf("age not compact: %q", m)
	}
	// Either form decodes with either option.
	got, err := msgpack.New[Record]().Deserialize("t", nil, a)
	if err != nil || !reflect.DeepEqual(got, sampleRecord()) {
		t.Fatalf("array form with default serde: %+v, %v", got, err)
	}
}

func TestNilAndTombstones(t *testing.T) {
	s := msgpack.New[*Record]()
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
		t.Fatal("empty data: no error")
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
	if v, err := msgpack.New[Record]().Deserialize("t", nil, nil); err != nil || !reflect.DeepEqual(v, Record{}) {
		t.Fatalf("nil data into struct: %+v, %v", v, err)
	}
}

func TestStrict(t *testing.T) {
	type wider struct {
		ID       int64  `msgpack:"id"`
		Nickname string `msgpack:"nickname"`
	}
	b, err := msgpack.New[wider]().Serialize(nil, "t", nil, wider{ID: 7, Nickname: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := msgpack.New[Record]().Deserialize("t", nil, b)
	if err != nil || r.ID != 7 {
		t.Fatalf("default: %+v, %v; want the unknown field skipped", r, err)
	}
	if _, err := msgpack.New[Record](msgpack.Strict()).Deserialize("t", nil, b); err == nil || !strings.Contains(err.Error(), "nickname") {
		t.Fatalf("strict: got %v, want an error naming the field", err)
	}
}

func TestBadInput(t *testing.T) {
	s := msgpack.New[Record]()
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)-3], "truncated"},
		{"trailing", append(append([]byte{}, good...), 0x01), "1 bytes left after the value"},
		{"reserved byte", []byte{0xc1}, "byte 0xc1 at offset 0 is not a MessagePack type"},
		{"wrong type", []byte{0xa3, 'a', 'b', 'c'}, "msgpack: decoding msgpack_test.Record: "},
		// An array32 header claiming 4 billion elements: must fail before
		// the decoder sizes a slice from it.
		{"huge array", []byte{0x81, 0xa4, 't', 'a', 'g', 's', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, "declares 4294967295 values but only 1 bytes follow"},
		{"huge map", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, "declares 4294967294 values"},
		{"huge string", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, "truncated"},
	} {
		_, err := s.Deserialize("t", nil, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}

	// The upstream decoder sizes non-string slices from the length prefix
	// without a limit; the validation pass must stop that.
	type ints struct {
		V []int64 `msgpack:"v"`
	}
	huge := []byte{0x81, 0xa1, 'v', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01}
	if _, err := msgpack.New[ints]().Deserialize("t", nil, huge); err == nil {
		t.Fatal("huge []int64: no error")
	}

	deep := bytes.Repeat([]byte{0x91}, msgpack.MaxDepth+1)
	deep = append(deep, 0xc0)
	if _, err := msgpack.New[any]().Deserialize("t", nil, deep); err == nil || !strings.Contains(err.Error(), "nesting deeper than") {
		t.Fatalf("deep nesting: got %v", err)
	}
	ok := append(bytes.Repeat([]byte{0x91}, 100), 0xc0)
	if _, err := msgpack.New[any]().Deserialize("t", nil, ok); err != nil {
		t.Fatalf("nesting of 100: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := msgpack.New[Record](msgpack.Strict())
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
