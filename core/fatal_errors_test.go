package kstreams_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// failFetches makes cluster answer Fetch requests with code for every
// partition while on returns true (and once it returns false, lets them
// through again). It returns how many fetches it failed.
func failFetches(c *kfake.Cluster, code int16, on func() bool) *atomic.Int64 {
	var failed atomic.Int64
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !on() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		failed.Add(1)
		return resp, nil, true
	})
	return &failed
}

func sendValues(t *testing.T, brokers []string, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%3)), Value: []byte(strconv.Itoa(i))})
	}
	produce(t, newClient(t, brokers), recs...)
}

// TestFatalFetchErrorStopsTheApp: a fetch error the operator must fix (an
// authorization failure) stops the app with an error naming the partition,
// after committing what it completed; a retriable one (a leader moving) is
// ridden out.
func TestFatalFetchErrorStopsTheApp(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	var mode atomic.Int32 // 0: fetches pass; 1: retriable errors; 2: authorization failures
	retried := failFetches(c, kerr.NotLeaderForPartition.Code, func() bool { return mode.Load() == 1 })
	denied := failFetches(c, kerr.TopicAuthorizationFailed.Code, func() bool { return mode.Load() == 2 })

	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50*time.Millisecond))
	sendValues(t, brokers, in, 0, 10)
	waitCommitted(t, brokers, appID, in, 60*time.Second)

	// Retriable: the app goes on once the errors stop.
	mode.Store(1)
	waitFor(t, 30*time.Second, "fetches failed with NOT_LEADER_FOR_PARTITION", func() bool { return retried.Load() >= 3 })
	sendValues(t, brokers, in, 10, 20)
	mode.Store(0)
	waitCommitted(t, brokers, appID, in, 60*time.Second)
	select {
	case err := <-a.err:
		t.Fatalf("the app stopped on retriable fetch errors: %v", err)
	default:
	}

	// Not retriable: Run returns the error, naming the partition.
	mode.Store(2)
	sendValues(t, brokers, in, 20, 25)
	var runErr error
	select {
	case runErr = <-a.err:
		close(a.err)
	case <-time.After(60 * time.Second):
		t.Fatalf("the app still runs after %d fetches were refused for authorization", denied.Load())
	}
	if !errors.Is(runErr, kerr.TopicAuthorizationFailed) || !strings.Contains(runErr.Error(), in+"/0") || !strings.Contains(runErr.Error(), "non-retriable fetch error") {
		t.Fatalf("Run returned %v; want the authorization error naming %s/0", runErr, in)
	}
	mode.Store(0)
	// What it processed (the records fetched before the error: at least
	// the first 20, and those of a fetch answered before the switch) is
	// committed, each output once; the rest is left for the next run.
	committed := committedOffset(t, brokers, appID, in)
	outputs := readTopic(t, brokers, out)
	if committed < 20 || int64(len(outputs)) != committed {
		t.Fatalf("committed offset %d with %d outputs after the fatal fetch error; want them equal, and at least 20", committed, len(outputs))
	}
}

// TestProcessingFailureOnWorkersIsNotCommitted: under KeyOrder with retries
// (records run on the workers), a record that keeps failing under the fail
// policy stops the app with an error naming it; records of other keys above
// it that completed are committed in the metadata, it and its key's later
// records are not; a restart that skips it loses nothing.
func TestProcessingFailureOnWorkersIsNotCommitted(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	recs := seqRecords(in, 40, 4) // offset i has key k(i%4)
	produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)
	const poison = 9 // key k1
	var attempts atomic.Int64
	topology := func() *kstreams.Topology {
		b := kstreams.NewBuilder()
		src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
		work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
			if r.Origin.Offset == poison {
				attempts.Add(1)
				return errors.New("always fails")
			}
			return pc.Forward(ctx, r)
		}, kstreams.WithOrdering(kstreams.KeyOrder), kstreams.WithRetry(kstreams.Retry{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))
		kstreams.Sink(work, "out", out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50 * time.Millisecond)}
	a := startApp(t, topology(), opts...)
	err := a.wait(t)
	var re *kstreams.RecordError
	if !errors.As(err, &re) || re.Topic != in || re.Partition != 0 || re.Offset != poison || re.Node != "work" || re.Stage != kstreams.StageProcess {
		t.Fatalf("Run returned %v; want a RecordError for %s/0@%d at node work", err, in, poison)
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("the failing record was attempted %d times, want 2 (the retry policy)", n)
	}
	if got := committedOffset(t, brokers, appID, in); got > poison {
		t.Fatalf("committed offset %d, past the failed record %d", got, poison)
	}
	// Nothing of the failed record reached the output.
	for _, r := range readTopic(t, brokers, out) {
		if string(r.Value) == string(recs[poison].Value) {
			t.Fatalf("the failed record %s is in the output", r.Value)
		}
	}

	// Restarting with the skip policy processes every other record.
	b := startApp(t, topology(), append(opts, kstreams.WithProcessingErrors(kstreams.SkipOnError()))...)
	waitCommitted(t, brokers, appID, in, 60*time.Second)
	stats := b.app.Stats()
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	if stats.Skipped != 1 {
		t.Fatalf("the restart skipped %d records, want 1", stats.Skipped)
	}
	seen := map[string]int{}
	for _, r := range readTopic(t, brokers, out) {
		seen[string(r.Value)]++
	}
	for i, r := range recs {
		if i != poison && seen[string(r.Value)] == 0 {
			t.Fatalf("record %d (%s) is not in the output after the restart", i, r.Value)
		}
	}
}
