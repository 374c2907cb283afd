package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
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
				res = append(res, output{topic: topics[j], key: stringOf(r.Key), value: stringOf(r.Value), ts: r.Timestamp.UnixMilli()})
			}
		}
	}
	return res, nil
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
