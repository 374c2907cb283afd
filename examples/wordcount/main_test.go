package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestRun runs the example as `go run ./wordcount` does, with the in-memory
// store and with Pebble, and checks the counts it prints.
func TestRun(t *testing.T) {
	for _, usePebble := range []bool{false, true} {
		out := captureStdout(t, func() error { return run("", 3, false, usePebble, t.TempDir()) })
		for _, want := range []string{"counted 186 words (86 distinct); top 3:", "    18  the", "    16  of", "    12  was"} {
			if !strings.Contains(out, want) {
				t.Fatalf("pebble=%v: output lacks %q:\n%s", usePebble, want, out)
			}
		}
	}
}

func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
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
	runErr := fn()
	os.Stdout = stdout
	w.Close()
	out := <-done
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out)
	}
	return out
}
