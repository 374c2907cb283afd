package gcs_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/kstreams-go/kstreams/stores/gcs"
)

// The tests run the real GCS client against fake-gcs-server
// (tools/services/fake-gcs-server.sh installs it), storing in memory.

func serverPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(out)), "bin", "fake-gcs-server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "fake-gcs-server is not installed: run tools/services/fake-gcs-server.sh (tools/test.sh runs it)"
	if os.Getenv("KSTREAMS_TEST_SERVICES") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type server struct {
	client  *storage.Client
	buckets atomic.Int64
}

// startServer starts fake-gcs-server on a free port of 127.0.0.1; it is
// stopped when t ends. The client reaches it through STORAGE_EMULATOR_HOST,
// as the GCS library documents for emulators.
func startServer(t *testing.T) *server {
	t.Helper()
	bin := serverPath(t)
	var lastErr error
	for attempt := range 3 {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		var logs bytes.Buffer
		cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
			"-backend", "memory", "-external-url", "http://"+addr, "-public-host", addr, "-log-level", "error")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting fake-gcs-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Setenv("STORAGE_EMULATOR_HOST", addr)
		client, err := storage.NewClient(context.Background(), option.WithoutAuthentication())
		if err != nil {
			t.Fatal(err)
		}
		if err := waitReady(client, exited); err != nil {
			client.Close()
			cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("attempt %d on %s: %w; output:\n%s", attempt+1, addr, err, logs.String())
			continue
		}
		t.Cleanup(func() {
			client.Close()
			cmd.Process.Kill()
			<-exited
		})
		return &server{client: client}
	}
	t.Fatalf("fake-gcs-server did not start: %v", lastErr)
	return nil
}

// waitReady waits until the server answers, it exits, or 30 s pass (a
// start-up bound, not a timing assertion).
func waitReady(client *storage.Client, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Buckets(ctx, "test").Next()
		cancel()
		if err == nil || err == iterator.Done {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("fake-gcs-server exited (%v); last request: %v", werr, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in 30 s: %v", err)
		}
	}
}

func (s *server) newBucket(t testing.TB, opts ...gcs.Option) *gcs.Bucket {
	t.Helper()
	name := fmt.Sprintf("kstreams-test-%d", s.buckets.Add(1))
	if err := s.client.Bucket(name).Create(context.Background(), "test", nil); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return gcs.New(s.client, name, opts...)
}
