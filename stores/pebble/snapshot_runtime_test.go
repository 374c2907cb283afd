package pebble_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The runtime test of snapshots without changelog (mode b): a count whose
// store is Pebble kept in a bucket, store.WithoutChangelog, on the
// embedded cluster. A child process runs the app and kills itself
// (SIGKILL) at a chosen point:
//
//   - "manifest:N": right after the N-th manifest FlushInputs wrote landed,
//     before the runtime commits those offsets (the store is then ahead of
//     the committed offsets: the next owner must resume from the store's
//     offsets, not the committed ones);
//   - "upload:N": at the first file upload after N such manifests (with
//     two tasks flushed at each commit, N=4 is after the second commit,
//     before the next manifest).
//
// Every run starts on a new, empty state directory (the disk is lost), so
// each store comes from the bucket. The parent then finishes the input
// with an app of its own and checks the output: every input counted, and
// every key's final count exactly its number of inputs (none applied
// twice).
const (
	rtCrashEnvBrokers = "KSTREAMS_SNAPSHOT_RT_BROKERS"
	rtCrashEnvBucket  = "KSTREAMS_SNAPSHOT_RT_BUCKET"
	rtCrashEnvCrash   = "KSTREAMS_SNAPSHOT_RT_CRASH"
	rtCrashApp        = "snapshot-rt"
	rtCrashIn         = "snapshot-rt-in"
	rtCrashOut        = "snapshot-rt-out"
	rtCrashKeys       = 20
)

// rtTopology counts the inputs per key in a snapshot store without
// changelog and writes "<id>:<count>" per input (an input's value is
// "<id>|<padding>").
func rtTopology(b bucket.Bucket) (*kstreams.Topology, error) {
	tb := kstreams.NewBuilder()
	counts := kstreams.AddStore(tb, store.KeyValue("counts", serde.String, serde.Int64,
		snapshot.Supplier(b, pebble.SnapshotLocal(pebble.WithCacheSize(8<<20)), snapshot.WithGarbageInterval(0)),
		store.WithoutChangelog()))
	src := kstreams.Source(tb, "in", []string{rtCrashIn}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, string] { return &rtCounter{store: counts} },
		kstreams.WithStores(counts))
	kstreams.Sink(counted, "out", rtCrashOut, serde.String, serde.String)
	return tb.Build()
}

type rtCounter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, string]
	counts store.KeyValueStore[string, int64]
}

func (c *rtCounter) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *rtCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	id, _, _ := strings.Cut(r.Value, "|")
	return c.pc.Forward(ctx, kstreams.WithValue(r, fmt.Sprintf("%s:%d", id, n)))
}

func (c *rtCounter) Close() error { return nil }

// killingBucket SIGKILLs its own process at the point its mode names. It
// counts the manifests FlushInputs writes: not the first write of each
// instance's manifest in the process (its open's claim).
type killingBucket struct {
	bucket.Bucket
	mode      string // "manifest" or "upload"
	n         int64
	manifests atomic.Int64
	claimed   sync.Map // manifest name → true
}

func (k *killingBucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	switch {
	case strings.HasSuffix(name, "/manifest"):
		data, err := io.ReadAll(r)
		if err != nil {
			return "", err
		}
		v, err := k.Bucket.Put(ctx, name, bytes.NewReader(data), size, cond)
		if _, seen := k.claimed.LoadOrStore(name, true); err == nil && seen && bytes.Contains(data, []byte(`"inputs":{`)) {
			if k.manifests.Add(1) == k.n && k.mode == "manifest" {
				fmt.Println("killed after a manifest")
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		return v, err
	case strings.Contains(name, "/files/") && k.mode == "upload" && k.manifests.Load() >= k.n:
		fmt.Println("killed at an upload")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return k.Bucket.Put(ctx, name, r, size, cond)
}

// rtOptions: commits every 200 ms, and a short session, so that a killed
// member's partitions move on quickly.
func rtOptions(brokers []string, stateDir string) []kstreams.Option {
	return []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(rtCrashApp),
		kstreams.WithStateDir(stateDir), kstreams.WithCommitInterval(200 * time.Millisecond),
		kstreams.WithSessionTimeout(2 * time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(300 * time.Millisecond))}
}

func rtCrashChild(brokers, bucketDir, crash string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "snapshot runtime child:", err)
		os.Exit(2)
	}
	mode, n, _ := strings.Cut(crash, ":")
	nth, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		fail(err)
	}
	b, err := bucket.Dir(bucketDir)
	if err != nil {
		fail(err)
	}
	topo, err := rtTopology(&killingBucket{Bucket: b, mode: mode, n: nth})
	if err != nil {
		fail(err)
	}
	stateDir, err := os.MkdirTemp("", "kstreams-snapshot-rt-")
	if err != nil {
		fail(err)
	}
	fmt.Printf("dir %s\n", stateDir)
	opts := rtOptions(strings.Split(brokers, ","), stateDir)
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Run(ctx); err != nil {
		fail(err)
	}
	fail(errors.New("not killed within a minute"))
}

func TestSnapshotWithoutChangelogCrashes(t *testing.T) {
	if brokers := os.Getenv(rtCrashEnvBrokers); brokers != "" {
		rtCrashChild(brokers, os.Getenv(rtCrashEnvBucket), os.Getenv(rtCrashEnvCrash))
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	c, err := embedded.NewCluster(embedded.Topic(rtCrashIn, 2), embedded.Topic(rtCrashOut, 2), embedded.MinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// The input arrives in batches while the children run, as in a steady
	// stream, until the last child is killed: between batches the tasks
	// settle, and each commit flushes.
	produced := 0
	stopProducing := make(chan struct{})
	producerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopProducing:
				producerDone <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			var recs []*kgo.Record
			for range 50 {
				recs = append(recs, &kgo.Record{Topic: rtCrashIn, Key: []byte(fmt.Sprintf("k%02d", produced*7%rtCrashKeys)), Value: fmt.Appendf(nil, "%d|x", produced)})
				produced++
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				producerDone <- err
				return
			}
		}
	}()
	bucketDir := t.TempDir()

	for _, crash := range []string{"manifest:3", "upload:4", "manifest:5"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSnapshotWithoutChangelogCrashes$")
		cmd.Env = append(os.Environ(), rtCrashEnvBrokers+"="+strings.Join(c.Brokers(), ","), rtCrashEnvBucket+"="+bucketDir, rtCrashEnvCrash+"="+crash)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		for _, line := range strings.Split(out.String(), "\n") {
			if dir, ok := strings.CutPrefix(line, "dir "); ok {
				os.RemoveAll(dir)
			}
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			dumpManifests(t, bucketDir)
			t.Fatalf("child (%s) ended with %v, not killed; output:\n%s", crash, err, out.String())
		}
		committed := rtCommitted(t, ctx, adm)
		ahead := rtAhead(t, ctx, bucketDir, committed)
		t.Logf("killed %s: committed %v; stores ahead of the committed offsets: %v", crash, committed, ahead)
		if strings.HasPrefix(crash, "manifest:") && len(ahead) == 0 {
			t.Fatalf("killed right after a manifest, yet no store is ahead of the committed offsets %v: the crash did not hit the window", committed)
		}
	}

	close(stopProducing)
	if err := <-producerDone; err != nil {
		t.Fatal(err)
	}
	// A last batch for the app that finishes: a partition resumed from its
	// store's offsets, ahead of the committed one, is committed again only
	// once it processes a record (the runtime's behaviour, not the store's).
	var last []*kgo.Record
	for range 50 {
		last = append(last, &kgo.Record{Topic: rtCrashIn, Key: []byte(fmt.Sprintf("k%02d", produced*7%rtCrashKeys)), Value: fmt.Appendf(nil, "%d|x", produced)})
		produced++
	}
	want := map[string]int64{}
	for i := range produced {
		want[fmt.Sprintf("k%02d", i*7%rtCrashKeys)]++
	}
	// Finish the input on another new disk.
	b, err := bucket.Dir(bucketDir)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := rtTopology(b)
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(topo, rtOptions(c.Brokers(), t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	if err := cl.ProduceSync(ctx, last...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		if committed := rtCommitted(t, ctx, adm); committed[0]+committed[1] == int64(produced) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("app ended before committing every input: %v", err)
		case <-ctx.Done():
			t.Fatalf("not every input committed: %v", rtCommitted(t, context.Background(), adm))
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	outs, err := embedded.Read(ctx, c, rtCrashOut, serde.String, serde.String)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	final := map[string]int64{}
	for _, r := range outs {
		id, n, ok := strings.Cut(r.Value, ":")
		count, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad output %q", r.Value)
		}
		seen[id] = true
		final[r.Key] = max(final[r.Key], count)
	}
	lost := 0
	for i := range produced {
		if !seen[strconv.Itoa(i)] {
			lost++
		}
	}
	twice := int64(0)
	for k, n := range want {
		if final[k] != n {
			t.Errorf("key %s: final count %d; want %d", k, final[k], n)
		}
		twice += max(final[k]-n, 0)
	}
	t.Logf("%d inputs, %d outputs (%d repeated after the kills), %d lost, %d applied twice", produced, len(outs), len(outs)-len(seen), lost, twice)
	if lost > 0 || twice > 0 {
		t.Fatalf("%d inputs lost, %d applied twice; want 0 and 0", lost, twice)
	}
}

// rtCommitted returns the group's committed offset of each input partition.
func rtCommitted(t *testing.T, ctx context.Context, adm *kadm.Client) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	offs, err := adm.FetchOffsets(ctx, rtCrashApp)
	if err != nil {
		return out
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == rtCrashIn && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// rtAhead returns the tasks whose manifest's input offset is beyond the
// committed one, with both offsets.
func rtAhead(t *testing.T, ctx context.Context, bucketDir string, committed map[int32]int64) []string {
	t.Helper()
	b, err := bucket.Dir(bucketDir)
	if err != nil {
		t.Fatal(err)
	}
	var ahead []string
	for info, err := range b.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(info.Name, "/manifest") {
			continue
		}
		r, _, err := b.Get(ctx, info.Name)
		if err != nil {
			t.Fatal(err)
		}
		var m snapshot.Manifest
		err = json.NewDecoder(r).Decode(&m)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := strings.Cut(m.Task, "_")
		partition, _ := strconv.Atoi(p)
		if off, ok := m.Inputs[rtCrashIn]; ok && off > committed[int32(partition)] {
			ahead = append(ahead, fmt.Sprintf("%s@%d>%d", m.Task, off, committed[int32(partition)]))
		}
	}
	return ahead
}

// dumpManifests logs the beginning of each manifest in the bucket.
func dumpManifests(t *testing.T, dir string) {
	b, _ := bucket.Dir(dir)
	for info, err := range b.List(context.Background(), "") {
		if err != nil || !strings.HasSuffix(info.Name, "/manifest") {
			continue
		}
		r, _, _ := b.Get(context.Background(), info.Name)
		data, _ := io.ReadAll(r)
		r.Close()
		t.Logf("%s: %.300s", info.Name, data)
	}
}
