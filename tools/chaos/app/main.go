// Command app is the counting application that tools/chaos runs as separate
// OS processes, kills and restarts.
//
// For each input record (key: any string, value: a unique id) it increments
// the key's count in store "counts" (changelogged) and writes to the output
// topic, under the same key, {"id": <the input's value>, "count": <new count>}.
// The store is in memory, in Pebble, in Redis (-store redis -redis
// host:port) or in Pebble kept in an S3 bucket (-store snapshot -s3
// host:port/bucket, core/store/snapshot; credentials from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), with a changelog unless
// -changelog=false.
// Values starting with "poison" make the processor fail; values starting
// with "garbage" fail to deserialize: the error policies decide what
// happens to them.
//
// It logs to stderr, one line per event; the harness reads these lines:
//
//	RESTORED task=<task> store=<store> records=<n> ms=<elapsed>
//	STATS processed=<n> tasks=<n> skipped=<n> dead_lettered=<n> restored=<n>
//	FATAL_RECORD topic=<t> partition=<p> offset=<o> stage=<s> node=<n>   (a RecordError stopped it)
//	FATAL <error>      (then exits 3)
//
// SIGTERM or SIGINT stop it gracefully (exit 0).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
	redisstore "github.com/kstreams-go/kstreams/stores/redis"
	s3store "github.com/kstreams-go/kstreams/stores/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	brokers        = flag.String("brokers", "", "comma-separated bootstrap addresses")
	appID          = flag.String("app-id", "", "application id")
	in             = flag.String("in", "", "input topic")
	out            = flag.String("out", "", "output topic")
	stateDir       = flag.String("state-dir", "", "state directory")
	storeKind      = flag.String("store", "memory", "store backend: memory, pebble, redis or snapshot")
	redisAddr      = flag.String("redis", "", "address (host:port) of the Redis server of -store redis")
	s3Bucket       = flag.String("s3", "", "S3 endpoint and bucket (host:port/bucket, plain HTTP) of -store snapshot")
	changelog      = flag.Bool("changelog", true, "log the store's writes to a changelog topic (false: store.WithoutChangelog, for a store durable by itself, as redis)")
	commitInterval = flag.Duration("commit-interval", time.Second, "commit interval")
	sessionTimeout = flag.Duration("session-timeout", 6*time.Second, "consumer group session timeout")
	procErrors     = flag.String("processing-errors", "fail", "policy for processing errors: fail, skip or dlq=<topic>")
	deserErrors    = flag.String("deserialization-errors", "fail", "policy for deserialization errors: fail, skip or dlq=<topic>")
	rf             = flag.Int("replication-factor", -1, "replication factor of internal topics (-1: the broker's default)")
	statsEvery     = flag.Duration("stats-every", time.Second, "how often to print STATS")
	verbose        = flag.Bool("v", false, "log the runtime's info messages too")
	transactions   = flag.Bool("transactions", false, "commit with Kafka transactions (kstreams.WithTransactions)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		var re *kstreams.RecordError
		if errors.As(err, &re) {
			fmt.Fprintf(os.Stderr, "FATAL_RECORD topic=%s partition=%d offset=%d stage=%s node=%s\n",
				re.Topic, re.Partition, re.Offset, re.Stage, re.Node)
		}
		fmt.Fprintf(os.Stderr, "FATAL %v\n", err)
		os.Exit(3)
	}
}

func policy(s string) (kstreams.ErrorPolicy, error) {
	switch {
	case s == "fail":
		return kstreams.FailOnError(), nil
	case s == "skip":
		return kstreams.SkipOnError(), nil
	case strings.HasPrefix(s, "dlq="):
		return kstreams.DeadLetterOnError(strings.TrimPrefix(s, "dlq=")), nil
	}
	return kstreams.ErrorPolicy{}, fmt.Errorf("unknown error policy %q", s)
}

func run() error {
	if *brokers == "" || *appID == "" || *in == "" || *out == "" {
		return errors.New("-brokers, -app-id, -in and -out are required")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var supplier store.Supplier
	switch *storeKind {
	case "memory":
		supplier = memory.Supplier()
	case "pebble":
		supplier = pebble.Supplier(pebble.WithCacheSize(16 << 20))
	case "redis":
		if *redisAddr == "" {
			return errors.New("-store redis needs -redis host:port")
		}
		rdb := goredis.NewClient(&goredis.Options{Addr: *redisAddr})
		defer rdb.Close()
		supplier = redisstore.Supplier(rdb)
	case "snapshot":
		endpoint, name, ok := strings.Cut(*s3Bucket, "/")
		if !ok || name == "" {
			return errors.New("-store snapshot needs -s3 host:port/bucket")
		}
		client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewEnvAWS()})
		if err != nil {
			return fmt.Errorf("-s3: %w", err)
		}
		supplier = snapshot.Supplier(s3store.New(client, name), pebble.SnapshotLocal(pebble.WithCacheSize(16<<20)))
	default:
		return fmt.Errorf("unknown store %q", *storeKind)
	}
	pp, err := policy(*procErrors)
	if err != nil {
		return err
	}
	dp, err := policy(*deserErrors)
	if err != nil {
		return err
	}
	var specOpts []store.SpecOption
	if !*changelog {
		specOpts = append(specOpts, store.WithoutChangelog())
	}
	topo, err := topology(*in, *out, supplier, specOpts...)
	if err != nil {
		return err
	}
	var logMu sync.Mutex
	opts := []kstreams.Option{
		kstreams.WithBrokers(strings.Split(*brokers, ",")...),
		kstreams.WithApplicationID(*appID),
		kstreams.WithCommitInterval(*commitInterval),
		kstreams.WithLogger(logger),
		kstreams.WithProcessingErrors(pp),
		kstreams.WithDeserializationErrors(dp),
		kstreams.WithReplicationFactor(int16(*rf)),
		kstreams.WithSessionTimeout(*sessionTimeout),
		kstreams.WithRebalanceTimeout(30 * time.Second),
		kstreams.WithKgoOptions(kgo.HeartbeatInterval(*sessionTimeout / 6)),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) {
			if p.Done {
				logMu.Lock()
				fmt.Fprintf(os.Stderr, "RESTORED task=%s store=%s records=%d ms=%d\n", p.Task, p.Store, p.Restored, p.Elapsed.Milliseconds())
				logMu.Unlock()
			}
		}),
	}
	if *stateDir != "" {
		opts = append(opts, kstreams.WithStateDir(*stateDir))
	}
	if *transactions {
		opts = append(opts, kstreams.WithTransactions())
	}
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(*statsEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := app.Stats()
			logMu.Lock()
			fmt.Fprintf(os.Stderr, "STATS processed=%d tasks=%d skipped=%d dead_lettered=%d restored=%d\n",
				s.Processed, s.Tasks, s.Skipped, s.DeadLettered, s.Restored)
			logMu.Unlock()
		}
	}()
	err = app.Run(ctx)
	close(done)
	s := app.Stats()
	fmt.Fprintf(os.Stderr, "STATS processed=%d tasks=%d skipped=%d dead_lettered=%d restored=%d\n",
		s.Processed, s.Tasks, s.Skipped, s.DeadLettered, s.Restored)
	return err
}

// checkedString is the input value serde: a string, unless it starts with
// "garbage".
var checkedString = serde.Funcs[string]{
	Ser: func(dst []byte, _ string, _ []serde.Header, v string) ([]byte, error) { return append(dst, v...), nil },
	De: func(_ string, _ []serde.Header, data []byte) (string, error) {
		if strings.HasPrefix(string(data), "garbage") {
			return "", fmt.Errorf("undecodable value %q", data)
		}
		return string(data), nil
	},
}

func topology(in, out string, supplier store.Supplier, opts ...store.SpecOption) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	countsStore := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, supplier, opts...))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.Serde[string](checkedString))
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, []byte] { return &counter{store: countsStore} },
		kstreams.WithStores(countsStore))
	kstreams.Sink(counted, "out", out, serde.String, serde.Bytes)
	return b.Build()
}

// Output is what the app writes per input record.
type Output struct {
	ID    string `json:"id"`
	Count int64  `json:"count"`
}

type counter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, []byte]
	counts store.KeyValueStore[string, int64]
}

func (c *counter) Init(pc kstreams.ProcessorContext[string, []byte]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *counter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	if strings.HasPrefix(r.Value, "poison") {
		return fmt.Errorf("poison value %q", r.Value)
	}
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	v, err := json.Marshal(Output{ID: r.Value, Count: n})
	if err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, v))
}

func (c *counter) Close() error { return nil }
