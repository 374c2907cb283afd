package registry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kstreams-go/kstreams/serde/registry"
)

const avroSchema = `{"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}`

// startRegistry starts an in-process schema registry (an httptest server
// speaking the Confluent REST API) and counts the schema-by-id requests it
// serves.
func startRegistry(t testing.TB) (*srfake.Registry, *sr.Client, *atomic.Int64) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var byID atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if isByID(r) {
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

func isByID(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/")
}

func TestRegister(t *testing.T) {
	reg, cl, _ := startRegistry(t)
	ctx := context.Background()
	if _, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatal(err)
	}
	s := sr.Schema{Schema: avroSchema, Type: sr.TypeAvro}
	id, err := registry.Register(ctx, cl, "r-value", s, false)
	if err != nil {
		t.Fatal(err)
	}
	if id != 2 {
		t.Fatalf("id = %d, want 2", id)
	}
	if ss, ok := reg.GetSchema("r-value", 1); !ok || ss.ID != id || ss.Type != sr.TypeAvro {
		t.Fatalf("registry holds %+v, %v", ss, ok)
	}
	if again, err := registry.Register(ctx, cl, "r-value", s, false); err != nil || again != id {
		t.Fatalf("registering again: %d, %v; want %d", again, err, id)
	}
	if looked, err := registry.Register(ctx, cl, "r-value", s, true); err != nil || looked != id {
		t.Fatalf("lookupOnly: %d, %v; want %d", looked, err, id)
	}
}

func TestRegisterErrors(t *testing.T) {
	_, cl, _ := startRegistry(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		client     *sr.Client
		s          sr.Schema
		lookupOnly bool
		want       string
	}{
		{"nil client", nil, sr.Schema{Schema: `{}`, Type: sr.TypeJSON}, false, "nil *sr.Client"},
		{"not registered", cl, sr.Schema{Schema: `{}`, Type: sr.TypeJSON}, true, `looking up JSON schema under subject "r-value": `},
		{"invalid schema", cl, sr.Schema{Schema: `{`, Type: sr.TypeJSON}, false, `registering JSON schema under subject "r-value": `},
	} {
		id, err := registry.Register(ctx, tc.client, "r-value", tc.s, tc.lookupOnly)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %d, %v; want an error starting with %q", tc.name, id, err, tc.want)
		}
	}
}

func TestCache(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	id, _, err := reg.RegisterSchema("r-value", sr.Schema{Schema: avroSchema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	var builds atomic.Int64
	c := registry.NewCache(cl, 0, sr.TypeAvro, func(s sr.Schema) (string, error) {
		builds.Add(1)
		return s.Schema, nil
	})
	for range 3 {
		got, err := c.Get(id)
		if err != nil || got != avroSchema {
			t.Fatalf("Get(%d) = %q, %v", id, got, err)
		}
	}
	if n, b := byID.Load(), builds.Load(); n != 1 || b != 1 {
		t.Fatalf("3 Gets of one id: %d registry requests and %d builds, want 1 and 1 (cached)", n, b)
	}
}

func TestCacheErrors(t *testing.T) {
	reg, cl, byID := startRegistry(t)
	avroID, _, err := reg.RegisterSchema("r-value", sr.Schema{Schema: avroSchema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	jsonC := registry.NewCache(cl, 0, sr.TypeJSON, func(sr.Schema) (struct{}, error) { return struct{}{}, nil })

	_, err = jsonC.Get(99)
	var re *sr.ResponseError
	if err == nil || !strings.HasPrefix(err.Error(), "schema id 99 is unknown to the registry: ") || !errors.As(err, &re) {
		t.Errorf("unknown id: got %v", err)
	}
	if _, err := jsonC.Get(avroID); err == nil || err.Error() != "schema id 1 is a AVRO schema, want JSON" {
		t.Errorf("AVRO id in a JSON cache: got %v", err)
	}

	// A failed build is not cached: the next Get asks the registry again.
	fail := errors.New("boom")
	var calls int
	c := registry.NewCache(cl, 0, sr.TypeAvro, func(sr.Schema) (int, error) {
		if calls++; calls == 1 {
			return 0, fail
		}
		return calls, nil
	})
	before := byID.Load()
	if _, err := c.Get(avroID); err == nil || err.Error() != "schema id 1: boom" || !errors.Is(err, fail) {
		t.Errorf("failed build: got %v", err)
	}
	if v, err := c.Get(avroID); err != nil || v != 2 {
		t.Errorf("Get after a failed build: %d, %v; want 2, nil", v, err)
	}
	if n := byID.Load() - before; n != 2 {
		t.Errorf("%d registry requests for a failed then a good build, want 2", n)
	}
}

// TestCacheTransientError checks that a failed request is not cached and
// that a request is bounded by the cache's timeout.
func TestCacheTransientError(t *testing.T) {
	reg, cl, _ := startRegistry(t)
	id, _, err := reg.RegisterSchema("r-value", sr.Schema{Schema: `{}`, Type: sr.TypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Int32 // 0: serve, 1: fail with 500, 2: hang until released
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before reg.Close, which waits for handlers
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !isByID(r) {
			return false
		}
		switch mode.Load() {
		case 1:
			http.Error(w, `{"error_code": 50001, "message": "down"}`, http.StatusInternalServerError)
			return true
		case 2:
			<-release
			return true
		}
		return false
	})
	c := registry.NewCache(cl, 50*time.Millisecond, sr.TypeJSON, func(sr.Schema) (struct{}, error) { return struct{}{}, nil })

	mode.Store(1)
	if _, err := c.Get(id); err == nil || !strings.HasPrefix(err.Error(), "looking up schema id 1 in the registry: ") {
		t.Errorf("registry error: got %v", err)
	}
	mode.Store(2)
	start := time.Now()
	if _, err := c.Get(id); err == nil || !strings.HasPrefix(err.Error(), "looking up schema id 1 in the registry: ") {
		t.Errorf("hanging registry: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a lookup with a 50ms timeout took %v", d)
	}
	mode.Store(0)
	if _, err := c.Get(id); err != nil {
		t.Errorf("Get after transient errors: %v", err)
	}
}

func TestCacheConcurrent(t *testing.T) {
	reg, cl, _ := startRegistry(t)
	var ids []int
	for _, s := range []string{`{}`, `{"type": "object"}`, `{"type": "string"}`} {
		id, _, err := reg.RegisterSchema("r-value", sr.Schema{Schema: s, Type: sr.TypeJSON})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	c := registry.NewCache(cl, 0, sr.TypeJSON, func(s sr.Schema) (string, error) { return s.Schema, nil })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := ids[(g+i)%len(ids)]
				if _, err := c.Get(id); err != nil {
					t.Errorf("Get(%d): %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
