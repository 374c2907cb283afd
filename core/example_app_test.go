package kstreams_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"strings"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// Count words on an in-process cluster: build the topology, run it with
// NewApp and Run, write a line and read the counts. The README shows this
// code (TestReadmeShowsTheExample keeps them equal).
func ExampleNewApp() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// An in-process Kafka cluster (nothing to install) with the input and
	// output topics; use kstreams.WithBrokers("host:9092") for a real one.
	c, err := embedded.NewCluster(embedded.Topic("text", 2), embedded.Topic("word-counts", 2))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	b := kstreams.NewBuilder()
	wordCounts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	lines := kstreams.Source(b, "lines", []string{"text"}, serde.String, serde.String)
	words := kstreams.FlatMap(lines, "split", func(r kstreams.Record[string, string]) ([]kstreams.Record[string, string], error) {
		var out []kstreams.Record[string, string]
		for _, w := range strings.Fields(r.Value) {
			out = append(out, kstreams.WithKeyValue(r, w, w))
		}
		return out, nil
	})
	// Repartition by word, so that each word is counted in one place.
	byWord := kstreams.Through(words, "by-word", "words", 2, serde.String, serde.String)
	counts := kstreams.Func(byWord, "count", func(ctx context.Context, pc kstreams.ProcessorContext[string, int64], r kstreams.Record[string, string]) error {
		st, err := wordCounts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := st.Get(r.Key)
		if err != nil {
			return err
		}
		if err := st.Put(r.Key, n+1); err != nil {
			return err
		}
		return pc.Forward(ctx, kstreams.WithValue(r, n+1))
	}, kstreams.WithStores(wordCounts))
	kstreams.Sink(counts, "out", "word-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}

	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(c.Brokers()...), kstreams.WithApplicationID("wordcount"))
	if err != nil {
		log.Fatal(err)
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }() // until appCtx is cancelled

	err = embedded.Produce(ctx, c, "text", serde.String, serde.String,
		embedded.Record[string, string]{Key: "line-1", Value: "to be or not to be"})
	if err != nil {
		log.Fatal(err)
	}
	// Each word's count is written as it changes: six outputs for six words.
	out, err := embedded.ReadAtLeast(ctx, c, "word-counts", 6, serde.String, serde.Int64)
	if err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	latest := map[string]int64{}
	for _, r := range out {
		latest[r.Key] = max(latest[r.Key], r.Value)
	}
	for _, w := range slices.Sorted(maps.Keys(latest)) {
		fmt.Println(w, latest[w])
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
}
