package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// workload writes total records with unique ids (the value) over keys keys
// to topic, spread evenly over duration. Every poisonEvery-th record's value
// is "poison:<id>" (the processor rejects it) and every garbageEvery-th
// "garbage:<id>" (it cannot be deserialized); 0 disables them.
type workload struct {
	topic        string
	total        int
	keys         int
	duration     time.Duration
	poisonEvery  int
	garbageEvery int

	produced atomic.Int64 // acknowledged records
	failed   atomic.Int64 // records whose production failed (they may or may not be in the topic)
	done     chan struct{}
}

func (w *workload) value(id int) string {
	s := strconv.Itoa(id)
	switch {
	case w.poisonEvery > 0 && id%w.poisonEvery == w.poisonEvery/2:
		return "poison:" + s
	case w.garbageEvery > 0 && id%w.garbageEvery == w.garbageEvery/3+1:
		return "garbage:" + s
	}
	return s
}

// run produces in the background; done is closed at the end.
func (w *workload) run(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		return err
	}
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		defer cl.Close()
		const batch = 500
		batches := (w.total + batch - 1) / batch
		interval := w.duration / time.Duration(batches)
		start := time.Now()
		for b := 0; b < batches && ctx.Err() == nil; b++ {
			if wait := time.Until(start.Add(time.Duration(b) * interval)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			recs := make([]*kgo.Record, 0, batch)
			for id := b * batch; id < min((b+1)*batch, w.total); id++ {
				recs = append(recs, &kgo.Record{Topic: w.topic, Key: []byte("k" + strconv.Itoa(id%w.keys)), Value: []byte(w.value(id))})
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			for _, r := range cl.ProduceSync(pctx, recs...) {
				if r.Err != nil {
					w.failed.Add(1)
				} else {
					w.produced.Add(1)
				}
			}
			cancel()
		}
	}()
	return nil
}

// wait waits for the workload to finish (bounded by its duration plus a
// margin for a broker that is down).
func (w *workload) wait() {
	select {
	case <-w.done:
	case <-time.After(w.duration + 5*time.Minute):
		logf("workload on %s did not finish in time", w.topic)
	}
}
