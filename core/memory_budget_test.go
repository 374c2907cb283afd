package kstreams_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
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
