// Command joins shows two joins on an in-process Kafka cluster.
//
// Orders enriched with their customers: the customers topic is read as a
// table (the latest record of each customer; a tombstone deletes one), and
// each order is joined with its customer's row when it is processed
// (join.StreamTableLeft: an order of an unknown customer is kept, with no
// customer). The example loads the customers (waiting until the table holds
// them all: it watches the table's updates), produces the orders and prints
// the enriched orders.
//
// Ad impressions joined with the clicks that follow within 10 minutes
// (join.StreamStreamLeft): a clicked impression comes out with its click as
// soon as the click arrives; an impression nobody clicked comes out alone,
// once, when its window has closed, never before a click could still come.
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
	impressionsTopic = "joins-impressions"
	clicksTopic      = "joins-clicks"
	outcomesTopic    = "joins-ad-outcomes"

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

// Impressions returns the topology joining ad impressions (key: ad id,
// value: the page) with clicks (key: ad id) within 10 minutes, with a
// minute of grace for clicks out of order.
func Impressions() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	shown := kstreams.Source(b, "impressions", []string{impressionsTopic}, serde.String, serde.String)
	clicked := kstreams.Source(b, "clicks", []string{clicksTopic}, serde.String, serde.String)
	outcomes := join.StreamStreamLeft(shown, clicked, "outcome", join.Within(10*time.Minute).Grace(time.Minute),
		join.Stores(serde.String, serde.String, serde.String, memory.Supplier()),
		func(ad string, page string, click *string) (string, error) {
			if click == nil {
				return "shown on " + page + ", not clicked", nil
			}
			return "shown on " + page + ", clicked", nil
		})
	kstreams.Sink(outcomes, "outcomes", outcomesTopic, serde.String, serde.String)
	return b.Build()
}

func run() error {
	if err := runOrders(); err != nil {
		return err
	}
	return runImpressions()
}

func runOrders() error {
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

func runImpressions() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One partition: a window closes when the stream time of its task
	// passes it, and the records closing them here are of other ads.
	c, err := embedded.NewCluster(embedded.Topic(impressionsTopic, 1), embedded.Topic(clicksTopic, 1), embedded.Topic(outcomesTopic, 1))
	if err != nil {
		return err
	}
	defer c.Close()
	topo, err := Impressions()
	if err != nil {
		return err
	}
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("joins-impressions"))
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

	noon := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(key, value string, min int) embedded.Record[string, string] {
		return embedded.Record[string, string]{Key: key, Value: value, Timestamp: noon.Add(time.Duration(min) * time.Minute)}
	}
	produce := func(topic string, recs ...embedded.Record[string, string]) error {
		if err := embedded.Produce(ctx, c, topic, serde.String, serde.String, recs...); err != nil {
			return fmt.Errorf("producing to %s: %w", topic, err)
		}
		return nil
	}
	if err := produce(impressionsTopic, at("ad-1", "home", 0), at("ad-2", "news", 1), at("ad-3", "sports", 2)); err != nil {
		return err
	}
	if err := produce(clicksTopic, at("ad-1", "click", 3)); err != nil {
		return err
	}
	// ad-1 is clicked: its outcome comes at once. ad-2 and ad-3 wait.
	if _, err := embedded.ReadAtLeast(ctx, c, outcomesTopic, 1, serde.String, serde.String); err != nil {
		return err
	}
	// A click of ad-3 half an hour on is too late; the records at 12:30
	// and 12:45 close the windows of ad-2 and ad-3 (shown at 12:01 and
	// 12:02, closed at 12:12 and 12:13).
	if err := produce(clicksTopic, at("ad-3", "click", 30)); err != nil {
		return err
	}
	if err := produce(impressionsTopic, at("ad-4", "home", 45)); err != nil {
		return err
	}
	outcomes, err := embedded.ReadAtLeast(ctx, c, outcomesTopic, 3, serde.String, serde.String)
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		fmt.Printf("%s at %s: %s\n", o.Key, o.Timestamp.UTC().Format("15:04"), o.Value)
	}
	return nil
}
