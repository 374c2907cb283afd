// Command bigtable-count counts page views per user with kstreams, keeping
// the counts in Bigtable (stores/bigtable): source → count per user → sink.
//
// It runs the application twice, as a deployment that restarts does: the
// first run counts a first batch of views, the second a second batch,
// carrying on from the counts the first one left in Bigtable. After each
// run it prints each partition's store instance as Bigtable holds it: the
// owner epoch (raised by each open: a stale owner's flushes are refused),
// the version of the last committed flush and the changelog offset stored
// with the data (the next run restores only the changelog after it).
//
// With no flags it starts an in-process Kafka cluster and the in-process
// Bigtable emulator (cloud.google.com/go/bigtable/bttest). With -project and
// -instance it uses a real Bigtable instance (credentials from the
// environment, as the Bigtable client finds them; the table is created if
// missing), with -brokers a real Kafka cluster.
//
//	go run ./bigtable-count
//	go run ./bigtable-count -project my-project -instance my-instance -table kstreams
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/bigtable/bttest"
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/examples/internal/countrun"
	bigtablestore "github.com/kstreams-go/kstreams/stores/bigtable"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	appID       = "bigtable-count"
	storeName   = "views-per-user"
	inputTopic  = "bigtable-count-views"
	outputTopic = "bigtable-count-counts"
	partitions  = 4
	users       = 20
	perRun      = 500 // views produced before each run
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process cluster")
	project := flag.String("project", "", "Google Cloud project of a real Bigtable instance; empty starts the in-process emulator")
	instance := flag.String("instance", "", "Bigtable instance id (with -project)")
	table := flag.String("table", "kstreams", "Bigtable table (created with its column family if missing)")
	verbose := flag.Bool("v", false, "log what the application does")
	flag.Parse()
	if err := run(*brokers, *project, *instance, *table, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bigtable-count:", err)
		os.Exit(1)
	}
}

// Topology counts the records of each key in a store kept by counts.
func Topology(counts store.Supplier) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	// The store keeps its changelog (the default): Bigtable holds the
	// counts and the changelog offset they cover, and the changelog can
	// rebuild them (see docs/stores-bigtable.md).
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

// connect returns the Bigtable client and admin client: of the in-process
// emulator when project is empty, else of the real instance with the
// environment's credentials.
func connect(ctx context.Context, project, instance string) (*bigtable.Client, *bigtable.AdminClient, func(), error) {
	var opts []option.ClientOption
	cfg := bigtable.ClientConfig{}
	stop := func() {}
	if project == "" {
		srv, err := bttest.NewServer("127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("starting the Bigtable emulator: %w", err)
		}
		conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			srv.Close()
			return nil, nil, nil, err
		}
		stop = func() { conn.Close(); srv.Close() }
		project, instance = "emulator", "emulator"
		opts = append(opts, option.WithGRPCConn(conn))
		cfg.MetricsProvider = bigtable.NoopMetricsProvider{}
		fmt.Println("started the in-process Bigtable emulator")
	} else if instance == "" {
		return nil, nil, nil, errors.New("-project needs -instance")
	}
	client, err := bigtable.NewClientWithConfig(ctx, project, instance, cfg, opts...)
	if err != nil {
		stop()
		return nil, nil, nil, fmt.Errorf("bigtable client: %w", err)
	}
	admin, err := bigtable.NewAdminClient(ctx, project, instance, opts...)
	if err != nil {
		client.Close()
		stop()
		return nil, nil, nil, fmt.Errorf("bigtable admin client: %w", err)
	}
	return client, admin, func() { admin.Close(); client.Close(); stop() }, nil
}

func run(brokerList, project, instance, table string, verbose bool) error {
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
	client, admin, closeBigtable, err := connect(ctx, project, instance)
	if err != nil {
		return err
	}
	defer closeBigtable()
	if err := bigtablestore.CreateTable(ctx, admin, table); err != nil {
		return err
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

	topo, err := Topology(bigtablestore.Supplier(client, table))
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
		fmt.Printf("run %d counted %d views; Bigtable holds:\n", round+1, perRun)
		for p := range int32(partitions) {
			s, err := bigtablestore.ReadInstanceState(ctx, client, table, bigtablestore.DefaultFamily, appID, storeName, p)
			if err != nil {
				return err
			}
			offset := "none"
			if s.HasOffset {
				offset = fmt.Sprint(s.Offset)
			}
			fmt.Printf("  partition %d  owner epoch %d, committed version %d, changelog offset %s\n", p, s.Epoch, s.Committed, offset)
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
