package table_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

func TestAggregations(t *testing.T) {
	b := kstreams.NewBuilder()
	words := kstreams.Source(b, "words", []string{"words"}, serde.String, serde.String)
	var got []string
	watch := func(name string) func(r kstreams.Record[string, string]) error {
		return func(r kstreams.Record[string, string]) error {
			got = append(got, fmt.Sprintf("%s %s=%s@%d", name, r.Key, r.Value, r.Timestamp.Sub(t0)/time.Minute))
			return nil
		}
	}
	counts := table.Count(words, "count", serde.String, memory.Supplier())
	kstreams.ForEach(kstreams.MapValues(counts.Updates(), "count-str", func(n *int64) (string, error) { return fmt.Sprint(*n), nil }), "count-out", watch("count"))
	longest := table.Reduce(words, "longest", serde.String, serde.String, memory.Supplier(), func(_ string, agg, v string) (string, error) {
		if len(v) > len(agg) {
			return v, nil
		}
		return agg, nil
	})
	kstreams.ForEach(kstreams.MapValues(longest.Updates(), "longest-str", func(s *string) (string, error) { return *s, nil }), "longest-out", watch("longest"))
	joined := table.Aggregate(words, "joined", serde.String, serde.String, memory.Supplier(), func() string { return ">" },
		func(_ string, v, agg string) (string, error) { return agg + v, nil })
	kstreams.ForEach(kstreams.MapValues(joined.Updates(), "joined-str", func(s *string) (string, error) { return *s, nil }), "joined-out", watch("joined"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "words", serde.String, serde.String)
	for _, s := range []struct {
		k, v string
		min  int
	}{{"a", "x", 1}, {"a", "yyy", 3}, {"b", "z", 2}, {"a", "ww", 2}} {
		if err := in.PipeAt(s.k, s.v, t0.Add(time.Duration(s.min)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Each aggregate is stamped with the latest timestamp of its records.
	want := "count a=1@1 longest a=x@1 joined a=>x@1 " +
		"count a=2@3 longest a=yyy@3 joined a=>xyyy@3 " +
		"count b=1@2 longest b=z@2 joined b=>z@2 " +
		"count a=3@3 longest a=yyy@3 joined a=>xyyyww@3"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	// The tables can be read like any other.
	kv, err := kstreamstest.GetStore[interface {
		Get(string) (table.Row[int64], bool, error)
	}](d, "count")
	if err != nil {
		t.Fatal(err)
	}
	if row, ok, err := kv.Get("a"); err != nil || !ok || row.Value != 3 {
		t.Errorf("count of a: %v %v %v", row, ok, err)
	}
}

func TestAggregationBuildErrors(t *testing.T) {
	b := kstreams.NewBuilder()
	words := kstreams.Source(b, "words", []string{"words"}, serde.String, serde.String)
	table.Aggregate[string, string, string](words, "agg", serde.String, serde.String, memory.Supplier(), nil, nil)
	table.Reduce[string, string](words, "red", serde.String, serde.String, memory.Supplier(), nil)
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), "table agg: nil init or add function") || !strings.Contains(err.Error(), "table red: nil reduce function") {
		t.Errorf("Build: %v", err)
	}
}
