// Command app is the kstreams side of tools/bench/ks: one scenario per
// process, so that the harness can read its peak RSS and CPU time from /proc.
// It runs until SIGTERM/SIGINT.
//
//	app -scenario count -brokers 127.0.0.1:9092 -in in -out out -app-id id -state-dir dir
//
// Scenarios (the same as java/streams StreamsBench):
//
//	stateless  drop keys ending in '7', upper-case the value
//	count      count by key in a Pebble key-value store (changelogged)
//	window     1-minute tumbling count in a Pebble window store (changelogged)
//	slow       5 ms sleep per record, KEY order, -concurrency workers
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/window"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	scenario    = flag.String("scenario", "", "stateless | count | window | slow")
	brokers     = flag.String("brokers", "", "bootstrap brokers, comma separated")
	in          = flag.String("in", "", "input topic")
	out         = flag.String("out", "", "output topic")
	appID       = flag.String("app-id", "", "application id")
	stateDir    = flag.String("state-dir", "", "state directory")
	concurrency = flag.Int("concurrency", 1000, "workers (slow)")
	commit      = flag.Duration("commit-interval", 5*time.Second, "commit interval")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile here until stopped")

	// Memory tuning, for comparing settings (-kstreams-variant of the harness).
	fetchPart    = flag.Int("fetch-partition-bytes", 0, "kgo.FetchMaxPartitionBytes (0: kstreams' choice)")
	fetchMax     = flag.Int("fetch-bytes", 0, "kgo.FetchMaxBytes (0: kstreams' choice)")
	pebbleCache  = flag.Int64("pebble-cache", 0, "pebble.WithCacheSize (0: the default)")
	pebbleMemtab = flag.Int("pebble-memtable", 0, "pebble.WithMemTableSize (0: the default)")
	gogc         = flag.Int("gogc", 0, "debug.SetGCPercent (0: leave it)")
	memLimit     = flag.Int64("memlimit", 0, "debug.SetMemoryLimit in bytes (0: leave it)")
	memBudget    = flag.Int64("memory-budget", 0, "kstreams.WithMemoryBudget in bytes (0: the default)")
	memStats     = flag.Bool("memstats", false, "sample Go's memory statistics every 50 ms and print their peaks on exit")

	// CPU scaling (-kstreams-variant procs1="-gomaxprocs 1").
	gomaxprocs = flag.Int("gomaxprocs", 0, "runtime.GOMAXPROCS (0: leave it)")
)

func main() {
	flag.Parse()
	if *gomaxprocs > 0 {
		runtime.GOMAXPROCS(*gomaxprocs)
	}
	topo, err := build(*scenario)
	if err != nil {
		log.Fatal(err)
	}
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
	opts := []kstreams.Option{
		kstreams.WithBrokers(strings.Split(*brokers, ",")...),
		kstreams.WithApplicationID(*appID),
		kstreams.WithStateDir(*stateDir),
		kstreams.WithCommitInterval(*commit),
		kstreams.WithReplicationFactor(1),
		kstreams.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if *scenario == "slow" {
		opts = append(opts, kstreams.WithConcurrency(*concurrency))
	}
	var kopts []kgo.Opt
	if *fetchPart > 0 {
		kopts = append(kopts, kgo.FetchMaxPartitionBytes(int32(*fetchPart)))
	}
	if *fetchMax > 0 {
		kopts = append(kopts, kgo.FetchMaxBytes(int32(*fetchMax)))
	}
	if len(kopts) > 0 {
		opts = append(opts, kstreams.WithKgoOptions(kopts...))
	}
	if *memBudget > 0 {
		opts = append(opts, kstreams.WithMemoryBudget(*memBudget))
	}
	if *gogc != 0 {
		debug.SetGCPercent(*gogc)
	}
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	if *memStats {
		defer sampleMemStats()()
	}
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintln(os.Stderr, "started", *scenario)
	if err := app.Run(ctx); err != nil && ctx.Err() == nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

func build(scenario string) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{*in}, serde.Bytes, serde.Bytes)
	switch scenario {
	case "stateless":
		kept := kstreams.Filter(src, "filter", func(r kstreams.Record[[]byte, []byte]) bool { return !endsWith7(r.Key) })
		up := kstreams.MapValues(kept, "upper", func(v []byte) ([]byte, error) { return upper(v), nil })
		kstreams.Sink(up, "out", *out, serde.Bytes, serde.Bytes)
	case "count":
		countsStore := kstreams.AddStore(b, store.KeyValue("counts", serde.Bytes, serde.JavaInt64, pebbleSupplier()))
		counted := kstreams.Process(src, "count", func() kstreams.Processor[[]byte, []byte, []byte, int64] { return &counter{store: countsStore} },
			kstreams.WithStores(countsStore))
		kstreams.Sink(counted, "out", *out, serde.Bytes, serde.JavaInt64)
	case "window":
		st := window.NewStore("wcounts", window.Tumbling(time.Minute), serde.Bytes, serde.JavaInt64, pebbleSupplier())
		counted := window.Count(src, "wcount", st)
		kstreams.Sink(counted, "out", *out, window.KeySerde(serde.Bytes), serde.JavaInt64)
	case "slow":
		worked := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[[]byte, []byte], r kstreams.Record[[]byte, []byte]) error {
			time.Sleep(5 * time.Millisecond)
			return pc.Forward(ctx, r)
		}, kstreams.WithOrdering(kstreams.KeyOrder))
		kstreams.Sink(worked, "out", *out, serde.Bytes, serde.Bytes)
	default:
		return nil, fmt.Errorf("unknown scenario %q", scenario)
	}
	return b.Build()
}

func endsWith7(k []byte) bool { return len(k) > 0 && k[len(k)-1] == '7' }

func upper(v []byte) []byte {
	o := make([]byte, len(v))
	for i, c := range v {
		if c >= 'a' && c <= 'z' {
			c -= 32
		}
		o[i] = c
	}
	return o
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

func pebbleSupplier() store.Supplier {
	var opts []pebble.Option
	if *pebbleCache > 0 {
		opts = append(opts, pebble.WithCacheSize(*pebbleCache))
	}
	if *pebbleMemtab > 0 {
		opts = append(opts, pebble.WithMemTableSize(*pebbleMemtab))
	}
	return pebble.Supplier(opts...)
}

// sampleMemStats samples Go's memory statistics until the returned
// function is called, which prints their peaks to stderr.
func sampleMemStats() func() {
	stop, done := make(chan struct{}), make(chan struct{})
	var peakHeap, peakSys, peakStack uint64
	var last runtime.MemStats
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&last)
			peakHeap = max(peakHeap, last.HeapInuse)
			peakSys = max(peakSys, last.Sys-last.HeapReleased)
			peakStack = max(peakStack, last.StackInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		fmt.Fprintf(os.Stderr, "memstats: peak HeapInuse %d MiB, peak Sys-HeapReleased %d MiB, peak StackInuse %d MiB, GC cycles %d, GC CPU fraction %.3f\n",
			peakHeap>>20, peakSys>>20, peakStack>>20, last.NumGC, last.GCCPUFraction)
	}
}
