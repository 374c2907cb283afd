package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func storeFlag() []string {
	if *storeKind == "redis" {
		return []string{"-store", "redis", "-redis", redisAddr}
	}
	return []string{"-store", *storeKind}
}

// runKill9: three instances over 12 partitions; a random instance is killed
// with SIGKILL every few seconds and restarted.
func runKill9(ctx context.Context, e *env, s *scenario) error {
	w := &workload{total: e.p.kill9Records, keys: 1000, duration: e.p.kill9Duration}
	return s.kill9(ctx, w, e.p.killEvery, false, storeFlag()...)
}

// kill9 runs three instances of the app (with flags) over 12 partitions
// while w is produced, SIGKILLing a random one every [every[0], every[1])
// and restarting it (with wipe, on an empty state directory: the disk is
// lost), then checks the output.
func (s *scenario) kill9(ctx context.Context, w *workload, every [2]time.Duration, wipe bool, flags ...string) error {
	if err := s.setup(ctx, 12); err != nil {
		return err
	}
	ins := s.newInstances(3, flags...)
	for _, in := range ins {
		s.start(in)
	}
	s.monitor()
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	wiped := 0
	for ctx.Err() == nil {
		select {
		case <-w.done:
		case <-time.After(randDur(every[0], every[1])):
			in := ins[rng.IntN(len(ins))]
			s.kill(in)
			sleep(ctx, randDur(500*time.Millisecond, 2*time.Second))
			if wipe {
				if err := os.RemoveAll(in.stateDir); err != nil {
					return err
				}
				wiped++
			}
			s.restart(in)
			continue
		}
		break
	}
	if wipe {
		logf("%s: %d restarts on an empty state directory", s.name, wiped)
	}
	return s.finish(ctx, "")
}

// runBrokerBounce: the single broker is stopped cleanly and restarted, then
// killed with SIGKILL and restarted, while two instances process.
func runBrokerBounce(ctx context.Context, e *env, s *scenario) error {
	if err := s.setup(ctx, 12); err != nil {
		return err
	}
	for _, in := range s.newInstances(2, storeFlag()...) {
		s.start(in)
	}
	s.monitor()
	w := &workload{total: e.p.records, keys: 1000, duration: e.p.duration}
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	step := e.p.duration / time.Duration(2*e.p.bounces+1)
	for i := range 2 * e.p.bounces {
		if !sleep(ctx, step) {
			break
		}
		kill := i%2 == 1
		how := "SIGTERM"
		if kill {
			how = "SIGKILL"
		}
		logf("%s: stopping the broker (%s)", s.name, how)
		t0 := time.Now()
		if err := s.cl.stopNode(ctx, 1, kill); err != nil {
			return err
		}
		s.brokerStops++
		sleep(ctx, 5*time.Second)
		if err := s.cl.startNode(ctx, 1); err != nil {
			return err
		}
		s.note("broker %s at %s, down for %s", how, time.Now().Format("15:04:05"), time.Since(t0).Round(100*time.Millisecond))
	}
	return s.finish(ctx, "")
}

// runBrokerKill: on a 3-broker cluster (replication factor 3), the broker
// that coordinates the group is killed with SIGKILL and restarted, then
// another broker, while three instances process.
func runBrokerKill(ctx context.Context, e *env, s *scenario) error {
	if err := s.setup(ctx, 12); err != nil {
		return err
	}
	for _, in := range s.newInstances(3, append(storeFlag(), "-replication-factor", "3")...) {
		s.start(in)
	}
	s.monitor()
	w := &workload{total: e.p.records, keys: 1000, duration: e.p.duration}
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	kills := 2 * e.p.bounces
	step := e.p.duration / time.Duration(kills+1)
	prev := 0
	for i := range kills {
		if !sleep(ctx, step) {
			break
		}
		node, err := s.cl.coordinator(ctx, s.appID)
		what := "group coordinator"
		if err != nil || i%2 == 1 || node == prev {
			node = 1 + (prev+rng.IntN(2))%3 // another node than the previous one
			what = "another broker"
		}
		logf("%s: SIGKILL broker %d (%s)", s.name, node, what)
		t0 := time.Now()
		if err := s.cl.stopNode(ctx, node, true); err != nil {
			return err
		}
		s.brokerStops++
		sleep(ctx, 8*time.Second)
		if err := s.cl.startNode(ctx, node); err != nil {
			return err
		}
		s.note("broker %d (%s) killed, back after %s", node, what, time.Since(t0).Round(100*time.Millisecond))
		prev = node
	}
	return s.finish(ctx, "")
}

// runScale: 1 → 3 → 1 instances while processing, with the in-memory store
// (so state can only follow its partitions through the changelog).
func runScale(ctx context.Context, e *env, s *scenario) error {
	if err := s.setup(ctx, 12); err != nil {
		return err
	}
	ins := s.newInstances(3, "-store", "memory")
	s.start(ins[0])
	s.monitor()
	w := &workload{total: e.p.records, keys: 1000, duration: e.p.duration}
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	step := e.p.duration / time.Duration(2*e.p.scaleLoops+1)
	for range e.p.scaleLoops {
		if !sleep(ctx, step) {
			break
		}
		logf("%s: scaling out to 3 instances", s.name)
		s.restart(ins[1])
		s.restart(ins[2])
		if !sleep(ctx, step) {
			break
		}
		st := []map[string]int64{ins[0].stats(), ins[1].stats(), ins[2].stats()}
		s.note("with 3 instances: tasks %d/%d/%d", st[0]["tasks"], st[1]["tasks"], st[2]["tasks"])
		logf("%s: scaling in to 1 instance", s.name)
		s.stop(ins[1])
		s.stop(ins[2])
	}
	return s.finish(ctx, "")
}

// runLostState: with the Pebble store, an instance is killed, its state
// directory deleted, and restarted; later another is stopped gracefully,
// its state directory deleted, and restarted. They restore from the
// changelogs.
func runLostState(ctx context.Context, e *env, s *scenario) error {
	if err := s.setup(ctx, 12); err != nil {
		return err
	}
	ins := s.newInstances(2, "-store", "pebble")
	for _, in := range ins {
		s.start(in)
	}
	s.monitor()
	w := &workload{total: e.p.records, keys: 1000, duration: e.p.duration}
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	step := e.p.duration / 3
	for i, in := range ins {
		if !sleep(ctx, step) {
			break
		}
		how := "SIGKILL"
		if i == 0 {
			s.kill(in)
		} else {
			how = "graceful stop"
			s.stop(in)
		}
		size := dirSize(in.stateDir)
		if err := os.RemoveAll(in.stateDir); err != nil {
			return err
		}
		logf("%s: %s of %s, deleted its state directory (%d bytes)", s.name, how, in.name, size)
		sleep(ctx, 2*time.Second)
		s.restart(in)
		s.note("%s: %s, state directory (%d KiB) deleted while down, restarted", in.name, how, size>>10)
	}
	return s.finish(ctx, "")
}

func dirSize(dir string) int64 {
	var n int64
	_ = os.MkdirAll(dir, 0o755)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			n += dirSize(dir + "/" + e.Name())
		} else if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

func poisonWorkload(e *env) *workload {
	return &workload{total: e.p.poisonRecords, keys: 200, duration: e.p.poisonDuration, poisonEvery: 1000, garbageEvery: 1500}
}

// runPoisonPolicy: poison and undecodable records mid-stream with the skip
// or the dead-letter policy for both processing and deserialization errors.
func runPoisonPolicy(policy string) scenarioFunc {
	return func(ctx context.Context, e *env, s *scenario) error {
		if err := s.setup(ctx, 4); err != nil {
			return err
		}
		p := policy
		dlq := ""
		if policy == "dlq" {
			p, dlq = "dlq="+s.dlq, s.dlq
		}
		for _, in := range s.newInstances(2, append(storeFlag(), "-processing-errors", p, "-deserialization-errors", p)...) {
			s.start(in)
		}
		s.monitor()
		w := poisonWorkload(e)
		if err := s.produce(ctx, w); err != nil {
			return err
		}
		if err := s.finish(ctx, dlq); err != nil {
			return err
		}
		bad := int64(s.v.Poison + s.v.Garbage)
		switch policy {
		case "skip":
			// Graceful runs: each bad record is skipped once (more only if a
			// rebalance made an instance reprocess it).
			if s.skipped < bad {
				s.fail("skipped %d records, want at least the %d bad ones", s.skipped, bad)
			}
			if s.v.DeadLetters != 0 {
				s.fail("dead letters with the skip policy")
			}
		case "dlq":
			if s.deadLtrd < bad {
				s.fail("dead-lettered %d records, want at least the %d bad ones", s.deadLtrd, bad)
			}
		}
		return nil
	}
}

// runPoisonFail: with the fail policy, each instance stops at the first bad
// record it meets, naming it; the offsets committed stop just before it.
// Then an operator restarts them with the skip policy, and every good
// record is processed.
func runPoisonFail(ctx context.Context, e *env, s *scenario) error {
	if err := s.setup(ctx, 4); err != nil {
		return err
	}
	ins := s.newInstances(2, storeFlag()...)
	for _, in := range ins {
		s.mu.Lock()
		s.expectExit[in] = true // the fail policy stops them
		s.mu.Unlock()
		s.start(in)
	}
	w := poisonWorkload(e)
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	w.wait()
	for _, in := range ins {
		if !in.wait(2 * time.Minute) {
			s.fail("%s did not stop at a bad record", in.name)
			continue
		}
		f := fatalRecord(in)
		if f == nil {
			s.fail("%s exited without naming the bad record: %v %s", in.name, in.exit(), in.fatal())
			continue
		}
		off, err := committedAt(ctx, s, int32(f.partition))
		if err != nil {
			return err
		}
		s.note("%s stopped at %s/%d@%d (%s), committed offset of that partition: %d",
			in.name, f.topic, f.partition, f.offset, f.stage, off)
		if f.topic != s.in || off != f.offset {
			s.fail("%s stopped at %s/%d@%d but the committed offset is %d (want exactly the bad record's)", in.name, f.topic, f.partition, f.offset, off)
		}
	}
	// The operator's fix: skip bad records.
	for _, in := range ins {
		s.restart(in, "-processing-errors", "skip", "-deserialization-errors", "skip")
	}
	s.monitor()
	return s.finish(ctx, "")
}

type fatalRec struct {
	topic             string
	partition, offset int64
	stage             string
}

func fatalRecord(in *instance) *fatalRec {
	in.mu.Lock()
	path := in.logs[len(in.logs)-1]
	in.mu.Unlock()
	var f *fatalRec
	eachLine(path, func(line string) {
		rest, ok := strings.CutPrefix(line, "FATAL_RECORD ")
		if !ok {
			return
		}
		f = &fatalRec{}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "topic":
				f.topic = v
			case "partition":
				f.partition, _ = strconv.ParseInt(v, 10, 64)
			case "offset":
				f.offset, _ = strconv.ParseInt(v, 10, 64)
			case "stage":
				f.stage = v
			}
		}
	})
	return f
}

func committedAt(ctx context.Context, s *scenario, partition int32) (int64, error) {
	cl, err := s.cl.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	offs, err := kadmClient(cl).FetchOffsets(ctx, s.appID)
	if err != nil {
		return 0, fmt.Errorf("fetching committed offsets: %w", err)
	}
	o, ok := offs.Lookup(s.in, partition)
	if !ok {
		return -1, nil
	}
	return o.At, nil
}
