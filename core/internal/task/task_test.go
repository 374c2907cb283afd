package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeHost records what a task asks of its host.
type fakeHost struct {
	mu       sync.Mutex
	now      time.Time
	emitted  []*kgo.Record
	opened   []store.BackendContext
	backends []*closeCounting
	failOpen string // store whose OpenStore fails
}

func (h *fakeHost) Emit(_ context.Context, r *kgo.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.emitted = append(h.emitted, r)
	return nil
}

func (h *fakeHost) Partitions(topic string) (int32, error) {
	if topic == "missing" {
		return 0, errors.New("no such topic")
	}
	return int32(len(topic)), nil
}

func (h *fakeHost) OpenStore(spec *store.Spec, bctx store.BackendContext) (store.Backend, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if spec.Name() == h.failOpen {
		return nil, errors.New("disk full")
	}
	h.opened = append(h.opened, bctx)
	b := &closeCounting{Backend: memory.New()}
	h.backends = append(h.backends, b)
	return b, nil
}

func (h *fakeHost) StoreTopic(spec *store.Spec) string { return "app-" + spec.Name() + "-changelog" }
func (h *fakeHost) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}
func (h *fakeHost) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type closeCounting struct {
	*memory.Backend
	closes int
}

func (b *closeCounting) Close() error {
	b.closes++
	return b.Backend.Close()
}

// fakeInstance runs records through fn.
type fakeInstance struct {
	fn     func(ctx context.Context, r *kgo.Record) error
	closes int
	err    error // returned by Close
}

func (f *fakeInstance) Process(ctx context.Context, r *kgo.Record) error { return f.fn(ctx, r) }
func (f *fakeInstance) ProcessBatch(ctx context.Context, rs []*kgo.Record) error {
	for _, r := range rs {
		if err := f.fn(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
func (f *fakeInstance) Close() error { f.closes++; return f.err }

func kvSpec(name string) *store.Spec {
	return store.KeyValue(name, serde.String, serde.Int64, memory.Supplier()).Spec
}

// newSub returns a sub-topology with stores named names whose instance is
// inst; env receives the task's graph.Env.
func newSub(inst *fakeInstance, env *graph.Env, names ...string) *graph.Subtopology {
	sub := &graph.Subtopology{ID: 2, SourceTopics: []string{"in"}}
	for _, n := range names {
		sub.Stores = append(sub.Stores, kvSpec(n))
	}
	sub.New = func(e graph.Env) (graph.Instance, error) {
		if env != nil {
			*env = e
		}
		if inst == nil {
			return nil, errors.New("bad processor")
		}
		return inst, nil
	}
	return sub
}

func nop(context.Context, *kgo.Record) error { return nil }

func TestNewOpensStoresInOrder(t *testing.T) {
	h := &fakeHost{}
	var env graph.Env
	tk, err := New(newSub(&fakeInstance{fn: nop}, &env, "b", "a"), 3, h, Options{
		StoreDir: func(s *store.Spec) (string, error) { return "/state/2_3/" + s.Name(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	if tk.ID() != (graph.TaskID{Subtopology: 2, Partition: 3}) || env.TaskID() != tk.ID() {
		t.Fatalf("task id %v, env's %v", tk.ID(), env.TaskID())
	}
	if len(h.opened) != 2 {
		t.Fatalf("opened %d stores, want 2", len(h.opened))
	}
	for i, want := range []string{"b", "a"} {
		o := h.opened[i]
		if o.Store != want || o.Task != "2_3" || o.Partition != 3 || o.Dir != "/state/2_3/"+want {
			t.Errorf("store %d opened with %+v; want %s of task 2_3 in /state/2_3/%s", i, o, want, want)
		}
		if got := tk.Stores()[i].Spec.Name(); got != want {
			t.Errorf("Stores()[%d] = %s, want %s (declaration order)", i, got, want)
		}
	}
	typed, err := env.Store("a")
	if err != nil {
		t.Fatal(err)
	}
	kv, ok := typed.(store.KeyValueStore[string, int64])
	if !ok {
		t.Fatalf("Store(a) is a %T, want the typed key-value store", typed)
	}
	if err := kv.Put("x", 7); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := kv.Get("x"); err != nil || !ok || v != 7 {
		t.Fatalf("typed store over the host's backend: %v, %v, %v", v, ok, err)
	}
	if _, err := env.Store("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Store of an unknown name: %v", err)
	}
}

func TestNewClosesWhatItOpenedOnError(t *testing.T) {
	t.Run("a store fails to open", func(t *testing.T) {
		h := &fakeHost{failOpen: "second"}
		inst := &fakeInstance{fn: nop}
		_, err := New(newSub(inst, nil, "first", "second", "third"), 0, h, Options{})
		if err == nil || !strings.Contains(err.Error(), "task 2_0: opening store second: disk full") {
			t.Fatalf("New = %v; want the store's error with task and store named", err)
		}
		if len(h.backends) != 1 || h.backends[0].closes != 1 {
			t.Fatalf("%d stores opened, first closed %d times; want 1, closed once", len(h.backends), h.backends[0].closes)
		}
	})
	t.Run("the processors fail to initialize", func(t *testing.T) {
		h := &fakeHost{}
		_, err := New(newSub(nil, nil, "s"), 1, h, Options{})
		if err == nil || !strings.Contains(err.Error(), "initializing processors: bad processor") {
			t.Fatalf("New = %v", err)
		}
		if h.backends[0].closes != 1 {
			t.Fatalf("store closed %d times, want 1", h.backends[0].closes)
		}
	})
	t.Run("no directory for a store", func(t *testing.T) {
		h := &fakeHost{}
		_, err := New(newSub(&fakeInstance{fn: nop}, nil, "s"), 1, h, Options{
			StoreDir: func(*store.Spec) (string, error) { return "", errors.New("read-only file system") },
		})
		if err == nil || !strings.Contains(err.Error(), "store s: read-only file system") || len(h.opened) != 0 {
			t.Fatalf("New = %v, %d stores opened", err, len(h.opened))
		}
	})
}

func TestProcessAttributesErrors(t *testing.T) {
	boom := errors.New("boom")
	inst := &fakeInstance{fn: func(_ context.Context, r *kgo.Record) error {
		switch string(r.Value) {
		case "node":
			return graph.WrapNode("count", graph.StageProcess, boom)
		case "decode":
			return graph.WrapNode("src", graph.StageDeserialize, boom)
		case "bare":
			return boom
		}
		return nil
	}}
	tk, err := New(newSub(inst, nil), 4, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	rec := func(v string) *kgo.Record {
		return &kgo.Record{Topic: "in", Partition: 4, Offset: 17, Value: []byte(v)}
	}
	if err := tk.Process(context.Background(), rec("ok")); err != nil {
		t.Fatalf("Process = %v", err)
	}
	for _, tc := range []struct {
		value, node string
		stage       graph.Stage
	}{{"node", "count", graph.StageProcess}, {"decode", "src", graph.StageDeserialize}, {"bare", "", graph.StageProcess}} {
		err := tk.Process(context.Background(), rec(tc.value))
		var re *graph.RecordError
		if !errors.As(err, &re) || re.Topic != "in" || re.Partition != 4 || re.Offset != 17 || re.Node != tc.node || re.Stage != tc.stage || !errors.Is(err, boom) {
			t.Errorf("Process(%s) = %#v; want a RecordError for in/4@17, node %q, stage %v, wrapping boom", tc.value, err, tc.node, tc.stage)
		}
	}
}

func TestEmitAndPartitionsGoToTheHost(t *testing.T) {
	h := &fakeHost{}
	var env graph.Env
	tk, err := New(newSub(&fakeInstance{fn: nop}, &env), 0, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	r := &kgo.Record{Topic: "out", Value: []byte("v")}
	if err := env.Emit(context.Background(), r); err != nil || len(h.emitted) != 1 || h.emitted[0] != r {
		t.Fatalf("Emit: %v, host got %v", err, h.emitted)
	}
	if n, err := env.Partitions("abcd"); err != nil || n != 4 {
		t.Fatalf("Partitions(abcd) = %d, %v", n, err)
	}
	if _, err := env.Partitions("missing"); err == nil {
		t.Fatal("Partitions of a missing topic: no error")
	}
}

func TestStreamTimeOnlyAdvances(t *testing.T) {
	tk, err := New(newSub(&fakeInstance{fn: nop}, nil), 0, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	if !tk.StreamTime().IsZero() {
		t.Fatalf("stream time before any record: %v", tk.StreamTime())
	}
	base := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				tk.ObserveTimestamp(base.Add(time.Duration((i*8+g)%5000) * time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if want := base.Add(4999 * time.Millisecond); !tk.StreamTime().Equal(want) {
		t.Fatalf("stream time %v after concurrent observations, want the greatest, %v", tk.StreamTime(), want)
	}
	tk.ObserveTimestamp(base)
	if want := base.Add(4999 * time.Millisecond); !tk.StreamTime().Equal(want) {
		t.Fatalf("an earlier timestamp moved stream time back to %v", tk.StreamTime())
	}
}

func TestStreamTimePunctuation(t *testing.T) {
	var tk *Task
	var env graph.Env
	inst := &fakeInstance{}
	inst.fn = func(ctx context.Context, r *kgo.Record) error {
		ts, _ := time.Parse(time.RFC3339, string(r.Value))
		env.ObserveTimestamp(ts)
		return nil
	}
	tk, err := New(newSub(inst, &env), 0, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	var fired []string
	cancel, err := env.Schedule(graph.StreamTime, 10*time.Second, func(ctx context.Context, at time.Time) error {
		fired = append(fired, at.UTC().Format("15:04:05"))
		// Forwarding from a punctuator runs records through the task
		// again: that must not fire punctuators re-entrantly.
		return tk.punctuate(ctx, graph.StreamTime, at.Add(time.Hour).UnixNano())
	})
	if err != nil {
		t.Fatal(err)
	}
	process := func(ts string) {
		t.Helper()
		if err := tk.Process(context.Background(), &kgo.Record{Value: []byte("2026-03-29T" + ts + "Z")}); err != nil {
			t.Fatalf("Process(%s): %v", ts, err)
		}
	}
	process("00:00:05") // scheduled before stream time was known: anchored at 00:00:15
	process("00:00:14")
	if len(fired) != 0 {
		t.Fatalf("fired at %v before the first interval passed", fired)
	}
	process("00:00:15")
	process("00:00:47") // jumps over 00:00:25, 00:00:35 and 00:00:45: fires once
	process("00:00:50")
	process("00:00:55") // the grid: 00:00:55
	if want := []string{"00:00:15", "00:00:47", "00:00:55"}; strings.Join(fired, " ") != strings.Join(want, " ") {
		t.Fatalf("fired at %v, want %v", fired, want)
	}
	cancel()
	process("00:01:30")
	if len(fired) != 3 {
		t.Fatalf("a canceled punctuator fired: %v", fired)
	}

	// A failing punctuator fails the record that made it due, naming it.
	if _, err := env.Schedule(graph.StreamTime, time.Second, func(context.Context, time.Time) error { return errors.New("flush failed") }); err != nil {
		t.Fatal(err)
	}
	// Scheduled once stream time is known (00:01:30): due at 00:01:31.
	err = tk.Process(context.Background(), &kgo.Record{Value: []byte("2026-03-29T00:01:31Z")})
	if err == nil || !strings.Contains(err.Error(), "task 2_0: stream-time punctuator") || !strings.Contains(err.Error(), "flush failed") {
		t.Fatalf("Process with a failing punctuator = %v", err)
	}
}

func TestWallClockPunctuation(t *testing.T) {
	h := &fakeHost{now: time.Unix(1000, 0)}
	var env graph.Env
	tk, err := New(newSub(&fakeInstance{fn: nop}, &env), 0, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tk.WallClockDue(time.Unix(5000, 0)) {
		t.Fatal("due with no punctuator scheduled")
	}
	var fired []int64
	if _, err := env.Schedule(graph.WallClockTime, time.Minute, func(_ context.Context, at time.Time) error {
		fired = append(fired, at.Unix())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if tk.WallClockDue(time.Unix(1059, 0)) {
		t.Fatal("due before now + interval")
	}
	if !tk.WallClockDue(time.Unix(1060, 0)) {
		t.Fatal("not due at now + interval")
	}
	for _, now := range []int64{1060, 1070, 1300, 1310} {
		if err := tk.PunctuateWallClock(context.Background(), time.Unix(now, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// 1060 fires; 1070 is before 1120; 1300 fires once for 1120..1300 and
	// the next firing is at 1360.
	if fmt.Sprint(fired) != "[1060 1300]" {
		t.Fatalf("fired at %v, want [1060 1300]", fired)
	}
	// Stream time does not fire wall-clock punctuators.
	tk.ObserveTimestamp(time.Unix(9999, 0))
	if err := tk.Process(context.Background(), &kgo.Record{}); err != nil || len(fired) != 2 {
		t.Fatalf("processing a record fired a wall-clock punctuator: %v, %v", fired, err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
	if tk.WallClockDue(time.Unix(1_000_000, 0)) {
		t.Fatal("a closed task has punctuators due")
	}
}

func TestScheduleRejectsBadArguments(t *testing.T) {
	var env graph.Env
	tk, err := New(newSub(&fakeInstance{fn: nop}, &env), 0, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	noop := func(context.Context, time.Time) error { return nil }
	if _, err := env.Schedule(graph.StreamTime, 0, noop); err == nil {
		t.Error("a zero interval was accepted")
	}
	if _, err := env.Schedule(graph.WallClockTime, -time.Second, noop); err == nil {
		t.Error("a negative interval was accepted")
	}
	if _, err := env.Schedule(graph.PunctuationType(9), time.Second, noop); err == nil {
		t.Error("an unknown punctuation type was accepted")
	}
}

func TestCloseClosesOnceAndJoinsErrors(t *testing.T) {
	h := &fakeHost{}
	inst := &fakeInstance{fn: nop, err: errors.New("processor close failed")}
	tk, err := New(newSub(inst, nil, "a", "b"), 5, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = tk.Close()
	if err == nil || !strings.Contains(err.Error(), "task 2_5: closing processors: processor close failed") {
		t.Fatalf("Close = %v", err)
	}
	if err := tk.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if inst.closes != 1 {
		t.Fatalf("processors closed %d times, want 1", inst.closes)
	}
	for i, b := range h.backends {
		if b.closes != 1 {
			t.Fatalf("store %d closed %d times, want 1", i, b.closes)
		}
	}
}
