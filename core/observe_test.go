package kstreams_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"
)

// events records what an Observer sees.
type events struct {
	mu         sync.Mutex
	fetched    map[string]int // records per topic
	lags       []int64
	produced   map[string]int // records per topic
	bytes      int
	processed  map[string]int // samples per node
	endToEnd   map[string]int // samples per sink
	retried    map[string]int
	commits    int
	commitErrs int
	rebalances map[kstreams.RebalanceKind]int
	assignedTo int            // partitions in assigned callbacks
	storeOps   map[string]int // "<store>/<op>"
	restored   int            // restore progress reports marked done
	states     []kstreams.State
}

func newEvents() *events {
	return &events{fetched: map[string]int{}, produced: map[string]int{}, processed: map[string]int{}, endToEnd: map[string]int{},
		retried: map[string]int{}, rebalances: map[kstreams.RebalanceKind]int{}, storeOps: map[string]int{}}
}

func (e *events) observer() *kstreams.Observer {
	lock := func() func() { e.mu.Lock(); return e.mu.Unlock }
	return &kstreams.Observer{
		SampleEvery: 1,
		Fetched: func(ev kstreams.FetchEvent) {
			defer lock()()
			e.fetched[ev.Topic] += ev.Records
			e.lags = append(e.lags, ev.Lag)
		},
		Produced: func(ev kstreams.ProduceEvent) {
			defer lock()()
			e.produced[ev.Topic] += ev.Records
			e.bytes += ev.Bytes
		},
		Processed: func(ev kstreams.NodeTiming) { defer lock()(); e.processed[ev.Node]++ },
		EndToEnd:  func(ev kstreams.NodeTiming) { defer lock()(); e.endToEnd[ev.Node]++ },
		Retried:   func(node string) { defer lock()(); e.retried[node]++ },
		Committed: func(ev kstreams.CommitEvent) {
			defer lock()()
			if ev.Err != nil {
				e.commitErrs++
			} else {
				e.commits++
			}
		},
		Rebalanced: func(ev kstreams.RebalanceEvent) {
			defer lock()()
			e.rebalances[ev.Kind]++
			if ev.Kind == kstreams.RebalanceAssigned {
				e.assignedTo += ev.Partitions
			}
		},
		StoreOp: func(ev kstreams.StoreOpEvent) { defer lock()(); e.storeOps[ev.Store+"/"+ev.Op.String()]++ },
		Restore: func(p kstreams.RestoreProgress) {
			defer lock()()
			if p.Done {
				e.restored++
			}
		},
	}
}

func (e *events) onState(_, s kstreams.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.states = append(e.states, s)
}

func (e *events) get(f func() int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f()
}

func probe(h http.Handler) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	return rec.Code, rec.Body.String()
}

// TestObserverSeesARun runs the counting topology with an Observer that
// samples every call and checks that each event and counter moves as the
// records flow, and that the state and the health probes follow the run.
func TestObserverSeesARun(t *testing.T) {
	brokers := testBrokers(t)
	in, out := uniqueName(t, "in"), uniqueName(t, "out")
	createTopics(t, brokers, 2, in, out)
	const n = 200
	cl := newClient(t, brokers)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%10)), Value: []byte("id" + strconv.Itoa(i))})
	}
	produce(t, cl, recs...)

	ev := newEvents()
	app, err := kstreams.NewApp(countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...),
		kstreams.WithApplicationID(uniqueName(t, "app")), kstreams.WithCommitInterval(100*time.Millisecond),
		kstreams.WithObserver(ev.observer()), kstreams.WithStateListener(ev.onState))
	if err != nil {
		t.Fatal(err)
	}
	ready, live := app.ReadinessHandler(), app.LivenessHandler(0)
	if s := app.State(); s != kstreams.StateCreated {
		t.Fatalf("state before Run: %s, want created", s)
	}
	if code, body := probe(ready); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness before Run: %d %q, want 503", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	outputs := collect(t, brokers, out)
	waitFor(t, 60*time.Second, "every output", func() bool { return len(outputs.snapshot()) >= n })
	waitFor(t, 30*time.Second, "a commit", func() bool { return ev.get(func() int { return ev.commits }) > 0 })

	if s := app.State(); s != kstreams.StateRunning {
		t.Fatalf("state while processing: %s, want running", s)
	}
	if code, body := probe(ready); code != http.StatusOK || body != "running\n" {
		t.Fatalf("readiness while running: %d %q, want 200 \"running\"", code, body)
	}
	if code, body := probe(live); code != http.StatusOK {
		t.Fatalf("liveness while running: %d %q, want 200", code, body)
	}
	st := app.Stats()
	if st.Consumed != n || st.Processed != n {
		t.Errorf("Stats: consumed %d, processed %d, want %d each", st.Consumed, st.Processed, n)
	}
	if st.Produced < 2*n { // outputs and changelog records
		t.Errorf("Stats.Produced %d, want at least %d", st.Produced, 2*n)
	}
	if st.Tasks != 2 || st.InFlight != 0 || st.Paused != 0 {
		t.Errorf("Stats: tasks %d, in flight %d, paused %d; want 2, 0, 0", st.Tasks, st.InFlight, st.Paused)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, _ := probe(ready); code != http.StatusServiceUnavailable {
		t.Errorf("readiness after Run returned: %d, want 503", code)
	}
	if code, body := probe(live); code != http.StatusServiceUnavailable || body != "stopped: Run returned\n" {
		t.Errorf("liveness after Run returned: %d %q, want 503", code, body)
	}

	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.fetched[in] != n {
		t.Errorf("fetched %d records of %s, want %d", ev.fetched[in], in, n)
	}
	for _, lag := range ev.lags {
		if lag < 0 || lag >= n {
			t.Errorf("lag %d outside [0, %d)", lag, n)
		}
	}
	if ev.produced[out] != n || ev.bytes == 0 {
		t.Errorf("produced %d records to %s (%d bytes), want %d", ev.produced[out], out, ev.bytes, n)
	}
	var logged int
	for topic, k := range ev.produced {
		if topic != out {
			logged += k
		}
	}
	if logged != n {
		t.Errorf("produced %d changelog records, want %d (%v)", logged, n, ev.produced)
	}
	if ev.processed["count"] != n {
		t.Errorf("processor node timed %d times, want %d (SampleEvery 1): %v", ev.processed["count"], n, ev.processed)
	}
	if ev.endToEnd["out"] != n {
		t.Errorf("sink saw %d records, want %d: %v", ev.endToEnd["out"], n, ev.endToEnd)
	}
	if ev.storeOps["counts/get"] != n || ev.storeOps["counts/put"] != n {
		t.Errorf("store operations %v, want %d gets and puts of counts", ev.storeOps, n)
	}
	if ev.commitErrs != 0 {
		t.Errorf("%d commits failed", ev.commitErrs)
	}
	if ev.rebalances[kstreams.RebalanceAssigned] == 0 || ev.assignedTo != 2 {
		t.Errorf("rebalances %v, %d partitions assigned; want an assignment of 2", ev.rebalances, ev.assignedTo)
	}
	if ev.restored != 2 {
		t.Errorf("%d restores done, want 2 (one store per task)", ev.restored)
	}
	// The states: created → starting → rebalancing → ... → running →
	// stopping → (rebalancing: leaving the group revokes) → stopped.
	s := ev.states
	if len(s) < 4 || s[0] != kstreams.StateStarting || s[len(s)-1] != kstreams.StateStopped {
		t.Fatalf("states %v: want starting first and stopped last", s)
	}
	iRun := slices.Index(s, kstreams.StateRunning)
	iStop := slices.Index(s, kstreams.StateStopping)
	if iRun < 0 || iStop < iRun || slices.Index(s, kstreams.StateRebalancing) > iRun {
		t.Errorf("states %v: want rebalancing, then running, then stopping", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			t.Errorf("states %v: %s reported twice in a row", s, s[i])
		}
	}
}

// TestObserverRetriesAndFailure checks the retries reported per node, and
// that an App whose Run fails is reported failed and not alive.
func TestObserverRetriesAndFailure(t *testing.T) {
	brokers := testBrokers(t)
	in, out := uniqueName(t, "in"), uniqueName(t, "out")
	createTopics(t, brokers, 1, in, out)
	cl := newClient(t, brokers)
	produce(t, cl, &kgo.Record{Topic: in, Value: []byte("a")}, &kgo.Record{Topic: in, Value: []byte("b")}, &kgo.Record{Topic: in, Value: []byte("fatal")})

	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	var mu sync.Mutex
	calls := map[string]int{}
	flaky := kstreams.Func(src, "flaky", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		mu.Lock()
		calls[r.Value]++
		c := calls[r.Value]
		mu.Unlock()
		if r.Value == "fatal" {
			return errors.New("always fails")
		}
		if c < 3 {
			return fmt.Errorf("attempt %d fails", c)
		}
		return pc.Forward(ctx, r)
	}, kstreams.WithRetry(kstreams.Retry{Attempts: 3, Backoff: time.Millisecond}))
	kstreams.Sink(flaky, "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(uniqueName(t, "app")),
		kstreams.WithObserver(ev.observer()), kstreams.WithStateListener(ev.onState))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(context.Background()); err == nil {
		t.Fatal("Run returned nil; the record \"fatal\" fails every attempt under the fail policy")
	}
	if s := app.State(); s != kstreams.StateFailed {
		t.Errorf("state after a failed Run: %s, want failed", s)
	}
	if code, _ := probe(app.LivenessHandler(0)); code != http.StatusServiceUnavailable {
		t.Errorf("liveness after a failed Run: %d, want 503", code)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	// a and b fail twice each, fatal fails three times: 2 retries each.
	if ev.retried["flaky"] != 6 {
		t.Errorf("retries reported %v, want 6 for node flaky", ev.retried)
	}
	if last := ev.states[len(ev.states)-1]; last != kstreams.StateFailed {
		t.Errorf("states %v: want failed last", ev.states)
	}
}

// TestStateString names every state.
func TestStateString(t *testing.T) {
	want := []string{"created", "starting", "rebalancing", "restoring", "running", "stopping", "stopped", "failed"}
	for i, w := range want {
		if got := kstreams.State(i).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", i, got, w)
		}
	}
	if got := kstreams.State(99).String(); got != "State(99)" {
		t.Errorf("State(99) = %q", got)
	}
}

// TestObserverSamplesByOffset: with SampleEvery 4, the records timed at a
// processor and at a sink are those at offsets 0, 4, 8, ... of their
// input partition.
func TestObserverSamplesByOffset(t *testing.T) {
	brokers := testBrokers(t)
	in, out := uniqueName(t, "in"), uniqueName(t, "out")
	createTopics(t, brokers, 1, in, out)
	const n = 100
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte("id" + strconv.Itoa(i))})
	}
	produce(t, newClient(t, brokers), recs...)
	ev := newEvents()
	o := ev.observer()
	o.SampleEvery = 4
	ra := startApp(t, countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...),
		kstreams.WithApplicationID(uniqueName(t, "app")), kstreams.WithObserver(o))
	outputs := collect(t, brokers, out)
	waitFor(t, 60*time.Second, "every output", func() bool { return len(outputs.snapshot()) >= n })
	if err := ra.stop(t); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.processed["count"] != n/4 || ev.endToEnd["out"] != n/4 {
		t.Errorf("samples: %d at the processor, %d at the sink; want %d each (offsets 0, 4, ..., 96)", ev.processed["count"], ev.endToEnd["out"], n/4)
	}
}
