package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// redisAddr is the address of the run's redis-server, with -store redis:
// every scenario that leaves the store to the -store flag then counts in
// Redis (partition, for one, makes a stale owner flush after a newer one
// claimed its store instances).
var redisAddr string

// runRedisKill9 is kill9 with the count in Redis (stores/redis) on a
// redis-server of the scenario's own: three instances over 12 partitions, a
// random one SIGKILLed every few seconds and restarted. With changelog,
// the runtime restores only the changelog after the offset Redis keeps
// with the data; without (store.WithoutChangelog), Redis alone holds the
// counts, flushed before each commit of the input offsets and fenced by
// the owner's epoch, with the input offsets the counts cover
// (store.InputOffsetKeeper), which restarts resume from. The checker judges
// the output as for every scenario (any lost record, count regression or
// count loss fails it) and, without changelog, also fails any count above
// the inputs: the state is exact there.
func runRedisKill9(changelog bool) scenarioFunc {
	return func(ctx context.Context, e *env, s *scenario) error {
		addr, stop, err := startRedisServer(s.dir)
		if err != nil {
			return err
		}
		defer stop()
		flags := []string{"-store", "redis", "-redis", addr}
		if !changelog {
			flags = append(flags, "-changelog=false")
		}
		w := &workload{total: e.p.records, keys: 1000, duration: e.p.duration}
		if err := s.kill9(ctx, w, e.p.killEvery, false, flags...); err != nil {
			return err
		}
		if !changelog && s.v != nil {
			s.v.checkExactState()
		}
		return nil
	}
}

// startRedisServer starts redis-server on a free port of 127.0.0.1, without
// persistence, logging to dir/redis.log; stop kills it. A missing binary is
// an error (tools/services/redis.sh installs it; tools/test.sh runs that).
func startRedisServer(dir string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server not installed: run tools/services/redis.sh")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		log := filepath.Join(dir, "redis.log")
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", log)
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("starting redis-server: %w", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		if redisReady(addr, exited) {
			logf("redis-server at %s (log %s)", addr, log)
			return addr, func() { cmd.Process.Kill(); <-exited }, nil
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 3 {
			b, _ := os.ReadFile(log)
			return "", nil, fmt.Errorf("redis-server on %s did not start: %s", addr, strings.TrimSpace(string(b)))
		}
	}
}

// redisReady waits up to 10 s for the server at addr to answer PING
// (in the protocol's inline form, no client library needed).
func redisReady(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond); err == nil {
			c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 16)
			_, err = c.Write([]byte("PING\r\n"))
			n := 0
			if err == nil {
				n, _ = c.Read(buf)
			}
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
