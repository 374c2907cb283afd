package kstreams_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// walSupplier is fileSupplier with every write persisted at once, as a
// store's write-ahead log survives a process crash (Pebble's does, unsynced).
func walSupplier() store.Supplier {
	files := fileSupplier()
	return func(bctx store.BackendContext) (store.Backend, error) {
		b, err := files(bctx)
		if err != nil {
			return nil, err
		}
		return &walBackend{b.(*fileBackend)}, nil
	}
}

type walBackend struct{ *fileBackend }

func (w *walBackend) Set(key, value []byte) error {
	if err := w.fileBackend.Set(key, value); err != nil {
		return err
	}
	return w.fileBackend.Flush()
}

// TestTransactionsStateExactAfterCrash: with transactions, the state after
// a crash holds exactly the committed inputs' increments, even when the
// store kept writes of the transaction the crash aborted: every key's last
// count equals its number of inputs, and no input's output is committed
// twice.
func TestTransactionsStateExactAfterCrash(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	topo := countingTopology(t, in, out, walSupplier())
	opts := append(modeOptions(true), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithStateDir(t.TempDir()), kstreams.WithCommitInterval(300*time.Millisecond))
	results := collectMode(t, brokers, out, true)

	var mu sync.Mutex
	perKey := map[string]int64{}
	ids := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	producer := newClient(t, brokers)
	go func() { // a steady flow through the crash
		defer close(done)
		for i := 0; ; i += 10 {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			var recs []*kgo.Record
			for j := i; j < i+10; j++ {
				key := string(rune('a' + j%5))
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: fmt.Appendf(nil, "r%d", j)})
			}
			produce(t, producer, recs...)
			mu.Lock()
			for j := i; j < i+10; j++ {
				perKey[string(rune('a'+j%5))]++
				ids[fmt.Sprintf("r%d", j)] = true
			}
			mu.Unlock()
		}
	}()
	a := startApp(t, topo, opts...)
	waitFor(t, 30*time.Second, "a few commits", func() bool { return committedOffsets(t, brokers, appID, in)[0] >= 200 })
	a.app.Kill() // mid-transaction: the flow goes on
	a.wait(t)
	time.Sleep(500 * time.Millisecond)
	b := startApp(t, topo, opts...)
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	last := map[string]int64{}
	waitFor(t, 60*time.Second, "every input's output", func() bool {
		seen := map[string]int{}
		clear(last)
		for _, r := range results.snapshot() {
			var o countOutput
			if json.Unmarshal(r.Value, &o) == nil {
				seen[o.ID]++
				last[string(r.Key)] = max(last[string(r.Key)], o.Count)
			}
		}
		for id := range ids {
			if seen[id] == 0 {
				return false
			}
		}
		for id, n := range seen {
			if n > 1 {
				t.Fatalf("the output of %s is committed %d times", id, n)
			}
		}
		return true
	})
	for k, n := range perKey {
		if last[k] != n {
			t.Errorf("key %s: last count %d, inputs %d", k, last[k], n)
		}
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d inputs", len(ids))
}
