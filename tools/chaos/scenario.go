package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scenario is one run: its topics, app instances, the faults it injected
// and the checker's verdict.
type scenario struct {
	name string
	e    *env
	dir  string
	cl   *cluster

	in, out, dlq, appID string
	instances           []*instance

	mu                sync.Mutex
	kills, restarts   int
	brokerStops       int
	unexpected        int // instances that exited by themselves
	workarounds       int // restarts after an expected exit
	knownSeen         map[string]int
	failures          []string
	notes             []string
	v                 *verdict
	stopMonitor       func()
	expectExit        map[*instance]bool
	workload          *workload
	drainLag          int64
	skipped, deadLtrd int64
	restores          int
	maxRestore        time.Duration
	restoredRecords   int64
}

func (s *scenario) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	s.failures = append(s.failures, msg)
	logf("%s: FAILURE: %s", s.name, msg)
}

func (s *scenario) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// setup creates the scenario's topics (unique names per run).
func (s *scenario) setup(ctx context.Context, partitions int32) error {
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	s.in, s.out = "chaos-"+s.name+"-in-"+suffix, "chaos-"+s.name+"-out-"+suffix
	s.dlq = "chaos-" + s.name + "-dlq-" + suffix
	s.appID = "chaos-" + s.name + "-" + suffix
	s.expectExit = map[*instance]bool{}
	s.knownSeen = map[string]int{}
	return s.cl.createTopics(ctx, partitions, s.in, s.out)
}

// newInstances makes n instances of the app with the scenario's topics and
// the given extra flags (store, policies).
func (s *scenario) newInstances(n int, flags ...string) []*instance {
	var out []*instance
	for range n {
		name := fmt.Sprintf("app%d", len(s.instances)+1)
		args := append([]string{"-brokers", strings.Join(s.cl.brokers, ","), "-app-id", s.appID, "-in", s.in, "-out", s.out}, flags...)
		if *transactions {
			args = append(args, "-transactions")
		}
		in := newInstance(name, s.e.appBin, s.dir, args)
		s.instances = append(s.instances, in)
		out = append(out, in)
	}
	return out
}

func (s *scenario) start(in *instance, extra ...string) {
	if err := in.start(extra...); err != nil {
		s.fail("starting %s: %v", in.name, err)
	}
}

// kill SIGKILLs in; restart starts it again.
func (s *scenario) kill(in *instance) {
	s.mu.Lock()
	s.expectExit[in] = true
	s.kills++
	s.mu.Unlock()
	in.kill()
}

func (s *scenario) restart(in *instance, extra ...string) {
	s.mu.Lock()
	s.expectExit[in] = false
	s.restarts++
	s.mu.Unlock()
	s.start(in, extra...)
}

// stop stops in gracefully; a non-zero exit is a failure.
func (s *scenario) stop(in *instance) {
	s.mu.Lock()
	s.expectExit[in] = true
	s.mu.Unlock()
	if err := in.stop(60 * time.Second); err != nil {
		s.fail("%s: graceful stop: %v (%s)", in.name, err, in.fatal())
	}
}

// expectedExits are exits of the app that are not failures (the harness
// restarts the instance, as a supervisor would, and reports it); every
// other exit of an instance fails its scenario.
var expectedExits = []struct{ match, why string }{
	// An instance started while no broker answers exits at once.
	{"preparing topics", "start-up without brokers"},
}

// monitor watches for instances that exit by themselves (a fatal error):
// that is a failure (the app must recover with no operator action), unless
// the exit is expected; the instance is restarted (after a second or
// two) so that the run can still be checked.
func (s *scenario) monitor() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopMonitor = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, in := range s.instances {
				s.mu.Lock()
				expected := s.expectExit[in]
				s.mu.Unlock()
				if expected || !in.started() || in.running() {
					continue
				}
				fatal := in.fatal()
				known := ""
				for _, b := range expectedExits {
					if strings.Contains(fatal, b.match) {
						known = b.why
					}
				}
				s.mu.Lock()
				if known != "" {
					s.workarounds++
					if s.knownSeen[known] == 0 {
						s.notes = append(s.notes, fmt.Sprintf("%s exited (expected: %s): %s; restarted by the harness", in.name, known, fatal))
					}
					s.knownSeen[known]++
				} else {
					s.unexpected++
				}
				s.mu.Unlock()
				if known == "" {
					s.fail("%s exited by itself (%v): %s", in.name, in.exit(), fatal)
				} else {
					logf("%s: %s exited (expected: %s): %s", s.name, in.name, known, fatal)
				}
				if !sleep(ctx, 2*time.Second) {
					return
				}
				s.start(in)
			}
		}
	}()
}

func (s *scenario) stopAll() {
	if s.stopMonitor != nil {
		s.stopMonitor()
		s.stopMonitor = nil
	}
	for _, in := range s.instances {
		if in.running() {
			s.stop(in)
		}
	}
}

// sleep sleeps d, or less if ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// produce starts the workload.
func (s *scenario) produce(ctx context.Context, w *workload) error {
	w.topic = s.in
	s.workload = w
	return w.run(ctx, s.cl.brokers)
}

// finish waits for the workload and for the group to commit everything,
// stops the instances gracefully and runs the checker.
func (s *scenario) finish(ctx context.Context, dlq string) error {
	if s.workload != nil {
		s.workload.wait()
	}
	s.drainLag = waitDrained(ctx, s.cl.brokers, s.appID, s.in, 4*time.Minute)
	if s.drainLag != 0 {
		s.fail("the group did not commit every input record within 4 minutes (lag %d)", s.drainLag)
	}
	s.stopAll()
	for _, in := range s.instances {
		rs := in.allRuns()
		s.skipped += rs.skipped
		s.deadLtrd += rs.deadLettered
		s.restores += rs.restores
		s.restoredRecords += rs.restored
		s.maxRestore = max(s.maxRestore, rs.maxRestore)
	}
	v, err := check(ctx, s.cl.brokers, s.in, s.out, dlq)
	if err != nil {
		return err
	}
	s.v = v
	return nil
}

func (s *scenario) report(elapsed time.Duration, err error) {
	status := "PASS"
	if err != nil {
		status = "FAIL"
	}
	fmt.Printf("--- %s: %s (%s)\n", status, s.name, elapsed.Round(100*time.Millisecond))
	if v := s.v; v != nil {
		fmt.Printf("    records in %d (good %d, poison %d, undecodable %d); out %d, distinct ids out %d, duplicates %d, dead letters %d\n",
			v.In, v.Good, v.Poison, v.Garbage, v.Out, v.UniqueOut, v.Duplicates, v.DeadLetters)
		fmt.Printf("    replays %d, count regressions %d, over-count %d, count loss %d (%d keys)\n",
			v.Replays, v.Regressions, v.OverCount, v.CountLoss, v.CountLossKeys)
		for _, p := range v.problems {
			fmt.Printf("    checker: %s\n", p)
		}
	}
	prodFailed := int64(0)
	if s.workload != nil {
		prodFailed = s.workload.failed.Load()
	}
	fmt.Printf("    kills %d, restarts %d, broker stops %d, unexpected exits %d, producer failures %d\n",
		s.kills, s.restarts, s.brokerStops, s.unexpected, prodFailed)
	for k, n := range s.knownSeen {
		fmt.Printf("    restarts by the harness after a known exit (%s): %d\n", k, n)
	}
	fmt.Printf("    restores %d (%d records), max restore %s; skipped %d, dead-lettered %d\n",
		s.restores, s.restoredRecords, s.maxRestore, s.skipped, s.deadLtrd)
	for _, n := range s.notes {
		fmt.Printf("    note: %s\n", n)
	}
	switch {
	case err != nil && s.v != nil:
		fmt.Printf("    verdict: FAIL, %d lost, %d count regressions, count loss %d: %v\n", s.v.Lost, s.v.Regressions, s.v.CountLoss, err)
	case err != nil:
		fmt.Printf("    verdict: FAIL: %v\n", err)
	case s.v != nil:
		fmt.Printf("    verdict: PASS, 0 lost, 0 count regressions\n")
	default:
		fmt.Printf("    verdict: PASS, 0 lost\n")
	}
}
