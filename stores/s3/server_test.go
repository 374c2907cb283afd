package s3_test

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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kstreams-go/kstreams/stores/s3"
)

// The tests run against versitygw (tools/services/versitygw.sh installs
// it) with its posix backend in a temporary directory.
const (
	testAccessKey = "kstreams-test"
	testSecretKey = "kstreams-test-secret"
)

// versitygwPath finds the versitygw binary, or skips the test (fails it
// under KSTREAMS_TEST_SERVICES=required).
func versitygwPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "versitygw is not installed: run tools/services/versitygw.sh (tools/test.sh runs it)"
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

// server is one versitygw process.
type server struct {
	client  *minio.Client
	buckets atomic.Int64
}

// startServer starts versitygw on a free port of 127.0.0.1 with its data
// in a temporary directory; it is stopped when t ends.
func startServer(t testing.TB) *server {
	t.Helper()
	bin := versitygwPath(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := range 3 {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		var logs bytes.Buffer
		cmd := exec.Command(bin, "--access", testAccessKey, "--secret", testSecretKey, "--port", addr, "--quiet", "posix", dir)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting versitygw: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(testAccessKey, testSecretKey, ""), Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := waitReady(client, exited); err != nil {
			cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("attempt %d on %s: %w; output:\n%s", attempt+1, addr, err, logs.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return &server{client: client}
	}
	t.Fatalf("versitygw did not start: %v", lastErr)
	return nil
}

// waitReady waits until the server answers a request, it exits, or 30 s
// pass (a start-up bound, not a timing assertion).
func waitReady(client *minio.Client, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("versitygw exited (%v); last request: %v", werr, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in 30 s: %v", err)
		}
	}
}

// newBucket creates a new, empty S3 bucket and returns it as a Bucket.
func (s *server) newBucket(t testing.TB, opts ...s3.Option) *s3.Bucket {
	t.Helper()
	name := fmt.Sprintf("kstreams-test-%d", s.buckets.Add(1))
	if err := s.client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return s3.New(s.client, name, opts...)
}
