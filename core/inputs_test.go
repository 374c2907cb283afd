package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// inputsServer stands in for a durable store service that keeps, with each
// store instance's data, the input offsets the data covers
// (store.InputOffsetKeeper), and optionally its earlier flushes
// (store.InputRewinder). It outlives the app instances; a backend's writes
// reach it only at a flush, with the offsets, in one step.
type inputsServer struct {
	mu     sync.Mutex
	rewind bool // backends implement store.InputRewinder
	inst   map[string]*inputsInstance
}

type inputsInstance struct {
	data    map[string]string
	inputs  store.InputOffsets
	history []inputsFlush // every flush with input offsets, oldest first
	flushes int           // FlushInputs calls
	plain   int           // Flush calls (the runtime must not make any)
	rewinds int
}

type inputsFlush struct {
	data   map[string]string
	inputs store.InputOffsets
}

func newInputsServer(rewind bool) *inputsServer {
	return &inputsServer{rewind: rewind, inst: map[string]*inputsInstance{}}
}

func (s *inputsServer) get(name string) *inputsInstance {
	in := s.inst[name]
	if in == nil {
		in = &inputsInstance{data: map[string]string{}}
		s.inst[name] = in
	}
	return in
}

// state returns a copy of store instance name ("<task>/<store>").
func (s *inputsServer) state(name string) inputsInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.get(name)
	c := *in
	c.data = maps.Clone(in.data)
	return c
}

// set replaces instance name's data and input offsets, as a flush would.
func (s *inputsServer) set(name string, data map[string]string, inputs store.InputOffsets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.get(name)
	in.data, in.inputs = maps.Clone(data), inputs
	in.history = append(in.history, inputsFlush{maps.Clone(data), inputs})
}

func (s *inputsServer) supplier() store.Supplier {
	return func(bctx store.BackendContext) (store.Backend, error) {
		b := &inputsBackend{srv: s, name: bctx.Task + "/" + bctx.Store, overlay: map[string]*string{}}
		if s.rewind {
			return &rewindingInputsBackend{b}, nil
		}
		return b, nil
	}
}

// inputsBackend buffers writes until a flush; closing drops what is not
// flushed, as a crash would.
type inputsBackend struct {
	srv     *inputsServer
	name    string
	mu      sync.Mutex
	overlay map[string]*string // nil: deleted
}

func (b *inputsBackend) Get(key []byte) ([]byte, bool, error) {
	b.mu.Lock()
	v, ok := b.overlay[string(key)]
	b.mu.Unlock()
	if ok {
		if v == nil {
			return nil, false, nil
		}
		return []byte(*v), true, nil
	}
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	d, ok := b.srv.get(b.name).data[string(key)]
	return []byte(d), ok, nil
}

func (b *inputsBackend) Set(key, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := string(value)
	b.overlay[string(key)] = &v
	return nil
}

func (b *inputsBackend) Delete(key []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.overlay[string(key)] = nil
	return nil
}

func (b *inputsBackend) DeleteRange(lo, hi []byte) error {
	return errors.New("inputsBackend: DeleteRange not supported by this test backend")
}

func (b *inputsBackend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		yield(store.Entry{}, errors.New("inputsBackend: Range not supported by this test backend"))
	}
}

func (b *inputsBackend) Write(batch *store.Batch) error {
	for _, op := range batch.Ops() {
		switch op.Kind {
		case store.OpSet:
			b.Set(op.Key, op.Value)
		case store.OpDelete:
			b.Delete(op.Key)
		default:
			return errors.New("inputsBackend: DeleteRange not supported by this test backend")
		}
	}
	return nil
}

// Flush stores the data without offsets (the runtime must not call it).
func (b *inputsBackend) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	in := b.srv.get(b.name)
	b.apply(in)
	in.plain++
	return nil
}

// apply moves the buffered writes into in. Called with both locks held.
func (b *inputsBackend) apply(in *inputsInstance) {
	for k, v := range b.overlay {
		if v == nil {
			delete(in.data, k)
		} else {
			in.data[k] = *v
		}
	}
	clear(b.overlay)
}

func (b *inputsBackend) FlushInputs(offsets store.InputOffsets) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	in := b.srv.get(b.name)
	b.apply(in)
	in.inputs = maps.Clone(offsets)
	in.flushes++
	in.history = append(in.history, inputsFlush{maps.Clone(in.data), in.inputs})
	return nil
}

func (b *inputsBackend) StoredInputs() (store.InputOffsets, error) {
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	return maps.Clone(b.srv.get(b.name).inputs), nil
}

func (b *inputsBackend) Close() error { return nil }

type rewindingInputsBackend struct{ *inputsBackend }

func (b *rewindingInputsBackend) RewindInputs(to store.InputOffsets) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	in := b.srv.get(b.name)
	for i := len(in.history) - 1; i >= 0; i-- {
		if h := in.history[i]; h.inputs.Equal(to) {
			in.data, in.inputs = maps.Clone(h.data), h.inputs
			in.history = in.history[:i+1]
			clear(b.overlay)
			in.rewinds++
			return true, nil
		}
	}
	return false, nil
}

// commitGroupOffset sets the group's committed offset of topic/0, as a crash
// between a store's flush and the offset commit leaves it (the group must
// have no member).
func commitGroupOffset(t *testing.T, brokers []string, group, topic string, at int64) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(context.Background(), group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("committing offset %d of %s for group %s: %v", at, topic, group, err)
	}
}

func unloggedInputsApp(t *testing.T, brokers []string, in, out, appID string, sup store.Supplier) (*kstreams.Topology, []kstreams.Option) {
	topo := countingTopologyOpts(t, in, out, sup, store.WithoutChangelog())
	return topo, []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(100 * time.Millisecond)}
}

// TestInputOffsetsStoredWithState: a store without changelog whose backend
// keeps input offsets is flushed, before each commit, with exactly the
// offsets committed, and never with a plain Flush.
func TestInputOffsetsStoredWithState(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	srv := newInputsServer(false)
	topo, opts := unloggedInputsApp(t, brokers, in, out, appID, srv.supplier())
	results := collect(t, brokers, out)

	a := startApp(t, topo, opts...)
	produceKeys(t, brokers, in, "r", 50)
	waitOutputs(t, results, a, "r", 50)
	waitFor(t, 30*time.Second, "offset 50 committed", func() bool { return committedOffset(t, brokers, appID, in) == 50 })
	a.app.Kill() // no graceful flush: what is committed must be in the store already
	a.wait(t)
	st := srv.state("0_0/counts")
	if want := (store.InputOffsets{in: 50}); !st.inputs.Equal(want) {
		t.Fatalf("stored input offsets %v, want %v", st.inputs, want)
	}
	if c := countsOf(t, st.data); fmt.Sprint(c) != "map[a:10 b:10 c:10 d:10 e:10]" {
		t.Fatalf("the store holds %v at input offset 50; want 10 per key", c)
	}
	if st.plain != 0 || st.flushes == 0 {
		t.Fatalf("%d FlushInputs and %d plain Flush calls; want FlushInputs only", st.flushes, st.plain)
	}
	// Every stored flush is consistent: its counts sum to its offset.
	checkFlushesConsistent(t, st, in)
}

// TestInputOffsetsResumeAheadOfCommit: a crash between the store's flush and
// the offset commit leaves the store ahead of the committed offset. The task
// must resume from the store's offsets: from the committed offset, the
// records in between would be counted twice.
func TestInputOffsetsResumeAheadOfCommit(t *testing.T) {
	t.Parallel()
	for _, txn := range []bool{false, true} {
		t.Run(fmt.Sprintf("transactions=%v", txn), func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out)
			srv := newInputsServer(false)
			topo, opts := unloggedInputsApp(t, brokers, in, out, appID, srv.supplier())
			if txn {
				opts = append(opts, kstreams.WithTransactions(), kstreams.WithStateDir(t.TempDir()))
			}
			results := collect(t, brokers, out)

			a := startApp(t, topo, opts...)
			produceKeys(t, brokers, in, "r", 50)
			waitOutputs(t, results, a, "r", 50)
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			if st := srv.state("0_0/counts"); st.inputs[in] != 50 {
				t.Fatalf("stored input offsets %v after a graceful stop; want %s@50", st.inputs, in)
			}
			commitGroupOffset(t, brokers, appID, in, 30)

			b := startApp(t, topo, opts...)
			if !txn {
				// Resumed at the store's offset, the partition is
				// committed there, no new record needed. (A transaction
				// commits offsets only of partitions it read records of.)
				waitFor(t, 30*time.Second, "offset 50 committed after the restart", func() bool { return committedOffset(t, brokers, appID, in) == 50 })
			}
			if n := countAfter(t, brokers, in, out, "a", b); n != 11 {
				t.Errorf("count of a after the restart = %d, want 11 (records 30-49 applied twice?)", n)
			}
			waitFor(t, 30*time.Second, "offset 51 committed", func() bool { return committedOffset(t, brokers, appID, in) == 51 })
			if err := b.stop(t); err != nil {
				t.Fatal(err)
			}
			if c := countsOf(t, srv.state("0_0/counts").data); fmt.Sprint(c) != "map[a:11 b:10 c:10 d:10 e:10]" {
				t.Errorf("store after the restart: %v", c)
			}
		})
	}
}

// TestInputOffsetsResumeBehindCommit: a store that lost its latest flushes
// (restored from an older copy) resumes from its own offsets, so the
// records it lacks are processed again and nothing is missing from it.
func TestInputOffsetsResumeBehindCommit(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	srv := newInputsServer(false)
	topo, opts := unloggedInputsApp(t, brokers, in, out, appID, srv.supplier())
	results := collect(t, brokers, out)

	a := startApp(t, topo, opts...)
	produceKeys(t, brokers, in, "r", 30)
	waitOutputs(t, results, a, "r", 30)
	waitFor(t, 30*time.Second, "offset 30 committed", func() bool { return committedOffset(t, brokers, appID, in) == 30 })
	old := srv.state("0_0/counts")
	produceKeys(t, brokers, in, "s", 20)
	waitOutputs(t, results, a, "s", 20)
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if !old.inputs.Equal(store.InputOffsets{in: 30}) {
		t.Fatalf("stored input offsets %v at the copy; want %s@30", old.inputs, in)
	}
	srv.set("0_0/counts", old.data, old.inputs)

	b := startApp(t, topo, opts...)
	if n := countAfter(t, brokers, in, out, "a", b); n != 11 {
		t.Errorf("count of a after the restart = %d, want 11 (records 30-49 missing from the store?)", n)
	}
}

// twoStoreTopology counts each key in two stores without changelog.
func twoStoreTopology(t *testing.T, in, out string, sup store.Supplier) *kstreams.Topology {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, sup, store.WithoutChangelog()))
	seen := kstreams.AddStore(b, store.KeyValue("seen", serde.String, serde.Int64, sup, store.WithoutChangelog()))
	src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, []byte] {
		return &twoCounter{a: counts, b: seen}
	}, kstreams.WithStores(counts, seen))
	kstreams.Sink(counted, "out", out, serde.String, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type twoCounter struct {
	a, b   kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, []byte]
	sa, sb store.KeyValueStore[string, int64]
}

func (c *twoCounter) Init(pc kstreams.ProcessorContext[string, []byte]) (err error) {
	c.pc = pc
	if c.sa, err = c.a.Get(pc); err != nil {
		return err
	}
	c.sb, err = c.b.Get(pc)
	return err
}

func (c *twoCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	var n int64
	for _, s := range []store.KeyValueStore[string, int64]{c.sa, c.sb} {
		m, _, err := s.Get(r.Key)
		if err != nil {
			return err
		}
		if err := s.Put(r.Key, m+1); err != nil {
			return err
		}
		n = m + 1
	}
	v, err := json.Marshal(countOutput{ID: r.Value, Count: n})
	if err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, v))
}

func (c *twoCounter) Close() error { return nil }

// TestInputOffsetsStoresDisagree: a crash between the flushes of a task's
// two stores leaves one ahead of the other. A store that keeps earlier
// flushes is rewound to the committed offsets (both then count every
// record once); one that cannot be rewound stops the app with an error
// naming both stores and their offsets, rather than count records twice
// in one store or miss them in the other.
func TestInputOffsetsStoresDisagree(t *testing.T) {
	t.Parallel()
	for _, rewind := range []bool{true, false} {
		t.Run(fmt.Sprintf("rewind=%v", rewind), func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out)
			srv := newInputsServer(rewind)
			topo := twoStoreTopology(t, in, out, srv.supplier())
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
				kstreams.WithCommitInterval(100 * time.Millisecond)}
			results := collect(t, brokers, out)

			a := startApp(t, topo, opts...)
			produceKeys(t, brokers, in, "r", 50)
			waitOutputs(t, results, a, "r", 50)
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			// 10 more records reached store "counts" at a commit that
			// crashed before "seen" was flushed and the offset committed.
			produceKeys(t, brokers, in, "s", 10)
			ahead := srv.state("0_0/counts").data
			for k, n := range countsOf(t, ahead) {
				v, _ := serde.StoreForm(serde.Int64).Serialize(nil, "counts", nil, n+2)
				ahead[k] = string(v)
			}
			srv.set("0_0/counts", ahead, store.InputOffsets{in: 60})

			b := startApp(t, topo, opts...)
			if !rewind {
				err := b.wait(t)
				if !errors.Is(err, store.ErrInputsDisagree) || !strings.Contains(err.Error(), "store counts at {"+in+"@60}") ||
					!strings.Contains(err.Error(), "store seen at {"+in+"@50}") {
					t.Fatalf("Run returned %v; want store.ErrInputsDisagree naming both stores and their offsets", err)
				}
				if c := committedOffset(t, brokers, appID, in); c != 50 {
					t.Errorf("committed offset %d, want 50", c)
				}
				return
			}
			waitOutputs(t, results, b, "s", 10)
			waitFor(t, 30*time.Second, "offset 60 committed", func() bool { return committedOffset(t, brokers, appID, in) == 60 })
			if err := b.stop(t); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"counts", "seen"} {
				st := srv.state("0_0/" + name)
				if c := countsOf(t, st.data); fmt.Sprint(c) != "map[a:12 b:12 c:12 d:12 e:12]" {
					t.Errorf("store %s: %v, want 12 per key", name, c)
				}
				if name == "counts" && st.rewinds != 1 {
					t.Errorf("store counts rewound %d times, want 1", st.rewinds)
				}
			}
		})
	}
}

// TestInputOffsetsSettleBeforeFlush: with acknowledgements slower than the
// gap between records, a commit round finds records processed whose
// outputs are not acknowledged yet. The store must not be flushed at that
// lower commit point while holding those records' effects (a crash would
// then apply them twice): every flush's counts sum to its offset.
func TestInputOffsetsSettleBeforeFlush(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range kreq.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == out {
				c.SleepControl(func() { time.Sleep(20 * time.Millisecond) })
				break
			}
		}
		return nil, nil, false
	})
	srv := newInputsServer(false)
	topo, opts := unloggedInputsApp(t, brokers, in, out, appID, srv.supplier())
	results := collect(t, brokers, out)
	a := startApp(t, topo, opts...)
	cl := newClient(t, brokers)
	for i := range 40 {
		recs := make([]*kgo.Record, 5)
		for j := range recs {
			n := i*5 + j
			recs[j] = &kgo.Record{Topic: in, Key: []byte{'a' + byte(n%5)}, Value: fmt.Appendf(nil, "r%d", n)}
		}
		produce(t, cl, recs...)
		time.Sleep(10 * time.Millisecond)
	}
	waitOutputs(t, results, a, "r", 200)
	waitFor(t, 30*time.Second, "offset 200 committed", func() bool { return committedOffset(t, brokers, appID, in) == 200 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	st := srv.state("0_0/counts")
	if len(st.history) < 3 {
		t.Fatalf("%d flushes: the test did not exercise commits during processing", len(st.history))
	}
	checkFlushesConsistent(t, st, in)
	if !t.Failed() {
		t.Logf("%d flushes, all consistent", len(st.history))
	}
}

// TestInputOffsetsTransactionNotCommitted: with transactions, a store
// keeping input offsets must not be flushed with offsets whose transaction
// has not committed: if that transaction then aborts (here: the instance
// dies while EndTxn hangs), the store would be ahead of the committed
// offsets with the outputs of the records in between aborted, and resuming
// from its offsets would lose those outputs for good.
func TestInputOffsetsTransactionNotCommitted(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	var hang atomic.Bool
	c.ControlKey(int16(kmsg.EndTxn), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !hang.Load() {
			return nil, nil, false
		}
		// The instance dies before its transaction ends: EndTxn never
		// takes effect.
		c.SleepControl(func() {
			for hang.Load() {
				time.Sleep(10 * time.Millisecond)
			}
		})
		resp := kreq.ResponseKind().(*kmsg.EndTxnResponse)
		resp.Version = kreq.GetVersion()
		resp.ErrorCode = kerr.InvalidProducerEpoch.Code
		return resp, nil, true
	})
	srv := newInputsServer(false)
	topo, opts := unloggedInputsApp(t, brokers, in, out, appID, srv.supplier())
	opts = append(opts, kstreams.WithTransactions(), kstreams.WithStateDir(t.TempDir())) // one transactional id for both instances
	results := collect(t, brokers, out, kgo.FetchIsolationLevel(kgo.ReadCommitted()))

	a := startApp(t, topo, opts...)
	produceKeys(t, brokers, in, "r", 20)
	waitOutputs(t, results, a, "r", 20)
	waitFor(t, 30*time.Second, "offset 20 committed", func() bool { return committedOffset(t, brokers, appID, in) == 20 })
	hang.Store(true)
	produceKeys(t, brokers, in, "s", 10)
	time.Sleep(time.Second) // several commit rounds try, and hang in EndTxn
	st := srv.state("0_0/counts")
	a.app.Kill()
	hang.Store(false)
	a.wait(t)
	if st.inputs[in] > 20 {
		t.Errorf("the store was flushed with input offsets %v while the transaction holding their outputs had not committed", st.inputs)
	}

	b := startApp(t, topo, opts...) // its producer aborts the hung transaction
	got := waitOutputs(t, results, b, "s", 10)
	if len(got) != 10 {
		t.Errorf("%d of the 10 outputs of the uncommitted transaction's records were output again", len(got))
	}
	if n := countAfter(t, brokers, in, out, "a", b); n != 7 {
		t.Errorf("count of a = %d, want 7 (30 records over 5 keys, then the probe)", n)
	}
}

// checkFlushesConsistent checks that every flush st recorded holds counts
// summing to its input offset of topic in: exactly the records below it.
func checkFlushesConsistent(t *testing.T, st inputsInstance, in string) {
	t.Helper()
	for _, h := range st.history {
		var sum int64
		for _, n := range countsOf(t, h.data) {
			sum += n
		}
		if sum != h.inputs[in] {
			t.Errorf("a flush stored counts summing to %d with input offset %d", sum, h.inputs[in])
		}
	}
}
