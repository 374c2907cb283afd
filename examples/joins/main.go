// Command joins enriches orders with their customers: the customers topic is
// read as a table (the latest record of each customer; a tombstone deletes
// one), and each order is joined with its customer's row when it is
// processed (join.StreamTableLeft: an order of an unknown customer is kept,
// with no customer).
//
// It starts an in-process Kafka cluster, loads the customers (waiting until
// the table holds them all: it watches the table's updates), produces the
// orders, prints the enriched orders and exits.
//
//	go run ./joins
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

const (
	customersTopic = "joins-customers"
	ordersTopic    = "joins-orders"
	enrichedTopic  = "joins-enriched"
	partitions     = 4 // the same for orders and customers: the join reads both in one task
)

// Customer is a row of the customers table.
type Customer struct {
	Name string
	Tier string
}

// customerSerde encodes a customer as "name|tier".
var customerSerde = serde.Funcs[Customer]{
	Ser: func(dst []byte, _ string, _ []serde.Header, c Customer) ([]byte, error) {
		if strings.Contains(c.Name, "|") {
			return nil, fmt.Errorf("customer name %q contains '|'", c.Name)
		}
		return fmt.Appendf(dst, "%s|%s", c.Name, c.Tier), nil
	},
	De: func(topic string, _ []serde.Header, data []byte) (Customer, error) {
		if data == nil {
			return Customer{}, nil
		}
		name, tier, ok := strings.Cut(string(data), "|")
		if !ok {
			return Customer{}, fmt.Errorf("customer record %q of %s: no '|' between name and tier", data, topic)
		}
		return Customer{Name: name, Tier: tier}, nil
	},
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "joins:", err)
		os.Exit(1)
	}
}

// Topology joins orders (key: customer id, value: the item) with the
// customers table; loaded counts the customer updates the table applied.
func Topology(loaded *atomic.Int64) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	customers := table.FromTopic(b, "customers", customersTopic, serde.String, customerSerde, memory.Supplier())
	kstreams.ForEach(customers.Updates(), "loaded", func(kstreams.Record[string, *Customer]) error {
		loaded.Add(1)
		return nil
	})
	orders := kstreams.Source(b, "orders", []string{ordersTopic}, serde.String, serde.String)
	enriched := join.StreamTableLeft(orders, customers, "enrich", func(id string, item string, c *Customer) (string, error) {
		if c == nil {
			return fmt.Sprintf("%s for unknown customer %s", item, id), nil
		}
		return fmt.Sprintf("%s for %s (%s)", item, c.Name, c.Tier), nil
	})
	kstreams.Sink(enriched, "enriched", enrichedTopic, serde.String, serde.String)
	return b.Build()
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := embedded.NewCluster(embedded.Topic(customersTopic, partitions), embedded.Topic(ordersTopic, partitions),
		embedded.Topic(enrichedTopic, partitions))
	if err != nil {
		return err
	}
	defer c.Close()

	var loaded atomic.Int64
	topo, err := Topology(&loaded)
	if err != nil {
		return err
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("joins-example"))
	if err != nil {
		return err
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	defer func() {
		stop()
		<-done
	}()

	// The customers, then a change of tier and a deletion: 5 updates.
	type cust = embedded.Record[string, *Customer]
	customers := []cust{
		{Key: "c1", Value: &Customer{"Ada", "gold"}},
		{Key: "c2", Value: &Customer{"Grace", "silver"}},
		{Key: "c3", Value: &Customer{"Edsger", "bronze"}},
		{Key: "c2", Value: &Customer{"Grace", "gold"}},
		{Key: "c3", Value: nil}, // Edsger leaves
	}
	if err := embedded.Produce(ctx, c, customersTopic, serde.String, table.Nullable[Customer](customerSerde), customers...); err != nil {
		return fmt.Errorf("producing customers: %w", err)
	}
	for loaded.Load() < int64(len(customers)) {
		select {
		case err := <-done:
			return fmt.Errorf("the app stopped before loading the customers: %v", err)
		case <-ctx.Done():
			return errors.New("timed out loading the customers")
		case <-time.After(20 * time.Millisecond):
		}
	}

	orders := []embedded.Record[string, string]{
		{Key: "c1", Value: "a kettle"},
		{Key: "c2", Value: "a teapot"},
		{Key: "c3", Value: "a cup"},
		{Key: "c4", Value: "a saucer"},
	}
	if err := embedded.Produce(ctx, c, ordersTopic, serde.String, serde.String, orders...); err != nil {
		return fmt.Errorf("producing orders: %w", err)
	}
	enriched, err := embedded.ReadAtLeast(ctx, c, enrichedTopic, len(orders), serde.String, serde.String)
	if err != nil {
		return err
	}
	byCustomer := map[string]string{}
	for _, r := range enriched {
		byCustomer[r.Key] = r.Value
	}
	for _, o := range orders {
		fmt.Printf("%s: %s\n", o.Key, byCustomer[o.Key])
	}
	return nil
}
