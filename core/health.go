package kstreams

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// State is where an App is in its life. An App goes from StateCreated to
// StateStarting when Run is called, then between StateRebalancing,
// StateRestoring and StateRunning as tasks come and go, and ends in
// StateStopping, then StateStopped or StateFailed.
type State uint8

// States.
const (
	// StateCreated: NewApp returned; Run was not called.
	StateCreated State = State(runtime.StateCreated)
	// StateStarting: Run checks and creates topics and joins the group,
	// until its first assignment.
	StateStarting State = State(runtime.StateStarting)
	// StateRebalancing: the instance is inside a rebalance callback,
	// creating the tasks assigned or giving up those revoked; it processes
	// nothing meanwhile.
	StateRebalancing State = State(runtime.StateRebalancing)
	// StateRestoring: a task the instance owns restores its stores from
	// their changelogs; the other tasks process.
	StateRestoring State = State(runtime.StateRestoring)
	// StateRunning: every task owned is processing.
	StateRunning State = State(runtime.StateRunning)
	// StateStopping: Run's context is done, or a fatal error stops the
	// instance: it finishes and commits what it can (see ShutdownBudget).
	StateStopping State = State(runtime.StateStopping)
	// StateStopped: Run returned nil.
	StateStopped State = State(runtime.StateStopped)
	// StateFailed: Run returned an error.
	StateFailed State = State(runtime.StateFailed)
)

// String returns the state's name in lower case: "created", "starting",
// "rebalancing", "restoring", "running", "stopping", "stopped", "failed".
func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateStarting:
		return "starting"
	case StateRebalancing:
		return "rebalancing"
	case StateRestoring:
		return "restoring"
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateStopped:
		return "stopped"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// State returns the App's state.
func (a *App) State() State { return State(a.rt.State()) }

// WithStateListener calls fn on every change of the App's state, with the
// old and the new state, in order. fn runs on the goroutine that changed
// the state (the runtime's, while it rebalances, say): it must return
// quickly and must not call the App's methods other than State and Stats.
// Given more than once, every listener is called.
func WithStateListener(fn func(old, new State)) Option {
	return func(a *App) error {
		if fn == nil {
			return errors.New("WithStateListener: nil listener")
		}
		a.stateListeners = append(a.stateListeners, fn)
		return nil
	}
}

// DefaultLivenessStall is how long the poll loop of a running App may make
// no progress before LivenessHandler reports it dead, unless told
// otherwise.
const DefaultLivenessStall = 2 * time.Minute

// ReadinessHandler returns an http.Handler for a readiness probe (a
// Kubernetes readinessProbe, on /readyz say): it answers 200 once the App
// has been running (StateRunning), while it stays running or rebalances,
// and 503 while it starts, restores its stores, stops, or after it
// stopped. The body is the state's name.
//
// An instance is not ready until its stores are restored, so a rolling
// update that waits for readiness moves to the next instance only once
// this one processes.
func (a *App) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := a.State()
		ready := s == StateRunning || s == StateRebalancing && a.rt.RanOnce()
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintln(w, s)
	})
}

// LivenessHandler returns an http.Handler for a liveness probe (a
// Kubernetes livenessProbe, on /healthz say): it answers 503, and a
// restart is due, when Run returned (StateStopped, StateFailed) or when
// the App restores or runs but its poll loop made no progress for
// maxStall (0 means DefaultLivenessStall): a processor stuck on the loop,
// say. Otherwise 200. The body is the state's name, and the reason of a
// 503.
//
// Keep maxStall above the longest time a poll's records of one partition
// take to process in PartitionOrder without retries (those run on the
// loop).
func (a *App) LivenessHandler(maxStall time.Duration) http.Handler {
	if maxStall <= 0 {
		maxStall = DefaultLivenessStall
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := a.State()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch idle := a.rt.LoopIdle(); {
		case s == StateStopped || s == StateFailed:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%s: Run returned\n", s)
		case idle > maxStall:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%s: the poll loop made no progress for %s (more than %s)\n", s, idle.Round(time.Second), maxStall)
		default:
			w.WriteHeader(http.StatusOK)
			fmt.Fprintln(w, s)
		}
	})
}
