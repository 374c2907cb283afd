package task

import "github.com/kstreams-go/kstreams/core/internal/graph"

// NodeObserver implements graph.Observed: the host's node observer, if it
// has one.
func (t *Task) NodeObserver() *graph.NodeObserver {
	if o, ok := t.host.(graph.Observed); ok {
		return o.NodeObserver()
	}
	return nil
}
