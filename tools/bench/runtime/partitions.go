package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var sweep = flag.String("partition-sweep", "", "instead of the comparison with franz-go: run stateless/kstreams and count/kstreams on input topics of these partition counts (comma-separated, e.g. 8,64,256,1000), one instance, -records each, the counts' order rotating per round")

// runSweep measures records/s and CPU per record of one instance against
// the number of partitions it owns: the per-record cost should not grow
// with them (#19 item 4). CPU is the whole process's from the first output
// to the last: the embedded cluster's work is included (the same per
// record, but per request it grows with the partitions).
func runSweep() {
	var counts []int
	for _, f := range strings.Split(*sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-partition-sweep: %q is not a partition count", f)
		}
		counts = append(counts, n)
	}
	c, err := embedded.NewCluster()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	brokers := c.Brokers()
	for _, n := range counts {
		inputTopic = fmt.Sprintf("input-%d", n)
		mustCreate(brokers, inputTopic, int32(n))
		t := time.Now()
		preload(brokers)
		fmt.Printf("preloaded %s: %d records (%d keys, %d-byte values) in %v\n", inputTopic, *records, *keys, *valueSize, time.Since(t).Round(time.Millisecond))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	type key struct {
		scenario string
		n        int
	}
	rates, cpus := map[key][]float64{}, map[key][]float64{}
	scenarios := []struct {
		name string
		run  func(ctx context.Context, brokers []string, out string) error
	}{
		{"stateless/kstreams", kstreamsStateless},
		{"count/kstreams", func(ctx context.Context, brokers []string, out string) error { return kstreamsCount(ctx, brokers, out) }},
	}
	runs := 0
	for round := range *rounds {
		for i := range counts {
			n := counts[(i+round)%len(counts)]
			inputTopic = fmt.Sprintf("input-%d", n)
			for _, s := range scenarios {
				if *only != "" && !strings.Contains(s.name, *only) {
					continue
				}
				runs++
				out := fmt.Sprintf("out-sweep-%d", runs)
				mustCreate(brokers, out, int32(n))
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				cpu0 := cpuTime()
				t0 := time.Now()
				go func() { errc <- s.run(ctx, brokers, out) }()
				first, cpuFirst, err := waitOutputCPU(brokers, out, errc)
				if err != nil {
					log.Fatalf("%s, %d partitions: %v", s.name, n, err)
				}
				el, steady := time.Since(t0), time.Since(first)
				cpu := cpuTime() - cpuFirst
				startCPU := cpuFirst - cpu0
				cancel()
				<-errc
				rate := float64(*records) / steady.Seconds()
				perRec := float64(cpu.Nanoseconds()) / float64(*records)
				k := key{s.name, n}
				rates[k] = append(rates[k], rate)
				cpus[k] = append(cpus[k], perRec)
				fmt.Printf("round %d  %-20s %5d partitions %9.0f records/s  (first to last output %v; %v including start-up; CPU %.0f ns/record first to last output, %v before)\n",
					round+1, s.name, n, rate, steady.Round(time.Millisecond), el.Round(time.Millisecond), perRec, startCPU.Round(time.Millisecond))
			}
		}
	}
	fmt.Printf("\nmedian of %d rounds (ratio: to the first partition count):\n", *rounds)
	for _, s := range scenarios {
		base := key{s.name, counts[0]}
		if len(rates[base]) == 0 {
			continue
		}
		for _, n := range counts {
			k := key{s.name, n}
			fmt.Printf("%-20s %5d partitions %9.0f records/s (%.2f)  CPU %5.0f ns/record (%.2f)\n", s.name, n,
				medianOf(rates[k]), medianOf(rates[k])/medianOf(rates[base]), medianOf(cpus[k]), medianOf(cpus[k])/medianOf(cpus[base]))
		}
	}
}

// waitOutputCPU is waitOutput that also returns the process's CPU time
// when the first output was seen, so that start-up (creating a task per
// partition) is not counted per record.
func waitOutputCPU(brokers []string, topic string, errc chan error) (first time.Time, cpuFirst time.Duration, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return first, 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		select {
		case err := <-errc:
			return first, 0, fmt.Errorf("stopped early: %v", err)
		// Not more often: listing the end offsets of 1000 partitions every
		// 5 ms took a quarter of the process's CPU.
		case <-time.After(50 * time.Millisecond):
		}
		ends, err := adm.ListEndOffsets(context.Background(), topic)
		if err != nil {
			continue
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		if sum > 0 && first.IsZero() {
			first, cpuFirst = time.Now(), cpuTime()
		}
		if sum >= int64(*records) {
			return first, cpuFirst, nil
		}
	}
}
