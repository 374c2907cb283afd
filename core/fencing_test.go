package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/faultproxy"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fencedOutput is what fencingTopology writes per input record.
type fencedOutput struct {
	ID          string `json:"id"`
	Count       int64  `json:"count"`
	Instance    string `json:"instance"`
	Incarnation int64  `json:"incarnation"` // one per processor instance: a task's life on one member
	Partition   int32  `json:"partition"`
	Key         string `json:"key"`
}

// incarnations numbers processor instances across the test's apps.
var incarnations atomic.Int64

// blocker holds the records whose value is "block" until released.
type blocker struct {
	release  chan struct{}
	blocked  atomic.Int32 // records waiting
	returned atomic.Int32 // records that waited and returned
	mu       sync.Mutex
	errs     map[int32]error // what the write after the wait returned, per partition
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), errs: map[int32]error{}}
}

// fencingTopology counts records per key under KeyOrder in a changelogged
// store and writes one fencedOutput per record. With a blocker, a "block"
// record reads its key's count, then waits for the release ignoring its
// context (as a processor stuck in a call would), then writes its output
// and its count.
//
// Each record takes delay to process.
func fencingTopology(t *testing.T, in, out, instance string, bl *blocker, delay time.Duration) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, []byte] {
		return &fencedCounter{store: counts, instance: instance, bl: bl, delay: delay}
	}, kstreams.WithStores(counts), kstreams.WithOrdering(kstreams.KeyOrder))
	kstreams.Sink(counted, "out", out, serde.String, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type fencedCounter struct {
	store    kstreams.Store[store.KeyValueStore[string, int64]]
	instance string
	inc      int64
	bl       *blocker
	delay    time.Duration
	pc       kstreams.ProcessorContext[string, []byte]
	counts   store.KeyValueStore[string, int64]
}

func (c *fencedCounter) Init(pc kstreams.ProcessorContext[string, []byte]) (err error) {
	c.pc = pc
	c.inc = incarnations.Add(1)
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *fencedCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	time.Sleep(c.delay)
	blocking := c.bl != nil && r.Value == "block"
	if blocking {
		c.bl.blocked.Add(1)
		<-c.bl.release
	}
	err = c.write(ctx, r, n+1)
	if blocking {
		c.bl.mu.Lock()
		c.bl.errs[r.Origin.Partition] = err
		c.bl.mu.Unlock()
		c.bl.returned.Add(1)
	}
	return err
}

// write forwards the output, then stores the count.
func (c *fencedCounter) write(ctx context.Context, r kstreams.Record[string, string], n int64) error {
	v, err := json.Marshal(fencedOutput{ID: r.Value + "@" + strconv.Itoa(int(r.Origin.Partition)) + "/" + strconv.FormatInt(r.Origin.Offset, 10),
		Count: n, Instance: c.instance, Incarnation: c.inc, Partition: r.Origin.Partition, Key: r.Key})
	if err != nil {
		return err
	}
	if err := c.pc.Forward(ctx, kstreams.WithValue(r, v)); err != nil {
		return err
	}
	return c.counts.Put(r.Key, n)
}

func (c *fencedCounter) Close() error { return nil }

// TestRevokeWhileRecordRunsIsFenced: under KeyOrder, a record of instance A
// is stuck (ignoring its context) in every partition while instance B
// joins and takes half the tasks. A's revoke drain gives up on the stuck
// records; B processes them again and writes. When A's records are
// released, their writes for the moved tasks are refused: no output of A
// for a partition appears after B's first output for it, the changelog's
// last count of every key equals its number of inputs (no stale count
// landed last), and the outputs name every input.
func TestRevokeWhileRecordRunsIsFenced(t *testing.T) {
	t.Parallel()
	eachMode(t, testRevokeWhileRecordRuns)
}

// eachMode runs test in the default mode and with transactions.
func eachMode(t *testing.T, test func(t *testing.T, txn bool)) {
	t.Run("at-least-once", func(t *testing.T) { test(t, false) })
	t.Run("transactions", func(t *testing.T) { test(t, true) })
}

// modeOptions returns the options of the mode.
func modeOptions(txn bool) []kstreams.Option {
	var opts []kstreams.Option
	if os.Getenv("KSTREAMS_TEST_LOG") != "" {
		opts = append(opts, kstreams.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	if os.Getenv("KSTREAMS_TEST_LOG") == "kgo" {
		opts = append(opts, kstreams.WithKgoOptions(kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil))))
	}
	if txn {
		opts = append(opts, kstreams.WithTransactions())
	}
	return opts
}

// collectMode collects topic as a consumer of the mode would read it: with
// transactions, only what they committed.
func collectMode(t *testing.T, brokers []string, topic string, txn bool) *collector {
	if txn {
		return collect(t, brokers, topic, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return collect(t, brokers, topic)
}

// outputsAll reports whether the outputs in results name every id.
func outputsAll(t *testing.T, results *collector, ids map[string]bool) bool {
	got := map[string]bool{}
	for _, o := range decodeFenced(t, results.snapshot()) {
		got[o.ID] = true
	}
	for id := range ids {
		if !got[id] {
			return false
		}
	}
	return true
}

// checkNoDuplicates fails if an input's output was committed twice: with
// transactions, every input's effects are visible once.
func checkNoDuplicates(t *testing.T, outs []fencedOutput) {
	t.Helper()
	seen := map[string]int{}
	for i, o := range outs {
		if at, dup := seen[o.ID]; dup {
			t.Errorf("output %d (%s) duplicates output %d: a committed transaction holds an input's output twice", i, o.ID, at)
		}
		seen[o.ID] = i
	}
}

func testRevokeWhileRecordRuns(t *testing.T, txn bool) {
	brokers := testBrokers(t)
	const parts = 4
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, parts, in)
	createTopics(t, brokers, 1, out) // one partition: one order of all writes
	producer := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	results := collectMode(t, brokers, out, txn)
	changelog := collectMode(t, brokers, appID+"-counts-changelog", txn)

	inputs := map[string]int{} // key -> records
	ids := map[string]bool{}
	send := func(round int) {
		var recs []*kgo.Record
		for p := range int32(parts) {
			for j := range 4 {
				key := fmt.Sprintf("p%d-k%d", p, j)
				v := "r" + strconv.Itoa(round)
				if round == 0 && j == 0 {
					v = "block"
				}
				recs = append(recs, &kgo.Record{Topic: in, Partition: p, Key: []byte(key), Value: []byte(v)})
				inputs[key]++
			}
		}
		produce(t, producer, recs...)
		for _, r := range recs {
			ids[fmt.Sprintf("%s@%d/%d", r.Value, r.Partition, r.Offset)] = true
		}
	}
	send(0)
	send(1)

	opts := append([]kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(200 * time.Millisecond)}, modeOptions(txn)...)
	bl := newBlocker()
	a := startApp(t, fencingTopology(t, in, out, "A", bl, 0), opts...)
	waitFor(t, 30*time.Second, "A's block records to be stuck", func() bool { return bl.blocked.Load() == parts })

	b := startApp(t, fencingTopology(t, in, out, "B", nil, 0), opts...)
	movedTo := func() map[int32]bool { // partitions B wrote for
		m := map[int32]bool{}
		for _, o := range decodeFenced(t, results.snapshot()) {
			if o.Instance == "B" {
				m[o.Partition] = true
			}
		}
		return m
	}
	waitFor(t, 60*time.Second, "B to process the partitions it took over", func() bool {
		// (With transactions, A's kept tasks wait for their stuck records
		// too: the revoke aborted their transaction, and they are rebuilt
		// once the records return.)
		return len(movedTo()) > 0 && b.app.Stats().Tasks > 0 && a.app.Stats().Tasks < parts
	})
	send(2)
	moved := movedTo()
	close(bl.release)
	waitFor(t, 30*time.Second, "A's stuck records to return", func() bool { return bl.returned.Load() >= parts })
	bl.mu.Lock()
	for p, err := range bl.errs {
		if moved[p] && !errors.Is(err, kstreams.ErrNotOwner) {
			t.Errorf("partition %d moved to B, but A's write after the move returned %v, want ErrNotOwner", p, err)
		}
	}
	bl.mu.Unlock()
	waitFor(t, 60*time.Second, "every input in the output", func() bool { return outputsAll(t, results, ids) })
	for _, x := range []*runningApp{a, b} {
		if err := x.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	// Both stopped gracefully: everything they produced is acknowledged.
	waitFor(t, 30*time.Second, "the changelog's last count of every key", func() bool {
		return len(lastCounts(changelog.snapshot())) == len(inputs)
	})
	checkFencedOutputs(t, decodeFenced(t, results.snapshot()), moved)
	if txn {
		checkNoDuplicates(t, decodeFenced(t, results.snapshot()))
	}
	last := lastCounts(changelog.snapshot())
	for key, n := range inputs {
		if last[key] != int64(n) {
			t.Errorf("changelog: last count of %s is %d, want %d (the inputs of the key)", key, last[key], n)
		}
	}
}

func decodeFenced(t *testing.T, recs []*kgo.Record) []fencedOutput {
	t.Helper()
	outs := make([]fencedOutput, 0, len(recs))
	for _, r := range recs {
		var o fencedOutput
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("output at offset %d: %v", r.Offset, err)
		}
		outs = append(outs, o)
	}
	return outs
}

// checkFencedOutputs fails if an output of A for a partition that moved to
// B comes after B's first output for it (outs are in write order).
func checkFencedOutputs(t *testing.T, outs []fencedOutput, moved map[int32]bool) {
	t.Helper()
	bFirst := map[int32]int{}
	for i, o := range outs {
		if _, ok := bFirst[o.Partition]; !ok && o.Instance == "B" {
			bFirst[o.Partition] = i
		}
	}
	for i, o := range outs {
		if first, ok := bFirst[o.Partition]; ok && o.Instance == "A" && i > first && moved[o.Partition] {
			t.Errorf("output %d (%s, count %d) written by the old owner A after the new owner B's first output for partition %d (output %d)",
				i, o.ID, o.Count, o.Partition, first)
		}
	}
}

// lastCounts decodes the last value of each key of a counts changelog.
func lastCounts(recs []*kgo.Record) map[string]int64 {
	last := map[string]int64{}
	for _, r := range recs {
		n, err := serde.StoreForm(serde.Int64).Deserialize("", nil, r.Value)
		if err == nil && r.Value != nil {
			last[string(r.Key)] = n
		}
	}
	return last
}

// checkOwnerBlocks fails if, for some input partition, an incarnation of
// its task writes an output after another incarnation wrote one: once a
// new owner wrote, nothing of an earlier owner may land (outs are in
// write order).
func checkOwnerBlocks(t *testing.T, outs []fencedOutput) {
	t.Helper()
	current := map[int32]int64{}       // partition -> incarnation writing now
	ended := map[int32]map[int64]int{} // partition -> incarnations replaced, at which output
	for i, o := range outs {
		cur, ok := current[o.Partition]
		if ok && cur == o.Incarnation {
			continue
		}
		if at, stale := ended[o.Partition][o.Incarnation]; stale {
			t.Errorf("output %d (%s, count %d) written by incarnation %d of %s for partition %d after another owner took over at output %d",
				i, o.ID, o.Count, o.Incarnation, o.Instance, o.Partition, at)
			continue
		}
		if ok {
			if ended[o.Partition] == nil {
				ended[o.Partition] = map[int64]int{}
			}
			ended[o.Partition][cur] = i
		}
		current[o.Partition] = o.Incarnation
	}
}

// checkCounts fails if a key's last count in the output or the changelog
// is below its number of inputs (an increment lost), or if a key's counts
// in the changelog ever go down (a stale count landed after a newer one).
func checkCounts(t *testing.T, inputs map[string]int, outs []fencedOutput, changelog []*kgo.Record) {
	t.Helper()
	lastOut := map[string]int64{}
	for _, o := range outs {
		lastOut[o.Key] = o.Count
	}
	lastLog := map[string]int64{}
	for _, r := range changelog {
		n, err := serde.StoreForm(serde.Int64).Deserialize("", nil, r.Value)
		if err != nil || r.Value == nil {
			continue
		}
		if prev, ok := lastLog[string(r.Key)]; ok && n < prev {
			t.Errorf("changelog offset %d: count of %s went from %d down to %d (a stale write)", r.Offset, r.Key, prev, n)
		}
		lastLog[string(r.Key)] = n
	}
	for key, n := range inputs {
		if lastOut[key] < int64(n) {
			t.Errorf("key %s: last output count %d, below its %d inputs", key, lastOut[key], n)
		}
		if lastLog[key] < int64(n) {
			t.Errorf("key %s: last changelog count %d, below its %d inputs", key, lastLog[key], n)
		}
	}
}

// TestNetworkPartitionIsFenced cuts instance A off the cluster (through a
// fault proxy: nothing it sends arrives, nothing comes back) for longer
// than its session timeout while records flow, so its tasks move to B
// while A still has records in flight; then the network heals. No output
// of A for a partition may land after B's for it, no count may go back in
// the changelog or fall below its inputs, and every input is in the output.
func TestNetworkPartitionIsFenced(t *testing.T) {
	t.Parallel()
	eachMode(t, testNetworkPartition)
}

func testNetworkPartition(t *testing.T, txn bool) {
	brokers := testBrokers(t)
	const parts = 4
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, parts, in)
	createTopics(t, brokers, 1, out)
	results := collectMode(t, brokers, out, txn)
	changelog := collectMode(t, brokers, appID+"-counts-changelog", txn)
	proxy, err := faultproxy.New(brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	// A steady flow over every partition.
	producer := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var mu sync.Mutex
	inputs := map[string]int{}
	ids := map[string]bool{}
	stopFlow := make(chan struct{})
	flowDone := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopFlow) }); <-flowDone }
	t.Cleanup(stop) // the flow ends before the test does, also when it fails
	go func() {
		defer close(flowDone)
		for round := 0; ; round++ {
			select {
			case <-stopFlow:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var recs []*kgo.Record
			for p := range int32(parts) {
				for j := range 4 {
					recs = append(recs, &kgo.Record{Topic: in, Partition: p, Key: []byte(fmt.Sprintf("p%d-k%d", p, j)), Value: []byte("r" + strconv.Itoa(round))})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := producer.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			mu.Lock()
			for _, r := range recs {
				inputs[string(r.Key)]++
				ids[fmt.Sprintf("%s@%d/%d", r.Value, r.Partition, r.Offset)] = true
			}
			mu.Unlock()
		}
	}()

	// A heartbeats every 2 s: franz-go reports its loss only when a
	// heartbeat's retries give up, a session timeout after the first failed
	// one, so 1-2 s after the coordinator expired it and B took over.
	opts := func(instance string, brokers []string, heartbeat time.Duration) []kstreams.Option {
		return append([]kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
			kstreams.WithCommitInterval(200 * time.Millisecond),
			kstreams.WithSessionTimeout(6 * time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(heartbeat), kgo.ClientID(instance))},
			modeOptions(txn)...)
	}
	// A is slower than the flow: it always has records to process, so it
	// produces while cut off.
	a := startApp(t, fencingTopology(t, in, out, "A", nil, 50*time.Millisecond), opts("A", proxy.Addrs(), 2*time.Second)...)
	b := startApp(t, fencingTopology(t, in, out, "B", nil, 0), opts("B", brokers, time.Second)...)
	wrote := func(instance string, after int) (parts map[int32]bool, n int) {
		parts = map[int32]bool{}
		for _, o := range decodeFenced(t, results.snapshot()[after:]) {
			if o.Instance == instance {
				parts[o.Partition] = true
				n++
			}
		}
		return parts, n
	}
	waitFor(t, 60*time.Second, "both instances to own tasks and write", func() bool {
		_, na := wrote("A", 0)
		_, nb := wrote("B", 0)
		return a.app.Stats().Tasks > 0 && b.app.Stats().Tasks > 0 && na > 200 && nb > 200
	})

	proxy.Blackhole(true)
	cut := len(results.snapshot())
	ofA, _ := wrote("A", 0)
	// Heal as soon as B wrote for a partition of A's: A's records still
	// buffered would land right after.
	// With transactions B restores A's tasks only once the brokers
	// aborted A's open transaction (after its timeout; ~30 s in chaos).
	takeover := 60 * time.Second
	if txn {
		takeover = 150 * time.Second
	}
	waitFor(t, takeover, "B to take a task of A's over and write for it", func() bool {
		written, _ := wrote("B", cut)
		for p := range written {
			if ofA[p] {
				return true
			}
		}
		return false
	})
	// Heal, with the connections reset (as a partition that outlived TCP
	// keepalive leaves them): A reconnects and retries at once.
	proxy.Blackhole(false)
	proxy.Cut()
	waitFor(t, 90*time.Second, "A to own tasks again", func() bool {
		select {
		case err := <-a.err:
			a.err <- err
			if txn && producerFenced(err) {
				// Its transaction outlived the transaction timeout while
				// it was cut off: the instance stops, and a supervisor
				// restarts it.
				t.Logf("A stopped: %v; restarting it", err)
				a = startApp(t, fencingTopology(t, in, out, "A", nil, 50*time.Millisecond), opts("A", proxy.Addrs(), 2*time.Second)...)
				return false
			}
			t.Fatalf("A stopped: %v", err)
		default:
		}
		return a.app.Stats().Tasks > 0
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	waitFor(t, 60*time.Second, "every input in the output", func() bool { return outputsAll(t, results, ids) })
	for _, x := range []*runningApp{a, b} {
		if err := x.stop(t); err != nil && !(txn && producerFenced(err)) {
			t.Fatal(err)
		} else if err != nil {
			t.Logf("an instance stopped: %v", err)
		}
	}
	waitFor(t, 30*time.Second, "the changelog to hold every key", func() bool {
		return len(lastCounts(changelog.snapshot())) == len(inputs)
	})
	outs := decodeFenced(t, results.snapshot())
	checkOwnerBlocks(t, outs)
	checkCounts(t, inputs, outs, changelog.snapshot())
	if txn {
		checkNoDuplicates(t, outs)
	}
	t.Logf("%d inputs, %d outputs, proxy: %+v", len(ids), len(outs), proxy.Stats())
}

func TestSessionAndRebalanceTimeoutOptions(t *testing.T) {
	b := kstreams.NewBuilder()
	kstreams.Sink(kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String), "out", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []kstreams.Option{kstreams.WithSessionTimeout(0), kstreams.WithRebalanceTimeout(-time.Second)} {
		if _, err := kstreams.NewApp(topo, kstreams.WithBrokers("127.0.0.1:1"), kstreams.WithApplicationID("x"), opt); err == nil {
			t.Error("NewApp accepted a non-positive timeout")
		}
	}
	if _, err := kstreams.NewApp(topo, kstreams.WithBrokers("127.0.0.1:1"), kstreams.WithApplicationID("x"),
		kstreams.WithSessionTimeout(10*time.Second), kstreams.WithRebalanceTimeout(30*time.Second)); err != nil {
		t.Errorf("NewApp with valid timeouts: %v", err)
	}
}

// producerFenced reports whether err is an instance stopping because its
// transactional producer was fenced (its transaction outlived the
// transaction timeout while it was cut off): documented, and a supervisor
// restarts it.
func producerFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}
