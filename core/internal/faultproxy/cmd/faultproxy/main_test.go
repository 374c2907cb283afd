package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/faultproxy"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestControlAPI drives a proxy through the HTTP API while a client
// produces through it.
func TestControlAPI(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := faultproxy.New(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(handler(p))
	defer srv.Close()
	call := func(method, path string, want int) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, string(body))
		}
		return string(body)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	call("POST", "/delay?d=10ms", 200)
	call("POST", "/delay?d=soon", 400)
	call("POST", "/blackhole?on=maybe", 400)
	call("GET", "/cut", 405)
	call("POST", "/hold-produce?on=1", 200)
	call("POST", "/hold-produce?on=0", 200)
	call("POST", "/blackhole-at-produce", 200)
	call("POST", "/blackhole?on=1", 200)
	call("POST", "/blackhole?on=0", 200)
	call("POST", "/cut", 200)
	call("POST", "/delay?d=0s", 200)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatalf("producing after the API calls: %v", err)
	}
	var dropped map[string]int
	if err := json.Unmarshal([]byte(call("POST", "/drop-held", 200)), &dropped); err != nil || dropped["dropped"] != 0 {
		t.Errorf("drop-held: %v %v", dropped, err)
	}
	var st faultproxy.Stats
	if err := json.Unmarshal([]byte(call("GET", "/stats", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if st.ProduceForwarded < 2 || st.Connections < 2 {
		t.Errorf("stats %+v: want 2+ produce requests and a reconnection after the cut", st)
	}
}
