package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestServesMetricsAndProbes runs the example and checks, over HTTP, that
// /readyz turns 200, /healthz is 200, and /metrics shows records
// processed, produced and dead-lettered, and the state running.
func TestServesMetricsAndProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	value := func(body, metric string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ := get("/readyz")
		_, body := get("/metrics")
		if code == http.StatusOK && value(body, "kstreams_dead_lettered_records_total") >= 1 &&
			value(body, `kstreams_produced_records_total{topic="metrics-counts"}`) >= 500 {
			if value(body, `kstreams_state{state="running"}`) != 1 || value(body, "kstreams_processed_records_total") < 500 {
				t.Errorf("metrics: state running %v, processed %v", value(body, `kstreams_state{state="running"}`), value(body, "kstreams_processed_records_total"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: /readyz %d; /metrics:\n%s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "running\n" {
		t.Errorf("/healthz: %d %q, want 200 running", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
