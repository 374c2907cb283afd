package main

import (
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./windowed` does and checks that it
// prints its windows.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, run)
	// The day of the spring-forward is 23 hours long in Berlin.
	want := "day  meter-1  2026-03-29 00:00 CET → 2026-03-30 00:00 CEST  23.00 h"
	if !strings.Contains(out, want) || strings.Count(out, "\nhour ") < 20 {
		t.Fatalf("output lacks %q or the hourly windows:\n%s", want, out)
	}
}
