// Command enrich shows key-ordered concurrent processing: each order is
// enriched by a call to a slow customer service (simulated, 20 ms a call)
// and added to its customer's running total, kept in a changelogged store.
//
// Under kstreams.KeyOrder the orders of one customer are processed one after
// another, in offset order, so the read-modify-write of the customer's total
// loses no update; orders of different customers run concurrently, up to
// WithConcurrency calls at once. With the default PartitionOrder the same
// topology would make one call at a time per partition.
//
// With no flags it starts an in-process Kafka cluster, produces the orders,
// runs until every order is enriched, checks each customer's totals came
// out in order, and exits.
//
//	go run ./enrich
//	go run ./enrich -brokers localhost:9092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	ordersTopic   = "enrich-orders"
	enrichedTopic = "enrich-enriched"
	partitions    = 8
	lookupLatency = 20 * time.Millisecond
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process cluster")
	orders := flag.Int("orders", 4000, "orders to produce")
	customers := flag.Int("customers", 200, "distinct customers")
	concurrency := flag.Int("concurrency", 200, "service calls in flight at most")
	flag.Parse()
	if err := run(*brokers, *orders, *customers, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "enrich:", err)
		os.Exit(1)
	}
}

// lookupTier stands for a call to a remote customer service.
func lookupTier(ctx context.Context, customer string) (string, error) {
	select {
	case <-time.After(lookupLatency):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(customer, "customer-"))
	return []string{"bronze", "silver", "gold"}[n%3], nil
}

// Topology enriches orders (key: customer, value: amount in cents) into
// "tier total" per order, where total is the customer's running total.
func Topology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	totalsStore := kstreams.AddStore(b, store.KeyValue("totals", serde.String, serde.Int64, memory.Supplier()))
	orders := kstreams.Source(b, "orders", []string{ordersTopic}, serde.String, serde.Int64)
	enriched := kstreams.Process(orders, "enrich", func() kstreams.Processor[string, int64, string, string] { return &enricher{store: totalsStore} },
		kstreams.WithStores(totalsStore), kstreams.WithOrdering(kstreams.KeyOrder))
	kstreams.Sink(enriched, "enriched", enrichedTopic, serde.String, serde.String)
	return b.Build()
}

type enricher struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, string]
	totals store.KeyValueStore[string, int64]
}

func (e *enricher) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	e.pc = pc
	e.totals, err = e.store.Get(pc)
	return err
}

func (e *enricher) Process(ctx context.Context, r kstreams.Record[string, int64]) error {
	tier, err := lookupTier(ctx, r.Key)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", r.Key, err)
	}
	// Safe under KeyOrder: no other record of this customer runs meanwhile.
	total, _, err := e.totals.Get(r.Key)
	if err != nil {
		return err
	}
	total += r.Value
	if err := e.totals.Put(r.Key, total); err != nil {
		return err
	}
	return e.pc.Forward(ctx, kstreams.WithValue(r, fmt.Sprintf("%s %d", tier, total)))
}

func (e *enricher) Close() error { return nil }

func run(brokerList string, orders, customers, concurrency int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var brokers []string
	if brokerList == "" {
		c, err := embedded.NewCluster(embedded.Topic(ordersTopic, partitions), embedded.Topic(enrichedTopic, partitions))
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.Brokers()
		fmt.Println("started an in-process Kafka cluster at", strings.Join(brokers, ","))
	} else {
		brokers = strings.Split(brokerList, ",")
		if err := createTopics(ctx, brokers); err != nil {
			return err
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(enrichedTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer cl.Close()
	startCtx, cancelStart := context.WithTimeout(ctx, 500*time.Millisecond)
	cl.PollFetches(startCtx) // start consuming output from its current end
	cancelStart()

	// Order i belongs to customer i%customers and is worth i%7+1 euros.
	amount := func(i int) int64 { return int64(i%7+1) * 100 }
	for i := range orders {
		v, _ := serde.Int64.Serialize(nil, ordersTopic, nil, amount(i))
		cl.Produce(ctx, &kgo.Record{Topic: ordersTopic, Key: fmt.Appendf(nil, "customer-%d", i%customers), Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("producing the orders: %w", err)
	}
	// What each customer's running totals must be, in order.
	want := map[string][]int64{}
	for i := range orders {
		k := fmt.Sprintf("customer-%d", i%customers)
		prev := int64(0)
		if ts := want[k]; len(ts) > 0 {
			prev = ts[len(ts)-1]
		}
		want[k] = append(want[k], prev+amount(i))
	}

	topo, err := Topology()
	if err != nil {
		return err
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID("enrich"),
		kstreams.WithConcurrency(concurrency))
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	appErr := make(chan error, 1)
	start := time.Now()
	go func() { appErr <- app.Run(appCtx) }()

	got := map[string][]int64{}
	for seen := 0; seen < orders; {
		pollCtx, cancelPoll := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancelPoll()
		if err := ctx.Err(); err != nil {
			stopApp()
			return fmt.Errorf("saw %d of %d orders before timing out: %w", seen, orders, errors.Join(err, <-appErr))
		}
		select {
		case err := <-appErr:
			return fmt.Errorf("the application stopped early: %w", err)
		default:
		}
		fs.EachRecord(func(r *kgo.Record) {
			var tier string
			var total int64
			if _, err := fmt.Sscanf(string(r.Value), "%s %d", &tier, &total); err == nil {
				got[string(r.Key)] = append(got[string(r.Key)], total)
				seen++
			}
		})
	}
	elapsed := time.Since(start)
	stopApp()
	if err := <-appErr; err != nil {
		return fmt.Errorf("stopping: %w", err)
	}

	inOrder := 0
	for k, ts := range want {
		if fmt.Sprint(got[k]) == fmt.Sprint(ts) {
			inOrder++
		}
	}
	sequential := time.Duration(orders/partitions) * lookupLatency
	fmt.Printf("enriched %d orders of %d customers in %.1fs with up to %d calls in flight (one call at a time per partition would take %.0fs)\n",
		orders, customers, elapsed.Seconds(), concurrency, sequential.Seconds())
	fmt.Printf("running totals in order for %d of %d customers\n", inOrder, len(want))
	if inOrder != len(want) {
		return errors.New("some customers' running totals came out of order")
	}
	return nil
}

func createTopics(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, ordersTopic, enrichedTopic)
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
