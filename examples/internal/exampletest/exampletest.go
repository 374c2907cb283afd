// Package exampletest helps the examples' tests run an example's main
// logic and read what it prints.
package exampletest

import (
	"io"
	"os"
	"testing"
)

// Stdout runs fn with os.Stdout redirected and returns what it printed. It
// fails the test, showing the output, if fn returns an error.
func Stdout(t testing.TB, fn func() error) string {
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
