// Command stores measures a count's throughput under the runtime with each
// store backend, side by side in one run: core's in-memory backend and
// Pebble (with a changelog, the default), Redis and the Bigtable emulator
// (without changelog: durable by themselves, they keep the input offsets),
// each remote store directly and behind a TCP proxy that adds 1 ms of
// round-trip time, and behind the proxy with a changelog too. It reports
// records per second, the ratio to Pebble, and the remote stores' round
// trips per record (from store.StatsReporter).
//
// One input topic on the embedded cluster is produced once; each run is a
// new application (its own group and stores) counting all of it. Contenders
// alternate within each pass, so the machine's noise spreads over all of
// them; the table shows medians over the passes.
//
//	go run ./bench/stores -records 1000000 -passes 3
//
// redis-server must be on PATH (tools/services/redis.sh installs it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/bigtable/bttest"
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	bigtablestore "github.com/kstreams-go/kstreams/stores/bigtable"
	"github.com/kstreams-go/kstreams/stores/pebble"
	redisstore "github.com/kstreams-go/kstreams/stores/redis"
	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	records    = flag.Int("records", 1_000_000, "input records")
	keys       = flag.Int("keys", 10_000, "distinct keys")
	partitions = flag.Int("partitions", 4, "input partitions (tasks)")
	passes     = flag.Int("passes", 3, "passes over the contenders")
	commit     = flag.Duration("commit", 0, "commit interval (0: the runtime's default, 5 s)")
	rtt        = flag.Duration("rtt", time.Millisecond, "round-trip time the proxy adds")
	only       = flag.String("only", "", "comma-separated contenders to run (default all)")
)

// contender is one backend configuration.
type contender struct {
	name     string
	supplier store.Supplier
	opts     []store.SpecOption
	stateDir bool
	rtt      func() time.Duration // measured round trip, nil for local stores
}

type result struct {
	rate       float64 // records per second
	tripsPerRc float64
	elapsed    time.Duration
}

func main() {
	flag.Parse()
	ctx := context.Background()
	c, err := embedded.NewCluster(embedded.Topic("in", int32(*partitions)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	produce(ctx, c)

	cs, stop, err := contenders()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	if *only != "" {
		keep := strings.Split(*only, ",")
		cs = slices.DeleteFunc(cs, func(ct contender) bool { return !slices.Contains(keep, ct.name) })
	}
	results := map[string][]result{}
	for pass := 1; pass <= *passes; pass++ {
		for _, ct := range cs {
			r, err := run(ctx, c, ct, pass)
			if err != nil {
				log.Fatalf("%s, pass %d: %v", ct.name, pass, err)
			}
			fmt.Fprintf(os.Stderr, "pass %d %-13s %9.0f records/s, %.5f round trips per record (%v)\n", pass, ct.name, r.rate, r.tripsPerRc, r.elapsed.Round(time.Millisecond))
			results[ct.name] = append(results[ct.name], r)
		}
	}
	commitDesc := "5s (default)"
	if *commit > 0 {
		commitDesc = commit.String()
	}
	fmt.Printf("count of %d records over %d keys, %d partitions, commit interval %s, %d passes (medians)\n\n", *records, *keys, *partitions, commitDesc, *passes)
	fmt.Println("| store | RTT | records/s | ÷ pebble | round trips per record |")
	fmt.Println("|---|---:|---:|---:|---:|")
	pebbleRate := median(results["pebble"], func(r result) float64 { return r.rate })
	for _, ct := range cs {
		rate := median(results[ct.name], func(r result) float64 { return r.rate })
		ratio := "—"
		if pebbleRate > 0 {
			ratio = fmt.Sprintf("%.2f", rate/pebbleRate)
		}
		trips, rttS := "—", "local"
		if ct.rtt != nil {
			trips = fmt.Sprintf("%.5f", median(results[ct.name], func(r result) float64 { return r.tripsPerRc }))
			rttS = fmt.Sprintf("%.2f ms", float64(ct.rtt().Microseconds())/1000)
		}
		fmt.Printf("| %s | %s | %.0f | %s | %s |\n", ct.name, rttS, rate, ratio, trips)
	}
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func produce(ctx context.Context, c *embedded.Cluster) {
	const batch = 10_000
	for start := 0; start < *records; start += batch {
		recs := make([]embedded.Record[string, string], min(batch, *records-start))
		for i := range recs {
			recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("key-%06d", (start+i)*7919%*keys), Value: "v"}
		}
		if err := embedded.Produce(ctx, c, "in", serde.String, serde.String, recs...); err != nil {
			log.Fatal(err)
		}
	}
}

// counter counts records per key in its store.
type counter struct {
	st        kstreams.Store[store.KeyValueStore[string, int64]]
	kv        store.KeyValueStore[string, int64]
	processed *atomic.Int64
	first     *atomic.Int64 // unix nanos of the first record processed
	last      *atomic.Int64
}

func (p *counter) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	p.kv, err = p.st.Get(pc)
	return err
}

func (p *counter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	if err := p.kv.Put(r.Key, n+1); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.first.CompareAndSwap(0, now)
	p.last.Store(now)
	p.processed.Add(1)
	return nil
}

func (p *counter) Close() error { return nil }

// run counts the whole input with ct as a new application.
func run(ctx context.Context, c *embedded.Cluster, ct contender, pass int) (result, error) {
	var reporters []store.StatsReporter
	var mu sync.Mutex
	supplier := func(bctx store.BackendContext) (store.Backend, error) {
		b, err := ct.supplier(bctx)
		if r, ok := b.(store.StatsReporter); ok && err == nil {
			mu.Lock()
			reporters = append(reporters, r)
			mu.Unlock()
		}
		return b, err
	}
	var processed, first, last atomic.Int64
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, supplier, ct.opts...))
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, string] {
		return &counter{st: counts, processed: &processed, first: &first, last: &last}
	}, kstreams.WithStores(counts))
	topo, err := b.Build()
	if err != nil {
		return result{}, err
	}
	opts := []kstreams.Option{kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID(fmt.Sprintf("bench-%s-%d", ct.name, pass))}
	if *commit > 0 {
		opts = append(opts, kstreams.WithCommitInterval(*commit))
	}
	if ct.stateDir {
		dir, err := os.MkdirTemp("", "bench-stores-")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, kstreams.WithStateDir(dir))
	}
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		return result{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for processed.Load() < int64(*records) && time.Now().Before(deadline) {
		select {
		case err := <-done:
			stop()
			return result{}, fmt.Errorf("app stopped: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return result{}, err
	}
	n := processed.Load()
	if n < int64(*records) {
		return result{}, fmt.Errorf("processed %d of %d records in 10 minutes", n, *records)
	}
	el := time.Duration(last.Load() - first.Load())
	r := result{rate: float64(n) / el.Seconds(), elapsed: el}
	var trips int64
	for _, rep := range reporters {
		for _, op := range rep.StoreStats().Ops {
			trips += op.RoundTrips
		}
	}
	r.tripsPerRc = float64(trips) / float64(n)
	return r, nil
}

// contenders starts redis-server, the Bigtable emulator and the delaying
// proxies.
func contenders() ([]contender, func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) ([]contender, func(), error) { stopAll(); return nil, nil, err }
	cs := []contender{
		{name: "memory", supplier: memory.Supplier()},
		{name: "pebble", supplier: pebble.Supplier(), stateDir: true},
	}

	raddr, stop, err := startRedis()
	if err != nil {
		return fail(err)
	}
	stops = append(stops, stop)
	slowRedis, stop, err := delayProxy(raddr, *rtt/2)
	if err != nil {
		return fail(err)
	}
	stops = append(stops, stop)
	for _, t := range []struct{ name, addr string }{{"redis", raddr}, {"redis-1ms", slowRedis}} {
		client := goredis.NewClient(&goredis.Options{Addr: t.addr})
		stops = append(stops, func() { client.Close() })
		measured := pingRTT(func() error { return client.Ping(context.Background()).Err() })
		rttf := func() time.Duration { return measured }
		cs = append(cs, contender{name: t.name, supplier: redisstore.Supplier(client), opts: []store.SpecOption{store.WithoutChangelog()}, rtt: rttf})
		if t.name == "redis-1ms" {
			cs = append(cs, contender{name: t.name + "-changelog", supplier: redisstore.Supplier(client), rtt: rttf})
		}
	}

	srv, err := bttest.NewServer("127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	stops = append(stops, srv.Close)
	slowBT, stop, err := delayProxy(srv.Addr, *rtt/2)
	if err != nil {
		return fail(err)
	}
	stops = append(stops, stop)
	ctx := context.Background()
	for i, t := range []struct{ name, addr string }{{"bigtable", srv.Addr}, {"bigtable-1ms", slowBT}} {
		conn, err := grpc.NewClient(t.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fail(err)
		}
		stops = append(stops, func() { conn.Close() })
		if i == 0 {
			admin, err := bigtable.NewAdminClient(ctx, "proj", "inst", option.WithGRPCConn(conn))
			if err != nil {
				return fail(err)
			}
			if err := bigtablestore.CreateTable(ctx, admin, "kstreams"); err != nil {
				return fail(err)
			}
		}
		client, err := bigtable.NewClientWithConfig(ctx, "proj", "inst", bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}}, option.WithGRPCConn(conn))
		if err != nil {
			return fail(err)
		}
		stops = append(stops, func() { client.Close() })
		tbl := client.Open("kstreams")
		measured := pingRTT(func() error {
			_, err := tbl.ReadRow(ctx, "ping")
			return err
		})
		rttf := func() time.Duration { return measured }
		cs = append(cs, contender{name: t.name, supplier: bigtablestore.Supplier(client, "kstreams"), opts: []store.SpecOption{store.WithoutChangelog()}, rtt: rttf})
		if t.name == "bigtable-1ms" {
			cs = append(cs, contender{name: t.name + "-changelog", supplier: bigtablestore.Supplier(client, "kstreams"), rtt: rttf})
		}
	}
	return cs, stopAll, nil
}

// pingRTT returns the median time of 21 calls of f.
func pingRTT(f func() error) time.Duration {
	var ds []time.Duration
	for range 21 {
		start := time.Now()
		if err := f(); err != nil {
			log.Fatalf("measuring the round trip: %v", err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// startRedis starts redis-server on a free port of 127.0.0.1, without
// persistence.
func startRedis() (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server not installed: run tools/services/redis.sh")
	}
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server: %w", err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	stop = func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not start", addr)
		}
	}
}

// delayProxy forwards TCP connections to target, delivering every chunk
// read in either direction delay after it was read (a round trip costs
// 2×delay more). Chunks are delayed from the moment they are read, not one
// after another, so pipelined traffic keeps its throughput, as on a long
// network path.
func delayProxy(target string, delay time.Duration) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			go pipeDelayed(up, down, delay)
			go pipeDelayed(down, up, delay)
		}
	}()
	return l.Addr().String(), func() { l.Close() }, nil
}

type chunk struct {
	due  time.Time
	data []byte
}

func pipeDelayed(dst, src net.Conn, delay time.Duration) {
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{due: time.Now().Add(delay), data: buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range chunks {
	}
}
