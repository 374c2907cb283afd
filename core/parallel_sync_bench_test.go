package kstreams_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkPartitionOrderScaling processes a backlog on 16 partitions with
// a CPU-heavy partition-ordered processor (about 20 µs of hashing per
// record), at GOMAXPROCS 1 and at the machine's count: the synchronous
// tasks of a poll run in parallel, so records/s should grow with the
// cores. Report the ratio of the two sub-benchmarks' records/s, measured
// in one run.
func BenchmarkPartitionOrderScaling(b *testing.B) {
	const parts = 16
	c, err := embedded.NewCluster(embedded.Topic("in", parts))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.Brokers()
	const records = 30_000
	cl := newClient(b, brokers)
	recs := make([]*kgo.Record, records)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i%1000), Value: make([]byte, 100)}
	}
	produce(b, cl, recs...)

	procs := []int{1, runtime.NumCPU()}
	if procs[1] == 1 {
		procs = procs[:1]
	}
	for _, n := range procs {
		b.Run(fmt.Sprintf("procs=%d", n), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
			for i := 0; i < b.N; i++ {
				var done, first atomic.Int64
				bld := kstreams.NewBuilder()
				src := kstreams.Source(bld, "in", []string{"in"}, serde.Bytes, serde.Bytes)
				kstreams.Func(src, "hash", func(ctx context.Context, pc kstreams.ProcessorContext[[]byte, []byte], r kstreams.Record[[]byte, []byte]) error {
					sum := sha256.Sum256(r.Value)
					for range 200 {
						sum = sha256.Sum256(sum[:])
					}
					if sum[0] == 0 && sum[1] == 0 && sum[2] == 0 && sum[3] == 0 {
						r.Value = sum[:] // keep the work
					}
					if done.Add(1) == 1 {
						first.Store(time.Now().UnixNano())
					}
					return nil
				})
				topo, err := bld.Build()
				if err != nil {
					b.Fatal(err)
				}
				app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(fmt.Sprintf("scale-%d-%d-%d", n, i, time.Now().UnixNano())))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- app.Run(ctx) }()
				for done.Load() < records {
					select {
					case err := <-errc:
						b.Fatalf("app stopped: %v", err)
					case <-time.After(time.Millisecond):
					}
				}
				el := time.Since(time.Unix(0, first.Load()))
				cancel()
				<-errc
				b.ReportMetric(float64(records)/el.Seconds(), "records/s")
			}
		})
	}
}
