package pebble_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// The snapshot crash test kills (SIGKILL) a child process that writes
// batches to a snapshot store and calls FlushAt after each, at a random
// moment: mid-batch, mid-checkpoint, mid-upload or mid-manifest. Every round
// the child starts on a new, empty state directory (the disk is lost), so
// everything comes from the bucket. After each kill the parent restores the
// store on another new directory and checks that it holds exactly the
// batches up to the stored offset, that the offset is at least the last
// FlushAt the child reported, and nothing half-applied.
//
// Batch n sets k00..k29 to n and batch/<n>; every third batch also sets big
// to 300 KB of random bytes, so that snapshots upload files of some size.
// The child's bucket reports each upload of a file object above 64 KB
// halfway through ("uploading", then a 20 ms pause): every other round the
// parent kills it right then, mid-upload.
const (
	snapCrashEnvBucket = "KSTREAMS_SNAPSHOT_CRASH_BUCKET"
	snapCrashEnvSeed   = "KSTREAMS_SNAPSHOT_CRASH_SEED"
	snapCrashKeys      = 30
)

func snapCrashSupplier(bucketDir string, report bool) (store.Supplier, error) {
	var b bucket.Bucket
	b, err := bucket.Dir(bucketDir)
	if err != nil {
		return nil, err
	}
	if report {
		b = reportingBucket{b}
	}
	return snapshot.Supplier(b, pebble.SnapshotLocal(pebble.WithMemTableSize(1<<20), pebble.WithCacheSize(8<<20)),
		snapshot.WithGarbageInterval(0)), nil
}

// reportingBucket prints "uploading" halfway through each Put of a file
// object above 64 KB, and pauses.
type reportingBucket struct{ bucket.Bucket }

func (r reportingBucket) Put(ctx context.Context, name string, data io.Reader, size int64, cond bucket.Cond) (string, error) {
	if strings.Contains(name, "/files/") && size > 64<<10 {
		data = io.MultiReader(io.LimitReader(data, size/2), &pauseReader{name: name}, data)
	}
	return r.Bucket.Put(ctx, name, data, size, cond)
}

// pauseReader reports and pauses when read, then reads as empty.
type pauseReader struct {
	name string
	done bool
}

func (p *pauseReader) Read([]byte) (int, error) {
	if !p.done {
		p.done = true
		fmt.Fprintf(os.Stdout, "uploading %s\n", p.name)
		time.Sleep(20 * time.Millisecond)
	}
	return 0, io.EOF
}

var snapCrashContext = store.BackendContext{App: "crash", Store: "s", Task: "0_0"}

func snapCrashChild(bucketDir string, seed uint64) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "snapshot crash child:", err)
		os.Exit(2)
	}
	supply, err := snapCrashSupplier(bucketDir, true)
	if err != nil {
		fail(err)
	}
	bc := snapCrashContext
	if bc.Dir, err = os.MkdirTemp("", "kstreams-snapshot-crash-"); err != nil {
		fail(err)
	}
	// The directory is left behind by the kill; the parent removes it.
	fmt.Fprintf(os.Stdout, "dir %s\n", bc.Dir)
	b, err := supply(bc)
	if err != nil {
		fail(err)
	}
	off, ok, err := b.(store.OffsetKeeper).StoredOffset()
	if err != nil {
		fail(err)
	}
	start := 1
	if ok {
		start = int(off) + 1
	}
	rnd := rand.New(rand.NewPCG(seed, 1))
	big := make([]byte, 300<<10)
	var batch store.Batch
	deadline := time.Now().Add(time.Minute) // never outlive a dead parent for long
	for n := start; time.Now().Before(deadline); n++ {
		batch.Reset()
		v := []byte(strconv.Itoa(n))
		for i := range snapCrashKeys {
			batch.Set(fmt.Appendf(nil, "k%02d", i), v)
		}
		batch.Set(fmt.Appendf(nil, "batch/%08d", n), v)
		if n%3 == 0 {
			for i := range big {
				big[i] = byte(rnd.Uint32())
			}
			batch.Set([]byte("big"), big)
		}
		if err := b.Write(&batch); err != nil {
			fail(err)
		}
		if err := b.(store.OffsetKeeper).FlushAt(int64(n)); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stdout, "flushed %d\n", n)
	}
	fail(fmt.Errorf("not killed within a minute"))
}

func TestSnapshotCrash(t *testing.T) {
	if dir := os.Getenv(snapCrashEnvBucket); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(snapCrashEnvSeed), 10, 64)
		snapCrashChild(dir, seed)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(snapCrashEnvSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", snapCrashEnvSeed, s, err)
		}
	}
	t.Logf("seed %d (%s=%d reproduces the kill points' pattern)", seed, snapCrashEnvSeed, seed)
	rnd := rand.New(rand.NewPCG(seed, 2))
	bucketDir := t.TempDir()
	supply, err := snapCrashSupplier(bucketDir, false)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for round := range 6 {
		last = snapCrashRound(t, bucketDir, supply, last, rnd, round%2 == 1)
		t.Logf("round %d: restored batches 1..%d from the bucket after the kill", round, last)
	}
}

// snapCrashRound runs one child and kills it, mid-upload or at a random
// moment, then restores the store and checks it. flushed is the last batch
// stored; it returns the new one.
func snapCrashRound(t *testing.T, bucketDir string, supply store.Supplier, flushed int, rnd *rand.Rand, midUpload bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSnapshotCrash$")
	cmd.Env = append(os.Environ(), snapCrashEnvBucket+"="+bucketDir, fmt.Sprintf("%s=%d", snapCrashEnvSeed, rnd.Uint64()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	reported := flushed
	uploading := false
	line := func(l string) {
		t.Helper()
		if dir, ok := strings.CutPrefix(l, "dir "); ok {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return
		}
		if strings.HasPrefix(l, "uploading ") {
			uploading = true
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(l, "flushed "))
		if err != nil || !strings.HasPrefix(l, "flushed ") || n <= reported {
			t.Errorf("child printed %q after flushing batch %d", l, reported)
			return
		}
		reported = n
	}
	want := flushed + 1 + rnd.IntN(6) // the batch after which to kill
	for reported < want || midUpload && !uploading {
		if midUpload {
			uploading = false // only an upload after batch want counts
		}
		l, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("child stopped: %s", stderr.String())
		}
		line(l)
	}
	if !midUpload {
		time.Sleep(time.Duration(rnd.IntN(40_000)) * time.Microsecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		line(l)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("child exited normally, want it killed: %s", stderr.String())
	}
	if t.Failed() {
		t.FailNow()
	}

	bc := snapCrashContext
	bc.Dir = t.TempDir()
	b, err := supply(bc)
	if err != nil {
		t.Fatalf("restore after the kill: %v", err)
	}
	defer b.Close()
	off, ok, err := b.(store.OffsetKeeper).StoredOffset()
	if err != nil || !ok {
		t.Fatalf("StoredOffset after the kill: %d, %v, %v", off, ok, err)
	}
	n := int(off)
	// The child may have finished a FlushAt without printing it.
	if n < reported || n > reported+1 {
		t.Fatalf("stored offset %d; the child reported batch %d flushed", n, reported)
	}
	for i := range snapCrashKeys {
		v, ok, err := b.Get(fmt.Appendf(nil, "k%02d", i))
		if err != nil || !ok || string(v) != strconv.Itoa(n) {
			t.Fatalf("k%02d = %q, %v, %v; want %d (the stored offset): state and offset disagree", i, v, ok, err, n)
		}
	}
	count := 0
	for e, err := range b.Range([]byte("batch/"), []byte("batch0")) {
		if err != nil {
			t.Fatal(err)
		}
		count++
		if want := fmt.Sprintf("batch/%08d", count); string(e.Key) != want {
			t.Fatalf("restored %s; want %s (a batch lost)", e.Key, want)
		}
	}
	if count != n {
		t.Fatalf("restored batches 1..%d; want 1..%d", count, n)
	}
	partial := partialObjects(bucketDir)
	// The child's bucket.Dir removed the partial objects of earlier
	// children when it started: any there now are this child's.
	if midUpload && partial == 0 {
		t.Fatal("killed mid-upload, but no partial object was left in the bucket directory")
	}
	t.Logf("killed after reporting batch %d (mid-upload: %v); stored %d; %d partial objects in the bucket directory", reported, midUpload, n, partial)
	return n
}

// partialObjects counts the temporary files of Puts cut short in a
// bucket.Dir.
func partialObjects(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			n++
		}
	}
	return n
}
