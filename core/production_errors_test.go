package kstreams_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProductionErrorPolicies makes one output record fail to produce (it
// is larger than the producer's batch limit for the output topic, set with
// kgo.ProducerBatchMaxBytesFn: franz-go refuses that record alone) and
// checks each production error policy's outcome: what Run returns, what is
// committed, what reaches the output and the dead-letter topic.
func TestProductionErrorPolicies(t *testing.T) {
	brokers := testBrokers(t)
	const (
		total = 10
		big   = 4 // the offset whose output is too large
		limit = 1024
	)
	for _, policy := range []string{"fail", "skip", "dead-letter"} {
		t.Run(policy, func(t *testing.T) {
			in, out, dlt, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "dlt"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out, dlt)
			var recs []*kgo.Record
			for i := range total {
				v := "small-" + strconv.Itoa(i)
				if i == big {
					v = "big-" + strings.Repeat("x", 2*limit)
				}
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(v)})
			}
			produce(t, newClient(t, brokers), recs...)

			b := kstreams.NewBuilder()
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			kstreams.Sink(src, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			opts := []kstreams.Option{
				kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50 * time.Millisecond),
				kstreams.WithKgoOptions(kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
					if topic == out {
						return limit
					}
					return 1 << 20
				})),
			}
			switch policy {
			case "skip":
				opts = append(opts, kstreams.WithProductionErrors(kstreams.SkipOnError()))
			case "dead-letter":
				opts = append(opts, kstreams.WithProductionErrors(kstreams.DeadLetterOnError(dlt)))
			}
			a := startApp(t, topo, opts...)

			var stats kstreams.AppStats
			if policy == "fail" {
				err := a.wait(t)
				if !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), out) {
					t.Fatalf("Run returned %v; want the produce error (MESSAGE_TOO_LARGE) naming topic %s", err, out)
				}
				stats = a.app.Stats()
			} else {
				// Every offset committed: the failed output was handled by the policy.
				waitCommitted(t, brokers, appID, in, 60*time.Second)
				stats = a.app.Stats()
				if err := a.stop(t); err != nil {
					t.Fatalf("Run returned %v after a graceful stop", err)
				}
			}

			outputs := readTopic(t, brokers, out)
			got := map[string]int{}
			for _, r := range outputs {
				got[string(r.Value)]++
				if strings.HasPrefix(string(r.Value), "big-") {
					t.Fatalf("the record over the limit is in the output topic")
				}
			}
			committed := committedOffset(t, brokers, appID, in)
			dead := readTopic(t, brokers, dlt)
			switch policy {
			case "fail":
				// Nothing at or after the failed record is committed (records
				// processed together with it may not be either: the
				// partition mode completes a fetch's records as one unit).
				if committed > big {
					t.Fatalf("committed offset %d, past the record whose output failed (%d)", committed, big)
				}
				if len(dead) != 0 || stats.Skipped != 0 || stats.DeadLettered != 0 {
					t.Fatalf("fail policy: %d dead letters, skipped %d, dead-lettered %d; want none", len(dead), stats.Skipped, stats.DeadLettered)
				}
				// The operator's fix, skipping outputs that cannot be
				// produced, resumes at the committed offset: nothing lost.
				a := startApp(t, topo, append(opts, kstreams.WithProductionErrors(kstreams.SkipOnError()))...)
				waitCommitted(t, brokers, appID, in, 60*time.Second)
				restarted := a.app.Stats()
				if err := a.stop(t); err != nil {
					t.Fatalf("restarted app: %v", err)
				}
				if restarted.Skipped != 1 {
					t.Fatalf("the restarted app skipped %d outputs, want the failed one", restarted.Skipped)
				}
				got = map[string]int{}
				for _, r := range readTopic(t, brokers, out) {
					got[string(r.Value)]++
				}
				for i := range total {
					if n := got["small-"+strconv.Itoa(i)]; i != big && n == 0 {
						t.Fatalf("output of record %d is missing after the restart: %v", i, got)
					}
				}
			case "skip", "dead-letter":
				if committed != total {
					t.Fatalf("committed offset %d, want %d", committed, total)
				}
				for i := range total {
					if n := got["small-"+strconv.Itoa(i)]; i != big && n != 1 {
						t.Fatalf("output of record %d: %d times, want once (outputs %v)", i, n, got)
					}
				}
				if len(outputs) != total-1 {
					t.Fatalf("%d outputs, want %d (every record but the failed one, once)", len(outputs), total-1)
				}
			}
			switch policy {
			case "skip":
				if stats.Skipped != 1 || stats.DeadLettered != 0 || len(dead) != 0 {
					t.Fatalf("skip policy: skipped %d, dead-lettered %d, %d dead letters; want 1, 0, 0", stats.Skipped, stats.DeadLettered, len(dead))
				}
			case "dead-letter":
				if stats.DeadLettered != 1 || stats.Skipped != 0 || len(dead) != 1 {
					t.Fatalf("dead-letter policy: dead-lettered %d, skipped %d, %d dead letters; want 1, 0, 1", stats.DeadLettered, stats.Skipped, len(dead))
				}
				d := dead[0]
				h := map[string]string{}
				for _, x := range d.Headers {
					h[x.Key] = string(x.Value)
				}
				if string(d.Key) != "k"+strconv.Itoa(big) || !strings.HasPrefix(string(d.Value), "big-") ||
					h["kstreams.error.stage"] != kstreams.StageProduce.String() || !strings.Contains(h["kstreams.error.message"], "MESSAGE_TOO_LARGE") {
					t.Fatalf("dead letter %q (%d bytes) with headers %v; want the failed output with its produce error", d.Key, len(d.Value), h)
				}
			}
		})
	}
}
