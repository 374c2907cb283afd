package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./objectstate` does (in-process Kafka,
// a local-directory bucket) and checks the counts after both runs: the
// second run, with an empty state directory, carries on from the state the
// first left in the bucket, and every store instance was opened twice
// (owner epoch 2) with a stored changelog offset.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, func() error { return run("", "", false) })
	want := map[string]int{}
	for i := range 2 * perRun {
		want[viewer(i)]++
	}
	top := slices.Collect(maps.Keys(want))
	slices.SortFunc(top, func(a, b string) int { return cmp.Or(want[b]-want[a], strings.Compare(a, b)) })
	lines := []string{"run 1 counted 500 views", "run 2 counted 500 views"}
	for _, u := range top[:5] {
		lines = append(lines, fmt.Sprintf("%6d  %s", want[u], u))
	}
	for _, line := range lines {
		if !strings.Contains(out, line) {
			t.Fatalf("output lacks %q:\n%s", line, out)
		}
	}
	if n := strings.Count(out, "owner epoch 2, changelog offset "); n != partitions {
		t.Fatalf("%d store instances at owner epoch 2 with an offset after the second run, want %d:\n%s", n, partitions, out)
	}
	if strings.Contains(out, "changelog offset -1") {
		t.Fatalf("a store instance has no changelog offset:\n%s", out)
	}
}
