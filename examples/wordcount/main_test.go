package main

import (
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./wordcount` does, with the in-memory
// store and with Pebble, and checks the counts it prints.
func TestRun(t *testing.T) {
	for _, usePebble := range []bool{false, true} {
		out := exampletest.Stdout(t, func() error { return run("", 3, false, usePebble, t.TempDir()) })
		for _, want := range []string{"counted 186 words (86 distinct); top 3:", "    18  the", "    16  of", "    12  was"} {
			if !strings.Contains(out, want) {
				t.Fatalf("pebble=%v: output lacks %q:\n%s", usePebble, want, out)
			}
		}
	}
}
