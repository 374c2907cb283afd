package kstreams_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// blobTopology stores each record's value under its key in store "blobs"
// (changelogged) and forwards the key.
func blobTopology(t *testing.T, in, out string, supplier store.Supplier, opts ...kstreams.ProcessOption) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	blobs := kstreams.AddStore(b, store.KeyValue("blobs", serde.String, serde.String, supplier))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	stored := kstreams.Process(src, "store", func() kstreams.Processor[string, string, string, string] { return &blobWriter{store: blobs} },
		append([]kstreams.ProcessOption{kstreams.WithStores(blobs)}, opts...)...)
	kstreams.Sink(stored, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type blobWriter struct {
	store kstreams.Store[store.KeyValueStore[string, string]]
	pc    kstreams.ProcessorContext[string, string]
	blobs store.KeyValueStore[string, string]
}

func (w *blobWriter) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	w.pc = pc
	w.blobs, err = w.store.Get(pc)
	return err
}

func (w *blobWriter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	// The store key is taken from the value's prefix: records of different
	// keys can write the same store key (a shared aggregate).
	storeKey, _, _ := strings.Cut(r.Value, "=")
	if err := w.blobs.Put(storeKey, r.Value); err != nil {
		return err
	}
	return w.pc.Forward(ctx, kstreams.WithValue(r, "ok"))
}

func (w *blobWriter) Close() error { return nil }

// TestFailedChangelogWriteIsNeverSkipped: a changelog write the brokers
// refuse (a value over the producer's batch limit for the changelog) under
// the skip policy for production errors must not count as durable: the app
// stops with an error naming the store, and the record's offset is not
// committed (it used to be skipped like an output and committed, the state
// only on local disk).
func TestFailedChangelogWriteIsNeverSkipped(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	changelog := appID + "-blobs-changelog"
	produce(t, newClient(t, brokers),
		&kgo.Record{Topic: in, Key: []byte("a"), Value: []byte("a=small")},
		&kgo.Record{Topic: in, Key: []byte("b"), Value: []byte("b=" + strings.Repeat("x", 4096))},
		&kgo.Record{Topic: in, Key: []byte("c"), Value: []byte("c=small")})
	a := startApp(t, blobTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(50*time.Millisecond),
		kstreams.WithProductionErrors(kstreams.SkipOnError()),
		kstreams.WithKgoOptions(kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if topic == changelog {
				return 1024
			}
			return 1 << 20
		})))
	err := a.wait(t)
	if !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "store blobs") {
		t.Fatalf("Run returned %v; want the changelog write's error (MESSAGE_TOO_LARGE) naming store blobs", err)
	}
	if got, ok := committedOffsets(t, brokers, appID, in)[0]; ok && got > 1 {
		t.Errorf("committed offset %d: the record at offset 1, whose changelog write failed, was committed past", got)
	}
}

// slowBackend returns from its writes up to 300 µs after applying them, so
// that two writers of one key interleave, and records the order in which
// values reached it.
type slowBackend struct {
	*memory.Backend
	mu   sync.Mutex
	last map[string]string
}

func (s *slowBackend) Set(key, value []byte) error {
	s.mu.Lock()
	s.last[string(key)] = string(value)
	err := s.Backend.Set(key, value)
	s.mu.Unlock()
	// Applied: the call takes a while yet to return (a remote backend's
	// acknowledgement), so the caller's next step comes late.
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	return err
}

// TestStoreAndChangelogAgreeUnderKeyOrder: under KeyOrder, records of
// different keys write the same store keys concurrently through a backend
// with latency. For every store key, the last value the backend received
// must be the changelog's last value (the backend write and the changelog
// append used to happen under separate locks: 19 of 20 rounds disagreed).
func TestStoreAndChangelogAgreeUnderKeyOrder(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	var backends []*slowBackend
	var mu sync.Mutex
	supplier := func(store.BackendContext) (store.Backend, error) {
		b := &slowBackend{Backend: memory.New(), last: map[string]string{}}
		mu.Lock()
		backends = append(backends, b)
		mu.Unlock()
		return b, nil
	}
	var recs []*kgo.Record
	for i := range 2000 {
		// 200 record keys, 5 shared store keys.
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(fmt.Sprint("k", i%200)), Value: []byte(fmt.Sprintf("s%d=%d", i%5, i))})
	}
	produce(t, newClient(t, brokers), recs...)
	changelog := collect(t, brokers, appID+"-blobs-changelog")
	a := startApp(t, blobTopology(t, in, out, supplier, kstreams.WithOrdering(kstreams.KeyOrder)),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithConcurrency(16),
		kstreams.WithInlineWork(0)) // every record on the workers: the most interleaving
	waitFor(t, 60*time.Second, "every record committed", func() bool { return committedOffsets(t, brokers, appID, in)[0] == 2000 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{}
	waitFor(t, 30*time.Second, "the changelog", func() bool {
		recs := changelog.snapshot()
		if len(recs) < 2000 {
			return false
		}
		for _, r := range recs {
			logged[string(r.Key)] = string(r.Value)
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if len(backends) != 1 {
		t.Fatalf("%d backends opened, want 1 (one task, no rebalance)", len(backends))
	}
	for key, v := range backends[0].last {
		if logged[key] != v {
			t.Errorf("store key %s: the store's last value is %q, the changelog's %q: a restore would roll it back", key, v, logged[key])
		}
	}
}
