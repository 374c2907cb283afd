package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testBrokers returns the brokers of the cluster the integration tests use:
// the one named by KSTREAMS_TEST_BROKERS (a real Kafka), or else a new
// in-process cluster.
func testBrokers(t testing.TB) []string {
	t.Helper()
	return kafkatest.Brokers(t)
}

// uniqueName makes topic and application names unique per test run, so
// tests can share a real cluster.
func uniqueName(t testing.TB, base string) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "-", "=", "-")
	return fmt.Sprintf("%s-%s-%d", r.Replace(t.Name()), base, time.Now().UnixNano()%1e9)
}

func createTopics(t testing.TB, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("creating topics %v: %v", topics, err)
	}
}

// produce writes records and waits for their acknowledgement.
func produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

func newClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// collector reads a topic from the start in the background.
type collector struct {
	mu      sync.Mutex
	records []*kgo.Record
	stop    func()
	done    chan struct{}
}

func collect(t testing.TB, brokers []string, topic string, opts ...kgo.Opt) *collector {
	cl := newClient(t, brokers, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			c.mu.Lock()
			c.records = append(c.records, fs.Records()...)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func (c *collector) snapshot() []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*kgo.Record(nil), c.records...)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runningApp is an App running in the background.
type runningApp struct {
	app    *kstreams.App
	cancel context.CancelFunc
	err    chan error
}

func startApp(t testing.TB, topo *kstreams.Topology, opts ...kstreams.Option) *runningApp {
	t.Helper()
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningApp{app: app, cancel: cancel, err: make(chan error, 1)}
	go func() {
		err := app.Run(ctx)
		if err != nil {
			t.Logf("app stopped: %v", err)
		}
		ra.err <- err
	}()
	t.Cleanup(func() { cancel(); ra.wait(t) })
	return ra
}

// stop shuts the app down gracefully and returns Run's error.
func (ra *runningApp) stop(t testing.TB) error {
	ra.cancel()
	return ra.wait(t)
}

func (ra *runningApp) wait(t testing.TB) error {
	select {
	case err, ok := <-ra.err:
		if ok {
			close(ra.err)
		}
		return err
	case <-time.After(60 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("app did not stop within 60s; goroutines:\n%s", buf[:n])
		return nil
	}
}

// countOutput is what the counting topology writes per input record.
type countOutput struct {
	ID    string `json:"id"`
	Count int64  `json:"count"`
}

// countingTopology counts input records per key in store "counts" and
// writes, for each input record, the record's id (its value) and the key's
// new count.
func countingTopology(t testing.TB, in, out string, supplier store.Supplier) *kstreams.Topology {
	return countingTopologyOpts(t, in, out, supplier)
}

// countingTopologyOpts is countingTopology with options for store "counts".
func countingTopologyOpts(t testing.TB, in, out string, supplier store.Supplier, opts ...store.SpecOption) *kstreams.Topology {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, supplier, opts...))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, []byte] { return &idCounter{store: counts} },
		kstreams.WithStores(counts))
	kstreams.Sink(counted, "out", out, serde.String, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type idCounter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, []byte]
	counts store.KeyValueStore[string, int64]
}

func (c *idCounter) Init(pc kstreams.ProcessorContext[string, []byte]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *idCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	if r.Value == "poison" {
		return errors.New("poison value")
	}
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	v, err := json.Marshal(countOutput{ID: r.Value, Count: n})
	if err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, v))
}

func (c *idCounter) Close() error { return nil }

// fileBackend is a persistent test backend: an in-memory backend whose
// Flush writes every entry to a file that the next open reads back.
type fileBackend struct {
	*memory.Backend
	path  string
	loads int
}

func fileSupplier() store.Supplier {
	return func(bctx store.BackendContext) (store.Backend, error) {
		if bctx.Dir == "" {
			return nil, errors.New("fileBackend needs a state directory")
		}
		fb := &fileBackend{Backend: memory.New(), path: filepath.Join(bctx.Dir, "data.json")}
		data, err := os.ReadFile(fb.path)
		if errors.Is(err, os.ErrNotExist) {
			return fb, nil
		}
		if err != nil {
			return nil, err
		}
		var entries map[string][]byte
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, err
		}
		for k, v := range entries {
			if err := fb.Backend.Set([]byte(k), v); err != nil {
				return nil, err
			}
		}
		return fb, nil
	}
}

func (f *fileBackend) Persistent() bool { return true }

func (f *fileBackend) Flush() error {
	entries := map[string][]byte{}
	for e, err := range f.Backend.Range(nil, nil) {
		if err != nil {
			return err
		}
		entries[string(e.Key)] = append([]byte(nil), e.Value...)
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

var (
	serde_String = serde.String
	serde_Int64  = serde.Int64
)
