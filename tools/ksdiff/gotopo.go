package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
	"github.com/kstreams-go/kstreams/core/window"
)

// Keys are read as strings; values as bytes, so that a null value (a
// tombstone) stays nil. Outputs are written as text, formatted as the Java
// side formats them.

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// windowedKey formats a window key as the Java side does: key@start/end in
// Unix milliseconds.
func windowedKey(k window.Key[string]) string {
	return k.Key + "@" + strconv.FormatInt(k.Window.Start.UnixMilli(), 10) + "/" + strconv.FormatInt(k.Window.End.UnixMilli(), 10)
}

// appendValue is the aggregate of the "agg" topologies: every value in
// order, "~" for a null.
func appendValue(_ string, v []byte, agg string) (string, error) {
	if v == nil {
		return agg + "~;", nil
	}
	return agg + string(v) + ";", nil
}

// buildGo adds c's topology to b and returns its output topics, in the
// order the Java side reads them.
func buildGo(b *kstreams.Builder, c *testCase) ([]string, error) {
	switch name := c.topology; name {
	case "count", "count-final", "count-onclose", "agg", "agg-final", "agg-onclose":
		w := window.Hopping(ms(c.param("size")), ms(c.param("advance"))).Grace(ms(c.param("grace")))
		var opts []window.Option
		if !strings.HasSuffix(name, "-final") && !strings.HasSuffix(name, "-onclose") {
			opts = append(opts, window.EmitOnUpdate())
		} else {
			opts = append(opts, window.EmitFinal())
		}
		in := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.Bytes)
		var out kstreams.Node[string, []byte]
		if strings.HasPrefix(name, "count") {
			st := window.NewStore("counts", w, serde.String, serde.Int64, memory.Supplier())
			counts := window.Count(in, "count", st, opts...)
			out = kstreams.Map(counts, "format", func(r kstreams.Record[window.Key[string], int64]) (kstreams.Record[string, []byte], error) {
				return kstreams.Record[string, []byte]{Key: windowedKey(r.Key), Value: []byte(strconv.FormatInt(r.Value, 10)), Timestamp: r.Timestamp}, nil
			})
		} else {
			st := window.NewStore("aggs", w, serde.String, serde.String, memory.Supplier())
			aggs := window.Aggregate(in, "agg", st, func() string { return "" }, appendValue, window.Identity[string, string], opts...)
			out = kstreams.Map(aggs, "format", func(r kstreams.Record[window.Key[string], string]) (kstreams.Record[string, []byte], error) {
				return kstreams.Record[string, []byte]{Key: windowedKey(r.Key), Value: []byte(r.Value), Timestamp: r.Timestamp}, nil
			})
		}
		kstreams.Sink(out, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "stream-count", "stream-agg", "stream-reduce":
		// Kafka Streams drops null values before these aggregations (not
		// before windowed ones); kstreams has no null values.
		in := kstreams.Filter(kstreams.Source(b, "in", []string{"in"}, serde.String, serde.Bytes), "drop-nulls",
			func(r kstreams.Record[string, []byte]) bool { return r.Value != nil })
		var out kstreams.Node[string, []byte]
		switch name {
		case "stream-count":
			t := table.Count(in, "count", serde.String, memory.Supplier())
			out = kstreams.MapValues(t.Updates(), "format", func(n *int64) ([]byte, error) { return []byte(strconv.FormatInt(*n, 10)), nil })
		case "stream-agg":
			t := table.Aggregate(in, "agg", serde.String, serde.String, memory.Supplier(), func() string { return "" }, appendValue)
			out = kstreams.MapValues(t.Updates(), "format", func(s *string) ([]byte, error) { return []byte(*s), nil })
		default:
			t := table.Reduce(in, "reduce", serde.String, serde.Bytes, memory.Supplier(), func(_ string, agg, v []byte) ([]byte, error) {
				if v == nil {
					v = []byte("~")
				}
				return append(append(append([]byte{}, agg...), ','), v...), nil
			})
			out = kstreams.MapValues(t.Updates(), "format", func(b *[]byte) ([]byte, error) { return *b, nil })
		}
		kstreams.Sink(out, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "table-count", "table-agg", "table-reduce":
		t := table.FromTopic(b, "tbl", "in", serde.String, serde.Bytes, memory.Supplier())
		byValue := table.GroupBy(t, "by-value", "by-value", 1, serde.String, serde.String,
			func(k string, v []byte) (string, string, error) { return string(v), k, nil })
		var out kstreams.Node[string, []byte]
		switch name {
		case "table-count":
			n := table.CountGroups(byValue, "count", memory.Supplier())
			out = kstreams.MapValues(n.Updates(), "format", func(n *int64) ([]byte, error) { return []byte(strconv.FormatInt(*n, 10)), nil })
		case "table-reduce":
			r := table.ReduceGroups(byValue, "reduce", memory.Supplier(),
				func(_ string, agg, k string) (string, error) { return agg + "+" + k, nil },
				func(_ string, agg, k string) (string, error) { return agg + "-" + k, nil })
			out = kstreams.MapValues(r.Updates(), "format", func(s *string) ([]byte, error) {
				if s == nil {
					return nil, nil // a value leaving a group that has no aggregate: a tombstone
				}
				return []byte(*s), nil
			})
		default:
			a := table.AggregateGroups(byValue, "agg", serde.String, memory.Supplier(), func() string { return "" },
				func(_ string, k, agg string) (string, error) { return agg + "+" + k, nil },
				func(_ string, k, agg string) (string, error) { return agg + "-" + k, nil })
			out = kstreams.MapValues(a.Updates(), "format", func(s *string) ([]byte, error) { return []byte(*s), nil })
		}
		kstreams.Sink(out, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "table":
		t := table.FromTopic(b, "tbl", "in", serde.String, serde.Bytes, memory.Supplier())
		kstreams.Sink(t.Updates(), "out", "out", serde.String, table.Nullable(serde.Bytes))
		return []string{"out"}, nil
	case "stream-table", "stream-table-left":
		// Kafka Streams drops stream records with a null value before a
		// stream-table join; kstreams has no null for typed values (a
		// tombstone decodes as the zero value, here a nil slice), so the
		// topology drops them itself (docs/joins.md).
		s := kstreams.Filter(kstreams.Source(b, "stream", []string{"stream"}, serde.String, serde.Bytes), "drop-nulls",
			func(r kstreams.Record[string, []byte]) bool { return r.Value != nil })
		t := table.FromTopic(b, "tbl", "table", serde.String, serde.Bytes, memory.Supplier())
		var j kstreams.Node[string, []byte]
		if name == "stream-table" {
			j = join.StreamTable(s, t, "join", func(_ string, v, row []byte) ([]byte, error) { return joined(&v, &row), nil })
		} else {
			j = join.StreamTableLeft(s, t, "join", func(_ string, v []byte, row *[]byte) ([]byte, error) { return joined(&v, row), nil })
		}
		kstreams.Sink(j, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "stream-global", "stream-global-left":
		// The stream's value vD looks up the global table's key k0D; null
		// values are dropped as for stream-table.
		s := kstreams.Filter(kstreams.Source(b, "stream", []string{"stream"}, serde.String, serde.Bytes), "drop-nulls",
			func(r kstreams.Record[string, []byte]) bool { return r.Value != nil })
		g := table.Global(b, "glob", "global", serde.String, serde.Bytes, memory.Supplier())
		keyOf := func(_ string, v []byte) (string, error) { return "k0" + string(v[1:]), nil }
		var j kstreams.Node[string, []byte]
		if name == "stream-global" {
			j = join.StreamGlobalTable(s, g, "join", keyOf, func(_ string, v, row []byte) ([]byte, error) { return joined(&v, &row), nil })
		} else {
			j = join.StreamGlobalTableLeft(s, g, "join", keyOf, func(_ string, v []byte, row *[]byte) ([]byte, error) { return joined(&v, row), nil })
		}
		kstreams.Sink(j, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "stream-stream", "stream-stream-left", "stream-stream-outer":
		// Kafka Streams drops null values before the join (see stream-table).
		dropNulls := func(r kstreams.Record[string, []byte]) bool { return r.Value != nil }
		l := kstreams.Filter(kstreams.Source(b, "left", []string{"left"}, serde.String, serde.Bytes), "left-nulls", dropNulls)
		r := kstreams.Filter(kstreams.Source(b, "right", []string{"right"}, serde.String, serde.Bytes), "right-nulls", dropNulls)
		w := join.Within(ms(c.param("diff"))).Grace(ms(c.param("grace")))
		st := join.Stores(serde.String, serde.Bytes, serde.Bytes, memory.Supplier())
		var j kstreams.Node[string, []byte]
		switch name {
		case "stream-stream":
			j = join.StreamStream(l, r, "join", w, st, func(_ string, lv, rv []byte) ([]byte, error) { return joined(&lv, &rv), nil })
		case "stream-stream-left":
			j = join.StreamStreamLeft(l, r, "join", w, st, func(_ string, lv []byte, rv *[]byte) ([]byte, error) { return joined(&lv, rv), nil })
		default:
			j = join.StreamStreamOuter(l, r, "join", w, st, func(_ string, lv, rv *[]byte) ([]byte, error) { return joined(lv, rv), nil })
		}
		kstreams.Sink(j, "out", "out", serde.String, serde.Bytes)
		return []string{"out"}, nil
	case "fk", "fk-left":
		// A left value vD refers to the right table's key k0D.
		l := table.FromTopic(b, "l", "left", serde.String, serde.Bytes, memory.Supplier())
		r := table.FromTopic(b, "r", "right", serde.String, serde.Bytes, memory.Supplier())
		fk := func(_ string, v []byte) (string, error) { return "k0" + string(v[1:]), nil }
		topics := join.ForeignKeyTopics{Subscription: "fk-subscription", SubscriptionPartitions: 1, Response: "fk-response", ResponsePartitions: 1}
		var j kstreams.Node[string, *[]byte]
		if name == "fk" {
			j = join.ForeignKey(l, r, "join", fk, func(_ string, lv, rv []byte) ([]byte, error) { return joined(&lv, &rv), nil }, topics, memory.Supplier())
		} else {
			j = join.ForeignKeyLeft(l, r, "join", fk, func(_ string, lv []byte, rv *[]byte) ([]byte, error) { return joined(&lv, rv), nil }, topics, memory.Supplier())
		}
		kstreams.Sink(j, "out", "out", serde.String, table.Nullable(serde.Bytes))
		return []string{"out"}, nil
	case "table-table", "table-table-left", "table-table-outer":
		l := table.FromTopic(b, "l", "left", serde.String, serde.Bytes, memory.Supplier())
		r := table.FromTopic(b, "r", "right", serde.String, serde.Bytes, memory.Supplier())
		var j kstreams.Node[string, *[]byte]
		switch name {
		case "table-table":
			j = join.TableTable(l, r, "join", func(_ string, lv, rv []byte) ([]byte, error) { return joined(&lv, &rv), nil })
		case "table-table-left":
			j = join.TableTableLeft(l, r, "join", func(_ string, lv []byte, rv *[]byte) ([]byte, error) { return joined(&lv, rv), nil })
		default:
			j = join.TableTableOuter(l, r, "join", func(_ string, lv, rv *[]byte) ([]byte, error) { return joined(lv, rv), nil })
		}
		kstreams.Sink(j, "out", "out", serde.String, table.Nullable(serde.Bytes))
		return []string{"out"}, nil
	}
	return nil, fmt.Errorf("unknown topology %q", c.topology)
}

// runGo runs c in kstreamstest and returns its outputs, read after each
// input record as the Java side reads them.
func runGo(c *testCase) ([]output, error) {
	b := kstreams.NewBuilder()
	topics, err := buildGo(b, c)
	if err != nil {
		return nil, err
	}
	topo, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building the topology: %w", err)
	}
	d, err := kstreamstest.New(topo, kstreamstest.WithStartTime(time.UnixMilli(0)))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	inputs := map[string]*kstreamstest.InputTopic[[]byte, []byte]{}
	outs := make([]*kstreamstest.OutputTopic[[]byte, []byte], len(topics))
	for i, t := range topics {
		outs[i] = kstreamstest.Output(d, t, serde.Bytes, serde.Bytes)
	}
	var res []output
	for i, in := range c.inputs {
		t := inputs[in.topic]
		if t == nil {
			t = kstreamstest.Input(d, in.topic, serde.Bytes, serde.Bytes)
			inputs[in.topic] = t
		}
		if err := t.PipeRaw(bytesOf(in.key), bytesOf(in.value), time.UnixMilli(in.ts), 0); err != nil {
			return res, fmt.Errorf("input %d (%v): %w", i, in, err)
		}
		for j, o := range outs {
			rs, err := o.ReadAll()
			if err != nil {
				return res, err
			}
			for _, r := range rs {
				res = append(res, output{topic: topics[j], key: stringOf(r.Key), value: stringOf(r.Value), ts: r.Timestamp.UnixMilli(), in: i})
			}
		}
	}
	return res, nil
}

// joined is the joiner of the join topologies, as the Java side's: both
// values, "~" for a null (a nil pointer, or a stream record's null value).
func joined(l, r *[]byte) []byte {
	side := func(v *[]byte) string {
		if v == nil || *v == nil {
			return "~"
		}
		return string(*v)
	}
	return []byte(side(l) + "+" + side(r))
}

func bytesOf(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func stringOf(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
