package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// partitionSizes are the partition scenario's figures per mode.
var partitionSizes = map[string]struct {
	cycles   int           // network partitions of the proxied instance
	records  int           // input records
	duration time.Duration // over which they are written
}{
	"short": {cycles: 3, records: 50_000, duration: 55 * time.Second},
	"long":  {cycles: 10, records: 250_000, duration: 4 * time.Minute},
}

const (
	// partitionSession is the apps' session timeout: the broker's minimum
	// in kafka.sh is 1s, Kafka's default minimum 6s.
	partitionSession = 6 * time.Second
	// partitionTasks is the number of tasks: one sub-topology, 12 partitions.
	partitionTasks = 12
)

// runPartition: three instances over 12 partitions; the third reaches the
// broker only through a faultproxy (core/internal/faultproxy). While input
// flows, it is cut off by a network partition (a blackhole: nothing it
// sends or is sent arrives, ever) for longer than the session timeout, so
// its tasks move to the other two while its produce requests are in
// flight; once the others own every task and have written, the partition
// heals (its connections are reset, as after a long partition) and it
// rejoins. Repeated. Nothing may be lost and no count may go back: a write
// of the stale owner that lands after the new owner's is the bug this
// scenario exists to catch (invariant 8).
func runPartition(ctx context.Context, e *env, s *scenario) error {
	sz, ok := partitionSizes[*mode]
	if !ok {
		return fmt.Errorf("partition: no sizes for mode %q", *mode)
	}
	if err := s.setup(ctx, partitionTasks); err != nil {
		return err
	}
	fp, err := startFaultProxy(ctx, e, s)
	if err != nil {
		return err
	}
	defer fp.stop()
	flags := append(storeFlag(), "-session-timeout", partitionSession.String())
	direct := s.newInstances(2, flags...)
	// The later -brokers wins: the third instance knows only the proxy.
	stale := s.newInstances(1, append(flags, "-brokers", fp.bootstrap)...)[0]
	for _, in := range append(direct, stale) {
		s.start(in)
	}
	s.monitor()
	w := &workload{total: sz.records, keys: 1000, duration: sz.duration}
	if err := s.produce(ctx, w); err != nil {
		return err
	}
	var windows []partitionWindow
	for i := 0; i < sz.cycles && ctx.Err() == nil; i++ {
		if done(w.done) {
			s.note("input ended after %d of %d partitions", i, sz.cycles)
			break
		}
		// The proxied instance must own tasks (and so write) when it is cut off.
		if !waitCond(ctx, 30*time.Second, func() bool { return stale.stats()["tasks"] > 0 }) {
			s.note("partition %d: %s owned no task after 30s; cut off anyway", i+1, stale.name)
		}
		if !sleep(ctx, randDur(time.Second, 3*time.Second)) {
			break
		}
		var before, after proxyStats
		_ = fp.getJSON("/stats", &before)
		win := partitionWindow{staleTasks: stale.stats()["tasks"], atProduce: i%2 == 0}
		if win.atProduce {
			// The partition begins with a produce request, which is dropped:
			// a write in flight whatever the timing.
			if err := fp.call("POST", "/blackhole-at-produce"); err != nil {
				return err
			}
			if !waitCond(ctx, 10*time.Second, func() bool {
				var st proxyStats
				return fp.getJSON("/stats", &st) == nil && st.Blackholed
			}) {
				s.note("partition %d: %s sent no produce request within 10s; cut off anyway", i+1, stale.name)
			}
		}
		if err := fp.call("POST", "/blackhole?on=1"); err != nil {
			return err
		}
		win.start = time.Now()
		how := "at a random moment"
		if win.atProduce {
			how = "at a produce request"
		}
		logf("%s: partition %d: %s (%d tasks) cut off from the broker %s", s.name, i+1, stale.name, win.staleTasks, how)
		// Its session expires; the others take every task and write.
		took := waitCond(ctx, 30*time.Second, func() bool {
			return direct[0].stats()["tasks"]+direct[1].stats()["tasks"] >= partitionTasks
		})
		win.moved = time.Since(win.start)
		if !took {
			s.note("partition %d: the other instances did not own all %d tasks within 30s", i+1, partitionTasks)
		}
		sleep(ctx, 2*time.Second)
		if err := fp.call("POST", "/blackhole?on=0"); err != nil {
			return err
		}
		if err := fp.call("POST", "/cut"); err != nil {
			return err
		}
		win.end = time.Now()
		if fp.getJSON("/stats", &after) == nil {
			win.produceDropped = after.ProduceDropped - before.ProduceDropped
			win.framesDropped = after.FramesDropped - before.FramesDropped
		}
		windows = append(windows, win)
		logf("%s: partition %d healed after %s (the others owned every task after %s)", s.name, i+1,
			win.end.Sub(win.start).Round(100*time.Millisecond), win.moved.Round(100*time.Millisecond))
		if !sleep(ctx, randDur(3*time.Second, 6*time.Second)) {
			break
		}
	}
	for i, win := range windows {
		how := "at a random moment"
		if win.atProduce {
			how = "at a produce request"
		}
		s.note("partition %d at %s, %s: %s had %d tasks; the others owned all after %s; healed after %s; dropped %d frames, %d of them produce requests", i+1,
			win.start.Format("15:04:05"), how, stale.name, win.staleTasks, win.moved.Round(100*time.Millisecond),
			win.end.Sub(win.start).Round(100*time.Millisecond), win.framesDropped, win.produceDropped)
	}
	if err := s.finish(ctx, ""); err != nil {
		return err
	}
	var st proxyStats
	if err := fp.getJSON("/stats", &st); err != nil {
		s.note("proxy stats: %v", err)
	} else {
		s.note("proxy: %d connections, %d produce requests forwarded, %d dropped, %d frames dropped, %d protocol errors %s; %s's producer ids %v",
			st.Connections, st.ProduceForwarded, st.ProduceDropped, st.FramesDropped, st.ProtocolErrors, st.LastError, stale.name, st.ProducerIDs)
		if st.ProtocolErrors > 0 {
			s.fail("the proxy closed %d connections on a protocol error: %s", st.ProtocolErrors, st.LastError)
		}
	}
	// The checker's verdict decides (lost ids, count regressions, count
	// loss); the notes say who wrote each regression.
	if !s.v.ok() {
		if err := explainRegressions(ctx, s, stale.name, st.ProducerIDs); err != nil {
			s.note("explaining the regressions: %v", err)
		}
	}
	return nil
}

// partitionWindow is one network partition of the proxied instance.
type partitionWindow struct {
	start, end time.Time
	moved      time.Duration // until the other instances owned every task
	staleTasks int64
	atProduce  bool // it began with a produce request of the proxied instance
	// frames and produce requests the proxy dropped during the partition
	framesDropped, produceDropped int64
}

// explainRegressions reads the topics again and notes, for the first
// outputs that break the checker's history rules (see judge) and for keys
// whose last output is not for their last record, the key, offsets, counts
// and which producer wrote them: the proxied instance (by the producer ids
// its proxy forwarded, "the old owner" when it was cut off) or another
// instance.
func explainRegressions(ctx context.Context, s *scenario, staleName string, staleIDs []int64) error {
	ins, err := readAll(ctx, s.cl.brokers, s.in)
	if err != nil {
		return err
	}
	outs, err := readAll(ctx, s.cl.brokers, s.out)
	if err != nil {
		return err
	}
	rank := map[string]int64{}
	truth := map[string]int64{}
	for _, r := range byPartitionOffset(ins) {
		truth[string(r.Key)]++
		rank[string(r.Value)] = truth[string(r.Key)]
	}
	who := func(pid int64) string {
		if slices.Contains(staleIDs, pid) {
			return fmt.Sprintf("%s/pid %d", staleName, pid)
		}
		return fmt.Sprintf("other/pid %d", pid)
	}
	type out struct {
		rank, count, offset, pid int64
		partition                int32
		ts                       time.Time
	}
	last := map[string]out{}
	newest := map[string]out{} // the output of the highest rank so far
	shown, staleLate := 0, 0
	show := func(format string, args ...any) {
		if shown < 10 {
			shown++
			s.note(format, args...)
		}
	}
	for _, r := range byPartitionOffset(outs) {
		var o struct {
			ID    string `json:"id"`
			Count int64  `json:"count"`
		}
		if json.Unmarshal(r.Value, &o) != nil {
			continue
		}
		key := string(r.Key)
		cur := out{rank: rank[o.ID], count: o.Count, offset: r.Offset, pid: r.ProducerID, partition: r.Partition, ts: r.Timestamp}
		prev, had := last[key]
		switch {
		case cur.rank > prev.rank+1:
			show("key %s: out/%d@%d (record %d, count %d, by %s, ts %s) follows @%d (record %d, count %d, by %s); newest before: @%d record %d by %s",
				key, cur.partition, cur.offset, cur.rank, cur.count, who(cur.pid), cur.ts.Format("15:04:05.000"),
				prev.offset, prev.rank, prev.count, who(prev.pid), newest[key].offset, newest[key].rank, who(newest[key].pid))
			if had && slices.Contains(staleIDs, prev.pid) && !slices.Contains(staleIDs, newest[key].pid) {
				staleLate++
			}
		case cur.count < cur.rank, cur.rank == prev.rank+1 && cur.count <= prev.count:
			show("key %s: out/%d@%d (record %d, count %d, by %s) after @%d (record %d, count %d, by %s): an increment lost",
				key, cur.partition, cur.offset, cur.rank, cur.count, who(cur.pid), prev.offset, prev.rank, prev.count, who(prev.pid))
		}
		last[key] = cur
		if cur.rank >= newest[key].rank {
			newest[key] = cur
		}
	}
	lateEnd := 0
	for key, n := range truth {
		l := last[key]
		if l.rank < n && l.rank > 0 {
			lateEnd++
			show("key %s: last output out/%d@%d is for record %d of %d (count %d, by %s); record %d's output @%d was by %s",
				key, l.partition, l.offset, l.rank, n, l.count, who(l.pid), newest[key].rank, newest[key].offset, who(newest[key].pid))
		}
	}
	s.note("%d keys end on an older record's output; %d outputs follow a write of %s that came after another owner's newer ones",
		lateEnd, staleLate, staleName)
	return nil
}

// faultProxy is a running faultproxy process (core/internal/faultproxy/cmd/faultproxy).
type faultProxy struct {
	cmd       *exec.Cmd
	done      chan struct{}
	bootstrap string
	control   string
}

// proxyStats is the part of faultproxy's GET /stats the scenario reads.
type proxyStats struct {
	Blackholed       bool    `json:"blackholed"`
	Connections      int64   `json:"connections"`
	ProduceForwarded int64   `json:"produce_forwarded"`
	ProduceDropped   int64   `json:"produce_dropped"`
	FramesDropped    int64   `json:"frames_dropped"`
	ProtocolErrors   int64   `json:"protocol_errors"`
	LastError        string  `json:"last_error"`
	ProducerIDs      []int64 `json:"producer_ids"`
}

// startFaultProxy builds the proxy (once per run, from core) and starts it
// in front of the scenario's cluster.
func startFaultProxy(ctx context.Context, e *env, s *scenario) (*faultProxy, error) {
	bin := filepath.Join(e.runDir, "faultproxy")
	if _, err := os.Stat(bin); err != nil {
		coreDir := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(e.script))), "core")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/faultproxy/cmd/faultproxy")
		build.Dir = coreDir
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building faultproxy in %s: %w", coreDir, err)
		}
	}
	logFile, err := os.Create(filepath.Join(s.dir, "faultproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-brokers", strings.Join(s.cl.brokers, ","), "-control", "127.0.0.1:0")
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting faultproxy: %w", err)
	}
	fp := &faultProxy{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(fp.done)
	}()
	timeout := time.After(30 * time.Second)
	for fp.bootstrap == "" || fp.control == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				fp.stop()
				return nil, fmt.Errorf("faultproxy exited before printing its addresses (see %s)", logFile.Name())
			}
			if v, ok := strings.CutPrefix(l, "bootstrap="); ok {
				fp.bootstrap = v
			} else if v, ok := strings.CutPrefix(l, "control="); ok {
				fp.control = v
			}
		case <-timeout:
			fp.stop()
			return nil, fmt.Errorf("faultproxy printed no addresses within 30s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return fp, nil
}

func (fp *faultProxy) stop() {
	_ = fp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-fp.done:
	case <-time.After(10 * time.Second):
		_ = fp.cmd.Process.Kill()
		<-fp.done
	}
}

var proxyHTTP = &http.Client{Timeout: 10 * time.Second}

// call sends a control command to the proxy.
func (fp *faultProxy) call(method, path string) error {
	req, err := http.NewRequest(method, "http://"+fp.control+path, nil)
	if err != nil {
		return err
	}
	resp, err := proxyHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("faultproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("faultproxy %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (fp *faultProxy) getJSON(path string, v any) error {
	resp, err := proxyHTTP.Get("http://" + fp.control + path)
	if err != nil {
		return fmt.Errorf("faultproxy GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("faultproxy GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitCond polls cond every 200ms until it holds (true) or timeout passes.
func waitCond(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || !sleep(ctx, 200*time.Millisecond) {
			return false
		}
	}
	return true
}

// done reports whether ch is closed.
func done(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
