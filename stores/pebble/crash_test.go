package pebble

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
)

// The crash test re-executes the test binary as a child process that writes
// batches to a store and Flushes after some of them, reporting each Flush
// on stdout. The parent kills it with SIGKILL at a random moment, reopens
// the store and checks that every batch flushed before the kill is there
// and that no batch is partially applied.
//
// Batch n (numbered from 1):
//   - sets the crashKeys shared keys k00..kNN to n: a partial batch would
//     leave them disagreeing;
//   - sets the marker batch/<n>;
//   - deletes the range tmp/<n-1>/ and sets tmp/<n>/0..4;
//   - every seventh batch also sets big to a value larger than half a
//     memtable, which Pebble applies through a different path (a flushable
//     batch).
const (
	crashEnvDir  = "KSTREAMS_PEBBLE_CRASH_DIR"
	crashEnvMode = "KSTREAMS_PEBBLE_CRASH_MODE"
	crashEnvSeed = "KSTREAMS_PEBBLE_CRASH_SEED" // the child's seed; the parent's: set it to replay a run
	crashKeys    = 50
)

func crashOptions(mode string) []Option {
	opts := []Option{WithMemTableSize(1 << 20)} // small: memtables fill and rotate
	if mode == "nowal" {
		opts = append(opts, WithoutWAL())
	}
	return opts
}

func crashBatch(batch *store.Batch, n int) {
	batch.Reset()
	v := []byte(strconv.Itoa(n))
	for i := range crashKeys {
		batch.Set(fmt.Appendf(nil, "k%02d", i), v)
	}
	batch.Set(fmt.Appendf(nil, "batch/%08d", n), v)
	batch.DeleteRange(fmt.Appendf(nil, "tmp/%08d/", n-1), fmt.Appendf(nil, "tmp/%08d0", n-1))
	for i := range 5 {
		batch.Set(fmt.Appendf(nil, "tmp/%08d/%d", n, i), v)
	}
	if n%7 == 0 {
		big := bytes.Repeat(v, (700<<10)/len(v))
		batch.Set([]byte("big"), big)
	}
}

// crashChild runs in the child process: it continues the sequence of
// batches from what the store holds, until killed.
func crashChild(dir, mode string, seed uint64) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	b, err := Open(dir, crashOptions(mode)...)
	if err != nil {
		fail(err)
	}
	start := 1
	if v, ok, err := b.Get([]byte("k00")); err != nil {
		fail(err)
	} else if ok {
		n, _ := strconv.Atoi(string(v))
		start = n + 1
	}
	rnd := rand.New(rand.NewPCG(seed, 1))
	var batch store.Batch
	deadline := time.Now().Add(time.Minute) // never outlive a dead parent for long
	for n := start; time.Now().Before(deadline); n++ {
		crashBatch(&batch, n)
		if err := b.Write(&batch); err != nil {
			fail(err)
		}
		if rnd.IntN(3) == 0 {
			if err := b.Flush(); err != nil {
				fail(err)
			}
			// Unbuffered: the parent sees the line as soon as Flush returned.
			fmt.Fprintf(os.Stdout, "flushed %d\n", n)
		}
	}
	fail(fmt.Errorf("not killed within a minute"))
}

func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashEnvDir); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
		crashChild(dir, os.Getenv(crashEnvMode), seed)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashEnvSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashEnvSeed, s, err)
		}
	}
	// The seed decides how many flushes each child makes before its kill
	// and when it flushes; the kill's exact moment is the scheduler's.
	t.Logf("seed %d (%s=%d reproduces the flush pattern)", seed, crashEnvSeed, seed)
	for _, mode := range []string{"wal", "nowal"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			rnd := rand.New(rand.NewPCG(seed, 2))
			last := 0
			for round := range 4 {
				last = crashRound(t, dir, mode, last, rnd)
				t.Logf("round %d: the store holds batches 1..%d after the kill", round, last)
			}
		})
	}
}

// crashRound runs one child until it has flushed a few more batches, kills
// it, and checks the store. flushed is the last batch the store holds; it
// returns the new one.
func crashRound(t *testing.T, dir, mode string, flushed int, rnd *rand.Rand) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvMode+"="+mode, fmt.Sprintf("%s=%d", crashEnvSeed, rnd.Uint64()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every line the child printed is read before Wait, which closes the
	// pipe: a flush reported just before the kill must not be lost.
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	flushedLine := func(line string) {
		t.Helper()
		n, err := strconv.Atoi(strings.TrimPrefix(line, "flushed "))
		if err != nil || !strings.HasPrefix(line, "flushed ") {
			t.Errorf("child printed %q", line)
			return
		}
		if n <= flushed {
			t.Errorf("child flushed batch %d after batch %d was flushed", n, flushed)
		}
		flushed = n
	}
	want := 5 + rnd.IntN(30) // flushes to see before the kill
	seen := 0
	for ; seen < want; seen++ {
		line, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("child stopped after %d flushes: %s", seen, stderr.String())
		}
		flushedLine(line)
	}
	// Kill at a random point: mid-batch, mid-Flush, or between.
	time.Sleep(time.Duration(rnd.IntN(3000)) * time.Microsecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Flushes reported between our last read and the kill count too.
	for line := range lines {
		flushedLine(line)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("child exited normally, want it killed: %s", stderr.String())
	}
	if t.Failed() {
		t.FailNow()
	}

	b, err := Open(dir, crashOptions(mode)...)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer b.Close()
	last := checkCrashState(t, b)
	if last < flushed {
		t.Fatalf("store holds batches up to %d, but batch %d was flushed before the kill", last, flushed)
	}
	return last
}

// checkCrashState checks that the store holds exactly batches 1..n for some
// n, each complete, and returns n.
func checkCrashState(t *testing.T, b *Backend) int {
	t.Helper()
	v, ok, err := b.Get([]byte("k00"))
	if err != nil || !ok {
		t.Fatalf("k00: %v, %v", ok, err)
	}
	last, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatalf("k00 = %q", v)
	}
	for i := range crashKeys {
		k := fmt.Sprintf("k%02d", i)
		if v, ok, err := b.Get([]byte(k)); err != nil || !ok || string(v) != strconv.Itoa(last) {
			t.Fatalf("partial batch: k00 = %d but %s = %q, %v, %v", last, k, v, ok, err)
		}
	}
	markers := 0
	for e, err := range b.Range([]byte("batch/"), []byte("batch0")) {
		if err != nil {
			t.Fatal(err)
		}
		markers++
		if want := fmt.Sprintf("batch/%08d", markers); string(e.Key) != want {
			t.Fatalf("marker %s, want %s: a batch is missing", e.Key, want)
		}
	}
	if markers != last {
		t.Fatalf("%d batch markers, but k00 says batch %d", markers, last)
	}
	var tmp []string
	for e, err := range b.Range([]byte("tmp/"), []byte("tmp0")) {
		if err != nil {
			t.Fatal(err)
		}
		tmp = append(tmp, string(e.Key))
	}
	if len(tmp) != 5 || !strings.HasPrefix(tmp[0], fmt.Sprintf("tmp/%08d/", last)) {
		t.Fatalf("tmp/ holds %q, want the 5 keys of batch %d", tmp, last)
	}
	if last >= 7 {
		v, ok, err := b.Get([]byte("big"))
		if err != nil || !ok {
			t.Fatalf("big: %v, %v", ok, err)
		}
		if want := strconv.Itoa(last - last%7); !bytes.HasPrefix(v, []byte(want)) || len(v) < 600<<10 {
			t.Fatalf("big holds %d bytes starting %q, want batch %s's", len(v), v[:min(len(v), 8)], want)
		}
	}
	return last
}
