package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestRun runs the example as `go run ./windowed` does and checks that it
// prints its windows.
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
	runErr := run()
	os.Stdout = stdout
	w.Close()
	out := <-done
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out)
	}
	// The day of the spring-forward is 23 hours long in Berlin.
	want := "day  meter-1  2026-03-29 00:00 CET → 2026-03-30 00:00 CEST  23.00 h"
	if !strings.Contains(out, want) || strings.Count(out, "\nhour ") < 20 {
		t.Fatalf("output lacks %q or the hourly windows:\n%s", want, out)
	}
}
