package main

import (
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./joins` does and checks every order
// is joined with its customer's latest row, or with none, and each
// impression comes out once: with its click, or alone once its window
// closed.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, run)
	want := "c1: a kettle for Ada (gold)\nc2: a teapot for Grace (gold)\nc3: a cup for unknown customer c3\nc4: a saucer for unknown customer c4\n" +
		"ad-1 at 12:03: shown on home, clicked\nad-2 at 12:01: shown on news, not clicked\nad-3 at 12:02: shown on sports, not clicked\n"
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}
