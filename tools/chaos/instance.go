package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// instance is one OS process of the counting app (tools/chaos/app), started,
// killed and restarted by a scenario. Its state directory outlives the
// process.
type instance struct {
	name     string
	bin      string
	dir      string // scenario work dir: logs go here
	stateDir string
	args     []string // app flags other than -state-dir

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	starts  int
	logs    []string
}

func newInstance(name, bin, dir string, args []string) *instance {
	return &instance{name: name, bin: bin, dir: dir, stateDir: filepath.Join(dir, name+"-state"), args: args}
}

// start starts the process; extra flags are appended after the instance's.
func (in *instance) start(extra ...string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		select {
		case <-in.done:
		default:
			return fmt.Errorf("%s already running", in.name)
		}
	}
	in.starts++
	logPath := filepath.Join(in.dir, fmt.Sprintf("%s-%d.log", in.name, in.starts))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	args := append(append([]string{"-state-dir", in.stateDir}, in.args...), extra...)
	cmd := exec.Command(in.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	in.cmd, in.done, in.exitErr = cmd, done, nil
	in.logs = append(in.logs, logPath)
	go func() {
		err := cmd.Wait()
		f.Close()
		in.mu.Lock()
		in.exitErr = err
		in.mu.Unlock()
		close(done)
	}()
	return nil
}

// started reports whether the instance was ever started.
func (in *instance) started() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.starts > 0
}

func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (in *instance) kill() {
	in.signal(syscall.SIGKILL, 10*time.Second)
}

// stop asks the process to stop gracefully (SIGTERM), and kills it if it has
// not stopped within timeout. It returns the process's exit error.
func (in *instance) stop(timeout time.Duration) error {
	if !in.signal(syscall.SIGTERM, timeout) {
		logf("%s did not stop within %v after SIGTERM: killing it", in.name, timeout)
		in.kill()
		return fmt.Errorf("%s did not stop within %v", in.name, timeout)
	}
	return in.exit()
}

// signal sends sig and waits up to timeout for the exit; false if it did not
// exit.
func (in *instance) signal(sig syscall.Signal, timeout time.Duration) bool {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// wait waits up to timeout for the process to exit by itself.
func (in *instance) wait(timeout time.Duration) bool {
	in.mu.Lock()
	done := in.done
	in.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (in *instance) exit() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exitErr
}

// stats returns the last STATS line of the current run as a map.
func (in *instance) stats() map[string]int64 {
	in.mu.Lock()
	var path string
	if len(in.logs) > 0 {
		path = in.logs[len(in.logs)-1]
	}
	in.mu.Unlock()
	m := map[string]int64{}
	if path == "" {
		return m
	}
	eachLine(path, func(line string) {
		if rest, ok := strings.CutPrefix(line, "STATS "); ok {
			clear(m)
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				m[k], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	})
	return m
}

// fatal returns the FATAL line of the current run, if any.
func (in *instance) fatal() string {
	in.mu.Lock()
	path := in.logs[len(in.logs)-1]
	in.mu.Unlock()
	var f string
	eachLine(path, func(line string) {
		if rest, ok := strings.CutPrefix(line, "FATAL "); ok {
			f = rest
		}
	})
	return f
}

// runStats sums, over every run of the instance, the final counters and
// the restore figures.
type runStats struct {
	skipped, deadLettered, restored int64
	restores                        int
	maxRestore                      time.Duration
}

func (in *instance) allRuns() runStats {
	in.mu.Lock()
	logs := append([]string(nil), in.logs...)
	in.mu.Unlock()
	var rs runStats
	for _, path := range logs {
		last := map[string]int64{}
		eachLine(path, func(line string) {
			if rest, ok := strings.CutPrefix(line, "STATS "); ok {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					last[k], _ = strconv.ParseInt(v, 10, 64)
				}
			}
			if rest, ok := strings.CutPrefix(line, "RESTORED "); ok {
				rs.restores++
				for _, kv := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(kv, "ms="); ok {
						ms, _ := strconv.ParseInt(v, 10, 64)
						rs.maxRestore = max(rs.maxRestore, time.Duration(ms)*time.Millisecond)
					}
				}
			}
		})
		rs.skipped += last["skipped"]
		rs.deadLettered += last["dead_lettered"]
		rs.restored += last["restored"]
	}
	return rs
}

func eachLine(path string, fn func(string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
}
