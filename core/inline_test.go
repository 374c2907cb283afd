package kstreams_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// orderChecker counts records of a key processed out of offset order
// (values are "<key>:<sequence within key>", as seqRecords makes them).
type orderChecker struct {
	mu       sync.Mutex
	last     map[string]int
	disorder atomic.Int64
}

func (o *orderChecker) see(key, value string) {
	seq, _ := strconv.Atoi(value[len(key)+1:])
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[string]int{}
	}
	if last, ok := o.last[key]; ok && seq != last+1 {
		o.disorder.Add(1)
	}
	o.last[key] = seq
}

// TestCheapKeyOrderedWorkRunsInSegments checks that trivial work under
// KeyOrder runs in offset-order segments instead of record by record on the
// workers, keeps each key's order, and that WithInlineWork(0) turns it off.
func TestCheapKeyOrderedWorkRunsInSegments(t *testing.T) {
	for _, inline := range []bool{true, false} {
		name := map[bool]string{true: "segments", false: "workers"}[inline]
		t.Run(name, func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out)
			const n = 20000
			produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), seqRecords(in, n, 50)...)
			var order orderChecker
			b := kstreams.NewBuilder()
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
				order.see(r.Key, r.Value)
				return pc.Forward(ctx, r)
			}, kstreams.WithOrdering(kstreams.KeyOrder))
			kstreams.Sink(work, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			// A generous threshold, so that the race detector's slowness
			// does not decide; bench/async measures the default.
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithInlineWork(time.Second)}
			if !inline {
				opts = append(opts, kstreams.WithInlineWork(0))
			}
			results := collect(t, brokers, out)
			a := startApp(t, topo, opts...)
			waitFor(t, 60*time.Second, "all outputs", func() bool { return len(results.snapshot()) >= n })
			stats := a.app.Stats()
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			if got := len(readTopic(t, brokers, out)); got != n {
				t.Fatalf("%d outputs, want %d", got, n)
			}
			if d := order.disorder.Load(); d != 0 {
				t.Fatalf("%d records of a key processed out of offset order", d)
			}
			if committed := committedOffset(t, brokers, appID, in); committed != n {
				t.Fatalf("committed offset %d after a clean shutdown, want %d", committed, n)
			}
			// Keys are only ever busy here after a segment was taken back
			// (a goroutine descheduled for a stall tick on a loaded
			// machine): without that, every record runs in a segment.
			if inline && (stats.Inline == 0 || stats.InlineStalls == 0 && stats.Inline != n) {
				t.Fatalf("%d of %d trivial records ran in segments, %d segments taken back", stats.Inline, n, stats.InlineStalls)
			}
			if !inline && stats.Inline != 0 {
				t.Fatalf("%d records ran in segments with WithInlineWork(0)", stats.Inline)
			}
			t.Logf("%d of %d records in segments, %d stalls", stats.Inline, n, stats.InlineStalls)
		})
	}
}

// TestSegmentStallHoldsUpOnlyItsKey blocks one record inside a segment of
// cheap work: the records of other keys after it must still be processed
// and committed past it in the metadata, the blocked key's later records
// must wait behind it, and the commit must stop exactly at it.
func TestSegmentStallHoldsUpOnlyItsKey(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))

	release := make(chan struct{})
	var blockedSeen atomic.Bool
	var order orderChecker
	var mu sync.Mutex
	var stuckKeyLater []string // values of the blocked key processed after it started
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		order.see(r.Key, r.Value)
		switch {
		case r.Value == "stuck:0":
			blockedSeen.Store(true)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		case r.Key == "stuck":
			mu.Lock()
			stuckKeyLater = append(stuckKeyLater, r.Value)
			mu.Unlock()
		}
		return pc.Forward(ctx, r)
	}, kstreams.WithOrdering(kstreams.KeyOrder))
	kstreams.Sink(work, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	results := collect(t, brokers, out)
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50*time.Millisecond),
		kstreams.WithInlineWork(time.Second)) // cheap whatever the race detector costs

	// Warm up: cheap records, until the task runs them in segments.
	warm := seqRecords(in, 2000, 20)
	produce(t, cl, warm...)
	waitFor(t, 30*time.Second, "warm-up records in segments", func() bool {
		return len(results.snapshot()) >= len(warm) && a.app.Stats().Inline > 0
	})

	// One batch: 100 records of other keys, the blocking record in the
	// middle, and later records of its key.
	var batch []*kgo.Record
	stuckSeq := 0
	seq := map[string]int{} // continues the warm-up's sequences (100 per key)
	for i := range 200 {
		if i == 50 || i > 50 && i%25 == 0 {
			batch = append(batch, &kgo.Record{Topic: in, Partition: 0, Key: []byte("stuck"), Value: []byte("stuck:" + strconv.Itoa(stuckSeq))})
			stuckSeq++
			continue
		}
		k := "k" + strconv.Itoa(i%20)
		batch = append(batch, &kgo.Record{Topic: in, Partition: 0, Key: []byte(k), Value: []byte(k + ":" + strconv.Itoa(100+seq[k]))})
		seq[k]++
	}
	produce(t, cl, batch...)
	stuckOffset := int64(len(warm) + 50)
	others := len(batch) - stuckSeq

	adm := kadm.NewClient(newClient(t, brokers))
	waitFor(t, 30*time.Second, "the other keys' records done and committed past the blocked one", func() bool {
		if !blockedSeen.Load() || len(results.snapshot()) < len(warm)+others {
			return false
		}
		offs, err := adm.FetchOffsets(context.Background(), appID)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(in, 0)
		return ok && o.At == stuckOffset && len(o.Metadata) > 0
	})
	mu.Lock()
	early := len(stuckKeyLater)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("%d later records of the blocked key were processed before it finished", early)
	}
	stats := a.app.Stats()
	if stats.InlineStalls == 0 {
		t.Fatalf("no segment was taken back (Inline %d): the blocked record did not run in a segment", stats.Inline)
	}

	close(release)
	total := len(warm) + len(batch)
	waitFor(t, 30*time.Second, "every record", func() bool { return len(results.snapshot()) >= total })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if d := order.disorder.Load(); d != 0 {
		t.Fatalf("%d records of a key processed out of offset order", d)
	}
	if got := len(readTopic(t, brokers, out)); got != total {
		t.Fatalf("%d outputs, want %d", got, total)
	}
	if committed := committedOffset(t, brokers, appID, in); committed != int64(total) {
		t.Fatalf("committed offset %d after a clean shutdown, want %d", committed, total)
	}
}

// TestSegmentFailureIsNotCommitted fails a record inside a segment under the
// fail policy: the app stops with the error, the commit does not pass the
// record, and a restarted instance processes it again.
func TestSegmentFailureIsNotCommitted(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	poison := errors.New("poison")
	var again atomic.Bool // the second run saw the failed record
	topology := func(first bool) *kstreams.Topology {
		b := kstreams.NewBuilder()
		src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
		work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
			if r.Value == "poison" {
				if first {
					return poison
				}
				again.Store(true)
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
	results := collect(t, brokers, out)
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithInlineWork(time.Second)}
	a := startApp(t, topology(true), opts...)
	warm := seqRecords(in, 2000, 20)
	produce(t, cl, warm...)
	waitFor(t, 30*time.Second, "warm-up records in segments", func() bool {
		return len(results.snapshot()) >= len(warm) && a.app.Stats().Inline > 0
	})
	var batch []*kgo.Record
	for i := range 100 {
		v := "x"
		if i == 40 {
			v = "poison"
		}
		batch = append(batch, &kgo.Record{Topic: in, Partition: 0, Key: []byte("b" + strconv.Itoa(i)), Value: []byte(v)})
	}
	produce(t, cl, batch...)
	if err := a.wait(t); !errors.Is(err, poison) {
		t.Fatalf("app stopped with %v, want the processor's error", err)
	}
	failed := int64(len(warm) + 40)
	if committed := committedOffset(t, brokers, appID, in); committed < int64(len(warm)) || committed > failed {
		t.Fatalf("committed offset %d, want between %d (the warm-up) and %d (the failed record)", committed, len(warm), failed)
	}
	b := startApp(t, topology(false), opts...)
	waitFor(t, 30*time.Second, "the failed record processed again after a restart", again.Load)
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestInFlightBounds blocks every record and checks that fetching stops at
// the per-partition bound and at the instance's bound, then that every
// record is processed once released.
func TestInFlightBounds(t *testing.T) {
	t.Parallel()
	const partitions, perPartition = 4, 1500
	for _, tc := range []struct {
		name            string
		opts            []kstreams.Option
		atLeast, atMost int64 // records dispatched while blocked
	}{
		// Each fetch brings a few records (1 KB fetches, one record per
		// batch), so a bound is passed by at most a fetch per partition.
		{"partition", []kstreams.Option{kstreams.WithMaxInFlight(200)}, partitions * 200, partitions * (200 + 100)},
		{"instance", []kstreams.Option{kstreams.WithMaxInFlightTotal(300)}, 300, 300 + partitions*100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
			createTopics(t, brokers, partitions, in, out)
			cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for i := range partitions * perPartition {
				r := &kgo.Record{Topic: in, Partition: int32(i % partitions), Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			release := make(chan struct{})
			b := kstreams.NewBuilder()
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
				return pc.Forward(ctx, r)
			}, kstreams.WithOrdering(kstreams.KeyOrder))
			kstreams.Sink(work, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			results := collect(t, brokers, out)
			opts := append([]kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
				kstreams.WithConcurrency(8), kstreams.WithKgoOptions(kgo.FetchMaxPartitionBytes(1024), kgo.FetchMaxBytes(4096))}, tc.opts...)
			a := startApp(t, topo, opts...)
			// Dispatched records (Processed, in this mode) stop growing once
			// the bound pauses fetching.
			var last int64 = -1
			waitFor(t, 30*time.Second, "dispatching to stop at the bound", func() bool {
				n := a.app.Stats().Processed
				steady := n == last && n >= tc.atLeast
				last = n
				time.Sleep(200 * time.Millisecond)
				return steady
			})
			if last > tc.atMost {
				t.Fatalf("%d records dispatched while all were blocked; the bound allows %d to %d", last, tc.atLeast, tc.atMost)
			}
			t.Logf("%d records dispatched while blocked", last)
			close(release)
			waitFor(t, 60*time.Second, "every record after the release", func() bool {
				return len(results.snapshot()) >= partitions*perPartition
			})
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			if n := len(readTopic(t, brokers, out)); n != partitions*perPartition {
				t.Fatalf("%d outputs, want %d", n, partitions*perPartition)
			}
		})
	}
}
