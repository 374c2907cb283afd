// Command redis-count counts page views per user with kstreams, keeping the
// counts in Redis (stores/redis): source → count per user → sink.
//
// It runs the application twice, as a deployment that restarts does: the
// first run counts a first batch of views, the second a second batch,
// carrying on from the counts the first one left in Redis. After each run it
// prints what Redis holds for each partition's store instance: the owner
// epoch (raised by each open: a stale owner's flushes are refused) and the
// changelog offset stored with the data (the next run restores only the
// changelog after it, here nothing).
//
// With no flags it starts an in-process Kafka cluster and an in-process
// Redis (miniredis, a fake for examples). With -redis it uses a real Redis
// server, with -brokers a real Kafka cluster. With both, counts add up over
// repeated invocations. With a real Redis but the in-process cluster, each
// invocation's new changelogs end before the offsets Redis holds: the
// runtime sees that the stores do not match them and restores them from
// scratch (the changelog is the reference), so counts start over.
//
//	go run ./redis-count
//	go run ./redis-count -redis localhost:6379
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/examples/internal/countrun"
	redisstore "github.com/kstreams-go/kstreams/stores/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	appID       = "redis-count"
	storeName   = "views-per-user"
	inputTopic  = "redis-count-views"
	outputTopic = "redis-count-counts"
	partitions  = 4
	users       = 20
	perRun      = 500 // views produced before each run
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process cluster")
	redisAddr := flag.String("redis", "", "Redis address (host:port); empty starts an in-process miniredis")
	verbose := flag.Bool("v", false, "log what the application does")
	flag.Parse()
	if err := run(*brokers, *redisAddr, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "redis-count:", err)
		os.Exit(1)
	}
}

// Topology counts the records of each key in a store kept by counts.
func Topology(counts store.Supplier) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	// The store keeps its changelog (the default): Redis holds the counts
	// and the changelog offset they cover, and the changelog can rebuild
	// them if Redis loses them (see docs/stores-redis.md).
	countsStore := kstreams.AddStore(b, store.KeyValue(storeName, serde.String, serde.Int64, counts))
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

func run(brokerList, redisAddr string, verbose bool) error {
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
	if redisAddr == "" {
		m, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("starting miniredis: %w", err)
		}
		defer m.Close()
		redisAddr = m.Addr()
		fmt.Println("started an in-process Redis (miniredis)")
	}
	// TLS and credentials, for a real server, are go-redis options
	// (TLSConfig, Username, Password); kstreams never logs them.
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", redisAddr, err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(outputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer cl.Close()
	startCtx, cancelStart := context.WithTimeout(ctx, 500*time.Millisecond)
	cl.PollFetches(startCtx) // start consuming output from its current end
	cancelStart()

	topo, err := Topology(redisstore.Supplier(rdb))
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
		if err := countrun.Until(ctx, topo, perRun, cl, counts, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithLogger(logger)); err != nil {
			return fmt.Errorf("run %d: %w", round+1, err)
		}
		fmt.Printf("run %d counted %d views; Redis holds:\n", round+1, perRun)
		for p := range int32(partitions) {
			keys := redisstore.Keys(appID, storeName, p)
			meta, err := rdb.HGetAll(ctx, keys.Meta).Result()
			if err != nil {
				return err
			}
			n, err := rdb.HLen(ctx, keys.Data).Result()
			if err != nil {
				return err
			}
			fmt.Printf("  %s  owner epoch %s, changelog offset %s, %d users\n", keys.Meta, meta["epoch"], meta["offset"], n)
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
