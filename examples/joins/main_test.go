package main

import (
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./joins` does and checks every order
// is joined with its customer's latest row, or with none.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, run)
	want := "c1: a kettle for Ada (gold)\nc2: a teapot for Grace (gold)\nc3: a cup for unknown customer c3\nc4: a saucer for unknown customer c4\n"
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}
