package proto_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	goproto "google.golang.org/protobuf/proto"

	"github.com/kstreams-go/kstreams/serde/proto"
	"github.com/kstreams-go/kstreams/serde/proto/internal/testpb"
)

// startRegistry starts an in-process schema registry (an httptest server
// speaking the Confluent REST API) and counts the schema-by-id requests it
// serves.
func startRegistry(t testing.TB) (*srfake.Registry, *sr.Client, *atomic.Int64) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var byID atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			byID.Add(1)
		}
		return false
	})
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl, &byID
}

func TestMessageIndex(t *testing.T) {
	for _, tc := range []struct {
		m    goproto.Message
		want []int
	}{
		{&testpb.Other{}, []int{0}},
		{&testpb.Record{}, []int{1}},
		{&testpb.Other_Nested{}, []int{0, 0}},
	} {
		if got := proto.MessageIndex(tc.m.ProtoReflect().Descriptor()); !slices.Equal(got, tc.want) {
			t.Errorf("%T: got %v, want %v", tc.m, got, tc.want)
		}
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	ctx := context.Background()
	s, err := proto.NewRegistry[*testpb.Record](ctx, cl, "records-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if ss, ok := reg.GetSchema("records-value", 1); !ok || ss.ID != s.ID() || ss.Type != sr.TypeProtobuf || ss.Schema.Schema != testpb.Schema {
		t.Fatalf("registry holds %+v, %v", ss, ok)
	}
	want := sampleRecord()
	b, err := s.Serialize([]byte("p"), "records", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := goproto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	// Header: magic, id 1, index [1] as a count of 1 and the index 1 (zig-zag varints).
	if string(b[:8]) != "p\x00\x00\x00\x00\x01\x02\x02" || string(b[8:]) != string(plain) {
		t.Fatalf("bad framing: % x", b)
	}
	got, err := s.Deserialize("records", nil, b[1:])
	if err != nil || !goproto.Equal(got, want) {
		t.Fatalf("got %v, %v", got, err)
	}
	if n := byID.Load(); n != 0 {
		t.Fatalf("decoding its own id made %d registry requests, want 0", n)
	}

	// The first message of a file uses the one-byte [0] shortcut.
	o, err := proto.NewRegistry[*testpb.Other](ctx, cl, "others-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := o.Serialize(nil, "t", nil, &testpb.Other{Note: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if string(ob[5:6]) != "\x00" || ob[6] != 0x0a {
		t.Fatalf("index [0] not shortcut: % x", ob)
	}
	if got, err := o.Deserialize("t", nil, ob); err != nil || got.GetNote() != "n" {
		t.Fatalf("other: %v, %v", got, err)
	}
	// An empty message is the header alone, and decodes to an empty message.
	eb, err := o.Serialize(nil, "t", nil, &testpb.Other{})
	if err != nil || len(eb) != 6 {
		t.Fatalf("empty message: % x, %v", eb, err)
	}
	if got, err := o.Deserialize("t", nil, eb); err != nil || got == nil {
		t.Fatalf("empty message: %v, %v", got, err)
	}

	n, err := proto.NewRegistry[*testpb.Other_Nested](ctx, cl, "nested-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := n.Serialize(nil, "t", nil, &testpb.Other_Nested{N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(nb[5:8]) != "\x04\x00\x00" || !slices.Equal(n.Index(), []int{0, 0}) {
		t.Fatalf("nested index: % x", nb)
	}
	if got, err := n.Deserialize("t", nil, nb); err != nil || got.GetN() != 3 {
		t.Fatalf("nested: %v, %v", got, err)
	}
	// Same schema id, another message of the file.
	if _, err := n.Deserialize("t", nil, ob); err == nil || !strings.Contains(err.Error(), "data holds message index [0] of schema id 1, but kstreams.serde.test.Other.Nested is [0 0]") {
		t.Fatalf("wrong message index: got %v", err)
	}
}

func TestRegistryOtherIDs(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	s, err := proto.NewRegistry[*testpb.Record](context.Background(), cl, "records-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	// Another version of the file, registered by another producer.
	v2, _, err := reg.RegisterSchema("records-value", sr.Schema{Schema: testpb.Schema + "\n// v2\n", Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := goproto.Marshal(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte{0, 0, 0, 0, byte(v2), 2, 2}, plain...)
	for range 3 {
		got, err := s.Deserialize("t", nil, data)
		if err != nil || !goproto.Equal(got, sampleRecord()) {
			t.Fatalf("got %v, %v", got, err)
		}
	}
	if n := byID.Load(); n != 1 {
		t.Fatalf("%d registry lookups for one new id, want 1 (cached)", n)
	}
	if _, err := s.Deserialize("t", nil, append([]byte{0, 0, 0, 0, 77, 0}, plain...)); err == nil || !strings.Contains(err.Error(), "schema id 77 is unknown to the registry") {
		t.Fatalf("unknown id: got %v", err)
	}
	avroID, _, err := reg.RegisterSchema("a-value", sr.Schema{Schema: `"string"`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deserialize("t", nil, []byte{0, 0, 0, 0, byte(avroID), 0}); err == nil || !strings.Contains(err.Error(), "is a AVRO schema, want PROTOBUF") {
		t.Fatalf("avro id: got %v", err)
	}
}

func TestRegistryBadHeader(t *testing.T) {
	_, cl, _ := startRegistry(t)
	s, err := proto.NewRegistry[*testpb.Record](context.Background(), cl, "records-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data []byte
		want string
		is   error
	}{
		{[]byte{0x08, 0x01}, "2 bytes, shorter than the 5-byte", sr.ErrBadHeader},
		{[]byte{0x08, 0, 0, 0, 1, 2, 2}, "magic byte is 0x08, want 0x00", sr.ErrBadHeader},
		{[]byte{0, 0, 0, 0, 1}, "decoding message index of schema id 1: EOF", nil},
		{[]byte{0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f}, "message index deeper than 64", nil},
		{[]byte{0, 0, 0, 0, 1, 0x01}, "decoding message index of schema id 1", sr.ErrBadHeader},
		{[]byte{0, 0, 0, 0, 1, 2, 2, 0x0f}, "proto: decoding kstreams.serde.test.Record: ", nil},
	} {
		_, err := s.Deserialize("t", nil, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("% x: got %v, want an error containing %q", tc.data, err, tc.want)
		}
	}
}

func TestRegistryNilAndSetup(t *testing.T) {
	_, cl, _ := startRegistry(t)
	ctx := context.Background()
	s, err := proto.NewRegistry[*testpb.Record](ctx, cl, "records-value", testpb.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Serialize(nil, "t", nil, nil); b != nil || err != nil {
		t.Fatalf("nil message: got %q, %v; want a Kafka null", b, err)
	}
	if v, err := s.Deserialize("t", nil, nil); v != nil || err != nil {
		t.Fatalf("nil data: got %v, %v", v, err)
	}
	again, err := proto.NewRegistry[*testpb.Record](ctx, cl, "records-value", testpb.Schema, proto.LookupOnly())
	if err != nil {
		t.Fatalf("LookupOnly: %v", err)
	}
	if again.ID() != s.ID() {
		t.Fatalf("LookupOnly: id %d, want %d", again.ID(), s.ID())
	}
	if _, err := proto.NewRegistry[*testpb.Record](ctx, cl, "missing-value", testpb.Schema, proto.LookupOnly()); err == nil {
		t.Fatal("LookupOnly of an unregistered schema: no error")
	}
	if _, err := proto.NewRegistry[*testpb.Record](ctx, cl, "refs-value", testpb.Schema,
		proto.References(sr.SchemaReference{Name: "dep.proto", Subject: "no-such-subject", Version: 1})); err == nil {
		t.Fatal("reference to a missing subject: no error")
	}
}
