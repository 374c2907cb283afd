// Package countrun holds the plumbing the count examples (redis-count,
// bigtable-count, objectstate, wordcount) share, so that each example shows
// only its topology and its store: creating topics, and running an app
// until it has emitted a given number of counts.
package countrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateTopics creates topics with partitions each (the brokers' default
// replication factor); topics that exist already are fine.
func CreateTopics(ctx context.Context, brokers []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}

// Until runs an app of topo until cl, a consumer of its output topic, has
// seen n counts (int64 values), keeping the highest count per key in
// counts; then it stops the app (which commits, after flushing its stores)
// and returns Run's result.
func Until(ctx context.Context, topo *kstreams.Topology, n int, cl *kgo.Client, counts map[string]int64, opts ...kstreams.Option) error {
	app, err := kstreams.NewApp(topo, append([]kstreams.Option{kstreams.WithCommitInterval(time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	appErr := make(chan error, 1)
	go func() { appErr <- app.Run(appCtx) }()
	for seen := 0; seen < n; {
		pollCtx, cancelPoll := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancelPoll()
		if err := ctx.Err(); err != nil {
			stopApp()
			return fmt.Errorf("saw %d of %d counts before timing out: %w", seen, n, errors.Join(err, <-appErr))
		}
		select {
		case err := <-appErr:
			return fmt.Errorf("the application stopped early: %w", err)
		default:
		}
		fs.EachRecord(func(r *kgo.Record) {
			c, err := serde.Int64.Deserialize(r.Topic, r.Headers, r.Value)
			if err == nil && c > counts[string(r.Key)] {
				counts[string(r.Key)] = c
			}
			seen++
		})
	}
	stopApp()
	return <-appErr
}
