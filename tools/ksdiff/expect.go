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
