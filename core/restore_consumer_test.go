package kstreams_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clientCounter counts the franz-go clients created with it as a hook.
type clientCounter struct{ n atomic.Int64 }

func (c *clientCounter) OnNewClient(*kgo.Client) { c.n.Add(1) }

// TestOneRestoreConsumerPerInstance: an instance restoring the stores of
// eight tasks reads every changelog through one client (it used to create
// a client per store restored), and every store ends with its changelog's
// last value.
func TestOneRestoreConsumerPerInstance(t *testing.T) {
	const partitions = 8
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, partitions, in, out)
	changelog := appID + "-counts-changelog"
	createTopics(t, brokers, partitions, changelog)
	// Key k<p> counted to 10+p on changelog partition p; the input's keys
	// are placed on the same partitions by hand.
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for i := int64(1); i <= 10+int64(p); i++ {
			v, _ := serde.StoreForm(serde.Int64).Serialize(nil, changelog, nil, i)
			recs = append(recs, &kgo.Record{Topic: changelog, Partition: p, Key: fmt.Appendf(nil, "k%d", p), Value: v})
		}
	}
	manual := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, manual, recs...)

	var clients clientCounter
	var restored atomic.Int64
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithKgoOptions(kgo.WithHooks(&clients)),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) {
			if p.Done {
				restored.Add(1)
			}
		}))
	results := collect(t, brokers, out)
	for p := range int32(partitions) {
		produce(t, manual, &kgo.Record{Topic: in, Partition: p, Key: fmt.Appendf(nil, "k%d", p), Value: fmt.Appendf(nil, "probe-%d", p)})
	}
	want := map[string]int64{}
	for p := range partitions {
		want[fmt.Sprintf("probe-%d", p)] = int64(11 + p)
	}
	got := map[string]int64{}
	waitFor(t, 60*time.Second, "the probes' counts", func() bool {
		for _, r := range results.snapshot() {
			var o countOutput
			if json.Unmarshal(r.Value, &o) == nil {
				got[o.ID] = o.Count
			}
		}
		return len(got) >= partitions
	})
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("count output for %s = %d, want %d (restored %d + 1)", id, got[id], n, n-1)
		}
	}
	if n := restored.Load(); n != partitions {
		t.Errorf("%d stores restored, want %d", n, partitions)
	}
	// The admin client, the group's client and one restore consumer.
	if n := clients.n.Load(); n > 3 {
		t.Errorf("the instance created %d franz-go clients to restore %d stores; want at most 3 (admin, group, one restore consumer)", n, partitions)
	}
}
