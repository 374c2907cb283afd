// Command wordcount counts words with kstreams: source → split into words →
// repartition by word → count per word in a changelogged store → sink.
//
// With no flags it starts an in-process Kafka cluster, produces a sample
// text, runs the topology until every word is counted, prints the top words
// and exits. With -brokers it does the same against a real cluster (creating
// the topics if they are missing). With -pebble the counts live in Pebble
// stores under -state-dir instead of in memory.
//
//	go run ./wordcount
//	go run ./wordcount -brokers localhost:9092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/examples/internal/countrun"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	inputTopic  = "wordcount-input"
	outputTopic = "wordcount-output"
	wordsTopic  = "wordcount-words" // repartition topic, created by the app
	partitions  = 4
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process cluster")
	top := flag.Int("top", 10, "how many words to print")
	verbose := flag.Bool("v", false, "log what the application does")
	usePebble := flag.Bool("pebble", false, "keep the counts in Pebble under -state-dir instead of in memory")
	stateDir := flag.String("state-dir", "", "state directory for -pebble (default: a temporary directory)")
	flag.Parse()
	if err := run(*brokers, *top, *verbose, *usePebble, *stateDir); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// Topology splits lines into lower-case words and counts each word.
func Topology(counts store.Supplier) (*kstreams.Topology, error) {
	b := kstreams.NewBuilder()
	countsStore := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, counts))
	lines := kstreams.Source(b, "lines", []string{inputTopic}, serde.String, serde.String)
	words := kstreams.FlatMap(lines, "split", func(r kstreams.Record[string, string]) ([]kstreams.Record[string, string], error) {
		fields := strings.FieldsFunc(strings.ToLower(r.Value), func(c rune) bool {
			return !('a' <= c && c <= 'z' || c == '\'')
		})
		out := make([]kstreams.Record[string, string], len(fields))
		for i, w := range fields {
			out[i] = kstreams.WithKeyValue(r, w, w)
		}
		return out, nil
	})
	// Each line's words are in the line's partition; counting needs each
	// word in one place, so repartition by word first.
	byWord := kstreams.Through(words, "by-word", wordsTopic, partitions, serde.String, serde.String)
	counted := kstreams.Process(byWord, "count", func() kstreams.Processor[string, string, string, int64] { return &counter{store: countsStore} },
		kstreams.WithStores(countsStore))
	kstreams.Sink(counted, "counts-out", outputTopic, serde.String, serde.Int64)
	return b.Build()
}

type counter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, int64]
	counts store.KeyValueStore[string, int64]
}

func (c *counter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *counter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, n))
}

func (c *counter) Close() error { return nil }

func run(brokerList string, top int, verbose, usePebble bool, stateDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.Default()
	}

	var brokers []string
	if brokerList == "" {
		c, err := embedded.NewCluster(embedded.Topic(inputTopic, partitions), embedded.Topic(outputTopic, partitions))
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.Brokers()
		fmt.Println("started an in-process Kafka cluster at", strings.Join(brokers, ","))
	} else {
		brokers = strings.Split(brokerList, ",")
		if err := countrun.CreateTopics(ctx, brokers, partitions, inputTopic, outputTopic); err != nil {
			return err
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(outputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer cl.Close()
	startCtx, cancelStart := context.WithTimeout(ctx, 500*time.Millisecond)
	cl.PollFetches(startCtx) // start consuming output from its current end
	cancelStart()

	// Produce the sample text, one line per record.
	want := 0
	for i, line := range strings.Split(strings.TrimSpace(sampleText), "\n") {
		want += countWords(line)
		cl.Produce(ctx, &kgo.Record{Topic: inputTopic, Key: fmt.Appendf(nil, "line-%d", i), Value: []byte(line)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("producing the sample text: %w", err)
	}

	supplier := memory.Supplier()
	opts := []kstreams.Option{
		kstreams.WithBrokers(brokers...),
		kstreams.WithApplicationID("wordcount"),
		kstreams.WithCommitInterval(time.Second),
		kstreams.WithLogger(logger),
	}
	if usePebble {
		if stateDir == "" {
			dir, err := os.MkdirTemp("", "wordcount-state-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			stateDir = dir
		}
		supplier = pebble.Supplier()
		opts = append(opts, kstreams.WithStateDir(stateDir))
		fmt.Println("counting in Pebble under", stateDir)
	}
	topo, err := Topology(supplier)
	if err != nil {
		return err
	}
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	appErr := make(chan error, 1)
	go func() { appErr <- app.Run(appCtx) }()

	// Read the output until every word of the input has been counted.
	counts := map[string]int64{}
	for seen := 0; seen < want; {
		pollCtx, cancelPoll := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancelPoll()
		if err := ctx.Err(); err != nil {
			stopApp()
			return fmt.Errorf("saw %d of %d counts before timing out: %w", seen, want, errors.Join(err, <-appErr))
		}
		select {
		case err := <-appErr:
			return fmt.Errorf("the application stopped early: %w", err)
		default:
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64.Deserialize(r.Topic, r.Headers, r.Value)
			if err == nil && n > counts[string(r.Key)] {
				counts[string(r.Key)] = n
			}
			seen++
		})
	}
	stopApp()
	if err := <-appErr; err != nil {
		return err
	}

	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.SortFunc(words, func(a, b string) int {
		if counts[a] != counts[b] {
			return int(counts[b] - counts[a])
		}
		return strings.Compare(a, b)
	})
	fmt.Printf("counted %d words (%d distinct); top %d:\n", want, len(words), min(top, len(words)))
	for _, w := range words[:min(top, len(words))] {
		fmt.Printf("%6d  %s\n", counts[w], w)
	}
	return nil
}

func countWords(line string) int {
	return len(strings.FieldsFunc(strings.ToLower(line), func(c rune) bool { return !('a' <= c && c <= 'z' || c == '\'') }))
}

const sampleText = `
It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness, it was the epoch of belief, it was the epoch of
incredulity, it was the season of Light, it was the season of Darkness, it was
the spring of hope, it was the winter of despair, we had everything before us,
we had nothing before us, we were all going direct to Heaven, we were all going
direct the other way -- in short, the period was so far like the present
period, that some of its noisiest authorities insisted on its being received,
for good or for evil, in the superlative degree of comparison only.
There were a king with a large jaw and a queen with a plain face, on the throne
of England; there were a king with a large jaw and a queen with a fair face, on
the throne of France. In both countries it was clearer than crystal to the lords
of the State preserves of loaves and fishes, that things in general were
settled for ever.
`
