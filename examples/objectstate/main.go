// Command objectstate counts page views per user with kstreams, keeping the
// counts in Pebble stores whose state lives in a bucket (core/store/snapshot):
// source → count per user → sink.
//
// The store has no changelog topic (store.WithoutChangelog): the bucket is
// its only copy. Before each commit of the input offsets, each store
// instance uploads a snapshot recording those offsets, and the offsets are
// committed only once it is in the bucket; a restore resumes from the
// offsets of the snapshot it downloaded, so state and offsets never
// disagree. With -changelog the store keeps a changelog too: each snapshot
// then records the changelog offset it covers, and a restore replays only
// the changelog after it.
//
// It runs the application twice, each time with a new, empty state
// directory, as a deployment whose instances lose their disks does: the
// first run counts a first batch of views; the second starts from nothing
// local, restores each store from the bucket and counts a second batch on
// top. After each run it prints each store instance's manifest: the owner
// epoch (raised by each open: a stale owner's snapshots are refused), the
// input offsets (or the changelog offset) it covers, the files.
//
// With no flags it starts an in-process Kafka cluster and keeps the bucket
// in a local directory (bucket.Dir). With -s3 it uses an S3 bucket:
//
//	go run ./objectstate
//	go run ./objectstate -changelog
//	go run ./objectstate -s3 's3://my-bucket/kstreams/?endpoint=127.0.0.1:7070&insecure=true'
//
// S3 credentials come from the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, or MINIO_ROOT_USER and MINIO_ROOT_PASSWORD), then
// from the instance's role; they are never printed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kgo"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/examples/internal/countrun"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/kstreams-go/kstreams/stores/s3"
)

const (
	appID       = "objectstate"
	storeName   = "views-per-user"
	inputTopic  = "objectstate-views"
	outputTopic = "objectstate-counts"
	partitions  = 4
	users       = 20
	perRun      = 500 // views produced before each run
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process cluster")
	s3URL := flag.String("s3", "", "S3 bucket as s3://bucket/prefix?endpoint=host:port&insecure=true; empty keeps the bucket in a temporary directory")
	changelog := flag.Bool("changelog", false, "keep a changelog topic too (snapshots then record the changelog offset)")
	verbose := flag.Bool("v", false, "log what the application does")
	flag.Parse()
	if err := run(*brokers, *s3URL, *changelog, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "objectstate:", err)
		os.Exit(1)
	}
}

// Topology counts the records of each key in a store kept by counts, with
// a changelog topic or without.
func Topology(counts store.Supplier, changelog bool) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	var opts []store.SpecOption
	if !changelog {
		// The bucket alone: snapshots record the input offsets they cover.
		opts = append(opts, store.WithoutChangelog())
	}
	countsStore := kstreams.AddStore(b, store.KeyValue(storeName, serde.String, serde.Int64, counts, opts...))
	views := kstreams.Source(b, "views", []string{inputTopic}, serde.String, serde.String)
	counted := kstreams.Process(views, "count", func() kstreams.Processor[string, string, string, int64] { return &counter{store: countsStore} },
		kstreams.WithStores(countsStore))
	kstreams.Sink(counted, "counts-out", outputTopic, serde.String, serde.Int64)
	return b.Build()
}

type counter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, int64]
	counts store.KeyValueStore[string, int64]
}

func (c *counter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *counter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
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

// viewer returns the user of the i-th view: some users view far more
// pages than others.
func viewer(i int) string { return fmt.Sprintf("user-%02d", i*37%101%users) }

// openBucket opens the bucket named by s3URL, or a temporary directory.
func openBucket(s3URL string) (bucket.Bucket, func(), error) {
	if s3URL == "" {
		dir, err := os.MkdirTemp("", "objectstate-bucket-")
		if err != nil {
			return nil, nil, err
		}
		b, err := bucket.Dir(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		fmt.Println("keeping the bucket in", dir)
		return b, func() { os.RemoveAll(dir) }, nil
	}
	u, err := url.Parse(s3URL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, nil, fmt.Errorf("-s3 %q: want s3://bucket/prefix?endpoint=host:port", s3URL)
	}
	endpoint := u.Query().Get("endpoint")
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{}}),
		Secure: u.Query().Get("insecure") != "true",
		Region: u.Query().Get("region"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("-s3: %w", err)
	}
	prefix := strings.TrimPrefix(u.Path, "/")
	fmt.Printf("keeping the bucket in S3 bucket %s at %s, prefix %q\n", u.Host, endpoint, prefix)
	// The run's objects go under a prefix of their own, so that runs do not
	// see each other's state (the in-process cluster starts empty).
	prefix += fmt.Sprintf("run-%d/", time.Now().UnixNano())
	return s3.New(client, u.Host, s3.WithPrefix(prefix)), func() {}, nil
}

func run(brokerList, s3URL string, changelog, verbose bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.Default()
	}

	var brokers []string
	if brokerList == "" {
		c, err := embedded.NewCluster(embedded.Topic(inputTopic, partitions), embedded.Topic(outputTopic, partitions))
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.Brokers()
		fmt.Println("started an in-process Kafka cluster")
	} else {
		brokers = strings.Split(brokerList, ",")
		if err := countrun.CreateTopics(ctx, brokers, partitions, inputTopic, outputTopic); err != nil {
			return err
		}
	}
	b, cleanup, err := openBucket(s3URL)
	if err != nil {
		return err
	}
	defer cleanup()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(outputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer cl.Close()
	startCtx, cancelStart := context.WithTimeout(ctx, 500*time.Millisecond)
	cl.PollFetches(startCtx) // start consuming output from its current end
	cancelStart()

	topo, err := Topology(snapshot.Supplier(b, pebble.SnapshotLocal()), changelog)
	if err != nil {
		return err
	}
	counts := map[string]int64{}
	for round := range 2 {
		for i := range perRun {
			v := round*perRun + i
			cl.Produce(ctx, &kgo.Record{Topic: inputTopic, Key: []byte(viewer(v)), Value: fmt.Appendf(nil, "/page/%d", v%7)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("producing views: %w", err)
		}
		stateDir, err := os.MkdirTemp("", "objectstate-state-") // a new disk each run
		if err != nil {
			return err
		}
		err = countrun.Until(ctx, topo, perRun, cl, counts, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithStateDir(stateDir), kstreams.WithLogger(logger))
		os.RemoveAll(stateDir)
		if err != nil {
			return fmt.Errorf("run %d: %w", round+1, err)
		}
		fmt.Printf("run %d counted %d views with an empty state directory; the bucket holds:\n", round+1, perRun)
		if err := printManifests(ctx, b); err != nil {
			return err
		}
	}

	top := make([]string, 0, len(counts))
	for u := range counts {
		top = append(top, u)
	}
	slices.SortFunc(top, func(a, b string) int {
		if counts[a] != counts[b] {
			return int(counts[b] - counts[a])
		}
		return strings.Compare(a, b)
	})
	fmt.Println("top users:")
	for _, u := range top[:min(5, len(top))] {
		fmt.Printf("%6d  %s\n", counts[u], u)
	}
	return nil
}

// printManifests prints the manifest of each store instance.
func printManifests(ctx context.Context, b bucket.Bucket) error {
	for p := range partitions {
		name := fmt.Sprintf("%s/%s/0_%d/manifest", appID, storeName, p)
		r, _, err := b.Get(ctx, name)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		var m snapshot.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var size int64
		for _, f := range m.Files {
			size += f.Size
		}
		covers := fmt.Sprintf("changelog offset %d", m.Offset)
		if m.Inputs != nil {
			covers = "input offsets " + m.Inputs.String()
		}
		fmt.Printf("  %s  owner epoch %d, %s, %d files (%d bytes)\n", name, m.Epoch, covers, len(m.Files), size)
	}
	return nil
}
