package kstreamstest_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
)

// BenchmarkSourceMapSink measures the library's per-record path through the
// driver: decode, a map, encode, emit. "bytes" uses zero-copy serdes so that
// only the library allocates; "string" shows the cost with string serdes
// (their decoding allocates the strings: serde cost, not library cost).
func BenchmarkSourceMapSink(b *testing.B) {
	b.Run("bytes", func(b *testing.B) {
		bld := kstreams.NewBuilder()
		src := kstreams.Source(bld, "src", []string{"in"}, serde.Bytes, serde.Bytes)
		m := kstreams.Map(src, "map", func(r kstreams.Record[[]byte, []byte]) (kstreams.Record[[]byte, []byte], error) {
			r.Value = r.Value[:len(r.Value)/2]
			return r, nil
		})
		kstreams.Sink(m, "sink", "out", serde.Bytes, serde.Bytes)
		runPipeline(b, mustBuild(b, bld))
	})
	b.Run("string", func(b *testing.B) {
		bld := kstreams.NewBuilder()
		src := kstreams.Source(bld, "src", []string{"in"}, serde.String, serde.String)
		m := kstreams.Map(src, "map", func(r kstreams.Record[string, string]) (kstreams.Record[string, int64], error) {
			return kstreams.WithValue(r, int64(len(r.Value))), nil
		})
		kstreams.Sink(m, "sink", "out", serde.String, serde.Int64)
		runPipeline(b, mustBuild(b, bld))
	})
}

func runPipeline(b *testing.B, topo *kstreams.Topology) {
	d := newDriver(b, topo)
	in := kstreamstest.Input(d, "in", serde.Bytes, serde.Bytes)
	out := kstreamstest.Output(d, "out", serde.Bytes, serde.Bytes)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	value := bytes.Repeat([]byte("v"), 100)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := in.PipeRaw(keys[i&1023], value, ts, 0); err != nil {
			b.Fatal(err)
		}
		if i&1023 == 1023 {
			out.ReadRaw()
		}
	}
	b.StopTimer()
	out.ReadRaw()
}
