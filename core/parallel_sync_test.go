package kstreams_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionOrderTasksRunInParallel: the synchronous (partition-ordered)
// tasks of one poll run in parallel, each partition still strictly in
// offset order, and a clean run outputs and commits everything.
func TestPartitionOrderTasksRunInParallel(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS >= 2 to run tasks in parallel")
	}
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	const parts, perPart = 4, 200
	createTopics(t, brokers, parts, in, out)
	var recs []*kgo.Record
	for p := range int32(parts) {
		for i := range perPart {
			recs = append(recs, &kgo.Record{Topic: in, Partition: p, Key: fmt.Appendf(nil, "k%d", p), Value: fmt.Appendf(nil, "k%d-%d", p, i)})
		}
	}
	produce(t, newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)

	var probe concurrencyProbe
	var mu sync.Mutex
	last := map[int32]int64{} // partition → last offset processed
	disorder := 0
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	work := kstreams.Func(src, "work", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		probe.enter()
		defer probe.exit()
		mu.Lock()
		if l, ok := last[r.Origin.Partition]; ok && r.Origin.Offset != l+1 {
			disorder++
		}
		last[r.Origin.Partition] = r.Origin.Offset
		mu.Unlock()
		time.Sleep(200 * time.Microsecond)
		return pc.Forward(ctx, r)
	})
	kstreams.Sink(work, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	results := collect(t, brokers, out)
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	waitFor(t, 60*time.Second, "all outputs", func() bool { return len(results.snapshot()) >= parts*perPart })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := len(readTopic(t, brokers, out)); n != parts*perPart {
		t.Fatalf("%d outputs after a clean run, want %d", n, parts*perPart)
	}
	if disorder != 0 {
		t.Fatalf("%d records processed out of their partition's offset order", disorder)
	}
	if peak := probe.peak.Load(); peak < 2 {
		t.Fatalf("at most %d partition-ordered tasks processed at once; want them in parallel", peak)
	}
	for p := range int32(parts) {
		if c := committedOffsets(t, brokers, appID, in)[p]; c != perPart {
			t.Errorf("partition %d committed at %d, want %d", p, c, perPart)
		}
	}
}
