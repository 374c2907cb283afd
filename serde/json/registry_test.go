package json_test

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

	"github.com/kstreams-go/kstreams/serde/json"
)

const recordSchema = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}}}`

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
	// Occupy id 1 so that the serde's id is not the default.
	if _, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `{"type":"string"}`, Type: sr.TypeJSON}); err != nil {
		t.Fatal(err)
	}
	s, err := json.NewRegistry[Record](ctx, cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 2 {
		t.Fatalf("ID() = %d, want 2", s.ID())
	}
	ss, ok := reg.GetSchema("records-value", 1)
	if !ok || ss.ID != 2 || ss.Type != sr.TypeJSON {
		t.Fatalf("registry holds %+v, %v", ss, ok)
	}

	want := sampleRecord()
	b, err := s.Serialize([]byte("p"), "records", nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "p\x00\x00\x00\x00\x02" || b[6] != '{' {
		t.Fatalf("bad framing: %q", b)
	}
	got, err := s.Deserialize("records", nil, b[1:])
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if n := byID.Load(); n != 0 {
		t.Fatalf("decoding its own id made %d registry requests, want 0", n)
	}

	// Registering again finds the same id.
	again, err := json.NewRegistry[Record](ctx, cl, "records-value", recordSchema, json.LookupOnly())
	if err != nil {
		t.Fatalf("LookupOnly: %v", err)
	}
	if again.ID() != s.ID() {
		t.Fatalf("LookupOnly: id %d, want %d", again.ID(), s.ID())
	}
}

func TestRegistryOtherIDs(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	s, err := json.NewRegistry[Record](context.Background(), cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	// A newer version of the schema, written by another producer.
	v2, _, err := reg.RegisterSchema("records-value", sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte{0, 0, 0, 0, byte(v2)}, `{"id":5,"name":"x"}`...)
	for range 3 {
		got, err := s.Deserialize("t", nil, data)
		if err != nil || got.ID != 5 || got.Name != "x" {
			t.Fatalf("got %+v, %v", got, err)
		}
	}
	if n := byID.Load(); n != 1 {
		t.Fatalf("%d registry lookups for one new id, want 1 (cached)", n)
	}

	// An id the registry does not know.
	_, err = s.Deserialize("t", nil, []byte{0, 0, 0, 0, 99, '{', '}'})
	var re *sr.ResponseError
	if err == nil || !strings.Contains(err.Error(), "schema id 99 is unknown to the registry") || !errors.As(err, &re) {
		t.Fatalf("unknown id: got %v", err)
	}

	// An id of a schema of another type.
	avroID, _, err := reg.RegisterSchema("avro-value", sr.Schema{Schema: `"string"`, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Deserialize("t", nil, append([]byte{0, 0, 0, 0, byte(avroID)}, `{}`...))
	if err == nil || !strings.Contains(err.Error(), "is a AVRO schema, want JSON") {
		t.Fatalf("avro id: got %v", err)
	}
}

func TestRegistryBadHeader(t *testing.T) {
	_, cl, _ := startRegistry(t)
	s, err := json.NewRegistry[Record](context.Background(), cl, "records-value", recordSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{[]byte(`{"id":1}`), "magic byte is 0x7b, want 0x00"},
		{[]byte{0, 0, 1}, "3 bytes, shorter than the 5-byte schema-registry header"},
		{[]byte{}, "0 bytes, shorter"},
	} {
		_, err := s.Deserialize("t", nil, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, sr.ErrBadHeader) {
			t.Errorf("%q: got %v, want error containing %q wrapping sr.ErrBadHeader", tc.data, err, tc.want)
		}
	}
	// A valid header with a bad payload.
	if _, err := s.Deserialize("t", nil, []byte{0, 0, 0, 0, byte(s.ID()), '{'}); err == nil {
		t.Error("truncated payload: no error")
	}
}

func TestRegistryNil(t *testing.T) {
	_, cl, _ := startRegistry(t)
	s, err := json.NewRegistry[*Record](context.Background(), cl, "records-value", recordSchema)
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

func TestRegistrySetupErrors(t *testing.T) {
	_, cl, _ := startRegistry(t)
	ctx := context.Background()
	if _, err := json.NewRegistry[Record](ctx, cl, "missing-value", recordSchema, json.LookupOnly()); err == nil ||
		!strings.Contains(err.Error(), `looking up JSON schema under subject "missing-value"`) {
		t.Fatalf("LookupOnly of an unregistered schema: got %v", err)
	}
	if _, err := json.NewRegistry[Record](ctx, cl, "bad-value", "{not json"); err == nil {
		t.Fatal("invalid schema: no error")
	}
	if _, err := json.NewRegistry[Record](ctx, nil, "x", recordSchema); err == nil {
		t.Fatal("nil client: no error")
	}
}
