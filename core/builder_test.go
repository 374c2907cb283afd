package kstreams_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// TestTypeMismatchDoesNotCompile builds a program that wires a child to a
// parent of another type and asserts the compiler rejects it, next to a
// control program that differs only in the type and compiles.
func TestTypeMismatchDoesNotCompile(t *testing.T) {
	build := func(dir string) (string, error) {
		cmd := exec.Command("go", "build", "-o", os.DevNull, "./testdata/"+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := build("typematch"); err != nil {
		t.Fatalf("control program does not compile: %v\n%s", err, out)
	}
	out, err := build("typemismatch")
	if err == nil {
		t.Fatal("a sink of Record[string, int64] wired to a Node[string, string] compiled")
	}
	if !strings.Contains(out, "serde.Int64") || !strings.Contains(out, "main.go:13") {
		t.Fatalf("compiler output does not point at the mismatched sink:\n%s", out)
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	b := kstreams.NewBuilder()
	other := kstreams.NewBuilder()
	missing := kstreams.AddStore(other, store.KeyValue("missing", serde.String, serde.String, memory.Supplier()))
	kstreams.AddStore(b, store.KeyValue("unused", serde.String, serde.String, memory.Supplier()))
	kstreams.AddStore(b, store.KeyValue("unused", serde.String, serde.String, memory.Supplier()))
	kstreams.AddStore(b, store.KeyValue("nobackend", serde.String, serde.String, nil))
	kstreams.AddStore(b, store.KeyValue("same", serde.String, serde.String, memory.Supplier()))
	otherSame := kstreams.AddStore(other, store.KeyValue("same", serde.String, serde.String, memory.Supplier()))
	var zero kstreams.Store[store.KeyValueStore[string, string]]
	a := kstreams.Source(b, "a", []string{"t1"}, serde.String, serde.String)
	kstreams.Source(b, "a", []string{"t2"}, serde.String, serde.String)
	kstreams.Source(b, "c", []string{"t1"}, serde.String, serde.String)
	kstreams.Source(b, "", []string{"t3"}, serde.String, serde.String)
	kstreams.Source(b, "none", nil, serde.String, serde.String)
	kstreams.Filter(a, "f", func(kstreams.Record[string, string]) bool { return true })
	kstreams.Func(a, "p", func(context.Context, kstreams.ProcessorContext[string, string], kstreams.Record[string, string]) error {
		return nil
	},
		kstreams.WithStores(missing))
	kstreams.Func(a, "z", func(context.Context, kstreams.ProcessorContext[string, string], kstreams.Record[string, string]) error {
		return nil
	}, kstreams.WithStores(zero))
	kstreams.Func(a, "q", func(context.Context, kstreams.ProcessorContext[string, string], kstreams.Record[string, string]) error {
		return nil
	}, kstreams.WithStores(otherSame))
	kstreams.Sink(a, "s", "", serde.String, serde.String)
	a.Builder().AddError(errors.New("an add-on's own check failed"))
	_, err := b.Build()
	if err == nil {
		t.Fatal("Build accepted an invalid topology")
	}
	for _, want := range []string{
		`store name "unused" is declared twice`,
		`node name "a" is used twice`,
		`topic "t1" is read by two sources, "a" and "c"`,
		`empty name`,
		`source "none" reads no topic`,
		`uses store "missing", which is not declared in this topology`,
		`store "nobackend" has no backend supplier`,
		`processor "z": WithStores: a zero or nil store handle`,
		`processor "q" uses a store "same" declared by another Builder`,
		`store "unused" is declared but no processor uses it`,
		`sink "s" has neither a topic nor a topic function`,
		`an add-on's own check failed`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Build error lacks %q:\n%v", want, err)
		}
	}
}

func TestSubtopologiesAndDescriptions(t *testing.T) {
	b := kstreams.NewBuilder()
	shared := kstreams.AddStore(b, store.KeyValue("shared", serde.String, serde.String, memory.Supplier()))
	noop := func(context.Context, kstreams.ProcessorContext[string, string], kstreams.Record[string, string]) error {
		return nil
	}
	// orders and payments join through the shared store: one sub-topology.
	orders := kstreams.Source(b, "orders", []string{"orders"}, serde.String, serde.String)
	payments := kstreams.Source(b, "payments", []string{"payments"}, serde.String, serde.String)
	kstreams.Func(orders, "o", noop, kstreams.WithStores(shared))
	kstreams.Func(payments, "p", noop, kstreams.WithStores(shared))
	// logs are independent.
	logs := kstreams.Source(b, "logs", []string{"logs"}, serde.String, serde.String)
	kstreams.Sink(logs, "archive", "archive", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := `Sub-topology 0 (co-partitioned: orders, payments)
  Source: orders (topics: orders)
    --> o
  Source: payments (topics: payments)
    --> p
  Processor: o (stores: shared)
    <-- orders
  Processor: p (stores: shared)
    <-- payments

Sub-topology 1 (co-partitioned: logs)
  Source: logs (topics: logs)
    --> archive
  Sink: archive (topic: archive)
    <-- logs
`
	if got := topo.String(); got != want {
		t.Fatalf("description:\n%s\nwant:\n%s", got, want)
	}
	m := topo.Mermaid()
	for _, frag := range []string{"flowchart TD", `subgraph sub0 ["Sub-topology 0"]`, `s_shared[("shared")]`, "n_o --- s_shared", "n_p --- s_shared", `t_orders(["orders"])`, "t_orders --> n_orders", "n_archive --> t_archive"} {
		if !strings.Contains(m, frag) {
			t.Errorf("Mermaid lacks %q:\n%s", frag, m)
		}
	}
}
