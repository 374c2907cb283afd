package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"strconv"
	"sync"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	latency  = flag.Bool("latency", false, "measure end-to-end and commit latency of count/kstreams and count/kstreams-txn at a steady input rate instead of throughput")
	rate     = flag.Int("rate", 5000, "with -latency: input records per second")
	duration = flag.Duration("duration", 20*time.Second, "with -latency: how long each scenario receives input")
	brokersF = flag.String("brokers", "", "with -latency: a real cluster's bootstrap addresses (default: the embedded cluster)")
)

// requestTimes records the durations of commit requests (OffsetCommit,
// TxnOffsetCommit, EndTxn) of an app's client: a kgo hook.
type requestTimes struct {
	mu  sync.Mutex
	got map[int16][]time.Duration
}

func (h *requestTimes) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	switch key {
	case 8, 26, 28: // OffsetCommit, EndTxn, TxnOffsetCommit
		if e2e.Err() == nil {
			h.mu.Lock()
			h.got[key] = append(h.got[key], e2e.DurationE2E())
			h.mu.Unlock()
		}
	}
}

var _ kgo.HookBrokerE2E = (*requestTimes)(nil)

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// runLatency runs each scenario on its own input topic fed at -rate for
// -duration, and reports the end-to-end latency of its outputs (output
// seen by a consumer minus the input record's timestamp, which the output
// keeps) and the latency of its commit requests.
func runLatency() {
	var brokers []string
	if *brokersF != "" {
		brokers = []string{*brokersF}
	} else {
		c, err := embedded.NewCluster()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		brokers = c.Brokers()
	}
	fmt.Printf("latency: %d records/s for %v per scenario, commit interval %v, %d partitions\n", *rate, *duration, *commit, *partitions)
	for i, txn := range []bool{false, true} {
		name := "count/kstreams"
		if txn {
			name = "count/kstreams-txn"
		}
		suffix := strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		in, out := "lat-in-"+suffix, "lat-out-"+suffix
		mustCreate(brokers, in, int32(*partitions))
		mustCreate(brokers, out, int32(*partitions))
		times := &requestTimes{got: map[int16][]time.Duration{}}
		opts := []kstreams.Option{kstreams.WithKgoOptions(kgo.WithHooks(times))}
		if txn {
			opts = append(opts, kstreams.WithTransactions())
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- kstreamsCountOn(ctx, brokers, in, out, opts...) }()

		consOpts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		if txn {
			consOpts = append(consOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		}
		cons, err := kgo.NewClient(consOpts...)
		if err != nil {
			log.Fatal(err)
		}
		var e2e []time.Duration
		var mu sync.Mutex
		consDone := make(chan struct{})
		cctx, stopCons := context.WithCancel(context.Background())
		go func() {
			defer close(consDone)
			for cctx.Err() == nil {
				fs := cons.PollFetches(cctx)
				now := time.Now()
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { e2e = append(e2e, now.Sub(r.Timestamp)) })
				mu.Unlock()
			}
		}()

		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
		if err != nil {
			log.Fatal(err)
		}
		// Wait for the app to own its tasks: a probe record's output.
		time.Sleep(3 * time.Second)
		sent := 0
		tick := time.NewTicker(10 * time.Millisecond)
		end := time.Now().Add(*duration)
		perTick := max(*rate/100, 1)
		for now := range tick.C {
			if now.After(end) {
				break
			}
			for range perTick {
				prod.Produce(ctx, &kgo.Record{Topic: in, Key: []byte("key-" + strconv.Itoa(sent%*keys)), Value: []byte("x"), Timestamp: time.Now()}, produceErr)
				sent++
			}
		}
		tick.Stop()
		prod.Flush(context.Background())
		prod.Close()
		deadline := time.Now().Add(2**commit + 30*time.Second)
		for {
			mu.Lock()
			n := len(e2e)
			mu.Unlock()
			if n >= sent || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		stopCons()
		<-consDone
		cons.Close()
		cancel()
		if err := <-errc; err != nil {
			log.Printf("%s: %v", name, err)
		}
		// The first records wait for the group join: leave out the first
		// second of input.
		mu.Lock()
		steady := e2e[min(len(e2e), *rate):]
		mu.Unlock()
		times.mu.Lock()
		commitReqs := append(times.got[8], times.got[28]...)
		endTxn := times.got[26]
		times.mu.Unlock()
		fmt.Printf("%-20s %d in, %d out; end-to-end p50 %v p99 %v max %v; commit requests %d: p50 %v p99 %v",
			name, sent, len(e2e), pct(steady, 0.5).Round(time.Millisecond), pct(steady, 0.99).Round(time.Millisecond), pct(steady, 1).Round(time.Millisecond),
			len(commitReqs), pct(commitReqs, 0.5).Round(100*time.Microsecond), pct(commitReqs, 0.99).Round(100*time.Microsecond))
		if txn {
			fmt.Printf("; EndTxn %d: p50 %v p99 %v", len(endTxn), pct(endTxn, 0.5).Round(100*time.Microsecond), pct(endTxn, 0.99).Round(100*time.Microsecond))
		}
		fmt.Println()
	}
}
