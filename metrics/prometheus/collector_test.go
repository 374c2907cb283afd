package prometheus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	kprom "github.com/kstreams-go/kstreams/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scrape gathers reg and returns, per metric name, its series.
func scrape(t *testing.T, reg *prom.Registry) map[string][]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetMetric()
	}
	return out
}

// value returns the value of the series of name with the given labels
// (name=value pairs; other labels are ignored): a counter's or gauge's
// value, a histogram's sample count. ok is false if there is none.
func value(m map[string][]*dto.Metric, name string, labels ...string) (v float64, ok bool) {
next:
	for _, s := range m[name] {
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func key(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// TestCollectorOnEmbeddedCluster runs an App observed by two Collectors
// (default labels, and per partition) and checks every metric against
// what the run did: records consumed, processed, produced, retried,
// skipped and dead-lettered, latencies sampled at every record, commits,
// rebalances, tasks, state and lag.
func TestCollectorOnEmbeddedCluster(t *testing.T) {
	c, err := embedded.NewCluster(embedded.Topic("in", 2), embedded.Topic("out", 2), embedded.Topic("dlq", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const good = 100
	var recs []*kgo.Record
	for i := range good {
		recs = append(recs, &kgo.Record{Topic: "in", Key: key(int64(i)), Value: []byte("v" + strconv.Itoa(i))})
	}
	recs = append(recs,
		&kgo.Record{Topic: "in", Key: key(1), Value: []byte("retry-once")},
		&kgo.Record{Topic: "in", Key: key(2), Value: []byte("bad")},      // fails every attempt: dead-lettered
		&kgo.Record{Topic: "in", Key: []byte("xyz"), Value: []byte("v")}, // key not an int64: skipped
	)
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{"in"}, serde.Int64, serde.String)
	var failedOnce atomic.Bool
	work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[int64, string], r kstreams.Record[int64, string]) error {
		switch {
		case r.Value == "bad":
			return errors.New("bad record")
		case r.Value == "retry-once" && failedOnce.CompareAndSwap(false, true):
			return errors.New("first attempt fails")
		}
		return pc.Forward(ctx, r)
	}, kstreams.WithRetry(kstreams.Retry{Attempts: 2, Backoff: time.Millisecond}))
	kstreams.Sink(work, "out", "out", serde.Int64, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	byTopic, byPartition := kprom.New(kprom.WithSampleEvery(1)), kprom.New(kprom.WithSampleEvery(1), kprom.WithPartitionLabels())
	reg, regP := prom.NewPedanticRegistry(), prom.NewPedanticRegistry()
	reg.MustRegister(byTopic)
	regP.MustRegister(byPartition)
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("metrics-test"),
		kstreams.WithCommitInterval(100*time.Millisecond), byTopic.Option(), byPartition.Option(),
		kstreams.WithProcessingErrors(kstreams.DeadLetterOnError("dlq")), kstreams.WithDeserializationErrors(kstreams.SkipOnError()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("x"), byTopic.Option()); err == nil {
		t.Error("a Collector's Option accepted by a second App")
	}
	if v, _ := value(scrape(t, reg), "kstreams_state", "state", "created"); v != 1 {
		t.Errorf("state created = %v before Run, want 1", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	deadline := time.Now().Add(60 * time.Second)
	var m map[string][]*dto.Metric
	for {
		m = scrape(t, reg)
		out, _ := value(m, "kstreams_produced_records_total", "topic", "out")
		commits, _ := value(m, "kstreams_commit_duration_seconds")
		lag, _ := value(m, "kstreams_consumer_lag_records", "topic", "in")
		if out == good+1 && commits > 0 && lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v outputs, %v commits, lag %v", out, commits, lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
	total := float64(len(recs))
	for _, want := range []struct {
		name   string
		labels []string
		v      float64
	}{
		{"kstreams_consumed_records_total", []string{"topic", "in"}, total},
		{"kstreams_processed_records_total", nil, total},
		{"kstreams_produced_records_total", []string{"topic", "dlq"}, 1},
		{"kstreams_skipped_records_total", nil, 1},
		{"kstreams_dead_lettered_records_total", nil, 1},
		{"kstreams_retries_total", []string{"node", "work"}, 2}, // retry-once, and bad's second attempt
		{"kstreams_process_duration_seconds", []string{"node", "work"}, good + 2},
		{"kstreams_end_to_end_latency_seconds", []string{"node", "out"}, good + 1},
		{"kstreams_tasks", nil, 2},
		{"kstreams_in_flight_records", nil, 0},
		{"kstreams_paused_partitions", nil, 0},
		{"kstreams_state", []string{"state", "running"}, 1},
		{"kstreams_state", []string{"state", "starting"}, 0},
		{"kstreams_commit_failures_total", nil, 0},
	} {
		got, ok := value(m, want.name, want.labels...)
		if want.name == "kstreams_commit_failures_total" && !ok {
			continue // no failure: the counter has no series
		}
		if !ok || got != want.v {
			t.Errorf("%s%v = %v (found: %v), want %v", want.name, want.labels, got, ok, want.v)
		}
	}
	if v, _ := value(m, "kstreams_rebalance_duration_seconds", "callback", "assigned"); v < 1 {
		t.Errorf("no assignment in kstreams_rebalance_duration_seconds")
	}
	if v, _ := value(m, "kstreams_produced_bytes_total", "topic", "out"); v < good*2 {
		t.Errorf("produced bytes to out: %v, want at least %d", v, good*2)
	}
	// Per partition: the consumed records of both partitions add up, and
	// each partition owned has a lag series.
	mp := scrape(t, regP)
	p0, ok0 := value(mp, "kstreams_consumed_records_total", "topic", "in", "partition", "0")
	p1, ok1 := value(mp, "kstreams_consumed_records_total", "topic", "in", "partition", "1")
	if !ok0 || !ok1 || p0+p1 != total {
		t.Errorf("consumed per partition: %v + %v, want %v in all", p0, p1, total)
	}
	if len(mp["kstreams_consumer_lag_records"]) != 2 {
		t.Errorf("lag series with partition labels: %d, want 2", len(mp["kstreams_consumer_lag_records"]))
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m = scrape(t, reg)
	if v, _ := value(m, "kstreams_state", "state", "stopped"); v != 1 {
		t.Errorf("state stopped = %v after Run returned, want 1", v)
	}
	if v, _ := value(m, "kstreams_rebalance_duration_seconds", "callback", "revoked"); v < 1 {
		t.Errorf("leaving the group revoked nothing in kstreams_rebalance_duration_seconds")
	}
	if n := len(m["kstreams_consumer_lag_records"]); n != 0 {
		t.Errorf("%d lag series after the partitions were revoked, want none", n)
	}
}

// TestCollectorRestoreAndLate feeds restore progress and late records to a
// Collector and checks the gauges and the counter.
func TestCollectorRestoreAndLate(t *testing.T) {
	c := kprom.New()
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(c)
	obs := c.Observer()
	obs.Restore(kstreams.RestoreProgress{Store: "counts", Task: "0_0", Start: 100, End: 1100, Restored: 400, Elapsed: 2 * time.Second})
	obs.Restore(kstreams.RestoreProgress{Store: "counts", Task: "0_1", Start: 0, End: 50})
	c.LateRecords("hourly").Add(3)
	m := scrape(t, reg)
	if v, _ := value(m, "kstreams_restore_remaining_records", "store", "counts"); v != 600+50 {
		t.Errorf("restore remaining %v, want 650", v)
	}
	if v, _ := value(m, "kstreams_restore_rate_records_per_second", "store", "counts"); v != 200 {
		t.Errorf("restore rate %v, want 200", v)
	}
	if v, _ := value(m, "kstreams_late_records_total", "aggregation", "hourly"); v != 3 {
		t.Errorf("late records %v, want 3", v)
	}
	obs.Restore(kstreams.RestoreProgress{Store: "counts", Task: "0_0", Done: true})
	obs.Restore(kstreams.RestoreProgress{Store: "counts", Task: "0_1", Done: true})
	if n := len(scrape(t, reg)["kstreams_restore_remaining_records"]); n != 0 {
		t.Errorf("%d restore series after both restores were done, want none", n)
	}
	obs.StoreOp(kstreams.StoreOpEvent{Store: "counts", Op: kstreams.StoreGet, Duration: time.Microsecond})
	if v, _ := value(scrape(t, reg), "kstreams_store_operation_duration_seconds", "store", "counts", "operation", "get"); v != 1 {
		t.Errorf("store operation samples %v, want 1", v)
	}
}
