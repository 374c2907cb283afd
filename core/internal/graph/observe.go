package graph

import "time"

// NodeObserver receives sampled timings of a task's nodes. Either func may
// be nil.
type NodeObserver struct {
	// Process: a processor node's Process call took d (the nodes it
	// forwarded to included).
	Process func(node string, d time.Duration)
	// EndToEnd: a record reached sink node d after its timestamp.
	EndToEnd func(sink string, d time.Duration)
	// Retried: a processor node retried a failed record.
	Retried func(node string)
	// SampleEvery: one record in how many is timed, per node (a power of
	// two).
	SampleEvery uint32
}

// Observed is implemented by an Env whose nodes are observed.
type Observed interface {
	// NodeObserver returns the observer, or nil.
	NodeObserver() *NodeObserver
}
