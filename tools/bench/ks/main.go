// Command ks runs kstreams side by side with Kafka Streams 4.x (and, for
// the slow I/O scenario, Confluent's parallel-consumer) on one real Apache
// Kafka broker, on the same data, one after the other, and writes a Markdown
// table and an SVG plot.
//
//	cd tools && go run ./bench/ks            # default sizes, writes docs/benchmarks/ks-<date>.{md,svg}
//	cd tools && go run ./bench/ks -quick     # small sizes, writes tools/bench/ks/out/
//
// It builds tools/bench/ks/app (the kstreams side, a separate OS process)
// and the Maven projects under tools/bench/ks/java, starts a broker with
// tools/kafka/kafka.sh, preloads the input topics and runs, per scenario and
// implementation, a fresh application (new application id and state
// directory) on the whole input topic:
//
//   - throughput: input records / (last output − first output), the output
//     counted by polling the output topic's end offsets; start-up (process
//     start to first output) is reported apart;
//   - latency: after the backlog, records are produced at a fixed rate with
//     the current time as timestamp; the output topic uses LogAppendTime, so
//     latency = output append time − input timestamp (p50, p99);
//   - peak RSS (VmHWM) and CPU seconds (utime+stime) of the app's process;
//   - recovery: after a count over -recovery-keys distinct keys, the app is
//     stopped, its state directory deleted, and restarted: time from the
//     process start to the first output of a new record (all stores restored
//     from the changelog first).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	quick        = flag.Bool("quick", false, "small sizes (a couple of minutes), output to tools/bench/ks/out unless -out is set")
	records      = flag.Int("records", 1_000_000, "input records (scenarios 1-3)")
	keys         = flag.Int("keys", 10_000, "distinct keys (scenarios 1-3)")
	partitions   = flag.Int("partitions", 8, "partitions of every topic")
	valueSize    = flag.Int("value-size", 100, "value bytes")
	slowRecords  = flag.Int("slow-records", 50_000, "input records of the slow I/O scenario")
	slowKeys     = flag.Int("slow-keys", 1000, "distinct keys of the slow I/O scenario")
	concurrency  = flag.Int("concurrency", 1000, "kstreams and parallel-consumer concurrency (slow I/O)")
	recoveryKeys = flag.Int("recovery-keys", 1_000_000, "distinct keys (one record each) of the recovery scenario; 0 skips it")
	latRate      = flag.Int("latency-rate", 2000, "records/s produced in the latency phase (slow I/O: a tenth)")
	latDur       = flag.Duration("latency-duration", 5*time.Second, "length of the latency phase")
	commitIvl    = flag.Duration("commit-interval", 5*time.Second, "commit interval (both sides)")
	only         = flag.String("only", "", "comma-separated scenarios to run (stateless,count,window,slow,recovery)")
	outDir       = flag.String("out", "", "directory for the report (default docs/benchmarks, -quick: tools/bench/ks/out)")
	profileDir   = flag.String("cpuprofile-dir", "", "write a CPU profile of each kstreams app run here")
	runTimeout   = flag.Duration("run-timeout", 10*time.Minute, "longest wait for one run's output")
	rounds       = flag.Int("rounds", 3, "runs of each scenario and contender, alternating the contenders' order from round to round; the report gives medians and spreads (-quick: 1)")
	ksThreads    = flag.String("ks-threads", "1", "Kafka Streams stream threads for scenarios 1-3, one row per entry: comma-separated numbers, 'cores' for one per core; 'none' for no Kafka Streams row")
	ksCache      = flag.Bool("ks-cache", false, "add a Kafka Streams row with its record cache on (10 MiB, its default) to count and window")
	variants     variantFlag
)

func init() {
	flag.Var(&variants, "kstreams-variant", "an extra kstreams row, NAME=ARGS: tools/bench/ks/app run with these extra arguments (repeatable), e.g. 'big-fetch=-fetch-partition-bytes 1048576'; the argument cgroup-memory=BYTES runs the app in a memory cgroup (v1) of that limit, page cache included")
}

// variantFlag collects -kstreams-variant flags.
type variantFlag []contender

func (v *variantFlag) String() string { return fmt.Sprint(*v) }

func (v *variantFlag) Set(s string) error {
	name, args, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("-kstreams-variant %q: want NAME=ARGS", s)
	}
	c := contender{name: "kstreams-" + name, impl: "kstreams"}
	for _, a := range strings.Fields(args) {
		if lim, ok := strings.CutPrefix(a, "cgroup-memory="); ok {
			n, err := strconv.ParseInt(lim, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("-kstreams-variant %q: cgroup-memory=%q is not a byte count", s, lim)
			}
			c.cgroupMem = n
			continue
		}
		c.args = append(c.args, a)
	}
	*v = append(*v, c)
	return nil
}

// contender is one row of the comparison: an implementation and its settings.
type contender struct {
	name       string // row name; "kstreams" and "kafka-streams" are the references
	impl       string // kstreams, kafka-streams or parallel-consumer
	threads    int    // Kafka Streams' stream threads (0: the scenario's default)
	cacheBytes int64  // Kafka Streams' record cache (0: off)
	cgroupMem  int64  // run in a memory cgroup of this limit (0: none)
	args       []string
}

// mainContenders returns the rows of scenarios 1-3 from the flags.
func mainContenders() []contender {
	cs := []contender{{name: "kstreams", impl: "kstreams"}}
	cs = append(cs, variants...)
	seen := map[int]bool{}
	for _, t := range strings.Split(*ksThreads, ",") {
		if strings.TrimSpace(t) == "none" {
			continue // kstreams rows only
		}
		n := runtime.NumCPU()
		if t = strings.TrimSpace(t); t != "cores" {
			var err error
			if n, err = strconv.Atoi(t); err != nil || n < 1 {
				log.Fatalf("-ks-threads: %q is neither a positive number nor 'cores'", t)
			}
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		name := "kafka-streams"
		if n != 1 {
			name = fmt.Sprintf("kafka-streams-%dt", n)
		}
		cs = append(cs, contender{name: name, impl: "kafka-streams", threads: n})
	}
	if *ksCache {
		cs = append(cs, contender{name: "kafka-streams-cache", impl: "kafka-streams", threads: 1, cacheBytes: 10 << 20})
	}
	return cs
}

// rotate returns cs starting at its round-th element: each round runs the
// contenders in another order, so that none is always first or last.
func rotate(cs []contender, round int) []contender {
	k := round % len(cs)
	return append(slices.Clone(cs[k:]), cs[:k]...)
}

type paths struct{ root, ks, run string }

var p paths

func main() {
	flag.Parse()
	if *quick {
		setDefault("records", "100000")
		setDefault("keys", "10000")
		setDefault("partitions", "4")
		setDefault("slow-records", "5000")
		setDefault("recovery-keys", "50000")
		setDefault("latency-duration", "2s")
		setDefault("rounds", "1")
	}
	if *rounds < 1 {
		log.Fatal("-rounds must be at least 1")
	}
	log.SetFlags(log.Ltime)
	p = findPaths()
	if *outDir == "" {
		*outDir = filepath.Join(p.root, "docs", "benchmarks")
		if *quick {
			*outDir = filepath.Join(p.ks, "out")
		}
	}
	wall := time.Now()
	must(os.MkdirAll(p.run, 0o755))
	// State of earlier runs would not match this run's new broker.
	must(os.RemoveAll(filepath.Join(p.run, "state")))
	buildAll()

	kafkaDir := filepath.Join(p.run, "kafka")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	bootstrap, err := exec.CommandContext(ctx, filepath.Join(p.root, "tools/kafka/kafka.sh"), "start", "-n", "1", "-d", kafkaDir).Output()
	cancel()
	if err != nil {
		log.Fatalf("starting kafka: %v", err)
	}
	brokers := strings.TrimSpace(string(bootstrap))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exec.CommandContext(ctx, filepath.Join(p.root, "tools/kafka/kafka.sh"), "stop", "-d", kafkaDir).Run()
	}()
	log.Printf("kafka at %s", brokers)
	h := newHarness(brokers)
	defer h.close()

	rep := &report{start: wall, loadMin: math.MaxFloat64}
	var main, slow *input
	if want("stateless") || want("count") || want("window") {
		main = h.preload("in-main", *records, *keys, true)
	}
	if want("slow") {
		slow = h.preload("in-slow", *slowRecords, *slowKeys, false)
	}
	cs := mainContenders()
	slowCs := []contender{{name: "kstreams", impl: "kstreams"}, {name: "kafka-streams", impl: "kafka-streams", threads: *partitions},
		{name: "parallel-consumer", impl: "parallel-consumer"}}
	for round := range *rounds {
		for _, sc := range []string{"stateless", "count", "window"} {
			if !want(sc) {
				continue
			}
			for _, c := range rotate(cs, round) {
				if c.cacheBytes > 0 && sc == "stateless" {
					continue // no store, nothing cached
				}
				rep.add(h.run(sc, c, main, round, rep))
			}
		}
		if slow != nil {
			for _, c := range rotate(slowCs, round) {
				rep.add(h.run("slow", c, slow, round, rep))
			}
		}
	}
	if want("recovery") && *recoveryKeys > 0 {
		rec := h.preload("in-recovery", *recoveryKeys, *recoveryKeys, false)
		// The kstreams rows (variants included) and Kafka Streams with one
		// thread.
		var rcs []contender
		for _, c := range cs {
			if c.impl == "kstreams" || c.name == "kafka-streams" {
				rcs = append(rcs, c)
			}
		}
		for _, c := range rcs {
			rep.recovery = append(rep.recovery, h.recover(c, rec))
		}
	}
	rep.wall = time.Since(wall)
	rep.write(brokers)
}

func setDefault(name, v string) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		flag.Set(name, v)
	}
}

func want(s string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), s)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func findPaths() paths {
	d, err := os.Getwd()
	must(err)
	for {
		if _, err := os.Stat(filepath.Join(d, "tools/kafka/kafka.sh")); err == nil {
			ks := filepath.Join(d, "tools/bench/ks")
			return paths{root: d, ks: ks, run: filepath.Join(ks, "run")}
		}
		parent := filepath.Dir(d)
		if parent == d {
			log.Fatal("run from inside the kstreams repository (tools/kafka/kafka.sh not found above the working directory)")
		}
		d = parent
	}
}

func buildAll() {
	t := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(p.ks, "bin/app"), "./bench/ks/app")
	cmd.Dir = filepath.Join(p.root, "tools")
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	for _, m := range []string{"streams", "pc"} {
		cmd := exec.CommandContext(ctx, "mvn", "-B", "-q", "package")
		cmd.Dir = filepath.Join(p.ks, "java", m)
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Fatalf("mvn package in java/%s: %v\n%s", m, err, out)
		}
	}
	log.Printf("built the Go app and the Java apps in %v", time.Since(t).Round(time.Millisecond))
}

// input is a preloaded topic and what the harness has written to it since.
type input struct {
	topic    string
	total    int64 // records in the topic
	notSeven int64 // records whose key does not end in '7' (the stateless output)
}

type harness struct {
	brokers string
	cl      *kgo.Client
	adm     *kadm.Client
	n       int // runs so far, for unique names
	lat     int // latency keys so far
}

func newHarness(brokers string) *harness {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	must(err)
	return &harness{brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}
}

func (h *harness) close() { h.cl.Close() }

func (h *harness) createTopic(name string, cfg map[string]*string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.adm.CreateTopic(ctx, int32(*partitions), 1, cfg, name)
	if err == nil {
		err = resp.Err
	}
	must(err)
}

// preload writes n records over k keys ("key-<i mod k>") to a new topic.
// With spread, timestamps spread evenly over the two hours ending an hour
// ago (so that tumbling windows of one minute see ~120 windows per key);
// otherwise they are the produce time.
func (h *harness) preload(topic string, n, k int, spread bool) *input {
	t := time.Now()
	h.createTopic(topic, nil)
	value := bytes.Repeat([]byte("x"), *valueSize)
	base := time.Now().Add(-3 * time.Hour)
	in := &input{topic: topic}
	var mu sync.Mutex
	var perr error
	ctx := context.Background()
	for i := range n {
		key := []byte("key-" + strconv.Itoa(i%k))
		r := &kgo.Record{Topic: topic, Key: key, Value: value}
		if spread {
			r.Timestamp = base.Add(time.Duration(int64(2*time.Hour) * int64(i) / int64(n)))
		}
		in.total++
		if !endsWith7(key) {
			in.notSeven++
		}
		h.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	must(h.cl.Flush(fctx))
	must(perr)
	log.Printf("preloaded %s: %d records, %d keys, %d-byte values, %d partitions in %v", topic, n, k, *valueSize, *partitions, time.Since(t).Round(time.Millisecond))
	return in
}

func endsWith7(k []byte) bool { return len(k) > 0 && k[len(k)-1] == '7' }

// result is one scenario × implementation.
type result struct {
	scenario, impl string // impl: the contender's name
	round          int
	cached         bool // Kafka Streams' record cache on: the end is known from the committed offsets
	records        int64
	startup        time.Duration // process start → first output
	steady         time.Duration // first → last output of the backlog
	p50, p99, pmax time.Duration
	latN           int
	rssKiB         int64
	cpu            float64 // seconds, whole process life until the end of the latency phase
	err            string
}

func (r result) rate() float64 {
	return float64(r.records) / max(r.steady, time.Millisecond).Seconds() // append times have ms resolution
}

// proc is a running app.
type proc struct {
	cmd   *exec.Cmd
	start time.Time
	done  chan error
}

func (h *harness) startApp(scenario string, c contender, in, out, appID, stateDir string, logName string) *proc {
	var cmd *exec.Cmd
	switch c.impl {
	case "kstreams":
		args := []string{"-scenario", scenario, "-brokers", h.brokers, "-in", in, "-out", out, "-app-id", appID,
			"-state-dir", stateDir, "-concurrency", strconv.Itoa(*concurrency), "-commit-interval", commitIvl.String()}
		if *profileDir != "" {
			must(os.MkdirAll(*profileDir, 0o755))
			args = append(args, "-cpuprofile", filepath.Join(*profileDir, logName+".prof"))
		}
		cmd = exec.Command(filepath.Join(p.ks, "bin/app"), append(args, c.args...)...)
	case "kafka-streams":
		threads := max(c.threads, 1)
		if scenario == "slow" {
			threads = *partitions // one thread per partition: the most Kafka Streams can use
		}
		cmd = exec.Command("java", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
			"-cp", filepath.Join(p.ks, "java/streams/target/classes")+":"+filepath.Join(p.ks, "java/streams/target/lib/*"),
			"bench.StreamsBench", scenario, h.brokers, in, out, appID, stateDir, strconv.Itoa(threads), strconv.FormatInt(commitIvl.Milliseconds(), 10),
			strconv.FormatInt(c.cacheBytes, 10))
	case "parallel-consumer":
		cmd = exec.Command("java", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
			"-cp", filepath.Join(p.ks, "java/pc/target/classes")+":"+filepath.Join(p.ks, "java/pc/target/lib/*"),
			"bench.PcBench", h.brokers, in, out, appID, strconv.Itoa(*concurrency))
	default:
		log.Fatalf("unknown implementation %s", c.impl)
	}
	f, err := os.Create(filepath.Join(p.run, logName+".log"))
	must(err)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr := &proc{cmd: cmd, done: make(chan error, 1)}
	pr.start = time.Now()
	must(cmd.Start())
	cleanup := func() {}
	if c.cgroupMem > 0 {
		cleanup = inCgroup(cmd.Process.Pid, c.cgroupMem)
	}
	go func() { pr.done <- cmd.Wait(); f.Close(); cleanup() }()
	return pr
}

// inCgroup moves pid into a new memory cgroup (v1) limited to limit bytes
// and returns the function that removes the cgroup once pid exited. The
// process runs a few milliseconds unlimited first.
func inCgroup(pid int, limit int64) func() {
	dir := fmt.Sprintf("/sys/fs/cgroup/memory/ks-bench-%d", pid)
	must(os.Mkdir(dir, 0o755))
	must(os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644))
	return func() {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.max_usage_in_bytes")); err == nil {
			log.Printf("cgroup %s: peak usage %s bytes (limit %d), page cache included", dir, strings.TrimSpace(string(b)), limit)
		}
		if err := os.Remove(dir); err != nil {
			log.Printf("removing cgroup %s: %v", dir, err)
		}
	}
}

// stop sends SIGTERM and waits up to 30 s, then SIGKILLs the app.
func (pr *proc) stop() {
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(30 * time.Second):
		log.Printf("pid %d did not stop within 30s: SIGKILL", pr.cmd.Process.Pid)
		pr.cmd.Process.Kill()
		<-pr.done
	}
}

// usage reads peak RSS (KiB) and CPU seconds of a running process.
func usage(pid int) (rssKiB int64, cpu float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
			if len(f) > 13 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = float64(u+st) / 100 // USER_HZ is 100 on linux
			}
		}
	}
	return rssKiB, cpu
}

func (h *harness) endOffsets(topic string) (map[int32]int64, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := h.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, err
	}
	m := map[int32]int64{}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset; sum += o.Offset })
	return m, sum, nil
}

// waitOutput polls topic's end offsets until they sum to want; it returns
// the first time they exceeded base and the time they reached want.
func (h *harness) waitOutput(pr *proc, topic string, base, want int64, timeout time.Duration) (first, last time.Time, err error) {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-pr.done:
			pr.done <- err
			return first, last, fmt.Errorf("app exited early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		_, sum, err := h.endOffsets(topic)
		if err == nil {
			if sum > base && first.IsZero() {
				first = time.Now()
			}
			if sum >= want {
				return first, time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return first, last, fmt.Errorf("timed out after %v with %d of %d output records", timeout, sum-base, want-base)
		}
	}
}

// appendSpan returns the earliest and the latest append time of topic's
// records (first and last record of each partition; LogAppendTime topics).
func (h *harness) appendSpan(topic string) (first, last time.Time, err error) {
	ends, _, err := h.endOffsets(topic)
	if err != nil {
		return first, last, err
	}
	read := func(at func(end int64) int64) ([]time.Time, error) {
		offs := map[string]map[int32]kgo.Offset{topic: {}}
		for part, end := range ends {
			if end > 0 {
				offs[topic][part] = kgo.NewOffset().At(at(end))
			}
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(h.brokers, ",")...), kgo.ConsumePartitions(offs))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := map[int32]time.Time{}
		for len(got) < len(offs[topic]) {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fs.EachRecord(func(r *kgo.Record) {
				if _, ok := got[r.Partition]; !ok {
					got[r.Partition] = r.Timestamp
				}
			})
		}
		var ts []time.Time
		for _, t := range got {
			ts = append(ts, t)
		}
		return ts, nil
	}
	firsts, err := read(func(int64) int64 { return 0 })
	if err != nil {
		return first, last, err
	}
	lasts, err := read(func(end int64) int64 { return end - 1 })
	if err != nil {
		return first, last, err
	}
	first = slices.MinFunc(firsts, func(a, b time.Time) int { return a.Compare(b) })
	last = slices.MaxFunc(lasts, func(a, b time.Time) int { return a.Compare(b) })
	return first, last, nil
}

func (h *harness) outTopic(name string) {
	h.createTopic(name, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")})
}

func (h *harness) run(scenario string, c contender, in *input, round int, rep *report) (res result) {
	h.n++
	rep.sampleLoad()
	name := fmt.Sprintf("%s-%s", scenario, c.name)
	out := fmt.Sprintf("out-%d-%s", h.n, name)
	appID := fmt.Sprintf("bench-%d-%s", h.n, name)
	stateDir := filepath.Join(p.run, "state", appID)
	h.outTopic(out)
	want := in.total
	if scenario == "stateless" {
		want = in.notSeven
	}
	res = result{scenario: scenario, impl: c.name, round: round, cached: c.cacheBytes > 0, records: in.total}
	pr := h.startApp(scenario, c, in.topic, out, appID, stateDir, fmt.Sprintf("%s-r%d", name, round+1))
	defer pr.stop()
	var first, last time.Time
	var err error
	if res.cached {
		// With the cache, updates of a key merge: the output count is not
		// known, the committed offsets tell when the input was processed
		// (and the cache flushed: Kafka Streams flushes before committing).
		first, last, err = h.waitCommitted(pr, appID, out, in, *runTimeout)
	} else {
		first, last, err = h.waitOutput(pr, out, 0, want, *runTimeout)
	}
	if err != nil {
		res.err = err.Error()
		log.Printf("%-32s round %d FAILED: %v", name, round+1, err)
		return res
	}
	if !res.cached {
		// The output's append times bound the processing more precisely than
		// the polling does (a fast run can finish between two polls).
		if f, l, err := h.appendSpan(out); err == nil {
			first, last = f, l
		} else {
			log.Printf("%s: reading append times: %v (using the polled times)", name, err)
		}
	}
	res.startup, res.steady = first.Sub(pr.start), last.Sub(first)
	outBase := want
	if res.cached {
		_, outBase, err = h.endOffsets(out)
		must(err)
	}

	// Latency phase.
	rate := *latRate
	if scenario == "slow" {
		rate /= 10
	}
	lats, err := h.latency(pr, in, out, outBase, rate, scenario == "stateless")
	if err != nil {
		res.err = err.Error()
		log.Printf("%-32s round %d latency phase FAILED: %v", name, round+1, err)
	}
	res.latN = len(lats)
	if len(lats) > 0 {
		slices.Sort(lats)
		res.p50, res.p99, res.pmax = lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1]
	}
	res.rssKiB, res.cpu = usage(pr.cmd.Process.Pid)
	log.Printf("%-32s round %d %9.0f records/s (%d records, first→last output %v, start-up %v)  latency p50 %v p99 %v (n=%d)  peak RSS %d MiB  CPU %.1fs",
		name, round+1, res.rate(), res.records, res.steady.Round(time.Millisecond), res.startup.Round(time.Millisecond),
		res.p50.Round(time.Millisecond), res.p99.Round(time.Millisecond), res.latN, res.rssKiB/1024, res.cpu)
	return res
}

// waitCommitted polls the group appID's committed offsets until they cover
// in; it returns the first time out had records and the time the offsets
// covered in.
func (h *harness) waitCommitted(pr *proc, appID, out string, in *input, timeout time.Duration) (first, last time.Time, err error) {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-pr.done:
			pr.done <- err
			return first, last, fmt.Errorf("app exited early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if first.IsZero() {
			if _, sum, err := h.endOffsets(out); err == nil && sum > 0 {
				first = time.Now()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		offs, err := h.adm.FetchOffsets(ctx, appID)
		cancel()
		if err == nil {
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == in.topic && o.Err == nil {
					sum += o.At
				}
			})
			if sum >= in.total && !first.IsZero() {
				return first, time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return first, last, fmt.Errorf("timed out after %v before the committed offsets covered the input", timeout)
		}
	}
}

// latency produces rate records/s for -latency-duration with keys
// "lat-<n>" and the current time as timestamp, waits for their output, and
// returns output append time − input timestamp per record.
func (h *harness) latency(pr *proc, in *input, out string, outBase int64, rate int, filtered bool) ([]time.Duration, error) {
	starts, _, err := h.endOffsets(out)
	if err != nil {
		return nil, err
	}
	n := int(float64(rate) * latDur.Seconds())
	sent := map[int]time.Time{}
	value := bytes.Repeat([]byte("x"), *valueSize)
	expect := 0
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		h.lat++
		key := []byte("lat-" + strconv.Itoa(h.lat))
		now := time.Now()
		in.total++
		if !endsWith7(key) {
			in.notSeven++
		}
		if !filtered || !endsWith7(key) {
			sent[h.lat] = now
			expect++
		}
		h.cl.Produce(context.Background(), &kgo.Record{Topic: in.topic, Key: key, Value: value, Timestamp: now}, nil)
	}
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = h.cl.Flush(fctx)
	cancel()
	if err != nil {
		return nil, err
	}
	if _, _, err := h.waitOutput(pr, out, outBase, outBase+int64(expect), 2*time.Minute); err != nil {
		return nil, err
	}
	offs := map[string]map[int32]kgo.Offset{out: {}}
	for part, o := range starts {
		offs[out][part] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(h.brokers, ",")...), kgo.ConsumePartitions(offs))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lats []time.Duration
	seen := map[int]bool{}
	for len(seen) < expect {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return lats, fmt.Errorf("read %d of %d latency records", len(seen), expect)
		}
		fs.EachRecord(func(r *kgo.Record) {
			i := bytes.Index(r.Key, []byte("lat-"))
			if i < 0 {
				return
			}
			j := i + 4
			for j < len(r.Key) && r.Key[j] >= '0' && r.Key[j] <= '9' {
				j++
			}
			id, err := strconv.Atoi(string(r.Key[i+4 : j]))
			if err != nil || seen[id] {
				return
			}
			if t, ok := sent[id]; ok {
				seen[id] = true
				lats = append(lats, r.Timestamp.Sub(t))
			}
		})
	}
	return lats, nil
}

// recovery is the restart-without-local-state measurement of one implementation.
type recovery struct {
	impl          string
	keys          int
	initial       time.Duration // first→last output of the initial count
	first, all    time.Duration // restarted process start → first / all marker outputs
	rssKiB        int64
	cpu           float64
	err           string
	changelogRecs int64
}

func (h *harness) recover(c contender, in *input) (rec recovery) {
	h.n++
	impl := c.name
	name := "recovery-" + impl
	out := fmt.Sprintf("out-%d-%s", h.n, name)
	appID := fmt.Sprintf("bench-%d-%s", h.n, name)
	stateDir := filepath.Join(p.run, "state", appID)
	h.outTopic(out)
	rec = recovery{impl: impl, keys: int(in.total)}
	pr := h.startApp("count", c, in.topic, out, appID, stateDir, name+"-initial")
	first, last, err := h.waitOutput(pr, out, 0, in.total, *runTimeout)
	// Let a commit happen so that the restart does not reprocess the input.
	time.Sleep(*commitIvl + time.Second)
	pr.stop()
	if err != nil {
		rec.err = "initial count: " + err.Error()
		log.Printf("%-28s FAILED: %v", name, rec.err)
		return rec
	}
	if f, l, err := h.appendSpan(out); err == nil {
		first, last = f, l
	}
	rec.initial = last.Sub(first)
	must(os.RemoveAll(stateDir))
	_, base, err := h.endOffsets(out)
	must(err)
	// One new record per partition, so that every task must restore before
	// its output appears.
	for part := range int32(*partitions) {
		in.total++
		h.cl.Produce(context.Background(), &kgo.Record{Topic: in.topic, Partition: part, Key: []byte("marker-" + strconv.Itoa(int(part))),
			Value: []byte("x")}, nil)
	}
	_ = base
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	must(h.cl.Flush(ctx))
	cancel()
	pr = h.startApp("count", c, in.topic, out, appID, stateDir, name+"-restart")
	defer pr.stop()
	first, last, err = h.waitOutput(pr, out, base, base+int64(*partitions), *runTimeout)
	if err != nil {
		rec.err = "restart: " + err.Error()
		log.Printf("%-28s FAILED: %v", name, rec.err)
		return rec
	}
	rec.first, rec.all = first.Sub(pr.start), last.Sub(pr.start)
	rec.rssKiB, rec.cpu = usage(pr.cmd.Process.Pid)
	log.Printf("%-28s initial count of %d keys in %v; restart without state: first output after %v, all %d partitions after %v; peak RSS %d MiB, CPU %.1fs",
		name, rec.keys, rec.initial.Round(time.Millisecond), rec.first.Round(time.Millisecond), *partitions, rec.all.Round(time.Millisecond), rec.rssKiB/1024, rec.cpu)
	return rec
}
