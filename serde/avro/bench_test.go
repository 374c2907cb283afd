package avro_test

import (
	"context"
	"testing"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/serde/avro"
)

// The benchmarks encode and decode the shared 10-field Record. Encode appends
// to a reused buffer, as kstreams' sinks do. "bytes" is the encoded size.

func BenchmarkEncode(b *testing.B) {
	benchEncode(b, mustNew[Record](b, recordSchema))
}

func BenchmarkDecode(b *testing.B) {
	benchDecode(b, mustNew[Record](b, recordSchema))
}

// BenchmarkRegistryEncode and BenchmarkRegistryDecode add the 5-byte
// schema-registry header (no registry request happens on these paths).
func BenchmarkRegistryEncode(b *testing.B) {
	benchEncode(b, mustRegistry(b))
}

func BenchmarkRegistryDecode(b *testing.B) {
	benchDecode(b, mustRegistry(b))
}

func mustRegistry(b *testing.B) *avro.RegistrySerde[Record] {
	_, cl, _ := startRegistry(b)
	s, err := avro.NewRegistry[Record](context.Background(), cl, "records-value", recordSchema)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type recordSerde = serde.Serde[Record]

func benchEncode(b *testing.B, s recordSerde) {
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

func benchDecode(b *testing.B, s recordSerde) {
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
