package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestRun runs the example as `go run ./enrich` does, with fewer orders, and
// checks that every customer's running totals came out in order.
func TestRun(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	runErr := run("", 1000, 50, 100)
	os.Stdout = stdout
	w.Close()
	out := <-done
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out)
	}
	for _, want := range []string{"enriched 1000 orders of 50 customers", "running totals in order for 50 of 50 customers"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
