package msgpack_test

import (
	"testing"

	"github.com/kstreams-go/kstreams/serde/msgpack"
)

// The benchmarks encode and decode the shared 10-field Record. Encode appends
// to a reused buffer, as kstreams' sinks do. "bytes" is the encoded size.

func BenchmarkEncode(b *testing.B) {
	s := msgpack.New[Record]()
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

func BenchmarkDecode(b *testing.B) {
	s := msgpack.New[Record]()
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

// BenchmarkArrayEncode and BenchmarkArrayDecode measure the ArrayStructs form.
func BenchmarkArrayEncode(b *testing.B) {
	s := msgpack.New[Record](msgpack.ArrayStructs())
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

func BenchmarkArrayDecode(b *testing.B) {
	s := msgpack.New[Record](msgpack.ArrayStructs())
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
