package proto_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	goproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kstreams-go/kstreams/serde/proto"
	"github.com/kstreams-go/kstreams/serde/proto/internal/testpb"
)

func TestRoundTrip(t *testing.T) {
	s := proto.New[*testpb.Record]()
	want := sampleRecord()
	b, err := s.Serialize([]byte("p"), "t", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := goproto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 'p' || !bytes.Equal(b[1:], plain) {
		t.Fatalf("got % x, want p + % x", b, plain)
	}
	got, err := s.Deserialize("t", nil, b[1:])
	if err != nil || !goproto.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if s.Descriptor().FullName() != "kstreams.serde.test.Record" {
		t.Fatalf("Descriptor() = %s", s.Descriptor().FullName())
	}
}

func TestWellKnownType(t *testing.T) {
	s := proto.New[*wrapperspb.StringValue]()
	b, err := s.Serialize(nil, "t", nil, wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize("t", nil, b)
	if err != nil || got.GetValue() != "hello" {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestNilAndTombstones(t *testing.T) {
	s := proto.New[*testpb.Record]()
	if b, err := s.Serialize(nil, "t", nil, nil); b != nil || err != nil {
		t.Fatalf("nil message: got %q, %v; want nil, nil", b, err)
	}
	if b, err := s.Serialize([]byte("x"), "t", nil, nil); string(b) != "x" || err != nil {
		t.Fatalf("nil message after prefix: got %q, %v", b, err)
	}
	// An empty message is zero bytes, but not a Kafka null.
	b, err := s.Serialize(nil, "t", nil, &testpb.Record{})
	if err != nil || b == nil || len(b) != 0 {
		t.Fatalf("empty message: got %#v, %v; want a non-nil empty slice", b, err)
	}
	if v, err := s.Deserialize("t", nil, nil); v != nil || err != nil {
		t.Fatalf("nil data: got %v, %v; want a nil message", v, err)
	}
	v, err := s.Deserialize("t", nil, []byte{})
	if err != nil || v == nil || !goproto.Equal(v, &testpb.Record{}) {
		t.Fatalf("empty data: got %v, %v; want an empty message", v, err)
	}
}

func TestBadInput(t *testing.T) {
	s := proto.New[*testpb.Record]()
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated":         good[:len(good)-3],
		"bad wire type":     {0x0f},
		"field number zero": {0x00, 0x01},
		"overlong length":   {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"invalid utf8":      {0x12, 0x01, 0xff},
	} {
		_, err := s.Deserialize("t", nil, data)
		if err == nil || !strings.HasPrefix(err.Error(), "proto: decoding kstreams.serde.test.Record: ") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	s := proto.New[*testpb.Other](proto.Deterministic())
	m := &testpb.Other{Counters: map[string]int64{}}
	for _, k := range strings.Fields("q w e r t y u i o p a s d f g h j k l z x c v b n m") {
		m.Counters[k] = 1
	}
	first, err := s.Serialize(nil, "t", nil, m)
	if err != nil {
		t.Fatal(err)
	}
	// The first map entry is "a": field 2, length 5, key field "a".
	if !bytes.HasPrefix(first, []byte{0x12, 0x05, 0x0a, 0x01, 'a'}) {
		t.Fatalf("entries not sorted: % x", first[:8])
	}
	for range 20 {
		if b, err := s.Serialize(nil, "t", nil, m); err != nil || !bytes.Equal(b, first) {
			t.Fatalf("encoding changed (%v)", err)
		}
	}
}

func TestNewPanicsForInterface(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "must be a generated message type") {
			t.Fatalf("recovered %v", r)
		}
	}()
	proto.New[goproto.Message]()
}

func TestConcurrentUse(t *testing.T) {
	s := proto.New[*testpb.Record]()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for i := range 200 {
				r := sampleRecord()
				r.Id = int64(g*1000 + i)
				b, err := s.Serialize(buf[:0], "t", nil, r)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Deserialize("t", nil, b)
				if err != nil || !goproto.Equal(got, r) {
					t.Errorf("got %v, %v; want %v", got, err, r)
					return
				}
			}
		})
	}
	wg.Wait()
}
