package pebble

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// Benchmarks compare Pebble with core's in-memory backend side by side, in
// one run (the machines are shared and noisy: compare ratios, not absolute
// figures across runs). Keys are 16 bytes written in a scrambled order,
// values 100 bytes: typical of aggregation state.

const (
	benchValueSize = 100
	benchPreload   = 100_000 // entries in the store for get and scan
	benchScanLen   = 100     // entries per scan
)

// benchKey writes the key of record i: a scrambled 8-byte prefix (so that
// consecutive records land far apart) and i.
func benchKey(dst []byte, i uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], i*0x9E3779B97F4A7C15)
	return binary.BigEndian.AppendUint64(dst, i)
}

type benchBackend struct {
	name string
	open func(b *testing.B) store.Backend
}

func benchBackends() []benchBackend {
	openPebble := func(opts ...Option) func(b *testing.B) store.Backend {
		return func(b *testing.B) store.Backend {
			s, err := Open(b.TempDir(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	return []benchBackend{
		{"pebble", openPebble()},
		{"pebble-nowal", openPebble(WithoutWAL())},
		{"memory", func(*testing.B) store.Backend { return memory.New() }},
	}
}

func preload(b *testing.B, s store.Backend, n int) {
	b.Helper()
	var batch store.Batch
	value := make([]byte, benchValueSize)
	key := make([]byte, 0, 16)
	for i := range n {
		batch.Set(benchKey(key, uint64(i)), value)
		if batch.Len() == 10_000 {
			if err := s.Write(&batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	if err := s.Write(&batch); err != nil {
		b.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBackend measures single operations: put (Set of a new key), get
// (Get of a present key) and scan (a Range over 100 consecutive entries).
func BenchmarkBackend(b *testing.B) {
	for _, bb := range benchBackends() {
		b.Run(bb.name+"/put", func(b *testing.B) {
			s := bb.open(b)
			defer s.Close()
			value := make([]byte, benchValueSize)
			key := make([]byte, 0, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(benchKey(key, uint64(i)), value); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(bb.name+"/get", func(b *testing.B) {
			s := bb.open(b)
			defer s.Close()
			preload(b, s, benchPreload)
			key := make([]byte, 0, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_, ok, err := s.Get(benchKey(key, uint64(i*7919%benchPreload)))
				if err != nil || !ok {
					b.Fatalf("get: %v, %v", ok, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(bb.name+"/scan", func(b *testing.B) {
			s := bb.open(b)
			defer s.Close()
			preload(b, s, benchPreload)
			lo := make([]byte, 0, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				n := 0
				for _, err := range s.Range(benchKey(lo, uint64(i*7919%benchPreload)), nil) {
					if err != nil {
						b.Fatal(err)
					}
					if n++; n == benchScanLen {
						break
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(b.N*benchScanLen)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkRestore applies 1M records the way the runtime restores a store
// from its changelog: store.Batch of 10,000 records, then one Flush.
func BenchmarkRestore(b *testing.B) {
	const records, batchSize = 1_000_000, 10_000
	for _, bb := range benchBackends() {
		b.Run(bb.name, func(b *testing.B) {
			value := make([]byte, benchValueSize)
			key := make([]byte, 0, 16)
			var batch store.Batch
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				s := bb.open(b)
				b.StartTimer()
				start := time.Now()
				for i := range records {
					batch.Set(benchKey(key, uint64(i)), value)
					if batch.Len() == batchSize {
						if err := s.Write(&batch); err != nil {
							b.Fatal(err)
						}
						batch.Reset()
					}
				}
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// BenchmarkCommit measures the processing pattern: n Sets, then the Flush
// the runtime calls at each commit. It is what decides between syncing the
// write-ahead log (the default) and flushing memtables (WithoutWAL). Each
// iteration runs one commit on each, alternately, so that both see the
// same machine load; it reports the mean Flush time of each and their ratio.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("writes=%d", n), func(b *testing.B) {
			stores := benchBackends()[:2] // pebble (log synced), pebble-nowal
			opened := make([]store.Backend, len(stores))
			for i, bb := range stores {
				opened[i] = bb.open(b)
				defer opened[i].Close()
				preload(b, opened[i], benchPreload)
			}
			value := make([]byte, benchValueSize)
			key := make([]byte, 0, 16)
			flushing := make([]time.Duration, len(stores))
			b.ResetTimer()
			for i := range b.N {
				for s, st := range opened {
					for j := range n {
						// Update existing keys, as aggregations do.
						if err := st.Set(benchKey(key, uint64((i*n+j)*7919%benchPreload)), value); err != nil {
							b.Fatal(err)
						}
					}
					start := time.Now()
					if err := st.Flush(); err != nil {
						b.Fatal(err)
					}
					flushing[s] += time.Since(start)
				}
			}
			for s, bb := range stores {
				b.ReportMetric(float64(flushing[s].Microseconds())/float64(b.N), "µs-flush-"+bb.name)
			}
			b.ReportMetric(float64(flushing[1])/float64(flushing[0]), "nowal/wal")
		})
	}
}
