package kstreams_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seqRecords produces n records over keys k0..k(keys-1) with value
// "<key>:<sequence within key>".
func seqRecords(topic string, n, keys int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	seq := map[int]int{}
	for i := range n {
		k := i % keys
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: []byte("k" + strconv.Itoa(k)), Value: []byte(fmt.Sprintf("k%d:%d", k, seq[k]))}
		seq[k]++
	}
	return recs
}

// concurrencyProbe records how many records are processed at once.
type concurrencyProbe struct {
	now, peak atomic.Int64
}

func (p *concurrencyProbe) enter() {
	n := p.now.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			return
		}
	}
}
func (p *concurrencyProbe) exit() { p.now.Add(-1) }

func TestKeyOrderProcessesKeysConcurrentlyInOrder(t *testing.T) {
	for _, order := range []kstreams.Order{kstreams.KeyOrder, kstreams.Unordered} {
		t.Run(order.String(), func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out)
			produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), seqRecords(in, 2000, 20)...)
			var probe concurrencyProbe
			var keys orderChecker
			b := kstreams.NewBuilder()
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
				probe.enter()
				defer probe.exit()
				keys.see(r.Key, r.Value)
				time.Sleep(time.Millisecond)
				return pc.Forward(ctx, r)
			}, kstreams.WithOrdering(order))
			kstreams.Sink(work, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			results := collect(t, brokers, out)
			a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithConcurrency(32))
			waitFor(t, 60*time.Second, "2000 outputs", func() bool { return len(results.snapshot()) >= 2000 })
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			if n := len(readTopic(t, brokers, out)); n != 2000 {
				t.Fatalf("%d outputs after a clean run, want 2000", n)
			}
			if peak := probe.peak.Load(); peak < 4 {
				t.Fatalf("at most %d records in flight at once; the mode should run keys concurrently", peak)
			}
			if order == kstreams.KeyOrder && keys.disorder.Load() != 0 {
				t.Fatalf("%d records of a key processed out of offset order", keys.disorder.Load())
			}
			if committed := committedOffset(t, brokers, appID, in); committed != 2000 {
				t.Fatalf("committed offset %d after a clean shutdown, want 2000", committed)
			}
			t.Logf("peak concurrency %d, out-of-order records of a key %d", probe.peak.Load(), keys.disorder.Load())
		})
	}
}

// TestCrashSkipsCompletedRecordsAboveCommit blocks one record, lets the
// records of other keys above it complete and be committed in the metadata,
// kills the app, and checks what a new instance processes again: the blocked
// record and its key's later records, not the completed ones.
func TestCrashSkipsCompletedRecordsAboveCommit(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	recs := seqRecords(in, 100, 10) // offset i has key k(i%10)
	produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)
	const stuck = 5 // offset of the record that never finishes in the first run

	var mu sync.Mutex
	var secondRun []int64
	topology := func(first bool) *kstreams.Topology {
		b := kstreams.NewBuilder()
		src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
		work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
			if first && r.Origin.Offset == stuck {
				<-ctx.Done() // blocked until the app dies
				return ctx.Err()
			}
			if !first {
				mu.Lock()
				secondRun = append(secondRun, r.Origin.Offset)
				mu.Unlock()
			}
			return pc.Forward(ctx, r)
		}, kstreams.WithOrdering(kstreams.KeyOrder))
		kstreams.Sink(work, "out", out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50 * time.Millisecond)}
	a := startApp(t, topology(true), opts...)
	adm := kadm.NewClient(newClient(t, brokers))
	// Wait for a commit at the stuck offset listing, in its metadata, all
	// 85 records above it that completed (6-99 less the stuck key's 15, 25,
	// ..., 95): the bytes pinned in internal/runtime/testdata/
	// commit-metadata.golden for that set. Commits run every 50 ms and
	// only when something changed, so one is made after the last of them
	// completes.
	const allCompleted = "ks1Yv/9999///3333//PQ"
	waitFor(t, 30*time.Second, "a commit at the stuck offset listing every completed record", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), appID)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(in, 0)
		return ok && o.At == stuck && o.Metadata == allCompleted
	})
	if n := len(readTopic(t, brokers, out)); n != 90 {
		t.Fatalf("%d outputs before the kill, want the 90 of the keys not stuck", n)
	}
	a.app.Kill()
	if err := a.wait(t); err != nil {
		t.Fatalf("killed app: %v", err)
	}

	var fetches offsetFetchCounter
	b := startApp(t, topology(false), append(opts, kstreams.WithKgoOptions(kgo.WithHooks(&fetches)))...)
	// Once every offset is committed, each was either processed again or
	// skipped as complete: nothing more can come.
	waitCommitted(t, brokers, appID, in, 30*time.Second)
	stats := b.app.Stats()
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	want := []int64{5, 15, 25, 35, 45, 55, 65, 75, 85, 95}
	mu.Lock()
	got := slices.Sorted(slices.Values(secondRun))
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("second run processed offsets %v; want exactly the unfinished ones %v (second run stats %+v)", got, want, stats)
	}
	if stats.SkippedCompleted != 85 {
		t.Fatalf("SkippedCompleted = %d, want 85 (offsets 6-99 less the stuck key's 9)", stats.SkippedCompleted)
	}
	if n := len(readTopic(t, brokers, out)); n != 100 {
		t.Fatalf("%d outputs in all, want 100 (each record once)", n)
	}
	// The completed offsets came with the committed offsets franz-go
	// fetches when partitions are assigned: no second fetch.
	if n := fetches.n.Load(); n != 1 {
		t.Errorf("the second instance sent %d OffsetFetch requests for one assignment, want 1", n)
	}
}

// offsetFetchCounter counts the OffsetFetch requests its clients send.
type offsetFetchCounter struct{ n atomic.Int64 }

func (c *offsetFetchCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.OffsetFetch.Int16() && err == nil {
		c.n.Add(1)
	}
}

// TestRetryBlocksOnlyItsKey fails one record twice; under KeyOrder with
// retries its key waits while other keys go on, and it succeeds on the third
// attempt.
func TestRetryBlocksOnlyItsKey(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	// Cheap records first (their own keys), so that the runtime hands
	// several keys' queues to a worker at once by the time k1:0 fails: a
	// retry's backoff then must not hold up the keys sharing its worker.
	var warm []*kgo.Record
	for i := range 2000 {
		warm = append(warm, &kgo.Record{Topic: in, Partition: 0, Key: []byte("w" + strconv.Itoa(i%50)), Value: []byte("w")})
	}
	manual := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, manual, warm...)
	produce(t, manual, seqRecords(in, 40, 4)...)
	var attempts atomic.Int64
	var mu sync.Mutex
	var order []string
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		if r.Value == "k1:0" && attempts.Add(1) < 3 {
			return errors.New("transient")
		}
		mu.Lock()
		order = append(order, r.Value)
		mu.Unlock()
		return pc.Forward(ctx, r)
	}, kstreams.WithOrdering(kstreams.KeyOrder), kstreams.WithRetry(kstreams.Retry{Attempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}))
	kstreams.Sink(work, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	res := collect(t, brokers, out)
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	waitFor(t, 30*time.Second, "2040 outputs", func() bool { return len(res.snapshot()) >= 2040 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if attempts.Load() != 3 {
		t.Fatalf("k1:0 attempted %d times, want 3", attempts.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	pos := func(v string) int { return slices.Index(order, v) }
	// Other keys finished while k1:0 was backing off (200+ ms).
	if pos("k0:9") > pos("k1:0") || pos("k2:9") > pos("k1:0") {
		t.Fatalf("other keys waited for the retried record: order %v", order)
	}
	for i := 1; i < 10; i++ {
		if pos(fmt.Sprintf("k1:%d", i)) < pos("k1:0") {
			t.Fatalf("k1:%d processed before the retried k1:0: order %v", i, order)
		}
	}
}

type batchSizer struct {
	pc    kstreams.ProcessorContext[string, string]
	sizes *[]int
	mu    *sync.Mutex
}

func (p *batchSizer) Init(pc kstreams.ProcessorContext[string, string]) error { p.pc = pc; return nil }
func (p *batchSizer) Close() error                                            { return nil }
func (p *batchSizer) ProcessBatch(ctx context.Context, rs []kstreams.Record[string, string]) error {
	p.mu.Lock()
	*p.sizes = append(*p.sizes, len(rs))
	p.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // one bulk call
	for _, r := range rs {
		if err := p.pc.Forward(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func TestBatchProcessorGetsBatches(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), seqRecords(in, 1000, 1000)...)
	var mu sync.Mutex
	var sizes []int
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	bulk := kstreams.ProcessBatch(src, "bulk", func() kstreams.BatchProcessor[string, string, string, string] {
		return &batchSizer{sizes: &sizes, mu: &mu}
	}, kstreams.WithBatching(100, 20*time.Millisecond), kstreams.WithOrdering(kstreams.Unordered))
	kstreams.Sink(bulk, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	res := collect(t, brokers, out)
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	waitFor(t, 30*time.Second, "1000 outputs", func() bool { return len(res.snapshot()) >= 1000 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total, biggest := 0, 0
	for _, s := range sizes {
		total += s
		biggest = max(biggest, s)
	}
	if total != 1000 || biggest > 100 || biggest < 50 {
		t.Fatalf("batches %v: total %d (want 1000), largest %d (want 50..100)", sizes, total, biggest)
	}
	if n := len(readTopic(t, brokers, out)); n != 1000 {
		t.Fatalf("%d outputs, want 1000", n)
	}
}
