package avro_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kstreams-go/kstreams/serde/avro"
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

func TestRegistryRoundTrip(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	ctx := context.Background()
	if _, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatal(err)
	}
	s, err := avro.NewRegistry[Record](ctx, cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 2 {
		t.Fatalf("ID() = %d, want 2", s.ID())
	}
	if ss, ok := reg.GetSchema("records-value", 1); !ok || ss.ID != 2 || ss.Type != sr.TypeAvro {
		t.Fatalf("registry holds %+v, %v", ss, ok)
	}
	want := sampleRecord()
	b, err := s.Serialize([]byte("p"), "records", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := mustNew[Record](t, recordSchema).Serialize(nil, "records", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "p\x00\x00\x00\x00\x02" || string(b[6:]) != string(plain) {
		t.Fatalf("bad framing: % x", b)
	}
	got, err := s.Deserialize("records", nil, b[1:])
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if n := byID.Load(); n != 0 {
		t.Fatalf("decoding its own id made %d registry requests, want 0", n)
	}
	again, err := avro.NewRegistry[Record](ctx, cl, "records-value", recordSchema, avro.LookupOnly())
	if err != nil {
		t.Fatalf("LookupOnly: %v", err)
	}
	if again.ID() != s.ID() {
		t.Fatalf("LookupOnly: id %d, want %d", again.ID(), s.ID())
	}
}

// Version 2 of Record drops email and adds nickname with a default.
type RecordV2 struct {
	ID       int64  `avro:"id"`
	Name     string `avro:"name"`
	Nickname string `avro:"nickname"`
}

const recordV2Schema = `{
  "type": "record", "name": "Record", "namespace": "kstreams.bench",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "nickname", "type": "string", "default": "none"}
  ]
}`

func TestRegistrySchemaEvolution(t *testing.T) {
	_, cl, byID := startRegistry(t)
	ctx := context.Background()
	v1, err := avro.NewRegistry[Record](ctx, cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := avro.NewRegistry[RecordV2](ctx, cl, "records-value", recordV2Schema)
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID() == v2.ID() {
		t.Fatalf("both versions got id %d", v1.ID())
	}

	// Old data, new reader: email is skipped, nickname takes its default.
	old, err := v1.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := v2.Deserialize("t", nil, old)
		if err != nil {
			t.Fatal(err)
		}
		if want := (RecordV2{ID: 1234567890, Name: "Ada Lovelace", Nickname: "none"}); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if n := byID.Load(); n != 1 {
		t.Fatalf("%d registry lookups for one new id, want 1 (cached)", n)
	}

	// New data, old reader: email has no default, so it cannot be read.
	newer, err := v2.Serialize(nil, "t", nil, RecordV2{ID: 1, Name: "x", Nickname: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Deserialize("t", nil, newer); err == nil || !strings.Contains(err.Error(), "cannot be read as the serde's schema") {
		t.Fatalf("incompatible writer: got %v", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	reg, cl, _ := startRegistry(t)
	s, err := avro.NewRegistry[Record](context.Background(), cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data []byte
		want string
		is   error
	}{
		{good[5:], "magic byte is 0xa4, want 0x00", sr.ErrBadHeader},
		{good[:4], "4 bytes, shorter than the 5-byte schema-registry header", sr.ErrBadHeader},
		{append([]byte{0, 0, 0, 1, 0}, good[5:]...), "schema id 256 is unknown to the registry", nil},
		{good[:20], "avro: decoding avro_test.Record: ", nil},
	} {
		_, err := s.Deserialize("t", nil, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("% x: got %v, want an error containing %q", tc.data, err, tc.want)
		}
	}
	jsonID, _, err := reg.RegisterSchema("j-value", sr.Schema{Schema: `{}`, Type: sr.TypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deserialize("t", nil, []byte{0, 0, 0, 0, byte(jsonID), 2}); err == nil || !strings.Contains(err.Error(), "is a JSON schema, want AVRO") {
		t.Errorf("JSON schema id: got %v", err)
	}

	ctx := context.Background()
	if _, err := avro.NewRegistry[Record](ctx, cl, "missing-value", recordSchema, avro.LookupOnly()); err == nil {
		t.Error("LookupOnly of an unregistered schema: no error")
	}
	if _, err := avro.NewRegistry[Record](ctx, cl, "x-value", `{"type":"nope"}`); err == nil || !strings.Contains(err.Error(), "parsing schema") {
		t.Errorf("bad schema: got %v", err)
	}
}

func TestRegistryNil(t *testing.T) {
	_, cl, _ := startRegistry(t)
	s, err := avro.NewRegistry[*Record](context.Background(), cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Serialize(nil, "t", nil, nil); b != nil || err != nil {
		t.Fatalf("nil pointer: got %q, %v; want a Kafka null", b, err)
	}
	if v, err := s.Deserialize("t", nil, nil); v != nil || err != nil {
		t.Fatalf("nil data: got %v, %v", v, err)
	}
}
