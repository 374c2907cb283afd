package kstreamstest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

func mustBuild(t testing.TB, b *kstreams.Builder) *kstreams.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func newDriver(t testing.TB, topo *kstreams.Topology, opts ...kstreamstest.Option) *kstreamstest.Driver {
	t.Helper()
	d, err := kstreamstest.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func readValues[K, V any](t *testing.T, out *kstreamstest.OutputTopic[K, V]) []V {
	t.Helper()
	rs, err := out.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]V, len(rs))
	for i, r := range rs {
		vs[i] = r.Value
	}
	return vs
}

func TestMergeOfTwoParents(t *testing.T) {
	b := kstreams.NewBuilder()
	left := kstreams.Source(b, "left", []string{"l"}, serde.String, serde.String)
	right := kstreams.Source(b, "right", []string{"r"}, serde.String, serde.String)
	upper := kstreams.MapValues(right, "upper", func(v string) (string, error) { return strings.ToUpper(v), nil })
	merged := kstreams.Merge("merge", left, upper)
	kstreams.Sink(merged, "out", "out", serde.String, serde.String)
	topo := mustBuild(t, b)
	d := newDriver(t, topo)

	l := kstreamstest.Input(d, "l", serde.String, serde.String)
	r := kstreamstest.Input(d, "r", serde.String, serde.String)
	for _, step := range []struct {
		in  *kstreamstest.InputTopic[string, string]
		val string
	}{{l, "a"}, {r, "b"}, {l, "c"}, {r, "d"}} {
		if err := step.in.Pipe("k", step.val); err != nil {
			t.Fatal(err)
		}
	}
	got := readValues(t, kstreamstest.Output(d, "out", serde.String, serde.String))
	if want := []string{"a", "B", "c", "D"}; !slices.Equal(got, want) {
		t.Fatalf("merged output %q, want %q", got, want)
	}
	if !strings.Contains(topo.String(), "<-- left, upper") {
		t.Fatalf("description does not show merge's two parents:\n%s", topo)
	}
}

// router forwards even numbers to the child "even" and odd ones to "odd".
type router struct {
	pc kstreams.ProcessorContext[string, int64]
}

func (p *router) Init(pc kstreams.ProcessorContext[string, int64]) error { p.pc = pc; return nil }
func (p *router) Close() error                                           { return nil }
func (p *router) Process(ctx context.Context, r kstreams.Record[string, int64]) error {
	child := "odd"
	if r.Value%2 == 0 {
		child = "even"
	}
	return p.pc.ForwardTo(ctx, child, r)
}

func TestForwardToNamedChild(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.Int64)
	routed := kstreams.Process(src, "route", func() kstreams.Processor[string, int64, string, int64] { return &router{} })
	even := kstreams.Filter(routed, "even", func(kstreams.Record[string, int64]) bool { return true })
	odd := kstreams.Filter(routed, "odd", func(kstreams.Record[string, int64]) bool { return true })
	kstreams.Sink(even, "even-out", "evens", serde.String, serde.Int64)
	kstreams.Sink(odd, "odd-out", "odds", serde.String, serde.Int64)
	d := newDriver(t, mustBuild(t, b))
	in := kstreamstest.Input(d, "in", serde.String, serde.Int64)
	for i := range int64(6) {
		if err := in.Pipe("k", i); err != nil {
			t.Fatal(err)
		}
	}
	if got := readValues(t, kstreamstest.Output(d, "evens", serde.String, serde.Int64)); !slices.Equal(got, []int64{0, 2, 4}) {
		t.Fatalf("evens = %v", got)
	}
	if got := readValues(t, kstreamstest.Output(d, "odds", serde.String, serde.Int64)); !slices.Equal(got, []int64{1, 3, 5}) {
		t.Fatalf("odds = %v", got)
	}
}

func TestForwardToUnknownChildFails(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	p := kstreams.Func(src, "bad", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		return pc.ForwardTo(ctx, "nobody", r)
	})
	kstreams.Sink(p, "out", "out", serde.String, serde.String)
	d := newDriver(t, mustBuild(t, b))
	err := kstreamstest.Input(d, "in", serde.String, serde.String).Pipe("k", "v")
	if err == nil || !strings.Contains(err.Error(), `no child named "nobody"`) {
		t.Fatalf("err = %v, want one naming the missing child", err)
	}
}

// ticker emits the number of records seen at each punctuation.
type ticker struct {
	kind     kstreams.PunctuationType
	interval time.Duration
	pc       kstreams.ProcessorContext[string, string]
	seen     int
	cancel   kstreams.Cancel
}

func (p *ticker) Init(pc kstreams.ProcessorContext[string, string]) error {
	p.pc = pc
	cancel, err := pc.Schedule(p.kind, p.interval, func(ctx context.Context, at time.Time) error {
		if p.seen >= 100 {
			p.cancel()
		}
		return pc.Forward(ctx, kstreams.Record[string, string]{Key: "tick", Value: fmt.Sprintf("%d@%s", p.seen, at.UTC().Format("15:04")), Timestamp: at})
	})
	p.cancel = cancel
	return err
}
func (p *ticker) Close() error { return nil }
func (p *ticker) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	p.seen++
	if r.Value == "stop" {
		p.seen = 100
	}
	return nil
}

func tickerTopology(t *testing.T, kind kstreams.PunctuationType) *kstreams.Topology {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	ticks := kstreams.Process(src, "tick", func() kstreams.Processor[string, string, string, string] {
		return &ticker{kind: kind, interval: time.Minute}
	})
	kstreams.Sink(ticks, "out", "ticks", serde.String, serde.String)
	return mustBuild(t, b)
}

func TestStreamTimePunctuator(t *testing.T) {
	d := newDriver(t, tickerTopology(t, kstreams.StreamTime))
	in := kstreamstest.Input(d, "in", serde.String, serde.String)
	out := kstreamstest.Output(d, "ticks", serde.String, serde.String)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{0, nil},                // anchors the schedule at 12:00
		{30 * time.Second, nil}, // not due yet
		{60 * time.Second, []string{"3@12:01"}},
		{30 * time.Second, nil}, // out-of-order record: stream time does not go back
		{4*time.Minute + 10*time.Second, []string{"5@12:04"}}, // a jump fires once
		{4*time.Minute + 50*time.Second, nil},                 // next stays on the grid: 12:05
		{5 * time.Minute, []string{"7@12:05"}},
	}
	for i, s := range steps {
		if err := in.PipeAt("k", "v", t0.Add(s.at)); err != nil {
			t.Fatal(err)
		}
		if got := readValues(t, out); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (record at +%v): ticks %q, want %q", i, s.at, got, s.want)
		}
	}
	// The wall clock does not drive stream-time punctuators.
	if err := d.AdvanceWallClock(time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, out); len(got) != 0 {
		t.Fatalf("wall clock fired a stream-time punctuator: %q", got)
	}
}

func TestWallClockPunctuatorAndCancel(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	d := newDriver(t, tickerTopology(t, kstreams.WallClockTime), kstreamstest.WithStartTime(start))
	in := kstreamstest.Input(d, "in", serde.String, serde.String)
	out := kstreamstest.Output(d, "ticks", serde.String, serde.String)
	if err := in.Pipe("k", "v"); err != nil { // creates the task: scheduled at 12:00
		t.Fatal(err)
	}
	// Records do not drive wall-clock punctuators, whatever their timestamps.
	if err := in.PipeAt("k", "v", start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, out); len(got) != 0 {
		t.Fatalf("record time fired a wall-clock punctuator: %q", got)
	}
	if err := d.AdvanceWallClock(59 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, out); len(got) != 0 {
		t.Fatalf("fired early: %q", got)
	}
	if err := d.AdvanceWallClock(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceWallClock(150 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := readValues(t, out), []string{"2@12:01", "2@12:03"}; !slices.Equal(got, want) {
		t.Fatalf("ticks %q, want %q", got, want)
	}
	// "stop" makes the next punctuation cancel the punctuator; it still fires that once.
	if err := in.Pipe("k", "stop"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := d.AdvanceWallClock(time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := readValues(t, out); len(got) != 1 {
		t.Fatalf("after cancel: ticks %q, want exactly one", got)
	}
}

func TestStoreScanOrderNegativeIntegers(t *testing.T) {
	b := kstreams.NewBuilder()
	byNumber := kstreams.AddStore(b, store.KeyValue("byNumber", serde.Int64, serde.String, memory.Supplier()))
	src := kstreams.Source(b, "src", []string{"in"}, serde.Int64, serde.String)
	kstreams.Process(src, "save", func() kstreams.Processor[int64, string, int64, string] { return &saver{store: byNumber} }, kstreams.WithStores(byNumber))
	d := newDriver(t, mustBuild(t, b))
	in := kstreamstest.Input(d, "in", serde.Int64, serde.String)
	nums := []int64{10, -3, 0, -1000, 7, -1, 1 << 50, -(1 << 50)}
	for _, n := range nums {
		if err := in.Pipe(n, fmt.Sprintf("n%d", n)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := kstreamstest.GetStore[store.KeyValueStore[int64, string]](d, "byNumber")
	if err != nil {
		t.Fatal(err)
	}
	var all []int64
	for kv, err := range st.All() {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, kv.Key)
	}
	want := slices.Sorted(slices.Values(nums))
	if !slices.Equal(all, want) {
		t.Fatalf("scan order %v, want %v", all, want)
	}
	var rng []int64
	for kv, err := range st.Range(-1000, 0) {
		if err != nil {
			t.Fatal(err)
		}
		rng = append(rng, kv.Key)
	}
	if want := []int64{-1000, -3, -1}; !slices.Equal(rng, want) {
		t.Fatalf("Range(-1000, 0) = %v, want %v", rng, want)
	}

	// Prefix scans on string keys.
	b2 := kstreams.NewBuilder()
	byName := kstreams.AddStore(b2, store.KeyValue("byName", serde.String, serde.String, memory.Supplier()))
	src2 := kstreams.Source(b2, "src", []string{"in"}, serde.String, serde.String)
	kstreams.Process(src2, "save", func() kstreams.Processor[string, string, string, string] { return &stringSaver{store: byName} }, kstreams.WithStores(byName))
	d2 := newDriver(t, mustBuild(t, b2))
	in2 := kstreamstest.Input(d2, "in", serde.String, serde.String)
	for _, k := range []string{"user/9", "item/1", "user/10", "user", "user/1", "userz"} {
		if err := in2.Pipe(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	st2, err := kstreamstest.GetStore[store.KeyValueStore[string, string]](d2, "byName")
	if err != nil {
		t.Fatal(err)
	}
	var pre []string
	for kv, err := range st2.Prefix("user/") {
		if err != nil {
			t.Fatal(err)
		}
		pre = append(pre, kv.Key)
	}
	if want := []string{"user/1", "user/10", "user/9"}; !slices.Equal(pre, want) {
		t.Fatalf("Prefix(user/) = %q, want %q", pre, want)
	}
}

type saver struct {
	store kstreams.Store[store.KeyValueStore[int64, string]]
	st    store.KeyValueStore[int64, string]
}

func (p *saver) Init(pc kstreams.ProcessorContext[int64, string]) (err error) {
	p.st, err = p.store.Get(pc)
	return err
}
func (p *saver) Close() error { return nil }
func (p *saver) Process(_ context.Context, r kstreams.Record[int64, string]) error {
	return p.st.Put(r.Key, r.Value)
}

type stringSaver struct {
	store kstreams.Store[store.KeyValueStore[string, string]]
	st    store.KeyValueStore[string, string]
}

func (p *stringSaver) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	p.st, err = p.store.Get(pc)
	return err
}
func (p *stringSaver) Close() error { return nil }
func (p *stringSaver) Process(_ context.Context, r kstreams.Record[string, string]) error {
	return p.st.Put(r.Key, r.Value)
}

// A processor can get only the stores attached to it: a handle of a store
// attached to another processor fails its Init, naming the store.
func TestStoreAccessCheckedAtInit(t *testing.T) {
	b := kstreams.NewBuilder()
	byNumber := kstreams.AddStore(b, store.KeyValue("byNumber", serde.Int64, serde.String, memory.Supplier()))
	src := kstreams.Source(b, "src", []string{"in"}, serde.Int64, serde.String)
	kstreams.Process(src, "owner", func() kstreams.Processor[int64, string, int64, string] { return &saver{store: byNumber} }, kstreams.WithStores(byNumber))
	kstreams.Process(src, "save", func() kstreams.Processor[int64, string, int64, string] { return &saver{store: byNumber} })
	d := newDriver(t, mustBuild(t, b))
	err := kstreamstest.Input(d, "in", serde.Int64, serde.String).Pipe(1, "x")
	if err == nil || !strings.Contains(err.Error(), "init") || !strings.Contains(err.Error(), `processor save: store "byNumber" is not attached`) {
		t.Fatalf("unattached store: err = %v", err)
	}
}

func TestTimestampAndHeadersReachSink(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	m := kstreams.Map(src, "len", func(r kstreams.Record[string, string]) (kstreams.Record[string, int64], error) {
		return kstreams.WithKeyValue(r, r.Key, int64(len(r.Value))), nil
	})
	kstreams.Sink(m, "out", "out", serde.String, serde.Int64)
	d := newDriver(t, mustBuild(t, b))
	ts := time.Date(2026, 7, 4, 10, 30, 0, 123_000_000, time.UTC)
	hdrs := []kstreams.Header{{Key: "trace", Value: []byte("abc")}, {Key: "empty"}}
	if err := kstreamstest.Input(d, "in", serde.String, serde.String).PipeRecord(kstreams.Record[string, string]{Key: "k", Value: "hello", Timestamp: ts, Headers: hdrs}); err != nil {
		t.Fatal(err)
	}
	rs, err := kstreamstest.Output(d, "out", serde.String, serde.Int64).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d records out, want 1", len(rs))
	}
	r := rs[0]
	if !r.Timestamp.Equal(ts) || r.Value != 5 || r.Key != "k" {
		t.Fatalf("got %+v; want timestamp %v, key k, value 5", r, ts)
	}
	if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || string(r.Headers[0].Value) != "abc" || r.Headers[1].Key != "empty" {
		t.Fatalf("headers %v, want %v", r.Headers, hdrs)
	}
}

func TestProcessorErrorNamesRecord(t *testing.T) {
	boom := errors.New("boom")
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"orders"}, serde.String, serde.Int64)
	checked := kstreams.Filter(src, "positive", func(kstreams.Record[string, int64]) bool { return true })
	failing := kstreams.Func(checked, "validate", func(ctx context.Context, pc kstreams.ProcessorContext[string, int64], r kstreams.Record[string, int64]) error {
		if r.Value < 0 {
			return boom
		}
		return pc.Forward(ctx, r)
	})
	kstreams.Sink(failing, "out", "valid", serde.String, serde.Int64)
	d := newDriver(t, mustBuild(t, b), kstreamstest.WithPartitions("orders", 3))
	in := kstreamstest.Input(d, "orders", serde.String, serde.Int64)
	for i := range 4 {
		if err := in.PipeRecord(kstreams.Record[string, int64]{Key: "a", Value: int64(i), Origin: kstreams.Origin{Partition: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	err := in.PipeRecord(kstreams.Record[string, int64]{Key: "a", Value: -1, Origin: kstreams.Origin{Partition: 2}})
	var re *kstreams.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *kstreams.RecordError", err)
	}
	if re.Topic != "orders" || re.Partition != 2 || re.Offset != 4 || re.Node != "validate" || re.Stage != kstreams.StageProcess || !errors.Is(err, boom) {
		t.Fatalf("RecordError = %+v", re)
	}
	if msg := err.Error(); !strings.Contains(msg, "orders/2@4") || !strings.Contains(msg, "validate") {
		t.Fatalf("message %q does not name topic/partition@offset and node", msg)
	}

	// A malformed value fails at the source, in the deserialize stage.
	err = in.PipeRaw([]byte("a"), []byte{1, 2, 3}, time.Time{}, 1)
	if !errors.As(err, &re) || re.Stage != kstreams.StageDeserialize || re.Node != "src" || re.Partition != 1 || re.Offset != 0 {
		t.Fatalf("bad bytes: err = %v (%+v)", err, re)
	}
	var se *serde.SizeError
	if !errors.As(err, &se) || se.Want != 8 || se.Got != 3 {
		t.Fatalf("bad bytes: cause %v, want a serde.SizeError", err)
	}
}

func TestThroughTopicFeedsNextSubtopology(t *testing.T) {
	b := kstreams.NewBuilder()
	pageCounts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	src := kstreams.Source(b, "src", []string{"clicks"}, serde.String, serde.String)
	byPage := kstreams.Map(src, "rekey", func(r kstreams.Record[string, string]) (kstreams.Record[string, string], error) {
		return kstreams.WithKeyValue(r, r.Value, r.Key), nil
	})
	kstreams.Sink(byPage, "repartition", "clicks-by-page", serde.String, serde.String)
	src2 := kstreams.Source(b, "by-page", []string{"clicks-by-page"}, serde.String, serde.String)
	counts := kstreams.Process(src2, "count", func() kstreams.Processor[string, string, string, int64] {
		return &counter{store: pageCounts}
	}, kstreams.WithStores(pageCounts))
	kstreams.Sink(counts, "out", "page-counts", serde.String, serde.Int64)
	topo := mustBuild(t, b)
	if !strings.Contains(topo.String(), "Sub-topology 1 (co-partitioned: clicks-by-page)") {
		t.Fatalf("expected two sub-topologies:\n%s", topo)
	}
	d := newDriver(t, topo, kstreamstest.WithPartitions("clicks-by-page", 4))
	in := kstreamstest.Input(d, "clicks", serde.String, serde.String)
	for _, c := range [][2]string{{"u1", "home"}, {"u2", "home"}, {"u1", "cart"}, {"u3", "home"}} {
		if err := in.Pipe(c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]int64{}
	rs, err := kstreamstest.Output(d, "page-counts", serde.String, serde.Int64).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		last[r.Key] = r.Value
	}
	if last["home"] != 3 || last["cart"] != 1 {
		t.Fatalf("counts %v", last)
	}
}

type counter struct {
	store kstreams.Store[store.KeyValueStore[string, int64]]
	pc    kstreams.ProcessorContext[string, int64]
	st    store.KeyValueStore[string, int64]
}

func (c *counter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
	c.pc = pc
	c.st, err = c.store.Get(pc)
	return err
}
func (c *counter) Close() error { return nil }
func (c *counter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.st.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.st.Put(r.Key, n); err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, n))
}
