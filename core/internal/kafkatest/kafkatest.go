// Package kafkatest holds the helpers the integration tests of core's
// packages share: a cluster (a real Kafka named by KSTREAMS_TEST_BROKERS,
// else an in-process one), clients, topics, and reading and waiting on
// them. Every helper fails the test on error.
package kafkatest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Brokers returns the brokers of KSTREAMS_TEST_BROKERS (a real Kafka), or
// of a new in-process cluster closed when the test ends.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("KSTREAMS_TEST_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	c, err := embedded.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Brokers()
}

// Client returns a franz-go client of brokers, closed when the test ends.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopics creates topics with the given partition count.
func CreateTopics(t testing.TB, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(Client(t, brokers)).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("creating topics %v: %v", topics, err)
	}
}

// Produce writes recs and waits for their acknowledgement.
func Produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// ReadToEnd reads every record of topic up to its end offsets at the time
// of the call. A partition that does not start at offset 0 fails the test:
// the broker deleted records (time retention deletes records stamped more
// than 7 days ago), so the topic cannot be read whole.
func ReadToEnd(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(Client(t, brokers))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("start offsets of %s: %v", topic, err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			t.Fatalf("%s/%d starts at offset %d: the broker deleted records", topic, o.Partition, o.Offset)
		}
	})
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl := Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var recs []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s to its end: %v (partitions left: %v)", topic, ctx.Err(), remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 == end {
					delete(remaining, r.Partition)
				}
			}
		})
	}
	return recs
}

// WaitCommitted waits until group has committed every record of topic.
func WaitCommitted(t testing.TB, brokers []string, group, topic string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(Client(t, brokers))
	WaitFor(t, timeout, "every record of "+topic+" to be committed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, o.Partition)
			all = all && (o.Offset == 0 || ok && c.At == o.Offset)
		})
		return all
	})
}

// WaitFor polls cond every 20 ms until it holds, failing the test after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
