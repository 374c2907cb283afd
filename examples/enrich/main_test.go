package main

import (
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./enrich` does, with fewer orders, and
// checks that every customer's running totals came out in order.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, func() error { return run("", 1000, 50, 100) })
	for _, want := range []string{"enriched 1000 orders of 50 customers", "running totals in order for 50 of 50 customers"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
