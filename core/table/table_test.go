package table_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lookup is a processor that reads a table: for each key it receives it
// forwards the table's value, or "-" when the table lacks the key.
type lookup struct {
	t    table.Table[string, int64]
	rows table.Reader[string, int64]
	pc   kstreams.ProcessorContext[string, string]
}

func (l *lookup) Init(pc kstreams.ProcessorContext[string, string]) (err error) {
	l.pc = pc
	l.rows, err = l.t.Reader(pc)
	return err
}

func (l *lookup) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	row, ok, err := l.rows.GetRow(r.Key)
	if err != nil {
		return err
	}
	v := "-"
	if ok {
		v = fmt.Sprintf("%d@%s", row.Value, row.Timestamp.Format("15:04"))
	}
	return l.pc.Forward(ctx, kstreams.WithValue(r, v))
}

func (l *lookup) Close() error { return nil }

func TestFromTopic(t *testing.T) {
	b := kstreams.NewBuilder()
	prices := table.FromTopic(b, "prices", "prices", serde.String, serde.Int64, memory.Supplier())
	kstreams.Sink(prices.Updates(), "updates", "price-updates", serde.String, table.Nullable(serde.Int64))
	queries := kstreams.Source(b, "queries", []string{"queries"}, serde.String, serde.String)
	looked := kstreams.Process(queries, "lookup", func() kstreams.Processor[string, string, string, string] {
		return &lookup{t: prices}
	}, kstreams.WithStores(prices.Store()))
	kstreams.Sink(looked, "answers", "answers", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "prices", serde.String, table.Nullable(serde.Int64))
	q := kstreamstest.Input(d, "queries", serde.String, serde.String)
	p := func(n int64) *int64 { return &n }
	steps := []struct {
		key   string
		value *int64
		at    time.Duration
	}{
		{"apple", p(3), 0},
		{"pear", p(5), time.Minute},
		{"apple", p(4), 2 * time.Minute},
		{"pear", nil, 3 * time.Minute}, // deletes pear
		{"plum", nil, 4 * time.Minute}, // a tombstone of a key never held
		{"fig", p(0), 5 * time.Minute}, // a zero value is a value
		{"apple", p(2), -time.Minute},  // out of order: the table takes it as it comes
	}
	for _, s := range steps {
		if err := in.PipeAt(s.key, s.value, t0.Add(s.at)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"apple", "pear", "plum", "fig"} {
		if err := q.PipeAt(k, "?", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := kstreamstest.Output(d, "answers", serde.String, serde.String).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, r := range got {
		answers = append(answers, r.Key+"="+r.Value)
	}
	if want := "apple=2@11:59 pear=- plum=- fig=0@12:05"; strings.Join(answers, " ") != want {
		t.Errorf("lookups: %s, want %s", strings.Join(answers, " "), want)
	}
	raw := kstreamstest.Output(d, "price-updates", serde.String, serde.Bytes).ReadRaw()
	var ups []string
	for _, r := range raw {
		v := "null"
		if r.Value != nil {
			n, err := serde.Int64.Deserialize("", nil, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			v = fmt.Sprint(n)
		}
		ups = append(ups, string(r.Key)+"="+v)
	}
	if want := "apple=3 pear=5 apple=4 pear=null plum=null fig=0 apple=2"; strings.Join(ups, " ") != want {
		t.Errorf("updates: %s, want %s", strings.Join(ups, " "), want)
	}
	kv, err := kstreamstest.GetStore[store.KeyValueStore[string, table.Row[int64]]](d, "prices")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := kv.Get("pear"); ok || err != nil {
		t.Errorf("pear is still in the store (%v)", err)
	}
}

func TestFromStreamAndChanges(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "events", []string{"events"}, serde.String, serde.String)
	latest := table.FromStream(src, "latest", serde.String, serde.String, memory.Supplier())
	var changes []string
	kstreams.ForEach(latest.Changes(), "watch", func(r kstreams.Record[string, table.Change[string]]) error {
		str := func(p *string) string {
			if p == nil {
				return "nil"
			}
			return *p
		}
		changes = append(changes, fmt.Sprintf("%s:%s->%s", r.Key, str(r.Value.Old), str(r.Value.New)))
		return nil
	})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "events", serde.Bytes, serde.Bytes)
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}} {
		if err := in.PipeAt([]byte(kv[0]), []byte(kv[1]), t0); err != nil {
			t.Fatal(err)
		}
	}
	// A stream has no tombstones: a null value is the empty string, a value.
	if err := in.PipeRaw([]byte("b"), nil, t0, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(changes, " "), "a:nil->1 b:nil->2 a:1->3 b:2->"; got != want {
		t.Errorf("changes %s, want %s", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "events", []string{"events"}, serde.String, serde.String)
	table.FromStream(src, "t", nil, serde.String, memory.Supplier())
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "table t: nil key or value serde") {
		t.Errorf("Build with a nil serde: %v", err)
	}
	// A zero Table's store is a zero handle: reading it is a Build error.
	b = kstreams.NewBuilder()
	src = kstreams.Source(b, "events", []string{"events"}, serde.String, serde.String)
	var zero table.Table[string, int64]
	kstreams.Process(src, "lookup", func() kstreams.Processor[string, string, string, string] {
		return &lookup{t: zero}
	}, kstreams.WithStores(zero.Store()))
	if _, err := b.Build(); err == nil {
		t.Error("Build with a zero Table's store: no error")
	}
}

func TestSerdes(t *testing.T) {
	rs := table.RowSerde(serde.String)
	row := table.Row[string]{Value: "hello", Timestamp: t0.Add(123 * time.Nanosecond)}
	data, err := rs.Serialize(nil, "t", nil, row)
	if err != nil {
		t.Fatal(err)
	}
	back, err := rs.Deserialize("t", nil, data)
	if err != nil || back != row {
		t.Fatalf("row %v read back as %v (%v)", row, back, err)
	}
	if _, err := rs.Deserialize("t", nil, []byte{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "8-byte timestamp") {
		t.Errorf("a 3-byte row: %v", err)
	}
	ns := table.Nullable(serde.String)
	if b, err := ns.Serialize(nil, "t", nil, nil); b != nil || err != nil {
		t.Errorf("nil encodes as %v, %v; want a Kafka null", b, err)
	}
	empty := ""
	if b, err := ns.Serialize(nil, "t", nil, &empty); b == nil || len(b) != 0 || err != nil {
		t.Errorf("an empty string encodes as %v, %v; want an empty, non-null value", b, err)
	}
	if v, err := ns.Deserialize("t", nil, nil); v != nil || err != nil {
		t.Errorf("a null decodes as %v, %v", v, err)
	}
	if v, err := ns.Deserialize("t", nil, []byte{}); v == nil || *v != "" || err != nil {
		t.Errorf("an empty value decodes as %v, %v", v, err)
	}
}

func FuzzRowSerde(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add([]byte{1})
	rs := table.RowSerde(serde.Int64)
	f.Fuzz(func(t *testing.T, data []byte) {
		row, err := rs.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		again, err := rs.Serialize(nil, "t", nil, row)
		if err != nil {
			t.Fatal(err)
		}
		back, err := rs.Deserialize("t", nil, again)
		if err != nil || back != row {
			t.Fatalf("%v re-encoded reads back as %v (%v)", row, back, err)
		}
	})
}

// A table read from a topic restores from that topic up to the committed
// offset, which needs its sub-topology to process records in partition
// order; a store restored from a topic its sub-topology does not read is
// refused too. Both are Build errors naming the store.
func TestSourceChangelogNeedsPartitionOrder(t *testing.T) {
	b := kstreams.NewBuilder()
	users := table.FromTopic(b, "users", "users", serde.String, serde.String, memory.Supplier())
	kstreams.Func(users.Updates(), "slow", func(ctx context.Context, pc kstreams.ProcessorContext[string, *string], r kstreams.Record[string, *string]) error {
		return pc.Forward(ctx, r)
	}, kstreams.WithOrdering(kstreams.KeyOrder))
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), `store "users" is restored from its source topic "users"`) || !strings.Contains(err.Error(), "partition order") {
		t.Errorf("Build = %v, want an error saying store users needs partition order", err)
	}

	b = kstreams.NewBuilder()
	st := kstreams.AddStore(b, store.KeyValue("elsewhere", serde.String, serde.String, memory.Supplier(),
		store.WithSourceChangelog("other", func(any, []byte, []byte, []serde.Header, time.Time) error { return nil })))
	src := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	kstreams.Func(src, "use", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		return nil
	}, kstreams.WithStores(st))
	_, err = b.Build()
	if err == nil || !strings.Contains(err.Error(), `store "elsewhere" is restored from topic "other"`) {
		t.Errorf("Build = %v, want an error saying store elsewhere's source topic is not read", err)
	}
}
