package main

import (
	"bytes"
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

// runSnapshotKill9 is kill9 with the count in Pebble stores kept in an S3
// bucket (core/store/snapshot over stores/s3, a versitygw of the
// scenario's own) and no changelog: the snapshots are the only copy of the
// counts, uploaded before each commit of the input offsets together with
// those offsets. Every killed instance restarts on an empty state
// directory, so each of its stores is restored from the bucket alone. Any
// lost record, count regression or count loss fails the checker, and so
// does any over-count: the state and the offsets processing resumes from
// never disagree, so no input is counted twice (outputs may be repeated,
// with the same counts).
func runSnapshotKill9(ctx context.Context, e *env, s *scenario) error {
	endpoint, stop, err := startVersitygw(s.dir)
	if err != nil {
		return err
	}
	defer stop()
	w := &workload{total: e.p.snapshotRecords, keys: 1000, duration: e.p.snapshotDuration}
	// Kills twice as often as kill9: the scenario is short, and a restore
	// from the bucket is quick.
	every := [2]time.Duration{e.p.killEvery[0] / 2, e.p.killEvery[1] / 2}
	if err := s.kill9(ctx, w, every, true, "-store", "snapshot", "-s3", endpoint+"/"+versitygwBucket, "-changelog=false"); err != nil {
		return err
	}
	if s.v != nil {
		s.v.checkExactState()
	}
	return nil
}

// The credentials of the scenario's versitygw, given to the apps through
// the environment (they read AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
const (
	versitygwAccess = "kstreams-chaos"
	versitygwSecret = "kstreams-chaos-secret"
	versitygwBucket = "chaos"
)

// startVersitygw starts versitygw (posix backend under dir/s3) on a free
// port of 127.0.0.1 with one bucket, and sets the apps' credentials in the
// environment; stop kills it. A missing binary is an error
// (tools/services/versitygw.sh installs it; tools/test.sh runs that).
func startVersitygw(dir string) (endpoint string, stop func(), err error) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		out, gerr := exec.Command("go", "env", "GOPATH").Output()
		if gerr != nil {
			return "", nil, errors.New("versitygw not installed: run tools/services/versitygw.sh")
		}
		bin = filepath.Join(string(bytes.TrimSpace(out)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			return "", nil, errors.New("versitygw not installed: run tools/services/versitygw.sh")
		}
	}
	root := filepath.Join(dir, "s3")
	// The posix backend's buckets are the root's directories.
	if err := os.MkdirAll(filepath.Join(root, versitygwBucket), 0o755); err != nil {
		return "", nil, err
	}
	os.Setenv("AWS_ACCESS_KEY_ID", versitygwAccess)
	os.Setenv("AWS_SECRET_ACCESS_KEY", versitygwSecret)
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		endpoint = l.Addr().String()
		l.Close()
		logPath := filepath.Join(dir, "versitygw.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return "", nil, err
		}
		cmd := exec.Command(bin, "--access", versitygwAccess, "--secret", versitygwSecret, "--port", endpoint, "--quiet", "posix", root)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return "", nil, fmt.Errorf("starting versitygw: %w", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); logFile.Close(); close(exited) }()
		if listening(endpoint, exited) {
			logf("versitygw at %s (log %s)", endpoint, logPath)
			return endpoint, func() { cmd.Process.Kill(); <-exited }, nil
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 3 {
			b, _ := os.ReadFile(logPath)
			return "", nil, fmt.Errorf("versitygw on %s did not start: %s", endpoint, strings.TrimSpace(string(b)))
		}
	}
}

// listening waits up to 10 s for a TCP listener at addr.
func listening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
