package main

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/examples/internal/exampletest"
)

// TestRun runs the example as `go run ./objectstate` does (in-process Kafka,
// a local-directory bucket, no changelog) and checks the counts after both
// runs: the second run, with an empty state directory, carries on from the
// state the first left in the bucket, and every store instance was opened
// twice (owner epoch 2) with the input offsets of every view.
func TestRun(t *testing.T) {
	out := checkCounts(t, false)
	re := regexp.MustCompile(`owner epoch 2, input offsets \{` + inputTopic + `@(\d+)\}`)
	var offsets []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		offsets = append(offsets, m[1])
	}
	// The last report (after run 2) holds every view.
	if len(offsets) < partitions {
		t.Fatalf("%d store instances at owner epoch 2 with input offsets after the second run, want %d:\n%s", len(offsets), partitions, out)
	}
	last := 0
	for _, o := range offsets[len(offsets)-partitions:] {
		n, _ := strconv.Atoi(o)
		last += n
	}
	if last != 2*perRun {
		t.Fatalf("the input offsets after the second run sum to %d, want %d (every view, in the snapshots):\n%s", last, 2*perRun, out)
	}
	if strings.Contains(out, "changelog offset") {
		t.Fatalf("a store instance without changelog reports a changelog offset:\n%s", out)
	}
}

// TestRunWithChangelog runs `go run ./objectstate -changelog`: snapshots
// record the changelog offset they cover.
func TestRunWithChangelog(t *testing.T) {
	out := checkCounts(t, true)
	if n := strings.Count(out, "owner epoch 2, changelog offset "); n != partitions {
		t.Fatalf("%d store instances at owner epoch 2 with an offset after the second run, want %d:\n%s", n, partitions, out)
	}
	if strings.Contains(out, "changelog offset -1") {
		t.Fatalf("a store instance has no changelog offset:\n%s", out)
	}
}

// checkCounts runs the example and checks the counts it prints.
func checkCounts(t *testing.T, changelog bool) string {
	t.Helper()
	out := exampletest.Stdout(t, func() error { return run("", "", changelog, false) })
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
	return out
}
