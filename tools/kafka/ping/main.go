// Command ping waits until a Kafka cluster answers: at least -want brokers
// are registered and a topic with replication factor -want can be created
// and deleted (so the controller quorum works and the brokers are
// unfenced). It exits 0 when the cluster is ready, 1 at the timeout.
//
//	go run ./kafka/ping -brokers 127.0.0.1:9092 -want 1 -timeout 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated bootstrap addresses")
	want := flag.Int("want", 1, "brokers that must be registered")
	timeout := flag.Duration("timeout", 90*time.Second, "give up after this long")
	node := flag.Int("node", -1, "also require that this broker id answers requests sent to it")
	flag.Parse()
	if err := ping(strings.Split(*brokers, ","), *want, int32(*node), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		os.Exit(1)
	}
}

func ping(brokers []string, want int, node int32, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic := fmt.Sprintf("__kstreams_ping_%d", time.Now().UnixNano())
	var last error
	for ctx.Err() == nil {
		last = try(ctx, cl, adm, topic, want, node)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster %v not ready after %v: %v", brokers, timeout, last)
}

func try(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, want int, node int32) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if node >= 0 {
		// A metadata request answered by the node itself: it is up and has
		// loaded the cluster metadata.
		resp, err := cl.Broker(int(node)).Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return fmt.Errorf("broker %d: %w", node, err)
		}
		if n := len(resp.(*kmsg.MetadataResponse).Brokers); n < want {
			return fmt.Errorf("broker %d knows %d brokers, want %d", node, n, want)
		}
	}
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return err
	}
	if len(bs) < want {
		return fmt.Errorf("%d brokers registered, want %d", len(bs), want)
	}
	resp, err := adm.CreateTopic(ctx, 1, int16(want), nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating a test topic: %w", err)
	}
	dr, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = dr.Err
	}
	if err != nil {
		return fmt.Errorf("deleting the test topic: %w", err)
	}
	return nil
}
