package bigtable

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	pebblestore "github.com/kstreams-go/kstreams/stores/pebble"
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
	open func(b *testing.B) benchStore
}

// benchStore is an opened target.
type benchStore struct {
	store.Backend
	calls     func() int64         // calls to the server so far
	serverCPU func() time.Duration // CPU time of the server's process, if it has its own
}

func benchTargets(opts ...Option) []benchTarget {
	return []benchTarget{
		bigtableTarget("bigtable", 0, opts...),
		bigtableTarget("bigtable-rtt1ms", time.Millisecond, opts...),
		{"memory", func(b *testing.B) benchStore {
			return benchStore{Backend: memory.New(), calls: func() int64 { return 0 }}
		}},
	}
}

// bigtableTarget opens a store on an emulator whose calls take rtt more.
func bigtableTarget(name string, rtt time.Duration, opts ...Option) benchTarget {
	return benchTarget{name, func(b *testing.B) benchStore {
		e := startEmulatorRTT(b, rtt)
		s := e.open(b, freshContext(), opts...)
		b.Cleanup(func() { s.Close() })
		return benchStore{Backend: s, calls: e.rpcs.Load}
	}}
}

// processTarget opens a store on an emulator in a child process, whose
// calls take rtt more: this process's CPU then goes to the store and the
// client library only, as against a real Bigtable.
func processTarget(name string, rtt time.Duration, opts ...Option) benchTarget {
	return benchTarget{name, func(b *testing.B) benchStore {
		e := startEmulatorProcess(b, rtt)
		s := e.open(b, freshContext(), opts...)
		b.Cleanup(func() { s.Close() })
		return benchStore{Backend: s, calls: e.rpcs.Load, serverCPU: e.serverCPU}
	}}
}

// pebbleTarget opens a Pebble store in a temporary directory, the local
// store a remote one is measured against.
func pebbleTarget() benchTarget {
	return benchTarget{"pebble", func(b *testing.B) benchStore {
		s, err := pebblestore.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return benchStore{Backend: s, calls: func() int64 { return 0 }}
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
			bs := bt.open(b)
			s, calls := bs.Backend, bs.calls
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
// keys, updated over and over), a FlushAt every 1,000 records, on every
// target in one run, Pebble's included (ratios of rows of one run are what
// to compare on a shared machine). The emulator runs in this process
// (bigtable, bigtable-rtt1ms) or in a child process (bigtable-process,
// bigtable-process-rtt1ms), where this process's CPU goes to the store and
// the client library only and the emulator's is reported apart
// (server-cpu-µs/record).
func BenchmarkCount(b *testing.B) {
	targets := append(benchTargets(), pebbleTarget(),
		processTarget("bigtable-process", 0),
		processTarget("bigtable-process-rtt1ms", time.Millisecond))
	for _, bt := range targets {
		b.Run(bt.name, func(b *testing.B) { countLoop(b, bt) })
	}
}

// countLoop runs the count pattern on one target.
func countLoop(b *testing.B, bt benchTarget) {
	bs := bt.open(b)
	s, calls := bs.Backend, bs.calls
	preloadBench(b, s)
	key := make([]byte, 0, 16)
	start := calls()
	cpuStart := processCPU()
	var serverStart time.Duration
	if bs.serverCPU != nil {
		serverStart = bs.serverCPU()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := benchKey(key, uint64(i*7919%benchPreload))
		v, _, err := s.Get(k)
		if err != nil {
			b.Fatal(err)
		}
		n := binary.BigEndian.Uint64(v[:8])
		// A serde encodes into a new slice: the store may keep it.
		if err := s.Set(k, binary.BigEndian.AppendUint64(make([]byte, 0, benchValueSize), n+1)); err != nil {
			b.Fatal(err)
		}
		if (i+1)%benchPerFlush == 0 {
			if err := flushAt(s, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(calls()-start)/float64(b.N), "rpcs/record")
	// CPU time of this process per record: less sensitive than the rate
	// to other work on a shared machine; with the emulator in a child
	// process, the cost of the store and the client library alone.
	b.ReportMetric(float64((processCPU()-cpuStart).Nanoseconds())/1e3/float64(b.N), "cpu-µs/record")
	if bs.serverCPU != nil {
		b.ReportMetric(float64((bs.serverCPU()-serverStart).Nanoseconds())/1e3/float64(b.N), "server-cpu-µs/record")
	}
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
			bs := t.open(b)
			s, calls := bs.Backend, bs.calls
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
