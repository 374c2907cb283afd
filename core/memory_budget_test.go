package kstreams_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A budget too small to divide is a NewApp error naming the option.
func TestMemoryBudgetTooSmall(t *testing.T) {
	b := kstreams.NewBuilder()
	kstreams.Sink(kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String), "out", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = kstreams.NewApp(topo, kstreams.WithBrokers("127.0.0.1:1"), kstreams.WithApplicationID("a"), kstreams.WithMemoryBudget(1<<20))
	if err == nil || !strings.Contains(err.Error(), "memory budget") {
		t.Fatalf("NewApp with a 1 MiB budget: %v, want an error about the memory budget", err)
	}
}

// Stores get the budget's share for stores as a hint, with the number of
// store instances that may share it: a quarter of the budget, over every
// store × partition of the topology.
func TestStoreMemoryHint(t *testing.T) {
	brokers := testBrokers(t)
	for _, tc := range []struct {
		name   string
		budget int64
		want   int64
	}{
		{"default", 0, kstreams.DefaultMemoryBudget / 4},
		{"given", 64 << 20, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := uniqueName(t, "in"), uniqueName(t, "out")
			createTopics(t, brokers, 3, in, out)
			var mu sync.Mutex
			var seen []store.BackendContext
			supplier := func(bc store.BackendContext) (store.Backend, error) {
				mu.Lock()
				seen = append(seen, bc)
				mu.Unlock()
				return memory.Supplier()(bc)
			}
			b := kstreams.NewBuilder()
			a := kstreams.AddStore(b, store.KeyValue("a", serde.String, serde.Int64, supplier))
			c := kstreams.AddStore(b, store.KeyValue("b", serde.String, serde.Int64, supplier))
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			kept := kstreams.Func(src, "id", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
				return pc.Forward(ctx, r)
			}, kstreams.WithStores(a, c))
			kstreams.Sink(kept, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(uniqueName(t, "app")), kstreams.WithStateDir(t.TempDir())}
			if tc.budget > 0 {
				opts = append(opts, kstreams.WithMemoryBudget(tc.budget))
			}
			ra := startApp(t, topo, opts...)
			waitFor(t, 30*time.Second, "6 stores opened", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) >= 6
			})
			if err := ra.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, bc := range seen {
				if bc.MemoryBudget != tc.want || bc.StoreInstances != 6 {
					t.Errorf("store %s of task %s: hint %d bytes over %d instances, want %d over 6 (2 stores × 3 partitions)",
						bc.Store, bc.Task, bc.MemoryBudget, bc.StoreInstances, tc.want)
				}
			}
		})
	}
}

// Restoring a task's store lists the offsets of its own changelog
// partition, not of the whole topic: with a task per partition, listing
// whole topics made an instance's start-up quadratic in its partitions.
func TestRestoreListsItsPartitionOnly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	const parts = 32
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, parts, in, out)
	var listed atomic.Int64 // changelog partitions listed
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kreq.(*kmsg.ListOffsetsRequest).Topics {
			if strings.HasSuffix(rt.Topic, "-changelog") {
				listed.Add(int64(len(rt.Partitions)))
			}
		}
		return nil, nil, false
	})
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50*time.Millisecond))
	sendValues(t, brokers, in, 0, 100)
	waitCommitted(t, brokers, appID, in, 60*time.Second)
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	// Each task lists its partition's start and end: 2 per partition (a
	// few more if a listing is retried); whole topics would be 2 × 32 × 32.
	if n := listed.Load(); n > 4*parts {
		t.Fatalf("%d changelog partitions listed for %d tasks, want about %d (start and end of each task's own)", n, parts, 2*parts)
	}
	t.Logf("%d changelog partitions listed for %d tasks", listed.Load(), parts)
}
