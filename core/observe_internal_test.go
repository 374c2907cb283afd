package kstreams

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// TestObserveConstantsMatchInternal: the public states, rebalance kinds and
// store operations are converted from the runtime's by value.
func TestObserveConstantsMatchInternal(t *testing.T) {
	states := map[State]runtime.State{StateCreated: runtime.StateCreated, StateStarting: runtime.StateStarting,
		StateRebalancing: runtime.StateRebalancing, StateRestoring: runtime.StateRestoring, StateRunning: runtime.StateRunning,
		StateStopping: runtime.StateStopping, StateStopped: runtime.StateStopped, StateFailed: runtime.StateFailed}
	if len(states) != 8 {
		t.Fatalf("%d distinct states, want 8", len(states))
	}
	for pub, in := range states {
		if uint8(pub) != uint8(in) {
			t.Errorf("State %s is %d, the runtime's %d", pub, pub, in)
		}
	}
	kinds := map[RebalanceKind]runtime.RebalanceKind{RebalanceAssigned: runtime.RebalanceAssigned,
		RebalanceRevoked: runtime.RebalanceRevoked, RebalanceLost: runtime.RebalanceLost}
	for pub, in := range kinds {
		if uint8(pub) != uint8(in) || pub.String() == "unknown" {
			t.Errorf("RebalanceKind %s is %d, the runtime's %d", pub, pub, in)
		}
	}
	ops := map[StoreOp]runtime.StoreOp{StoreGet: runtime.StoreGet, StorePut: runtime.StorePut, StoreDelete: runtime.StoreDelete,
		StoreRange: runtime.StoreRange, StoreWrite: runtime.StoreWrite}
	for pub, in := range ops {
		if uint8(pub) != uint8(in) || pub.String() == "unknown" {
			t.Errorf("StoreOp %s is %d, the runtime's %d", pub, pub, in)
		}
	}
}

// TestSampleEveryRounds: SampleEvery is rounded up to a power of two, 0
// means 64, and several observers sample at the smallest interval.
func TestSampleEveryRounds(t *testing.T) {
	for _, c := range []struct {
		every []int
		want  uint32
	}{
		{[]int{0}, 64}, {[]int{1}, 1}, {[]int{3}, 4}, {[]int{64}, 64}, {[]int{100}, 128}, {[]int{0, 10}, 16}, {[]int{32, 8}, 8},
	} {
		a := &App{}
		for _, e := range c.every {
			if err := WithObserver(&Observer{SampleEvery: e, Processed: func(NodeTiming) {}})(a); err != nil {
				t.Fatal(err)
			}
		}
		a.applyObservers()
		if got := a.cfg.Observer.SampleEvery; got != c.want || a.cfg.Observer.Nodes.SampleEvery != c.want {
			t.Errorf("SampleEvery %v: %d (nodes %d), want %d", c.every, got, a.cfg.Observer.Nodes.SampleEvery, c.want)
		}
	}
	if err := WithObserver(&Observer{SampleEvery: -1})(&App{}); err == nil {
		t.Error("a negative SampleEvery was accepted")
	}
	if err := WithObserver(nil)(&App{}); err == nil {
		t.Error("a nil observer was accepted")
	}
}
