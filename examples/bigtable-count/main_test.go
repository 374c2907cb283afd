package main

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./bigtable-count` does (in-process
// Kafka and Bigtable emulator) and checks the counts after both runs: the
// second run carries on from the counts the first left in Bigtable, and
// every store instance was opened twice (owner epoch 2) and holds a
// changelog offset.
func TestRun(t *testing.T) {
	out := exampletest.Stdout(t, func() error { return run("", "", "", "kstreams", false) })
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
	second := out[strings.Index(out, "run 2 counted"):]
	re := regexp.MustCompile(`owner epoch 2, committed version \d+, changelog offset \d+`)
	if n := len(re.FindAllString(second, -1)); n != partitions {
		t.Fatalf("%d store instances at owner epoch 2 with an offset after the second run, want %d:\n%s", n, partitions, out)
	}
}
