// Command chaos is kstreams' reliability suite: it runs the counting app
// (tools/chaos/app) as separate OS processes on real Apache Kafka clusters
// (tools/kafka/kafka.sh), breaks things while records flow, and proves
// at-least-once with a checker that reads the input and output topics.
//
// Scenarios:
//
//	kill9         3 instances over 12 partitions; a random one is SIGKILLed every few seconds and restarted
//	broker-bounce the single broker is stopped (SIGTERM) and restarted, then SIGKILLed and restarted
//	broker-kill   3-broker cluster (RF 3): the group coordinator's broker, then another, is SIGKILLed and restarted
//	scale         1 → 3 → 1 instances while processing (state follows its partitions via the changelog)
//	lost-state    an instance's state directory is deleted while it is down (Pebble store)
//	partition     one of 3 instances (behind core's faultproxy) is cut off from the broker for longer than
//	              its session timeout while input flows, then heals; repeated
//	poison-fail, poison-skip, poison-dlq
//	              poison and undecodable records mid-stream under each error policy
//	redis-kill9   kill9's kills with the count in Redis (stores/redis, a redis-server of the scenario's own)
//	redis-kill9-unlogged
//	              the same without a changelog: Redis alone holds the counts (long mode, or -only)
//	snapshot-kill9-unlogged
//	              kill9's kills with the count in Pebble kept in S3 (core/store/snapshot, a versitygw of
//	              the scenario's own) and no changelog, each restart on an empty state directory
//
// Each scenario prints its figures and verdict; the last line is
// "chaos: N passed, M failed"; the exit status is 1 if any failed (any lost
// record fails a scenario).
//
//	go run ./chaos -mode short          # CI: every scenario, shortened
//	go run ./chaos -mode long           # the soak
//	go run ./chaos -only kill9,scale    # some scenarios
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

var (
	mode         = flag.String("mode", "short", "short (CI) or long (soak)")
	only         = flag.String("only", "", "comma-separated scenarios to run (default: all)")
	storeKind    = flag.String("store", "pebble", "store backend of the app where the scenario does not choose: memory, pebble or redis (a redis-server the run starts)")
	seed         = flag.Uint64("seed", 0, "random seed (0: from the clock)")
	keep         = flag.Bool("keep", false, "keep the work directory (logs, state) even when every scenario passes")
	transactions = flag.Bool("transactions", false, "run the apps with Kafka transactions (WithTransactions): the checker reads read_committed and requires no duplicate output")
	workDir      = flag.String("work", "", "work directory (default: a new one under tools/kafka/run)")

	checkBrokers = flag.String("check-brokers", "", "only run the checker on these brokers' topics (-check-in, -check-out, -check-dlq), e.g. those of a kept failed run")
	checkIn      = flag.String("check-in", "", "input topic for -check-brokers")
	checkOut     = flag.String("check-out", "", "output topic for -check-brokers")
	checkDLQ     = flag.String("check-dlq", "", "dead-letter topic for -check-brokers")
)

var rng *rand.Rand

func logf(format string, args ...any) {
	fmt.Printf("%s chaos: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// params are the sizes of a mode.
type params struct {
	kill9Records        int
	kill9Duration       time.Duration
	killEvery           [2]time.Duration // a kill every [min, max)
	snapshotRecords     int              // snapshot-kill9-unlogged
	snapshotDuration    time.Duration
	records             int // other scenarios
	duration            time.Duration
	poisonRecords       int
	poisonDuration      time.Duration
	bounces, scaleLoops int
}

var modes = map[string]params{
	"short": {
		kill9Records: 150_000, kill9Duration: 45 * time.Second, killEvery: [2]time.Duration{3 * time.Second, 6 * time.Second},
		snapshotRecords: 20_000, snapshotDuration: 15 * time.Second,
		records: 45_000, duration: 30 * time.Second,
		poisonRecords: 12_000, poisonDuration: 10 * time.Second,
		bounces: 1, scaleLoops: 1,
	},
	"long": {
		kill9Records: 1_000_000, kill9Duration: 8 * time.Minute, killEvery: [2]time.Duration{3 * time.Second, 8 * time.Second},
		snapshotRecords: 300_000, snapshotDuration: 3 * time.Minute,
		records: 300_000, duration: 3 * time.Minute,
		poisonRecords: 60_000, poisonDuration: time.Minute,
		bounces: 3, scaleLoops: 3,
	},
}

// env is what scenarios share: the app binary, the clusters, the sizes.
type env struct {
	p       params
	work    string
	appBin  string
	script  string
	single  *cluster
	triple  *cluster
	runDir  string
	started []*cluster
}

func (e *env) cluster(ctx context.Context, nodes int) (*cluster, error) {
	if nodes == 1 && e.single != nil {
		return e.single, nil
	}
	if nodes == 3 && e.triple != nil {
		return e.triple, nil
	}
	if nodes == 3 && e.single != nil {
		// Two clusters at once are too much for 2 cores: the 3-node
		// scenario runs last, after the single node is gone.
		e.single.stop()
		e.single = nil
	}
	dir := filepath.Join(e.runDir, fmt.Sprintf("cluster-%d", nodes))
	logf("starting a %d-node Apache Kafka cluster in %s", nodes, dir)
	c, err := startCluster(ctx, e.script, dir, nodes)
	if err != nil {
		return nil, err
	}
	e.started = append(e.started, c)
	if nodes == 1 {
		e.single = c
	} else {
		e.triple = c
	}
	logf("cluster at %s", strings.Join(c.brokers, ","))
	return c, nil
}

func (e *env) close() {
	for _, c := range e.started {
		c.stop()
	}
}

type scenarioFunc func(ctx context.Context, e *env, s *scenario) error

var scenarios = []struct {
	name  string
	nodes int
	run   scenarioFunc
}{
	{"kill9", 1, runKill9},
	{"broker-bounce", 1, runBrokerBounce},
	{"scale", 1, runScale},
	{"lost-state", 1, runLostState},
	{"poison-fail", 1, runPoisonFail},
	{"poison-skip", 1, runPoisonPolicy("skip")},
	{"poison-dlq", 1, runPoisonPolicy("dlq")},
	{"partition", 1, runPartition},
	{"redis-kill9", 1, runRedisKill9(true)},
	{"redis-kill9-unlogged", 1, runRedisKill9(false)},
	{"snapshot-kill9-unlogged", 1, runSnapshotKill9},
	{"broker-kill", 3, runBrokerKill},
}

// longOnly are the scenarios the short mode leaves out (CI's time budget).
var longOnly = map[string]bool{"redis-kill9-unlogged": true}

func main() {
	flag.Parse()
	p, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	rng = rand.New(rand.NewPCG(*seed, 0x6b73))
	if *checkBrokers != "" {
		os.Exit(checkOnly())
	}
	code := run(p)
	os.Exit(code)
}

func run(p params) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	script, err := findScript()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	toolsDir := filepath.Dir(filepath.Dir(script))
	e := &env{p: p, script: script, runDir: *workDir}
	if e.runDir == "" {
		e.runDir = filepath.Join(toolsDir, "kafka", "run", fmt.Sprintf("chaos-%s", time.Now().Format("20060102-150405")))
	}
	if err := os.MkdirAll(e.runDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	e.work = e.runDir
	defer e.close()
	logf("mode %s, seed %d, work directory %s", *mode, *seed, e.runDir)

	e.appBin = filepath.Join(e.runDir, "chaos-app")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.appBin, "./chaos/app")
	build.Dir = toolsDir
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building the app:", err)
		return 2
	}

	if *storeKind == "redis" {
		addr, stopRedis, err := startRedisServer(filepath.Join(e.runDir, "redis"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
		defer stopRedis()
		redisAddr = addr
	}

	var selected []string
	if *only != "" {
		selected = strings.Split(*only, ",")
	}
	passed, failed := 0, 0
	var failures []string
	for _, sc := range scenarios {
		if selected != nil && !slices.Contains(selected, sc.name) {
			continue
		}
		if selected == nil && *mode == "short" && longOnly[sc.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		logf("=== scenario %s", sc.name)
		s := &scenario{name: sc.name, e: e, dir: filepath.Join(e.runDir, sc.name)}
		err := func() error {
			cl, err := e.cluster(ctx, sc.nodes)
			if err != nil {
				return err
			}
			s.cl = cl
			if err := os.MkdirAll(s.dir, 0o755); err != nil {
				return err
			}
			defer s.stopAll()
			return sc.run(ctx, e, s)
		}()
		if err == nil && s.v != nil && !s.v.ok() {
			err = fmt.Errorf("checker found problems")
		}
		if err == nil && len(s.failures) > 0 {
			f := s.failures
			if len(f) > 3 {
				f = append(f[:3:3], fmt.Sprintf("and %d more", len(s.failures)-3))
			}
			err = fmt.Errorf("%s", strings.Join(f, "; "))
		}
		s.report(time.Since(start), err)
		if err != nil {
			failed++
			failures = append(failures, sc.name)
		} else {
			passed++
		}
	}
	if failed > 0 || *keep {
		logf("logs and state kept in %s", e.runDir)
	}
	e.close()
	e.started = nil
	if failed == 0 && !*keep {
		os.RemoveAll(e.runDir)
	}
	if len(failures) > 0 {
		logf("failed: %s", strings.Join(failures, ", "))
	}
	fmt.Printf("chaos: %d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}

func checkOnly() int {
	v, err := check(context.Background(), strings.Split(*checkBrokers, ","), *checkIn, *checkOut, *checkDLQ)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	s := &scenario{name: "check", v: v, knownSeen: map[string]int{}}
	var err2 error
	if !v.ok() {
		err2 = fmt.Errorf("checker found problems")
	}
	s.report(0, err2)
	if err2 != nil {
		return 1
	}
	return 0
}

// findScript finds tools/kafka/kafka.sh from the working directory up.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 10 {
		for _, p := range []string{filepath.Join(dir, "kafka", "kafka.sh"), filepath.Join(dir, "tools", "kafka", "kafka.sh")} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		dir = filepath.Dir(dir)
	}
	return "", fmt.Errorf("tools/kafka/kafka.sh not found above the working directory")
}
