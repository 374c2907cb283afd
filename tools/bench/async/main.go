// Command async benchmarks the concurrent ordering modes on the embedded
// cluster:
//
//	a. parallel-consumer's published case: 10k records, 1 partition, random
//	   work of 0-4 whole milliseconds per record (as its benchmark sleeps),
//	   concurrency 100, under KEY order with 1, 10 and 1000 keys, UNORDERED
//	   and PARTITION;
//	b. overhead: trivial work under KEY order vs the synchronous PARTITION
//	   path, records/s (and KEY with inline segments off: every record
//	   through a worker);
//	c. 10 ms of I/O per record, 10k keys, 4 partitions, concurrency 1000:
//	   throughput vs the ideal concurrency/latency = 100k records/s;
//	d. heap in use with 100k records in flight.
//
//	go run ./bench/async
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	only         = flag.String("only", "", "run only the parts whose letter is listed, e.g. -only ab")
	overheadN    = flag.Int("overhead-records", 1_000_000, "records for the overhead benchmark")
	ioN          = flag.Int("io-records", 200_000, "records for the 10 ms I/O benchmark")
	overheadConc = flag.Int("overhead-concurrency", 64, "workers for the overhead benchmark")
	rounds       = flag.Int("rounds", 5, "rounds of the overhead benchmark")
	profile      = flag.String("cpuprofile", "", "write a CPU profile to this file")
)

func main() {
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	c, err := embedded.NewCluster()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	b := &bench{brokers: c.Brokers()}
	if part("a") {
		// parallel-consumer's benchmark (VolumeTests.timingOfDifferentOrderingTypes)
		// sleeps (long) (Math.random() * 5) ms per record: a whole number of
		// milliseconds from 0 to 4, 2 ms on average.
		work := func() { time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond) }
		fmt.Println("a. parallel-consumer's case: 10k records, 1 partition, work of 0-4 whole ms (2 ms mean), concurrency 100")
		// The sequential modes cannot beat the sum of the work: measure what
		// 10k such sleeps take in a plain loop on this machine.
		floor := time.Now()
		for range 10_000 {
			work()
		}
		fmt.Printf("   (the same 10k sleeps in a plain loop take %.2fs here: the floor of KEY/1 key and PARTITION)\n", time.Since(floor).Seconds())
		fmt.Printf("   %-14s %10s %10s %12s %10s\n", "mode", "total", "processing", "sum of work", "published")
		b.pcCases(work, pcCase{"KEY/1000 keys", kstreams.KeyOrder, 1000, "2.06 s"},
			pcCase{"UNORDERED", kstreams.Unordered, 1000, "2.83 s"},
			pcCase{"KEY/10 keys", kstreams.KeyOrder, 10, "3.3 s"},
			pcCase{"KEY/1 key", kstreams.KeyOrder, 1, "26.7 s"},
			pcCase{"PARTITION", kstreams.PartitionOrder, 1000, "22.2 s"})
		// Go's timers overshoot a millisecond sleep by 0.1-0.3 ms here, more
		// with the embedded broker busy in the same process: in the two
		// sequential modes that alone adds 1-2 s to 20 s of work. Run them
		// again with a wait that ends on time (sleep, then yield until the
		// deadline), as Java's Thread.sleep does.
		precise := func() {
			d := time.Duration(rand.IntN(5)) * time.Millisecond
			deadline := time.Now().Add(d)
			if d > time.Millisecond {
				time.Sleep(d - time.Millisecond)
			}
			for time.Now().Before(deadline) {
				runtime.Gosched()
			}
		}
		floor = time.Now()
		for range 10_000 {
			precise()
		}
		fmt.Printf("   sequential modes with a precise wait (10k of them in a plain loop: %.2fs)\n", time.Since(floor).Seconds())
		b.pcCases(precise, pcCase{"KEY/1 key", kstreams.KeyOrder, 1, "26.7 s"},
			pcCase{"PARTITION", kstreams.PartitionOrder, 1000, "22.2 s"})
	}
	if part("b") {
		fmt.Printf("b. overhead: %d records, trivial work, 8 partitions, 10k keys, %d rounds (the three runs of a round back to back)\n", *overheadN, *rounds)
		var ratios, workerRatios []float64
		for round := 1; round <= *rounds; round++ {
			_, sync := b.run(kstreams.PartitionOrder, *overheadN, 10_000, 8, 64, 0, nil)
			_, key := b.run(kstreams.KeyOrder, *overheadN, 10_000, 8, *overheadConc, 0, nil)
			inl := b.inline
			_, workers := b.run(kstreams.KeyOrder, *overheadN, 10_000, 8, *overheadConc, 0, nil, kstreams.WithInlineWork(0))
			rs, rk, rw := float64(*overheadN)/sync.Seconds(), float64(*overheadN)/key.Seconds(), float64(*overheadN)/workers.Seconds()
			fmt.Printf("   round %d: PARTITION (sync) %8.0f/s   KEY %8.0f/s = %.2f (%d records in segments)   KEY, segments off %8.0f/s = %.2f\n",
				round, rs, rk, rk/rs, inl, rw, rw/rs)
			ratios, workerRatios = append(ratios, rk/rs), append(workerRatios, rw/rs)
		}
		fmt.Printf("   median ratio KEY/sync %.2f (target >= 0.7); with segments off (every record through a worker) %.2f\n", median(ratios), median(workerRatios))
	}
	if part("c") {
		fmt.Printf("c. 10 ms I/O per record, %d records, 10k keys, 4 partitions, concurrency 1000\n", *ioN)
		_, proc := b.run(kstreams.KeyOrder, *ioN, 10_000, 4, 1000, 0, func() { time.Sleep(10 * time.Millisecond) })
		rate := float64(*ioN) / proc.Seconds()
		fmt.Printf("   %9.0f records/s = %.2f of the ideal 100000 (target >= 0.8); peak concurrency %d\n", rate, rate/100_000, b.peak)
	}
	if part("d") {
		fmt.Println("d. heap in use with 100k records in flight (1000 workers blocked, the rest queued)")
		release := make(chan struct{})
		var heap atomic.Int64
		before := heapInUse()
		b.onProgress = func(inFlight int64) {
			if inFlight >= 100_000 && heap.Load() == 0 {
				heap.Store(int64(heapInUse() - before))
				close(release)
			}
		}
		b.run(kstreams.Unordered, 100_000, 100_000, 1, 1000, 200_000, func() { <-release })
		b.onProgress = nil
		fmt.Printf("   %.1f MiB above the idle heap (%.0f bytes per record in flight, 100-byte values)\n", float64(heap.Load())/(1<<20), float64(heap.Load())/100_000)
	}
}

// pcCase is a row of parallel-consumer's published case.
type pcCase struct {
	name      string
	order     kstreams.Order
	keys      int
	published string
}

// pcCases runs parallel-consumer's case (10k records, 1 partition,
// concurrency 100) with work per record, once per row.
func (b *bench) pcCases(work func(), cases ...pcCase) {
	for _, cs := range cases {
		total, proc := b.run(cs.order, 10_000, cs.keys, 1, 100, 0, work)
		fmt.Printf("   %-14s %9.2fs %9.2fs %11.2fs %10s\n", cs.name, total.Seconds(), proc.Seconds(), b.workTime.Seconds(), cs.published)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func part(p string) bool { return *only == "" || strings.Contains(*only, p) }

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

type bench struct {
	brokers    []string
	n          int
	peak       int64         // most records in work at once in the last run
	inline     int64         // records processed inline in the last run
	workTime   time.Duration // time spent in work in the last run, summed over records
	onProgress func(inFlight int64)
}

// run preloads n records over keys keys and partitions partitions, runs an
// app with the ordering mode calling work per record, and returns the time
// from start to the last output and from the first output to the last.
func (b *bench) run(order kstreams.Order, n, keys, partitions, concurrency, maxInFlight int, work func(), extra ...kstreams.Option) (total, processing time.Duration) {
	b.n++
	in, out := fmt.Sprintf("in-%d", b.n), fmt.Sprintf("out-%d", b.n)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ProducerLinger(10*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range []string{in, out} {
		if _, err := adm.CreateTopic(context.Background(), int32(partitions), 1, nil, t); err != nil {
			log.Fatal(err)
		}
	}
	value := bytes.Repeat([]byte("x"), 100)
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%keys)), Value: value}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}

	var inFlight, active, peak atomic.Int64 // records entered work, in work now, most in work at once
	var workTime atomic.Int64               // time spent in work, summed over records
	defer func() { b.peak, b.workTime = peak.Load(), time.Duration(workTime.Load()) }()
	bld := kstreams.NewBuilder()
	src := kstreams.Source(bld, "in", []string{in}, serde.Bytes, serde.Bytes)
	worked := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[[]byte, []byte], r kstreams.Record[[]byte, []byte]) error {
		inFlight.Add(1)
		if work != nil {
			n := active.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			t0 := time.Now()
			work()
			workTime.Add(int64(time.Since(t0)))
			active.Add(-1)
		}
		return pc.Forward(ctx, r)
	}, kstreams.WithOrdering(order))
	kstreams.Sink(worked, "out", out, serde.Bytes, serde.Bytes)
	topo, err := bld.Build()
	if err != nil {
		log.Fatal(err)
	}
	opts := []kstreams.Option{kstreams.WithBrokers(b.brokers...), kstreams.WithApplicationID("app-" + in), kstreams.WithConcurrency(concurrency)}
	if maxInFlight > 0 {
		opts = append(opts, kstreams.WithMaxInFlight(maxInFlight))
	}
	opts = append(opts, extra...)
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- app.Run(ctx) }()
	var first time.Time
	if b.onProgress != nil {
		// Records in flight: dispatched to the workers, not yet complete.
		go func() {
			for ctx.Err() == nil {
				b.onProgress(app.Stats().Processed)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	for {
		select {
		case err := <-done:
			log.Fatalf("app stopped early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		ends, err := adm.ListEndOffsets(context.Background(), out)
		if err != nil {
			continue
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		if sum > 0 && first.IsZero() {
			first = time.Now()
		}
		if sum >= int64(n) {
			break
		}
	}
	end := time.Now()
	b.inline = app.Stats().Inline
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	return end.Sub(start), end.Sub(first)
}
