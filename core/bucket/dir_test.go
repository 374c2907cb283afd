package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/bucket/buckettest"
)

func TestDir(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket {
		b, err := bucket.Dir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Two Dir values of one path share its lock: of concurrent creations
// through either, exactly one wins.
func TestDirSharedPath(t *testing.T) {
	path := t.TempDir()
	var bs [2]bucket.Bucket
	for i := range bs {
		b, err := bucket.Dir(path)
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	for round := range 20 {
		name := fmt.Sprintf("obj-%d", round)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				_, err := bs[i%2].Put(context.Background(), name, strings.NewReader("x"), 1, bucket.IfAbsent)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, bucket.ErrPreconditionFailed):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners; want 1", round, wins.Load())
		}
	}
}

// ignoring drops every condition, as some S3-compatible servers do.
type ignoring struct{ bucket.Bucket }

func (i ignoring) Put(ctx context.Context, name string, r io.Reader, size int64, _ bucket.Cond) (string, error) {
	return i.Bucket.Put(ctx, name, r, size, bucket.Cond{})
}

func TestCheckConditionalDetectsIgnoredConditions(t *testing.T) {
	b, err := bucket.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.CheckConditional(context.Background(), b, ""); err != nil {
		t.Fatalf("Dir: %v", err)
	}
	err = bucket.CheckConditional(context.Background(), ignoring{b}, "")
	if !errors.Is(err, bucket.ErrConditionalWritesIgnored) {
		t.Fatalf("a bucket ignoring conditions: %v; want bucket.ErrConditionalWritesIgnored", err)
	}
}

func TestDirRefusesLongNames(t *testing.T) {
	b, err := bucket.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(context.Background(), strings.Repeat("/", 100), strings.NewReader("x"), 1, bucket.Cond{}); err == nil {
		t.Fatal("Put of a name escaping to 300 bytes succeeded")
	}
}

// TestSuiteRejectsIgnoredConditions runs the suite, in a child process,
// against a bucket that ignores conditions: the suite must fail it.
func TestSuiteRejectsIgnoredConditions(t *testing.T) {
	if os.Getenv("BUCKETTEST_IGNORING") == "1" {
		buckettest.Run(t, func(t *testing.T) bucket.Bucket {
			b, err := bucket.Dir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return ignoring{b}
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteRejectsIgnoredConditions$", "-test.v")
	cmd.Env = append(os.Environ(), "BUCKETTEST_IGNORING=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a bucket ignoring conditions:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestSuiteRejectsIgnoredConditions/IfAbsent", "--- FAIL: TestSuiteRejectsIgnoredConditions/ConcurrentIfMatchOneWins", "--- PASS: TestSuiteRejectsIgnoredConditions/RoundTrip"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The temporary file of a write cut short by a crash is removed by the next
// process's first Dir of the path, and never listed.
func TestDirRemovesTemporaries(t *testing.T) {
	path := t.TempDir()
	if err := os.WriteFile(path+"/.tmp-123", []byte("half an object"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := bucket.Dir(path) // the first Dir of path in this process
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "/.tmp-123"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file after Dir: %v; want it removed", err)
	}
	for info, err := range b.List(context.Background(), "") {
		t.Fatalf("List of an empty bucket yielded %+v, %v", info, err)
	}
}
