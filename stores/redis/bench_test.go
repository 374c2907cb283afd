package redis

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// Benchmarks run Redis (a redis-server of their own on 127.0.0.1, directly
// and behind a proxy adding 1 ms of round-trip time) next to core's
// in-memory backend, in one run: compare ratios, not absolute figures
// across runs. Keys are 16 bytes, values 100 bytes; commits flush every
// 1,000 records (FlushAt, as the runtime does before committing offsets).
// Each Redis benchmark reports its round trips per operation (trips/op).

const (
	benchValueSize = 100
	benchKeys      = 10_000 // distinct keys of the count and get benchmarks
	benchPerCommit = 1_000  // records between two FlushAt
)

func benchKey(dst []byte, i uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], i*0x9E3779B97F4A7C15)
	return binary.BigEndian.AppendUint64(dst, i)
}

type benchTarget struct {
	name  string
	open  func(b *testing.B, opts ...Option) store.Backend
	trips func() int64  // nil for memory
	rtt   time.Duration // median PING round trip, 0 for memory
}

// benchTargets starts one redis-server for the whole benchmark run.
func benchTargets(b *testing.B) []benchTarget {
	addr := startRedis(b)
	slow := delayProxy(b, addr, 500*time.Microsecond)
	targets := []benchTarget{{name: "memory", open: func(*testing.B, ...Option) store.Backend { return memory.New() }}}
	for _, t := range []struct{ name, addr string }{{"redis", addr}, {"redis-1ms", slow}} {
		c, rt := newClient(b, t.addr)
		var pings []time.Duration
		for range 21 {
			start := time.Now()
			if err := c.Ping(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			pings = append(pings, time.Since(start))
		}
		slices.Sort(pings)
		targets = append(targets, benchTarget{
			rtt:  pings[len(pings)/2],
			name: t.name,
			open: func(b *testing.B, opts ...Option) store.Backend {
				s, err := Open(c, uniqueContext("bench"), opts...)
				if err != nil {
					b.Fatal(err)
				}
				return s
			},
			trips: rt.count,
		})
	}
	return targets
}

func flushAt(b *testing.B, s store.Backend, offset int64) {
	if k, ok := s.(store.OffsetKeeper); ok {
		if err := k.FlushAt(offset); err != nil {
			b.Fatal(err)
		}
	}
}

// reportTrips reports round trips per operation since before.
func reportTrips(b *testing.B, t benchTarget, before int64) {
	if t.trips != nil {
		b.ReportMetric(float64(t.trips()-before)/float64(b.N), "trips/op")
		b.ReportMetric(float64(t.rtt.Microseconds())/1000, "rtt-ms")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkCount is a count's access pattern: Get a key's count, Set it
// one more, over 10,000 keys, with a commit (FlushAt) every 1,000 records.
// The store starts empty: the first reads miss.
func BenchmarkCount(b *testing.B) {
	for _, t := range benchTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			s := t.open(b)
			defer s.Close()
			key := make([]byte, 0, 16)
			var value [8]byte
			before := int64(0)
			if t.trips != nil {
				before = t.trips()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := benchKey(key, uint64(i*7919%benchKeys))
				v, ok, err := s.Get(k)
				if err != nil {
					b.Fatal(err)
				}
				var n uint64
				if ok {
					n = binary.BigEndian.Uint64(v)
				}
				binary.BigEndian.PutUint64(value[:], n+1)
				if err := s.Set(k, value[:]); err != nil {
					b.Fatal(err)
				}
				if (i+1)%benchPerCommit == 0 {
					flushAt(b, s, int64(i))
				}
			}
			flushAt(b, s, int64(b.N))
			reportTrips(b, t, before)
		})
	}
}

// BenchmarkSetFlush writes 100,000 keys over and over (new keys first,
// then updates), committing every 1,000: the write path alone, including
// the flushes.
func BenchmarkSetFlush(b *testing.B) {
	for _, t := range benchTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			s := t.open(b)
			defer s.Close()
			key := make([]byte, 0, 16)
			value := make([]byte, benchValueSize)
			before := int64(0)
			if t.trips != nil {
				before = t.trips()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(benchKey(key, uint64(i%100_000)), value); err != nil {
					b.Fatal(err)
				}
				if (i+1)%benchPerCommit == 0 {
					flushAt(b, s, int64(i))
				}
			}
			flushAt(b, s, int64(b.N))
			reportTrips(b, t, before)
		})
	}
}

// BenchmarkGet reads present keys: hit, every key in the read cache; miss,
// with the cache disabled (a round trip per Get).
func BenchmarkGet(b *testing.B) {
	for _, t := range benchTargets(b) {
		for _, mode := range []string{"hit", "miss"} {
			if t.trips == nil && mode == "miss" {
				continue
			}
			b.Run(t.name+"/"+mode, func(b *testing.B) {
				opts := []Option{WithReadCache(64 << 20)}
				if mode == "miss" {
					opts = []Option{WithReadCache(0)}
				}
				s := t.open(b, opts...)
				defer s.Close()
				key := make([]byte, 0, 16)
				value := make([]byte, benchValueSize)
				for i := range benchKeys {
					if err := s.Set(benchKey(key, uint64(i)), value); err != nil {
						b.Fatal(err)
					}
				}
				flushAt(b, s, 0) // the flushed values are cached
				before := int64(0)
				if t.trips != nil {
					before = t.trips()
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, ok, err := s.Get(benchKey(key, uint64(i*7919%benchKeys))); err != nil || !ok {
						b.Fatalf("get: %v, %v", ok, err)
					}
				}
				reportTrips(b, t, before)
			})
		}
	}
}

// BenchmarkScan ranges over 100 flushed entries from a random key.
func BenchmarkScan(b *testing.B) {
	const scanLen = 100
	for _, t := range benchTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			s := t.open(b, WithRangePageSize(scanLen))
			defer s.Close()
			key := make([]byte, 0, 16)
			value := make([]byte, benchValueSize)
			for i := range benchKeys {
				if err := s.Set(benchKey(key, uint64(i)), value); err != nil {
					b.Fatal(err)
				}
			}
			flushAt(b, s, 0)
			before := int64(0)
			if t.trips != nil {
				before = t.trips()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				n := 0
				for _, err := range s.Range(benchKey(key, uint64(i*7919%benchKeys)), nil) {
					if err != nil {
						b.Fatal(err)
					}
					if n++; n == scanLen {
						break
					}
				}
			}
			reportTrips(b, t, before)
			b.ReportMetric(float64(b.N*scanLen)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkGetMany reads 100 present keys per GetMany with the cache off
// (one HMGET): compare its keys/s with BenchmarkGet's misses.
func BenchmarkGetMany(b *testing.B) {
	const perCall = 100
	for _, t := range benchTargets(b) {
		if t.trips == nil {
			continue
		}
		b.Run(t.name, func(b *testing.B) {
			s := t.open(b, WithReadCache(0)).(*Backend)
			defer s.Close()
			value := make([]byte, benchValueSize)
			for i := range benchKeys {
				if err := s.Set(benchKey(nil, uint64(i)), value); err != nil {
					b.Fatal(err)
				}
			}
			flushAt(b, s, 0)
			keys := make([][]byte, perCall)
			before := t.trips()
			b.ResetTimer()
			for i := range b.N {
				for j := range keys {
					keys[j] = benchKey(keys[j], uint64((i*perCall+j)*7919%benchKeys))
				}
				if _, found, err := s.GetMany(keys); err != nil || !found[0] {
					b.Fatalf("GetMany: %v, %v", found[0], err)
				}
			}
			reportTrips(b, t, before)
			b.ReportMetric(float64(b.N*perCall)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
