package kstreams_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// gatedBackend blocks its first Write (a restore's) until released.
type gatedBackend struct {
	store.Backend
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedBackend) Write(b *store.Batch) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Backend.Write(b)
}

// restoreFixture sets up a 2-partition app whose task 0_0 has a changelog
// to restore (key a counted to 5) behind a gate, and task 0_1 none.
type restoreFixture struct {
	in, out, appID string
	brokers        []string
	gate           *gatedBackend
	topo           *kstreams.Topology
}

func newRestoreFixture(t *testing.T) *restoreFixture {
	f := &restoreFixture{brokers: testBrokers(t)}
	f.in, f.out, f.appID = uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, f.brokers, 2, f.in, f.out)
	changelog := f.appID + "-counts-changelog"
	createTopics(t, f.brokers, 2, changelog)
	var recs []*kgo.Record
	for i := int64(1); i <= 5; i++ {
		v, _ := serde.StoreForm(serde.Int64).Serialize(nil, changelog, nil, i)
		recs = append(recs, &kgo.Record{Topic: changelog, Partition: 0, Key: []byte("a"), Value: v})
	}
	produce(t, newClient(t, f.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)
	f.gate = &gatedBackend{entered: make(chan struct{}), release: make(chan struct{})}
	sup := memory.Supplier()
	f.topo = countingTopology(t, f.in, f.out, func(bctx store.BackendContext) (store.Backend, error) {
		b, err := sup(bctx)
		if err != nil || bctx.Partition != 0 {
			return b, err
		}
		f.gate.Backend = b
		return f.gate, nil
	})
	return f
}

// TestRestoreRunsInTheBackground: while one task restores its store (held
// up here), the instance's other tasks process records; the restoring task
// processes its records once restored, from the restored state.
func TestRestoreRunsInTheBackground(t *testing.T) {
	f := newRestoreFixture(t)
	released := false
	defer func() {
		if !released {
			close(f.gate.release)
		}
	}()
	results := collect(t, f.brokers, f.out)
	a := startApp(t, f.topo, kstreams.WithBrokers(f.brokers...), kstreams.WithApplicationID(f.appID))
	select {
	case <-f.gate.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the restore of task 0_0 did not start")
	}
	manual := newClient(t, f.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, manual, &kgo.Record{Topic: f.in, Partition: 1, Key: []byte("b"), Value: []byte("p1")},
		&kgo.Record{Topic: f.in, Partition: 0, Key: []byte("a"), Value: []byte("p0")})
	outputs := func() map[string]int64 {
		got := map[string]int64{}
		for _, r := range results.snapshot() {
			var o countOutput
			if json.Unmarshal(r.Value, &o) == nil {
				got[o.ID] = o.Count
			}
		}
		return got
	}
	waitFor(t, 30*time.Second, "task 0_1's output while task 0_0 restores", func() bool { _, ok := outputs()["p1"]; return ok })
	if n, ok := outputs()["p0"]; ok {
		t.Fatalf("task 0_0 processed a record (count %d) before its store was restored", n)
	}
	if st := a.app.Stats(); st.Tasks != 2 {
		t.Errorf("Stats().Tasks = %d while restoring; want 2", st.Tasks)
	}
	close(f.gate.release)
	released = true
	waitFor(t, 30*time.Second, "task 0_0's output after its restore", func() bool { _, ok := outputs()["p0"]; return ok })
	if n := outputs()["p0"]; n != 6 {
		t.Errorf("count of a after the restore = %d, want 6 (5 restored + 1)", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	offs := committedOffsets(t, f.brokers, f.appID, f.in)
	if offs[0] != 1 || offs[1] != 1 {
		t.Errorf("committed offsets %v; want 1 on both partitions", offs)
	}
}

// TestShutdownDuringRestoreIsPrompt: a shutdown while a store restores does
// not wait for the restore, and commits nothing of the restoring task.
func TestShutdownDuringRestoreIsPrompt(t *testing.T) {
	f := newRestoreFixture(t)
	defer close(f.gate.release) // the restore stays held up until the test ends
	a := startApp(t, f.topo, kstreams.WithBrokers(f.brokers...), kstreams.WithApplicationID(f.appID))
	select {
	case <-f.gate.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the restore of task 0_0 did not start")
	}
	produce(t, newClient(t, f.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())),
		&kgo.Record{Topic: f.in, Partition: 0, Key: []byte("a"), Value: []byte("p0")})
	start := time.Now()
	a.cancel()
	select {
	case err := <-a.err:
		a.err <- err
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(kstreams.ShutdownBudget + 30*time.Second):
		t.Fatalf("Run did not return %v after its context was canceled during a restore", time.Since(start))
	}
	if took := time.Since(start); took > kstreams.ShutdownBudget {
		t.Errorf("shutdown during a restore took %v; the budget is %v", took, kstreams.ShutdownBudget)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(newClient(t, f.brokers)).FetchOffsets(ctx, f.appID)
	if err == nil {
		if o, ok := offs.Lookup(f.in, 0); ok && o.At > 0 {
			t.Errorf("committed offset %d of the restoring task's partition; want nothing committed", o.At)
		}
	}
}
