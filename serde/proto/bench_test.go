package proto_test

import (
	"context"
	"testing"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/serde/proto"
	"github.com/kstreams-go/kstreams/serde/proto/internal/testpb"
)

// The benchmarks encode and decode the shared 10-field Record. Encode appends
// to a reused buffer, as kstreams' sinks do. "bytes" is the encoded size.

func BenchmarkEncode(b *testing.B) {
	benchEncode(b, proto.New[*testpb.Record]())
}

func BenchmarkDecode(b *testing.B) {
	benchDecode(b, proto.New[*testpb.Record]())
}

// BenchmarkRegistryEncode and BenchmarkRegistryDecode add the 7-byte
// schema-registry header (no registry request happens on these paths).
func BenchmarkRegistryEncode(b *testing.B) {
	benchEncode(b, mustRegistry(b))
}

func BenchmarkRegistryDecode(b *testing.B) {
	benchDecode(b, mustRegistry(b))
}

func mustRegistry(b *testing.B) *proto.RegistrySerde[*testpb.Record] {
	_, cl, _ := startRegistry(b)
	s, err := proto.NewRegistry[*testpb.Record](context.Background(), cl, "records-value", testpb.Schema)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchEncode(b *testing.B, s serde.Serde[*testpb.Record]) {
	r := sampleRecord()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.Serialize(buf[:0], "t", nil, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}

func benchDecode(b *testing.B, s serde.Serde[*testpb.Record]) {
	data, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Deserialize("t", nil, data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}
