// Package embedded runs an in-process Kafka-compatible cluster (franz-go's
// kfake), so examples and tests run with nothing installed:
//
//	c, err := embedded.NewCluster(embedded.Topic("text", 4))
//	...
//	defer c.Close()
//	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), ...)
//
// Produce writes typed records (serde.Bytes for bytes), Read reads a
// topic to its end and ReadAtLeast waits for an application's output, so
// tests and examples need no Kafka client of their own:
//
//	err = embedded.Produce(ctx, c, "text", serde.String, serde.String,
//		embedded.Record[string, string]{Key: "line-1", Value: "to be or not to be"})
//	counts, err := embedded.ReadAtLeast(ctx, c, "word-counts", 6, serde.String, serde.Int64)
//
// kfake implements the Kafka protocol in memory. It is for development and
// tests, not production: nothing is persisted, and it differs from Apache
// Kafka in details. A production binary that never imports this package does
// not link kfake.
package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is an in-process Kafka cluster.
type Cluster struct {
	c *kfake.Cluster
}

// Option configures a Cluster.
type Option func(*config)

type config struct {
	brokers int
	topics  map[string]int32
	minSess time.Duration
}

// Brokers sets the number of brokers (default 1).
func Brokers(n int) Option { return func(c *config) { c.brokers = n } }

// Topic creates topic with the given number of partitions at start.
func Topic(name string, partitions int32) Option {
	return func(c *config) { c.topics[name] = partitions }
}

// MinSessionTimeout sets the smallest consumer-group session timeout the
// cluster accepts (default 6s, as Kafka). Tests that kill members lower it
// to detect dead members sooner.
func MinSessionTimeout(d time.Duration) Option { return func(c *config) { c.minSess = d } }

// NewCluster starts a cluster listening on 127.0.0.1.
func NewCluster(opts ...Option) (*Cluster, error) {
	cfg := config{brokers: 1, topics: map[string]int32{}}
	for _, o := range opts {
		o(&cfg)
	}
	kopts := []kfake.Opt{kfake.NumBrokers(cfg.brokers)}
	if cfg.minSess > 0 {
		kopts = append(kopts, kfake.GroupMinSessionTimeout(cfg.minSess))
	}
	for t, p := range cfg.topics {
		kopts = append(kopts, kfake.SeedTopics(p, t))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: starting cluster: %w", err)
	}
	return &Cluster{c: c}, nil
}

// Brokers returns the cluster's broker addresses.
func (c *Cluster) Brokers() []string { return c.c.ListenAddrs() }

// CreateTopic creates topic with partitions partitions.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("embedded: creating topic %s: %w", topic, err)
	}
	return nil
}

// Close stops the cluster.
func (c *Cluster) Close() { c.c.Close() }
