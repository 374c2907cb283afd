package window_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
)

// BenchmarkCount compares, through the test driver on the same data,
// counting per key (a key-value store, the wordcount processor) with
// counting per key and window. Records have 1024 keys and timestamps 1ms
// apart, so a one-minute window gets about 59 records per key. It reports
// records/s and, as "entries", the size of the count store at the end: with
// the windows' retention (window size + grace), and with a retention long
// enough to keep every window ("no-retention").
func BenchmarkCount(b *testing.B) {
	berlin := mustLoad(b, "Europe/Berlin")
	minute := window.Tumbling(time.Minute).Grace(time.Second)
	cases := []struct {
		name  string
		build func(bld *kstreams.Builder, in kstreams.Node[string, string], sup store.Supplier) kstreams.Node[string, int64]
	}{
		{"plain", func(bld *kstreams.Builder, in kstreams.Node[string, string], sup store.Supplier) kstreams.Node[string, int64] {
			counts := kstreams.AddStore(bld, store.KeyValue("counts", serde.String, serde.Int64, sup))
			return kstreams.Process(in, "count", func() kstreams.Processor[string, string, string, int64] { return &plainCounter{store: counts} },
				kstreams.WithStores(counts))
		}},
		{"tumbling", windowed(minute, nil)},
		{"tumbling-emit-final", windowed(minute, nil, window.EmitFinal())},
		{"tumbling-no-retention", windowed(minute, []window.StoreOption{window.Retention(1000 * time.Hour)})},
		{"hopping-4", windowed(window.Hopping(time.Minute, 15*time.Second).Grace(time.Second), nil)},
		{"calendar-hours-berlin", windowed(window.Hours(1, berlin).Grace(time.Second), nil)},
		{"sliding-5s", windowed(window.Sliding(5*time.Second).Grace(time.Second), nil)},
		{"session", func(bld *kstreams.Builder, in kstreams.Node[string, string], sup store.Supplier) kstreams.Node[string, int64] {
			st := window.NewSessionStore("counts", window.Session(2*time.Second).Grace(time.Second), serde.String, serde.Int64, sup)
			return flatten(window.CountSessions(in, "count", st))
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var counts *memory.Backend
			sup := func(bc store.BackendContext) (store.Backend, error) {
				m := memory.New()
				if bc.Store == "counts" {
					counts = m
				}
				return m, nil
			}
			bld := kstreams.NewBuilder()
			in := kstreams.Source(bld, "in", []string{"in"}, serde.String, serde.String)
			kstreams.Sink(tc.build(bld, in, sup), "out", "out", serde.String, serde.Int64)
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			d, err := kstreamstest.New(topo)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			input := kstreamstest.Input(d, "in", serde.String, serde.String)
			output := kstreamstest.Output(d, "out", serde.String, serde.Int64)
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = []byte("key-" + strconv.Itoa(i))
			}
			value := []byte("v")
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := input.PipeRaw(keys[i&1023], value, base.Add(time.Duration(i)*time.Millisecond), 0); err != nil {
					b.Fatal(err)
				}
				if i&1023 == 1023 {
					output.ReadRaw()
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(counts.Len()), "entries")
		})
	}
}

// windowed counts per key and window of w, with the window key flattened
// to a string so that every case writes the same output types.
func windowed(w window.Windows, stOpts []window.StoreOption, opts ...window.Option) func(*kstreams.Builder, kstreams.Node[string, string], store.Supplier) kstreams.Node[string, int64] {
	return func(bld *kstreams.Builder, in kstreams.Node[string, string], sup store.Supplier) kstreams.Node[string, int64] {
		st := window.NewStore("counts", w, serde.String, serde.Int64, sup, stOpts...)
		return flatten(window.Count(in, "count", st, opts...))
	}
}

func flatten(n kstreams.Node[window.Key[string], int64]) kstreams.Node[string, int64] {
	return kstreams.Map(n, "flatten", func(r kstreams.Record[window.Key[string], int64]) (kstreams.Record[string, int64], error) {
		return kstreams.WithKeyValue(r, r.Key.Key, r.Value), nil
	})
}

type plainCounter struct {
	store  kstreams.Store[store.KeyValueStore[string, int64]]
	pc     kstreams.ProcessorContext[string, int64]
	counts store.KeyValueStore[string, int64]
}

func (c *plainCounter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
	c.pc = pc
	c.counts, err = c.store.Get(pc)
	return err
}

func (c *plainCounter) Process(ctx context.Context, r kstreams.Record[string, string]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	return c.pc.Forward(ctx, kstreams.WithValue(r, n))
}

func (c *plainCounter) Close() error { return nil }
