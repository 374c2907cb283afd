package kstreams_test

import (
	"context"
	"fmt"
	"strings"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// wordCounter counts words in a key-value store and forwards each new count.
type wordCounter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, int64]
	counts store.KeyValueStore[string, int64]
}

func (w *wordCounter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
	w.pc = pc
	w.counts, err = w.store.Get(pc)
	return err
}

func (w *wordCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := w.counts.Get(r.Key)
	if err != nil {
		return err
	}
	if err := w.counts.Put(r.Key, n+1); err != nil {
		return err
	}
	return w.pc.Forward(ctx, kstreams.WithValue(r, n+1))
}

func (w *wordCounter) Close() error { return nil }

// wordCountTopology splits lines into words and counts them.
func wordCountTopology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	lines := kstreams.Source(b, "lines", []string{"text"}, serde.String, serde.String)
	words := kstreams.FlatMap(lines, "split", func(r kstreams.Record[string, string]) ([]kstreams.Record[string, string], error) {
		var out []kstreams.Record[string, string]
		for _, w := range strings.Fields(strings.ToLower(r.Value)) {
			out = append(out, kstreams.WithKeyValue(r, w, w))
		}
		return out, nil
	})
	counted := kstreams.Process(words, "count", func() kstreams.Processor[string, string, string, int64] { return &wordCounter{store: counts} },
		kstreams.WithStores(counts))
	kstreams.Sink(counted, "counts-out", "word-counts", serde.String, serde.Int64)
	return b.Build()
}

// Build a word-count topology and print its description.
func ExampleBuilder() {
	topo, err := wordCountTopology()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo)
	// Output:
	// Sub-topology 0 (co-partitioned: text)
	//   Source: lines (topics: text)
	//     --> split
	//   Processor: split
	//     --> count
	//     <-- lines
	//   Processor: count (stores: counts)
	//     --> counts-out
	//     <-- split
	//   Sink: counts-out (topic: word-counts)
	//     <-- count
}
