package main

import (
	"fmt"
	"strings"
)

// expectation is what kstreams should write for a case, derived from what
// Kafka Streams wrote.
type expectation struct {
	outputs []output
	// missed counts records Kafka Streams should have written and did not
	// (its bugs, documented in docs/joins.md), which kstreams writes.
	missed int
	// check, when set, compares kstreams' output with Kafka Streams' where
	// the two may differ in when records come out, not only what: it
	// returns a description of a difference it cannot explain, and the
	// records Kafka Streams had not written yet at the end.
	check func(got []output) (diff string, missed int)
}

// expect returns what kstreams should write for c, given what Kafka Streams
// wrote: the same records, except where kstreams differs on purpose or
// Kafka Streams has a bug; each such difference is documented in
// docs/joins.md. An error is a difference on the Kafka Streams side that
// the documented ones do not explain.
func expect(c *testCase, ks []output) (expectation, error) {
	if strings.HasSuffix(c.topology, "-onclose") {
		return expectOnClose(ks)
	}
	if c.topology == "stream-stream-left" || c.topology == "stream-stream-outer" {
		return expectation{outputs: ks, check: func(got []output) (string, int) { return checkUnmatchedLater(ks, got) }}, nil
	}
	return expectation{outputs: ks}, nil
}

// expectOnClose: Kafka Streams wrote its emitStrategy(onWindowClose())
// results to "out" and the same aggregation's suppress(untilWindowCloses)
// results to "final". Kafka Streams 4.4.0's onWindowClose misses windows:
// the first window of a task, and windows of hopping aggregations that close
// between two of its range fetches. kstreams' EmitFinal must write what
// suppress writes; what onWindowClose wrote must be those records, with
// some missing, in the same order.
func expectOnClose(ks []output) (expectation, error) {
	var onClose, final []output
	for _, o := range ks {
		switch o.topic {
		case "out":
			onClose = append(onClose, o)
		case "final":
			o.topic = "out"
			final = append(final, o)
		default:
			return expectation{}, fmt.Errorf("unexpected Kafka Streams output topic %q", o.topic)
		}
	}
	i := 0
	for _, o := range onClose {
		o.topic = "out"
		for i < len(final) && !sameOutput(final[i], o) {
			i++
		}
		if i == len(final) {
			return expectation{}, fmt.Errorf("Kafka Streams' onWindowClose wrote %v, which its suppress(untilWindowCloses) did not write in that order", o)
		}
		i++
	}
	return expectation{outputs: final, missed: len(final) - len(onClose)}, nil
}

// checkUnmatchedLater compares a left or outer stream-stream join. Kafka
// Streams 4.4.0 forwards unmatched records late: after emitting some, it
// remembers the timestamp of the last record it looked at rather than of
// the earliest one still waiting, and skips looking again until stream
// time passes that one's window. kstreams forwards each as soon as its
// window closes. So the joined records must be the same, written after the
// same input records; the unmatched ones the same, in the same order, each
// written by kstreams after the same input record as by Kafka Streams or
// an earlier one; and kstreams may have written more at the end, which
// Kafka Streams still held.
func checkUnmatchedLater(ks, got []output) (string, int) {
	split := func(os []output) (joined, alone []output) {
		for _, o := range os {
			if o.value != nil && strings.Contains(*o.value, "~") {
				alone = append(alone, o)
			} else {
				joined = append(joined, o)
			}
		}
		return joined, alone
	}
	ksJoined, ksAlone := split(ks)
	goJoined, goAlone := split(got)
	if d := compare(ksJoined, goJoined); d != "" {
		return "joined records: " + d, 0
	}
	for i := range ksJoined {
		if ksJoined[i].in != goJoined[i].in {
			return fmt.Sprintf("joined record %d (%v): Kafka Streams wrote it after input %d, kstreams after input %d\n",
				i, ksJoined[i], ksJoined[i].in, goJoined[i].in), 0
		}
	}
	if len(goAlone) < len(ksAlone) {
		return fmt.Sprintf("unmatched records: Kafka Streams wrote %d, kstreams %d\n", len(ksAlone), len(goAlone)), 0
	}
	for i, k := range ksAlone {
		g := goAlone[i]
		if !sameOutput(k, g) {
			return fmt.Sprintf("unmatched record %d: Kafka Streams wrote %v, kstreams %v\n", i, k, g), 0
		}
		if g.in > k.in {
			return fmt.Sprintf("unmatched record %d (%v): kstreams wrote it after input %d, later than Kafka Streams (after input %d)\n",
				i, k, g.in, k.in), 0
		}
	}
	return "", len(goAlone) - len(ksAlone)
}
