// Command restore measures how fast a task restores a store from its
// changelog on the embedded cluster: N distinct keys in the changelog, one
// task, for the in-memory backend and for Pebble, side by side.
//
//	go run ./bench/restore -keys 1000000
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/twmb/franz-go/pkg/kgo"
)

var keys = flag.Int("keys", 1_000_000, "distinct keys in the changelog")

func main() {
	flag.Parse()
	c, err := embedded.NewCluster()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, backend := range []string{"memory", "pebble"} {
		app := "restore-" + backend
		in, changelog := app+"-in", app+"-counts-changelog"
		for _, t := range []string{in, changelog} {
			if err := c.CreateTopic(context.Background(), t, 1); err != nil {
				log.Fatal(err)
			}
		}
		fill(c.Brokers(), changelog)
		supplier := memory.Supplier()
		dir := ""
		if backend == "pebble" {
			supplier = pebble.Supplier()
			if dir, err = os.MkdirTemp("", "restore-bench-"); err != nil {
				log.Fatal(err)
			}
		}
		rate, n, el := restore(c.Brokers(), app, in, supplier, dir)
		if dir != "" {
			os.RemoveAll(dir)
		}
		fmt.Printf("%-7s restored %d records in %v: %.0f records/s\n", backend, n, el.Round(time.Millisecond), rate)
	}
}

// fill writes one changelog record per key, as a count store would.
func fill(brokers []string, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(10*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	for i := range *keys {
		v := binary.BigEndian.AppendUint64(nil, uint64(i)^(1<<63))
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Key: []byte("key-" + strconv.Itoa(i)), Value: v}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func restore(brokers []string, app, in string, supplier store.Supplier, dir string) (float64, int64, time.Duration) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, supplier))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	kstreams.ForEach(kstreams.Func(src, "use", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		return pc.Forward(ctx, r)
	}, kstreams.WithStores(counts)), "end", func(kstreams.Record[string, string]) error { return nil })
	topo, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan kstreams.RestoreProgress, 1)
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(app),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) {
			if p.Done {
				done <- p
			}
		})}
	if dir != "" {
		opts = append(opts, kstreams.WithStateDir(dir))
	}
	a, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	var p kstreams.RestoreProgress
	select {
	case p = <-done:
	case err := <-errc:
		log.Fatalf("app stopped: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	return float64(p.Restored) / p.Elapsed.Seconds(), p.Restored, p.Elapsed
}
