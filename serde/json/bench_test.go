package json_test

import (
	stdjson "encoding/json"
	"testing"

	"github.com/kstreams-go/kstreams/serde/json"
)

// The benchmarks encode and decode the shared 10-field Record. Encode appends
// to a reused buffer, as kstreams' sinks do. "bytes" is the encoded size.

func BenchmarkEncode(b *testing.B) {
	s := json.New[Record]()
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
	s := json.New[Record]()
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

// BenchmarkStdlibEncode and BenchmarkStdlibDecode measure encoding/json on
// the same record, the alternative this package was chosen against.
func BenchmarkStdlibEncode(b *testing.B) {
	r := sampleRecord()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		out, err := stdjson.Marshal(&r)
		if err != nil {
			b.Fatal(err)
		}
		buf = append(buf[:0], out...)
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}

func BenchmarkStdlibDecode(b *testing.B) {
	data, err := stdjson.Marshal(sampleRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var r Record
		if err := stdjson.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}
