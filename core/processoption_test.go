package kstreams_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

type forwardBatch struct {
	pc kstreams.ProcessorContext[string, string]
}

func (p *forwardBatch) Init(pc kstreams.ProcessorContext[string, string]) error {
	p.pc = pc
	return nil
}
func (p *forwardBatch) Close() error { return nil }
func (p *forwardBatch) ProcessBatch(ctx context.Context, rs []kstreams.Record[string, string]) error {
	for _, r := range rs {
		if err := p.pc.Forward(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func newForwardBatch() kstreams.BatchProcessor[string, string, string, string] {
	return &forwardBatch{}
}

func pass(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
	return pc.Forward(ctx, r)
}

// TestProcessOptionsThatDoNotApplyFailBuild: an option given where it does
// not apply is a Build error naming the node and the option, never ignored.
func TestProcessOptionsThatDoNotApplyFailBuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(src kstreams.Node[string, string])
		want string
	}{
		{"batching on a record processor", func(src kstreams.Node[string, string]) {
			kstreams.Func(src, "p", pass, kstreams.WithBatching(10, time.Millisecond))
		}, `processor "p": WithBatching: applies only to batch processors (ProcessBatch)`},
		{"zero option", func(src kstreams.Node[string, string]) {
			kstreams.Func(src, "p", pass, kstreams.ProcessOption{})
		}, `processor "p": a zero ProcessOption`},
		{"unknown ordering mode", func(src kstreams.Node[string, string]) {
			kstreams.Func(src, "p", pass, kstreams.WithOrdering(kstreams.Order(9)))
		}, `processor "p": WithOrdering: unknown ordering mode 9`},
		{"empty batches", func(src kstreams.Node[string, string]) {
			kstreams.ProcessBatch(src, "p", newForwardBatch, kstreams.WithBatching(0, 0))
		}, `processor "p": WithBatching: batch size must be positive, got 0`},
		{"no attempts", func(src kstreams.Node[string, string]) {
			kstreams.Func(src, "p", pass, kstreams.WithRetry(kstreams.Retry{Backoff: time.Second}))
		}, `processor "p": WithRetry: attempts must be at least 1 (1: no retry), got 0`},
		{"negative backoff", func(src kstreams.Node[string, string]) {
			kstreams.Func(src, "p", pass, kstreams.WithRetry(kstreams.Retry{Attempts: 3, Backoff: -time.Second}))
		}, `processor "p": WithRetry: backoff -1s and max backoff 0s must not be negative`},
		{"negative linger", func(src kstreams.Node[string, string]) {
			kstreams.ProcessBatch(src, "p", newForwardBatch, kstreams.WithBatching(10, -time.Second))
		}, `processor "p": WithBatching: linger must not be negative, got -1s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstreams.NewBuilder()
			tc.add(kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String))
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestProcessOptionsThatApplyBuild is the control: every option where it
// applies builds.
func TestProcessOptionsThatApplyBuild(t *testing.T) {
	b := kstreams.NewBuilder()
	s := kstreams.AddStore(b, store.KeyValue("s", serde.String, serde.String, memory.Supplier()))
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	batched := kstreams.ProcessBatch(src, "batch", newForwardBatch,
		kstreams.WithBatching(10, time.Millisecond), kstreams.WithOrdering(kstreams.KeyOrder),
		kstreams.WithRetry(kstreams.Retry{Attempts: 2, Backoff: time.Millisecond}))
	kstreams.Func(batched, "p", pass, kstreams.WithStores(s), kstreams.WithOrdering(kstreams.KeyOrder))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if s := topo.String(); !strings.Contains(s, "Processor: p (stores: s)") {
		t.Fatalf("WithStores did not attach the store:\n%s", s)
	}
}

// TestNilOptionsAreErrors: a nil option is an error naming what it was
// given to, not a panic.
func TestNilOptionsAreErrors(t *testing.T) {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String, nil)
	kstreams.Sink(src, "out", "out", serde.String, serde.String, nil)
	_, err := b.Build()
	for _, want := range []string{`source "src": a nil SourceOption`, `sink "out": a nil SinkOption`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build() error = %v, want one containing %q", err, want)
		}
	}

	b = kstreams.NewBuilder()
	kstreams.Sink(kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String), "out", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = kstreams.NewApp(topo, kstreams.WithApplicationID("app"), nil, kstreams.WithBrokers("127.0.0.1:1"))
	if err == nil || !strings.Contains(err.Error(), "option 2 is nil") {
		t.Errorf("NewApp with a nil option: error %v, want one naming option 2", err)
	}
}
