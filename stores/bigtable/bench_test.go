package bigtable

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// Benchmarks run the Bigtable store against the in-process emulator (a
// gRPC server on loopback), as it is and with 1 ms added to every call by a
// client interceptor (bigtable-rtt1ms: a round trip within a region), next
// to core's in-memory backend, in one run. Round trips per record are
// reported: they, not the emulator's speed, are what a real Bigtable
// charges for. Keys are 16 bytes,
// scrambled; values 100 bytes.

const (
	benchValueSize = 100
	benchPerFlush  = 1000 // writes between two commits
	benchPreload   = 10_000
)

func benchKey(dst []byte, i uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], i*0x9E3779B97F4A7C15)
	return binary.BigEndian.AppendUint64(dst, i)
}

type benchTarget struct {
	name string
	open func(b *testing.B) (store.Backend, func() int64) // backend, calls so far
}

func benchTargets(opts ...Option) []benchTarget {
	return []benchTarget{
		bigtableTarget("bigtable", 0, opts...),
		bigtableTarget("bigtable-rtt1ms", time.Millisecond, opts...),
		{"memory", func(b *testing.B) (store.Backend, func() int64) {
			return memory.New(), func() int64 { return 0 }
		}},
	}
}

// bigtableTarget opens a store on an emulator whose calls take rtt more.
func bigtableTarget(name string, rtt time.Duration, opts ...Option) benchTarget {
	return benchTarget{name, func(b *testing.B) (store.Backend, func() int64) {
		e := startEmulatorRTT(b, rtt)
		s := e.open(b, freshContext(), opts...)
		b.Cleanup(func() { s.Close() })
		return s, e.rpcs.Load
	}}
}

func flushAt(s store.Backend, off int64) error {
	if k, ok := s.(store.OffsetKeeper); ok {
		return k.FlushAt(off)
	}
	return s.Flush()
}

// BenchmarkSetFlush measures writes as a task makes them: Sets of new keys,
// and a FlushAt every 1,000.
func BenchmarkSetFlush(b *testing.B) {
	for _, bt := range benchTargets() {
		b.Run(bt.name, func(b *testing.B) {
			s, calls := bt.open(b)
			value := make([]byte, benchValueSize)
			key := make([]byte, 0, 16)
			start := calls()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(benchKey(key, uint64(i)), value); err != nil {
					b.Fatal(err)
				}
				if (i+1)%benchPerFlush == 0 {
					if err := flushAt(s, int64(i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := flushAt(s, int64(b.N)); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(calls()-start)/float64(b.N), "rpcs/record")
		})
	}
}

// BenchmarkCount is a count's pattern: Get, Set of the same key (10,000
// keys, updated over and over), a FlushAt every 1,000 records. It also runs
// with the emulator in a child process (bigtable-process), where this
// process's CPU goes to the store and the client library only.
func BenchmarkCount(b *testing.B) {
	proc := benchTarget{"bigtable-process", func(b *testing.B) (store.Backend, func() int64) {
		e := startEmulatorProcess(b)
		s := e.open(b, freshContext())
		b.Cleanup(func() { s.Close() })
		return s, e.rpcs.Load
	}}
	for _, bt := range append(benchTargets(), proc) {
		b.Run(bt.name, func(b *testing.B) { countLoop(b, bt) })
	}
}

// countLoop runs the count pattern on one target.
func countLoop(b *testing.B, bt benchTarget) {
	s, calls := bt.open(b)
	preloadBench(b, s)
	key := make([]byte, 0, 16)
	start := calls()
	cpuStart := processCPU()
	b.ResetTimer()
	for i := range b.N {
		k := benchKey(key, uint64(i*7919%benchPreload))
		v, _, err := s.Get(k)
		if err != nil {
			b.Fatal(err)
		}
		n := binary.BigEndian.Uint64(append(v[:0:0], v[:8]...))
		if err := s.Set(k, binary.BigEndian.AppendUint64(make([]byte, 0, benchValueSize), n+1)); err != nil {
			b.Fatal(err)
		}
		if (i+1)%benchPerFlush == 0 {
			if err := flushAt(s, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(calls()-start)/float64(b.N), "rpcs/record")
	// CPU time of this process per record: less sensitive than the rate
	// to other work on a shared machine; with the emulator in a child
	// process, the cost of the store and the client library alone.
	b.ReportMetric(float64((processCPU()-cpuStart).Microseconds())/float64(b.N), "cpu-µs/record")
}

// processCPU returns the CPU time (user and system) this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGet measures reads of flushed keys: hit (the row is cached),
// miss (the cache is off: one ReadRow per Get), and GetMany of 100 keys
// without a cache (one ReadRows per call; reported per key).
func BenchmarkGet(b *testing.B) {
	run := func(name string, t benchTarget, many int) {
		b.Run(name, func(b *testing.B) {
			s, calls := t.open(b)
			preloadBench(b, s)
			key := make([]byte, 0, 16)
			if bs, ok := s.(*Backend); ok && many == 0 { // warm the cache, if any
				for i := range benchPreload {
					if _, _, err := bs.Get(benchKey(key, uint64(i))); err != nil {
						b.Fatal(err)
					}
				}
			}
			start := calls()
			b.ResetTimer()
			if many > 0 {
				s := s.(*Backend)
				keys := make([][]byte, many)
				for i := 0; i < b.N; i += many {
					for j := range keys {
						keys[j] = benchKey(nil, uint64((i+j)*7919%benchPreload))
					}
					if _, found, err := s.GetMany(keys); err != nil || !found[0] {
						b.Fatalf("GetMany: %v, %v", found[0], err)
					}
				}
			} else {
				for i := range b.N {
					if _, ok, err := s.Get(benchKey(key, uint64(i*7919%benchPreload))); err != nil || !ok {
						b.Fatalf("Get: %v, %v", ok, err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
			b.ReportMetric(float64(calls()-start)/float64(b.N), "rpcs/get")
		})
	}
	run("bigtable/hit", bigtableTarget("", 0), 0)
	run("bigtable/miss", bigtableTarget("", 0, WithCacheSize(0)), 0)
	run("bigtable/getmany-100-miss", bigtableTarget("", 0, WithCacheSize(0)), 100)
	run("bigtable-rtt1ms/miss", bigtableTarget("", time.Millisecond, WithCacheSize(0)), 0)
	run("bigtable-rtt1ms/getmany-100-miss", bigtableTarget("", time.Millisecond, WithCacheSize(0)), 100)
	run("memory", benchTargets()[2], 0)
}

func preloadBench(b *testing.B, s store.Backend) {
	b.Helper()
	key := make([]byte, 0, 16)
	value := make([]byte, benchValueSize)
	for i := range benchPreload {
		if err := s.Set(benchKey(key, uint64(i)), value); err != nil {
			b.Fatal(err)
		}
	}
	if err := flushAt(s, 0); err != nil {
		b.Fatal(err)
	}
}
