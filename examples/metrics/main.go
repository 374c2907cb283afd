// Command metrics runs a counting application on an in-process Kafka
// cluster and serves its Prometheus metrics and health probes:
//
//	go run ./metrics
//	curl -s localhost:9464/metrics | grep ^kstreams_
//	curl -si localhost:9464/readyz
//	curl -si localhost:9464/healthz
//
// A producer writes about 1000 records per second (a few of them
// malformed, which go to a dead-letter topic) and the application counts
// them per key in a changelogged store. /metrics has every kstreams_
// metric (docs/metrics.md), /readyz answers 200 once the application
// runs and /healthz while it is alive (Kubernetes readiness and liveness
// probes). It runs until interrupted, or for -for.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	kprom "github.com/kstreams-go/kstreams/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	inputTopic  = "metrics-input"
	outputTopic = "metrics-counts"
	deadLetters = "metrics-dead-letters"
)

func main() {
	addr := flag.String("addr", "localhost:9464", "address to serve /metrics, /healthz and /readyz on")
	runFor := flag.Duration("for", 0, "stop after this long (0: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	ln, err := net.Listen("tcp", *addr)
	if err == nil {
		fmt.Printf("serving http://%s/metrics, /healthz and /readyz\n", ln.Addr())
		err = run(ctx, ln)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// Topology counts records per key; a value "bad" fails, and goes to the
// dead-letter topic.
func Topology() (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	src := kstreams.Source(b, "events", []string{inputTopic}, serde.String, serde.String)
	counted := kstreams.Func(src, "count", func(ctx context.Context, pc kstreams.ProcessorContext[string, int64], r kstreams.Record[string, string]) error {
		if r.Value == "bad" {
			return errors.New("malformed event")
		}
		kv, err := counts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := kv.Get(r.Key)
		if err != nil {
			return err
		}
		if err := kv.Put(r.Key, n+1); err != nil {
			return err
		}
		return pc.Forward(ctx, kstreams.WithValue(r, n+1))
	}, kstreams.WithStores(counts))
	kstreams.Sink(counted, "counts-out", outputTopic, serde.String, serde.Int64)
	return b.Build()
}

// run starts the cluster, the producer and the application, and serves
// the metrics and probes on ln until ctx is done.
func run(ctx context.Context, ln net.Listener) error {
	cluster, err := embedded.NewCluster(embedded.Topic(inputTopic, 4), embedded.Topic(outputTopic, 4), embedded.Topic(deadLetters, 1))
	if err != nil {
		return err
	}
	defer cluster.Close()
	topo, err := Topology()
	if err != nil {
		return err
	}
	collector := kprom.New()
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(cluster.Brokers()...), kstreams.WithApplicationID("metrics-example"),
		kstreams.WithProcessingErrors(kstreams.DeadLetterOnError(deadLetters)), collector.Option())
	if err != nil {
		return err
	}
	reg := prom.NewRegistry()
	reg.MustRegister(collector)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/readyz", app.ReadinessHandler())
	mux.Handle("/healthz", app.LivenessHandler(0))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	go produce(ctx, cluster.Brokers())
	return app.Run(ctx)
}

// produce writes about 1000 records per second over 100 keys, one in 500
// of them malformed.
func produce(ctx context.Context, brokers []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; {
		for range 10 {
			v := "ok"
			if i%500 == 499 {
				v = "bad"
			}
			cl.Produce(ctx, &kgo.Record{Topic: inputTopic, Key: []byte("user-" + strconv.Itoa(i%100)), Value: []byte(v)}, nil)
			i++
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}
