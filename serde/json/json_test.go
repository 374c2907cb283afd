package json_test

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/serde/json"
)

func TestRoundTrip(t *testing.T) {
	s := json.New[Record]()
	want := sampleRecord()
	b, err := s.Serialize(nil, "t", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"id":1234567890,"name":"Ada Lovelace"`)) {
		t.Fatalf("unexpected encoding %s", b)
	}
	got, err := s.Deserialize("t", nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAppendsToDst(t *testing.T) {
	s := json.New[int]()
	dst := []byte("prefix:")
	b, err := s.Serialize(dst, "t", nil, 42)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "prefix:42" {
		t.Fatalf("got %q", b)
	}
}

func TestNilAndTombstones(t *testing.T) {
	s := json.New[*Record]()
	b, err := s.Serialize(nil, "t", nil, nil)
	if err != nil || b != nil {
		t.Fatalf("nil pointer: got %q, %v; want nil, nil", b, err)
	}
	b, err = s.Serialize(make([]byte, 0, 8), "t", nil, nil)
	if err != nil || b != nil {
		t.Fatalf("nil pointer, empty dst with capacity: got %q, %v; want nil, nil", b, err)
	}
	b, err = s.Serialize([]byte("x"), "t", nil, nil)
	if err != nil || string(b) != "x" {
		t.Fatalf("nil pointer after prefix: got %q, %v; want \"x\"", b, err)
	}
	got, err := s.Deserialize("t", nil, nil)
	if err != nil || got != nil {
		t.Fatalf("nil data: got %v, %v; want nil, nil", got, err)
	}
	r := sampleRecord()
	b, err = s.Serialize(nil, "t", nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Deserialize("t", nil, b)
	if err != nil || got == nil || !reflect.DeepEqual(*got, r) {
		t.Fatalf("pointer round trip: got %+v, %v", got, err)
	}

	var zero Record
	v, err := json.New[Record]().Deserialize("t", nil, nil)
	if err != nil || !reflect.DeepEqual(v, zero) {
		t.Fatalf("nil data into struct: got %+v, %v; want zero value", v, err)
	}

	// Interface types: a nil interface is a tombstone too.
	si := json.New[any]()
	if b, err := si.Serialize(nil, "t", nil, nil); err != nil || b != nil {
		t.Fatalf("nil interface: got %q, %v", b, err)
	}
}

func TestBadInput(t *testing.T) {
	s := json.New[Record]()
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":          {},
		"truncated":      good[:len(good)/2],
		"trailing":       append(append([]byte{}, good...), '}'),
		"wrong type":     []byte(`{"id":"not a number"}`),
		"not json":       {0xff, 0x00, 0x13},
		"invalid utf8":   []byte("{\"name\":\"\xff\"}"),
		"duplicate name": []byte(`{"id":1,"id":2}`),
	} {
		if _, err := s.Deserialize("t", nil, data); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "json: decoding json_test.Record: ") {
			t.Errorf("%s: error lacks context: %v", name, err)
		}
	}
}

func TestStrict(t *testing.T) {
	data := []byte(`{"id":7,"nickname":"ada"}`)
	r, err := json.New[Record]().Deserialize("t", nil, data)
	if err != nil || r.ID != 7 {
		t.Fatalf("default: got %+v, %v; want unknown member ignored", r, err)
	}
	_, err = json.New[Record](json.Strict()).Deserialize("t", nil, data)
	if err == nil || !strings.Contains(err.Error(), "nickname") {
		t.Fatalf("strict: got %v; want an error naming the unknown member", err)
	}
}

func TestDeterministic(t *testing.T) {
	s := json.New[map[string]int](json.Deterministic())
	m := map[string]int{}
	for _, k := range strings.Split("q w e r t y u i o p a s d f g h j k l z x c v b n m", " ") {
		m[k] = len(k)
	}
	first, err := s.Serialize(nil, "t", nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(first, []byte(`{"a":1,"b":1,"c":1`)) {
		t.Fatalf("keys not sorted: %s", first)
	}
	for range 20 {
		b, err := s.Serialize(nil, "t", nil, m)
		if err != nil || !bytes.Equal(b, first) {
			t.Fatalf("encoding changed: %s vs %s (%v)", b, first, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	s := json.New[Record](json.Strict())
	want := sampleRecord()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for i := range 200 {
				r := want
				r.ID = int64(g*1000 + i)
				b, err := s.Serialize(buf[:0], "t", nil, r)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Deserialize("t", nil, b)
				if err != nil || !reflect.DeepEqual(got, r) {
					t.Errorf("got %+v, %v; want %+v", got, err, r)
					return
				}
			}
		})
	}
	wg.Wait()
}
