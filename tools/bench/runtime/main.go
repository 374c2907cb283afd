// Command runtime measures end-to-end throughput of the kstreams runtime on
// the embedded cluster, next to the same work written directly on franz-go,
// in one run on the same data:
//
//   - stateless: source → map → sink, vs consume → transform → produce → commit;
//     stateless/kstreams-metrics is the same app with a Prometheus
//     collector (metrics/prometheus) observing it, scraped every second;
//   - count: count by key in a changelogged store, emitting each new count,
//     vs an in-memory map that writes the same output and changelog records;
//     count/kstreams-txn is the same app WithTransactions, timed to the
//     last output a read_committed consumer sees.
//
// Throughput is records/s from the first output record to the last (so
// that group join and start-up, which differ in kind, not in speed, are
// left out); the time including start-up is printed too. Each scenario runs
// once per round; the median of the rounds is reported.
//
//	go run ./bench/runtime -records 1000000
//
// With -latency it measures instead, for count/kstreams and
// count/kstreams-txn at a steady input rate, the end-to-end latency (input
// timestamp to the output seen by a consumer, read_committed for the
// transactional one) and the latency of commit requests.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	kprom "github.com/kstreams-go/kstreams/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	records    = flag.Int("records", 1_000_000, "input records")
	keys       = flag.Int("keys", 10_000, "distinct keys")
	valueSize  = flag.Int("value-size", 100, "value bytes")
	partitions = flag.Int("partitions", 8, "input partitions")
	commit     = flag.Duration("commit-interval", 5*time.Second, "commit interval (both sides)")
	only       = flag.String("only", "", "run only scenarios whose name contains this")
	rounds     = flag.Int("rounds", 3, "rounds; each scenario runs once per round and reports its median")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the scenarios to this file")
)

// inputTopic is the topic the scenarios read (the partition sweep switches
// it).
var inputTopic = "input"

func main() {
	flag.Parse()
	if *latency {
		runLatency()
		return
	}
	if *sweep != "" {
		runSweep()
		return
	}
	c, err := embedded.NewCluster(embedded.Topic("input", int32(*partitions)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	brokers := c.Brokers()
	start := time.Now()
	preload(brokers)
	fmt.Printf("preloaded %d records (%d keys, %d-byte values, %d partitions) in %v\n", *records, *keys, *valueSize, *partitions, time.Since(start).Round(time.Millisecond))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	type scenario struct {
		name string
		run  func(ctx context.Context, brokers []string, out string) error
	}
	all := map[string][]float64{}
	cpuPer := map[string][]float64{}    // process CPU time (user+sys) per record, ns
	withStart := map[string][]float64{} // records/s including start-up
	var order []string
	for round := range *rounds {
		for i, s := range []scenario{
			{"stateless/franz-go", rawStateless},
			{"stateless/kstreams", kstreamsStateless},
			{"stateless/kstreams-metrics", kstreamsStatelessMetrics},
			{"count/franz-go", rawCount},
			{"count/kstreams", func(ctx context.Context, brokers []string, out string) error { return kstreamsCount(ctx, brokers, out) }},
			{"count/kstreams-txn", kstreamsCountTxn},
		} {
			if *only != "" && !strings.Contains(s.name, *only) {
				continue
			}
			if round == 0 {
				order = append(order, s.name)
			}
			out := fmt.Sprintf("out-%d-%d", round, i)
			mustCreate(brokers, out, int32(*partitions))
			mustCreate(brokers, out+"-changelog", int32(*partitions))
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			cpu0 := cpuTime()
			t0 := time.Now()
			go func() { errc <- s.run(ctx, brokers, out) }()
			first, err := waitOutput(brokers, out, errc, strings.HasSuffix(s.name, "-txn"))
			if err != nil {
				log.Fatalf("%s: %v", s.name, err)
			}
			el, steady := time.Since(t0), time.Since(first)
			cpu := cpuTime() - cpu0
			cancel()
			<-errc
			rate := float64(*records) / steady.Seconds()
			all[s.name] = append(all[s.name], rate)
			withStart[s.name] = append(withStart[s.name], float64(*records)/el.Seconds())
			cpuPer[s.name] = append(cpuPer[s.name], float64(cpu.Nanoseconds())/float64(*records))
			fmt.Printf("round %d  %-26s %8.0f records/s  (first to last output %v; %v including start-up; CPU %.0f ns/record)\n",
				round+1, s.name, rate, steady.Round(time.Millisecond), el.Round(time.Millisecond), float64(cpu.Nanoseconds())/float64(*records))
		}
	}
	// Metrics on next to off, round by round (the two ran one after the
	// other): the median of the rounds' ratios.
	var paired []float64
	for i, off := range all["stateless/kstreams"] {
		if on := all["stateless/kstreams-metrics"]; i < len(on) {
			paired = append(paired, on[i]/off)
		}
	}
	results := map[string]float64{}
	fmt.Printf("\nmedian of %d rounds:\n", *rounds)
	for _, name := range order {
		rs := all[name]
		slices.Sort(rs)
		results[name] = rs[len(rs)/2]
		fmt.Printf("%-26s %8.0f records/s  CPU %.0f ns/record\n", name, results[name], medianOf(cpuPer[name]))
	}
	if r, k := results["stateless/franz-go"], results["stateless/kstreams"]; r > 0 && k > 0 {
		fmt.Printf("stateless ratio kstreams/franz-go: %.2f\n", k/r)
	}
	if off, on := results["stateless/kstreams"], results["stateless/kstreams-metrics"]; off > 0 && on > 0 {
		cOff, cOn := medianOf(cpuPer["stateless/kstreams"]), medianOf(cpuPer["stateless/kstreams-metrics"])
		fmt.Printf("stateless ratio metrics on/off:    %.2f (median of the rounds' ratios %.2f; CPU per record: %.0f ns off, %.0f ns on: %.2f)\n",
			on/off, medianOf(paired), cOff, cOn, cOn/cOff)
	}
	if r, k := results["count/franz-go"], results["count/kstreams"]; r > 0 && k > 0 {
		fmt.Printf("count ratio kstreams/franz-go:     %.2f\n", k/r)
	}
	// Transactions make outputs visible a commit at a time, so the first
	// visible output can come with the last: compare them including
	// start-up (run with a short -commit-interval).
	median := func(rs []float64) float64 { slices.Sort(rs); return rs[len(rs)/2] }
	if r, k := withStart["count/kstreams"], withStart["count/kstreams-txn"]; len(r) > 0 && len(k) > 0 {
		fmt.Printf("count ratio transactions/default, including start-up: %.2f (%.0f vs %.0f records/s)\n",
			median(k)/median(r), median(k), median(r))
	}
}

func medianOf(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// cpuTime returns the CPU time (user and system) the process used so far:
// the embedded cluster's share is the same work in every scenario, and
// unlike wall-clock throughput it does not move with other processes'
// load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func preload(brokers []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(10*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	value := bytes.Repeat([]byte("x"), *valueSize)
	ctx := context.Background()
	for i := range *records {
		cl.Produce(ctx, &kgo.Record{Topic: inputTopic, Key: []byte("key-" + strconv.Itoa(i%*keys)), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				log.Fatal(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		log.Fatal(err)
	}
}

func mustCreate(brokers []string, topic string, n int32) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), n, 1, nil, topic); err != nil {
		log.Fatal(err)
	}
}

// waitOutput returns when topic holds one record per input record, with
// the time the first output record was seen.
// waitOutput waits until topic holds every output; committed: counted to
// the last stable offset (what read_committed consumers see; transaction
// markers count too, one per partition and transaction).
func waitOutput(brokers []string, topic string, errc chan error, committed bool) (first time.Time, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return first, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		select {
		case err := <-errc:
			return first, fmt.Errorf("stopped early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		list := adm.ListEndOffsets
		if committed {
			list = adm.ListCommittedOffsets
		}
		ends, err := list(context.Background(), topic)
		if err != nil {
			continue
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		if sum > 0 && first.IsZero() {
			first = time.Now()
		}
		if sum >= int64(*records) {
			return first, nil
		}
	}
}

func transform(v []byte) []byte {
	out := make([]byte, len(v))
	for i, c := range v {
		out[i] = c - 32 // upper-case the ASCII payload
	}
	return out
}

// rawLoop is the franz-go baseline: poll, handle each record, produce
// asynchronously, and every commit interval flush and commit.
func rawLoop(ctx context.Context, brokers []string, group string, handle func(cl *kgo.Client, r *kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(inputTopic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	next := time.Now().Add(*commit)
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 10000)
		fs.EachRecord(func(r *kgo.Record) { handle(cl, r) })
		if time.Now().After(next) {
			if err := cl.Flush(ctx); err != nil {
				return nil
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return nil
			}
			next = time.Now().Add(*commit)
		}
	}
	return nil
}

var produceErr = func(_ *kgo.Record, err error) {
	if err != nil && err != context.Canceled {
		fmt.Fprintln(os.Stderr, "produce:", err)
	}
}

func rawStateless(ctx context.Context, brokers []string, out string) error {
	return rawLoop(ctx, brokers, "raw-"+out, func(cl *kgo.Client, r *kgo.Record) {
		cl.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: transform(r.Value), Timestamp: r.Timestamp, Headers: r.Headers}, produceErr)
	})
}

func rawCount(ctx context.Context, brokers []string, out string) error {
	counts := map[string]int64{}
	return rawLoop(ctx, brokers, "raw-"+out, func(cl *kgo.Client, r *kgo.Record) {
		n := counts[string(r.Key)] + 1
		counts[string(r.Key)] = n
		v := binary.BigEndian.AppendUint64(nil, uint64(n)^(1<<63))
		cl.Produce(ctx, &kgo.Record{Topic: out + "-changelog", Partition: r.Partition, Key: r.Key, Value: v}, produceErr)
		cl.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: v, Timestamp: r.Timestamp}, produceErr)
	})
}

func runApp(ctx context.Context, brokers []string, topo *kstreams.Topology, appID string, opts ...kstreams.Option) error {
	app, err := kstreams.NewApp(topo, append([]kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(*commit)}, opts...)...)
	if err != nil {
		return err
	}
	return app.Run(ctx)
}

func kstreamsStateless(ctx context.Context, brokers []string, out string) error {
	return kstreamsStatelessWith(ctx, brokers, out)
}

// kstreamsStatelessMetrics is kstreamsStateless observed by a Prometheus
// collector with its defaults, gathered every second as a scrape would.
func kstreamsStatelessMetrics(ctx context.Context, brokers []string, out string) error {
	c := kprom.New()
	reg := prom.NewRegistry()
	reg.MustRegister(c)
	go func() {
		for t := time.NewTicker(time.Second); ctx.Err() == nil; <-t.C {
			if _, err := reg.Gather(); err != nil {
				log.Fatal(err)
			}
		}
	}()
	return kstreamsStatelessWith(ctx, brokers, out, c.Option())
}

func kstreamsStatelessWith(ctx context.Context, brokers []string, out string, opts ...kstreams.Option) error {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{inputTopic}, serde.Bytes, serde.Bytes)
	m := kstreams.MapValues(src, "upper", func(v []byte) ([]byte, error) { return transform(v), nil })
	kstreams.Sink(m, "out", out, serde.Bytes, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		return err
	}
	return runApp(ctx, brokers, topo, "ks-"+out, opts...)
}

func kstreamsCountTxn(ctx context.Context, brokers []string, out string) error {
	return kstreamsCount(ctx, brokers, out, kstreams.WithTransactions())
}

func kstreamsCount(ctx context.Context, brokers []string, out string, opts ...kstreams.Option) error {
	return kstreamsCountOn(ctx, brokers, inputTopic, out, opts...)
}

func kstreamsCountOn(ctx context.Context, brokers []string, in, out string, opts ...kstreams.Option) error {
	b := kstreams.NewBuilder()
	countsStore := kstreams.AddStore(b, store.KeyValue("counts", serde.Bytes, serde.Int64, memory.Supplier()))
	src := kstreams.Source(b, "in", []string{in}, serde.Bytes, serde.Bytes)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[[]byte, []byte, []byte, int64] { return &counter{store: countsStore} },
		kstreams.WithStores(countsStore))
	kstreams.Sink(counted, "out", out, serde.Bytes, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		return err
	}
	return runApp(ctx, brokers, topo, "ks-"+out, opts...)
}

type counter struct {
	store  kstreams.Store[store.KeyValueStore[[]byte, int64]]
	pc     kstreams.ProcessorContext[[]byte, int64]
	counts store.KeyValueStore[[]byte, int64]
}

func (c *counter) Init(pc kstreams.ProcessorContext[[]byte, int64]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *counter) Process(ctx context.Context, r kstreams.Record[[]byte, []byte]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, n))
}

func (c *counter) Close() error { return nil }
