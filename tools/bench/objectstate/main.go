// Command objectstate measures object-storage state (core/store/snapshot)
// against changelog state, side by side in one run:
//
//   - restore (default): a store of -keys distinct keys (-value bytes each)
//     whose changelog holds -updates writes per key; the time a task takes
//     to restore it from its changelog (the runtime's restore, on the
//     broker), against the time a new disk takes to restore it from the
//     bucket (claim, download, restore, open: the changelog after the
//     snapshot is empty). Contenders alternate, -rounds times each.
//   - -throughput: a count over -records input records (-count-keys keys)
//     with its store in Pebble with changelog only, against the same with
//     snapshots on at every commit (background and synchronous uploads),
//     and snapshots without changelog; records/s between 5% and 95% of
//     the input, plus the bucket requests and bytes each made.
//
// The broker is the embedded cluster unless -brokers names a real one; the
// bucket is a local directory unless -s3 host:port/bucket names an S3
// endpoint (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
//
//	go run ./bench/objectstate -brokers 127.0.0.1:9092 -s3 127.0.0.1:7070/bench -keys 1000000,10000000
//	go run ./bench/objectstate -throughput -brokers 127.0.0.1:9092 -s3 127.0.0.1:7070/bench
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
	s3store "github.com/kstreams-go/kstreams/stores/s3"
)

var (
	brokersF   = flag.String("brokers", "", "bootstrap addresses of a real cluster (default: the embedded cluster)")
	s3F        = flag.String("s3", "", "S3 endpoint and bucket, host:port/bucket (plain HTTP); default: a local directory")
	keysF      = flag.String("keys", "1000000", "restore: comma-separated store sizes (distinct keys)")
	updates    = flag.Int("updates", 1, "restore: changelog writes per key")
	valueSize  = flag.Int("value", 100, "restore: value bytes")
	rounds     = flag.Int("rounds", 2, "runs of each contender, alternating")
	throughput = flag.Bool("throughput", false, "measure count throughput instead of restores")
	records    = flag.Int("records", 1_000_000, "throughput: input records")
	countKeys  = flag.Int("count-keys", 100_000, "throughput: distinct keys")
	partitions = flag.Int("partitions", 4, "throughput: input partitions")
	commit     = flag.Duration("commit-interval", time.Second, "throughput: commit interval")
)

func main() {
	flag.Parse()
	brokers := strings.Split(*brokersF, ",")
	if *brokersF == "" {
		c, err := embedded.NewCluster()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		brokers = c.Brokers()
	}
	b, where := openBucket()
	fmt.Printf("broker %s, bucket %s\n", strings.Join(brokers, ","), where)
	run := fmt.Sprintf("os%d", time.Now().Unix()%100000)
	if *throughput {
		runThroughput(brokers, b, run)
		return
	}
	for _, k := range strings.Split(*keysF, ",") {
		n, err := strconv.Atoi(k)
		if err != nil {
			log.Fatalf("-keys %q: %v", k, err)
		}
		runRestore(brokers, b, fmt.Sprintf("%s-%d", run, n), n)
	}
}

func openBucket() (*counting, string) {
	if *s3F == "" {
		dir, err := os.MkdirTemp("", "objectstate-bench-")
		if err != nil {
			log.Fatal(err)
		}
		b, err := bucket.Dir(dir)
		if err != nil {
			log.Fatal(err)
		}
		return &counting{Bucket: b}, "directory " + dir
	}
	endpoint, name, ok := strings.Cut(*s3F, "/")
	if !ok {
		log.Fatalf("-s3 %q: want host:port/bucket", *s3F)
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewEnvAWS()})
	if err != nil {
		log.Fatal(err)
	}
	return &counting{Bucket: s3store.New(client, name)}, "S3 " + *s3F
}

// counting counts a bucket's requests and the bytes it sent.
type counting struct {
	bucket.Bucket
	puts, gets, putBytes, manifests atomic.Int64
}

func (c *counting) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	c.puts.Add(1)
	c.putBytes.Add(size)
	if strings.HasSuffix(name, "/manifest") {
		c.manifests.Add(1)
	}
	return c.Bucket.Put(ctx, name, r, size, cond)
}

func (c *counting) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	c.gets.Add(1)
	return c.Bucket.Get(ctx, name)
}

func (c *counting) reset() (puts, gets, bytes int64) {
	c.manifests.Store(0)
	return c.puts.Swap(0), c.gets.Swap(0), c.putBytes.Swap(0)
}

func admin(brokers []string) (*kgo.Client, *kadm.Client) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	return cl, kadm.NewClient(cl)
}

func create(adm *kadm.Client, partitions int32, topics ...string) {
	resp, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			log.Fatalf("creating %s: %v", r.Topic, r.Err)
		}
	}
}

func value(rnd *rand.Rand, n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte('a' + rnd.IntN(26))
	}
	return v
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%09d", i) }

// runRestore fills a changelog and a snapshot with the same state of n
// keys, then restores each, alternating.
func runRestore(brokers []string, b *counting, app string, n int) {
	cl, adm := admin(brokers)
	defer cl.Close()
	in, changelog := app+"-in", app+"-counts-changelog"
	create(adm, 1, in, changelog)

	// The changelog: n*updates writes; the last of each key is its value.
	t0 := time.Now()
	rnd := rand.New(rand.NewPCG(1, uint64(n)))
	for u := range *updates {
		for i := range n {
			cl.Produce(context.Background(), &kgo.Record{Topic: changelog, Key: key(i), Value: value(rnd, *valueSize)}, func(_ *kgo.Record, err error) {
				if err != nil {
					log.Fatal(err)
				}
			})
		}
		_ = u
	}
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	end := int64(n * *updates)
	fmt.Printf("\n%d keys, %d changelog records (%d-byte values) produced in %v\n", n, end, *valueSize, time.Since(t0).Round(time.Millisecond))

	// The snapshot: the same final state, covering the whole changelog.
	t0 = time.Now()
	supply := snapshot.Supplier(b, pebble.SnapshotLocal(), snapshot.WithConcurrency(8))
	bc := store.BackendContext{App: app, Store: "counts", Task: "0_0"}
	bc.Dir, _ = os.MkdirTemp("", "objectstate-bench-fill-")
	sb, err := supply(bc)
	if err != nil {
		log.Fatal(err)
	}
	// Replay the same random values: the snapshot holds the last of each key.
	rnd = rand.New(rand.NewPCG(1, uint64(n)))
	var batch store.Batch
	for range *updates {
		for i := range n {
			batch.Set(key(i), value(rnd, *valueSize))
			if batch.Len() == 10_000 {
				if err := sb.Write(&batch); err != nil {
					log.Fatal(err)
				}
				batch.Reset()
			}
		}
	}
	if err := sb.Write(&batch); err != nil {
		log.Fatal(err)
	}
	b.reset()
	t1 := time.Now()
	if err := sb.(store.OffsetKeeper).FlushAt(end); err != nil {
		log.Fatal(err)
	}
	up := time.Since(t1)
	puts, _, bytes := b.reset()
	sb.Close()
	os.RemoveAll(bc.Dir)
	fmt.Printf("snapshot written in %v; its upload: %v, %d PUTs, %.1f MB\n", time.Since(t0).Round(time.Millisecond), up.Round(time.Millisecond), puts, float64(bytes)/1e6)

	var fromLog, fromBucket []time.Duration
	var restored int64
	for range *rounds {
		d, r := restoreFromChangelog(brokers, app, in)
		fromLog = append(fromLog, d)
		restored = r
		fmt.Printf("  changelog replay: %d records in %v\n", r, d.Round(time.Millisecond))

		bc.Dir, _ = os.MkdirTemp("", "objectstate-bench-restore-")
		b.reset()
		t0 := time.Now()
		rb, err := supply(bc)
		if err != nil {
			log.Fatal(err)
		}
		d = time.Since(t0)
		_, gets, _ := b.reset()
		if off, ok, _ := rb.(store.OffsetKeeper).StoredOffset(); !ok || off != end {
			log.Fatalf("restored snapshot at offset %d, %v; want %d", off, ok, end)
		}
		rb.Close()
		os.RemoveAll(bc.Dir)
		fromBucket = append(fromBucket, d)
		fmt.Printf("  bucket restore: %v (%d GETs)\n", d.Round(time.Millisecond), gets)
	}
	ml, mb := median(fromLog), median(fromBucket)
	fmt.Printf("RESULT keys=%d updates=%d changelog=%d records: changelog replay %v, bucket restore %v, ratio %.1fx\n",
		n, *updates, restored, ml.Round(time.Millisecond), mb.Round(time.Millisecond), ml.Seconds()/mb.Seconds())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// restoreFromChangelog runs an app whose Pebble store restores from the
// changelog, on a new disk, and returns the runtime's restore time.
func restoreFromChangelog(brokers []string, app, in string) (time.Duration, int64) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.Bytes, serde.Bytes, pebble.Supplier()))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	kstreams.ForEach(kstreams.Func(src, "use", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		return pc.Forward(ctx, r)
	}, kstreams.WithStores(counts)), "end", func(kstreams.Record[string, string]) error { return nil })
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "objectstate-bench-log-")
	defer os.RemoveAll(dir)
	done := make(chan kstreams.RestoreProgress, 1)
	a, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(app), kstreams.WithStateDir(dir),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) {
			if p.Done {
				done <- p
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	var p kstreams.RestoreProgress
	select {
	case p = <-done:
	case err := <-errc:
		log.Fatalf("app stopped: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	return p.Elapsed, p.Restored
}

// runThroughput counts the same input with each contender, alternating.
func runThroughput(brokers []string, b *counting, run string) {
	cl, adm := admin(brokers)
	defer cl.Close()
	in := run + "-in"
	create(adm, int32(*partitions), in)
	rnd := rand.New(rand.NewPCG(2, 2))
	t0 := time.Now()
	for i := range *records {
		cl.Produce(context.Background(), &kgo.Record{Topic: in, Key: key(rnd.IntN(*countKeys)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				log.Fatal(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d input records (%d keys, %d partitions) produced in %v; commit interval %v\n", *records, *countKeys, *partitions, time.Since(t0).Round(time.Millisecond), *commit)

	type contender struct {
		name      string
		supplier  func() store.Supplier
		changelog bool
	}
	contenders := []contender{
		{"changelog only (Pebble)", func() store.Supplier { return pebble.Supplier() }, true},
		{"changelog + snapshots, background uploads", func() store.Supplier {
			return snapshot.Supplier(b, pebble.SnapshotLocal(), snapshot.WithBackgroundUploads())
		}, true},
		{"changelog + snapshots, synchronous uploads", func() store.Supplier { return snapshot.Supplier(b, pebble.SnapshotLocal()) }, true},
		{"snapshots only, no changelog (mode b)", func() store.Supplier { return snapshot.Supplier(b, pebble.SnapshotLocal()) }, false},
	}
	rates := map[string][]float64{}
	for round := range *rounds {
		for i, c := range contenders {
			app := fmt.Sprintf("%s-tp-%d-%d", run, round, i)
			out := app + "-out"
			create(adm, int32(*partitions), out)
			b.reset()
			rate, el, stateBytes, snaps := countRun(brokers, app, in, out, c.supplier(), c.changelog, b)
			puts, gets, bytes := b.reset()
			rates[c.name] = append(rates[c.name], rate)
			line := fmt.Sprintf("  %-44s %8.0f records/s", c.name, rate)
			if puts > 0 {
				line += fmt.Sprintf("; %d PUTs (%.0f/min), %d GETs, %.1f MB uploaded, %d snapshots (%.2f MB each; state %.1f MB)",
					puts, float64(puts)/el.Minutes(), gets, float64(bytes)/1e6, snaps, float64(bytes)/1e6/float64(max(snaps, 1)), float64(stateBytes)/1e6)
			}
			fmt.Println(line)
		}
	}
	base := medianF(rates[contenders[0].name])
	for _, c := range contenders {
		m := medianF(rates[c.name])
		fmt.Printf("RESULT %-44s median %8.0f records/s, %.2fx changelog only\n", c.name, m, m/base)
	}
}

func medianF(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}

// countRun counts in into out with a store from supplier and returns the
// rate between 5% and 95% of the input processed, the elapsed time, the
// final state size in the bucket (snapshot stores) and the snapshots
// written.
func countRun(brokers []string, app, in, out string, supplier store.Supplier, changelog bool, cb *counting) (float64, time.Duration, int64, int64) {
	var opts []store.SpecOption
	if !changelog {
		opts = append(opts, store.WithoutChangelog())
	}
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.Bytes, serde.Int64, supplier, opts...))
	src := kstreams.Source(b, "in", []string{in}, serde.Bytes, serde.Bytes)
	counted := kstreams.Func(src, "count", func(ctx context.Context, pc kstreams.ProcessorContext[[]byte, int64], r kstreams.Record[[]byte, []byte]) error {
		s, err := counts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := s.Get(r.Key)
		if err != nil {
			return err
		}
		n++
		if err := s.Put(r.Key, n); err != nil {
			return err
		}
		return pc.Forward(ctx, kstreams.WithValue(r, n))
	}, kstreams.WithStores(counts))
	kstreams.Sink(counted, "out", out, serde.Bytes, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "objectstate-bench-count-")
	defer os.RemoveAll(dir)
	a, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(app), kstreams.WithStateDir(dir),
		kstreams.WithCommitInterval(*commit))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- a.Run(ctx) }()
	lo, hi := int64(*records)/20, int64(*records)*19/20
	var tLo, tHi time.Time
	for tHi.IsZero() {
		select {
		case err := <-errc:
			log.Fatalf("app stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		p := a.Stats().Processed
		if tLo.IsZero() && p >= lo {
			tLo = time.Now()
		}
		if p >= hi {
			tHi = time.Now()
		}
	}
	el := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	// The state size, from the manifests; the snapshots, from the manifest
	// writes (less one claim per task).
	var state, instances int64
	for info, err := range cb.Bucket.List(context.Background(), app+"/") {
		if err != nil {
			log.Fatal(err)
		}
		if strings.HasSuffix(info.Name, "/manifest") {
			instances++
			r, _, err := cb.Bucket.Get(context.Background(), info.Name)
			if err != nil {
				log.Fatal(err)
			}
			var m snapshot.Manifest
			err = json.NewDecoder(r).Decode(&m)
			r.Close()
			if err != nil {
				log.Fatal(err)
			}
			for _, f := range m.Files {
				state += f.Size
			}
		}
	}
	return float64(hi-lo) / tHi.Sub(tLo).Seconds(), el, state, cb.manifests.Load() - instances
}
