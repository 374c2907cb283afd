package kstreams_test

import (
	"context"
	"strings"
	"testing"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// A store handle is typed by its spec: Get returns a
// store.KeyValueStore[string, int64] for a store.KeyValue of String and
// Int64, with no name and no assertion, and two processors sharing the
// handle share the store (one sub-topology).
func TestStoreHandle(t *testing.T) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	if counts.Name() != "counts" {
		t.Fatalf("Name() = %q", counts.Name())
	}
	src := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	counted := kstreams.Func(src, "count", func(ctx context.Context, pc kstreams.ProcessorContext[string, int64], r kstreams.Record[string, string]) error {
		var kv store.KeyValueStore[string, int64]
		kv, err := counts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := kv.Get(r.Key)
		if err != nil {
			return err
		}
		if err := kv.Put(r.Key, n+1); err != nil {
			return err
		}
		return pc.Forward(ctx, kstreams.WithValue(r, n+1))
	}, kstreams.WithStores(counts))
	// A second processor reads the same store through the same handle.
	doubled := kstreams.Func(counted, "double", func(ctx context.Context, pc kstreams.ProcessorContext[string, int64], r kstreams.Record[string, int64]) error {
		kv, err := counts.Get(pc)
		if err != nil {
			return err
		}
		n, _, err := kv.Get(r.Key)
		if err != nil {
			return err
		}
		return pc.Forward(ctx, kstreams.WithValue(r, 2*n))
	}, kstreams.WithStores(counts))
	kstreams.Sink(doubled, "out", "out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if s := topo.String(); strings.Count(s, "(stores: counts)") != 2 || strings.Contains(s, "Sub-topology 1") {
		t.Fatalf("both processors should have store counts, in one sub-topology:\n%s", s)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "in", serde.String, serde.String)
	for _, k := range []string{"a", "b", "a"} {
		if err := in.Pipe(k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := kstreamstest.Output(d, "out", serde.String, serde.Int64).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range rs {
		got = append(got, r.Value)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 2 || got[2] != 4 {
		t.Fatalf("outputs %v, want [2 2 4]", got)
	}
}

// A processor holding the zero handle (a store it was never given) fails
// at its first record with an error naming the processor, not a panic.
func TestZeroStoreHandleGet(t *testing.T) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	var forgotten kstreams.Store[store.KeyValueStore[string, int64]]
	src := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	kstreams.Func(src, "count", func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
		_, err := forgotten.Get(pc)
		return err
	}, kstreams.WithStores(counts))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = kstreamstest.Input(d, "in", serde.String, serde.String).Pipe("a", "x")
	if err == nil || !strings.Contains(err.Error(), "processor count: a zero kstreams.Store handle") {
		t.Fatalf("got %v, want an error naming the processor and the zero handle", err)
	}
}
