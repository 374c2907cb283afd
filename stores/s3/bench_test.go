package s3_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// Snapshot costs against versitygw on 127.0.0.1 (its posix backend on the
// local disk): what a snapshot uploads and how long it takes, and how long
// a restore on a new disk takes. Values are 100 random bytes (they do not
// compress), keys 10 bytes.

type byteCounter struct {
	bucket.Bucket
	puts, putBytes atomic.Int64
}

func (c *byteCounter) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	c.puts.Add(1)
	c.putBytes.Add(size)
	return c.Bucket.Put(ctx, name, r, size, cond)
}

func fill(b testing.TB, s store.Backend, rng *rand.Rand, from, to int) {
	var batch store.Batch
	v := make([]byte, 100)
	for i := from; i < to; i++ {
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		batch.Set(fmt.Appendf(nil, "key-%06d", i), v)
		if batch.Len() == 10000 {
			if err := s.Write(&batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	if err := s.Write(&batch); err != nil {
		b.Fatal(err)
	}
}

func newStateDir(b *testing.B) string {
	d, err := os.MkdirTemp(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkSnapshotIncremental: 1,000 updates of random keys of a 100,000-key
// store, then FlushAt.
func BenchmarkSnapshotIncremental(b *testing.B) {
	srv := startServer(b)
	cb := &byteCounter{Bucket: srv.newBucket(b)}
	supply := snapshot.Supplier(cb, pebble.SnapshotLocal(), snapshot.WithGarbageInterval(0))
	s, err := supply(store.BackendContext{App: "bench", Store: "s", Task: "0_0", Dir: newStateDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const keys = 100_000
	fill(b, s, rng, 0, keys)
	if err := s.(store.OffsetKeeper).FlushAt(0); err != nil {
		b.Fatal(err)
	}
	full := cb.putBytes.Load()
	cb.puts.Store(0)
	cb.putBytes.Store(0)
	b.ResetTimer()
	for i := range b.N {
		for range 1000 {
			k := rng.IntN(keys)
			fill(b, s, rng, k, k+1)
		}
		if err := s.(store.OffsetKeeper).FlushAt(int64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(full), "full-snapshot-bytes")
	b.ReportMetric(float64(cb.putBytes.Load())/float64(b.N), "uploaded-bytes/op")
	b.ReportMetric(float64(cb.puts.Load())/float64(b.N), "puts/op")
}

// BenchmarkSnapshotRestore: open a store of 100,000 keys on a new disk
// (claim, download, restore, open).
func BenchmarkSnapshotRestore(b *testing.B) {
	srv := startServer(b)
	bk := srv.newBucket(b)
	supply := snapshot.Supplier(bk, pebble.SnapshotLocal())
	bc := store.BackendContext{App: "bench", Store: "s", Task: "0_0", Dir: newStateDir(b)}
	s, err := supply(bc)
	if err != nil {
		b.Fatal(err)
	}
	const keys = 100_000
	fill(b, s, rand.New(rand.NewPCG(1, 2)), 0, keys)
	if err := s.(store.OffsetKeeper).FlushAt(0); err != nil {
		b.Fatal(err)
	}
	s.Close()
	var size int64
	for info, err := range bk.List(context.Background(), "bench/s/0_0/files/") {
		if err != nil {
			b.Fatal(err)
		}
		size += info.Size
	}
	b.ResetTimer()
	for range b.N {
		bc.Dir = newStateDir(b)
		r, err := supply(bc)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if v, ok, err := r.Get([]byte("key-099999")); err != nil || !ok || len(v) != 100 {
			b.Fatalf("restored store: Get = %d bytes, %v, %v", len(v), ok, err)
		}
		r.Close()
		b.StartTimer()
	}
	b.SetBytes(size)
	b.ReportMetric(float64(keys), "keys")
}

// BenchmarkRestoreVsReplay compares, for a store of 1,000,000 keys
// (100-byte random values), a restore from the bucket on a new disk with
// the lower bound of a changelog restore: writing the same records into an
// empty Pebble store in batches of 10,000, as the runtime's restore does,
// without reading them from Kafka. "replay-history10" writes 10 updates per
// key (the changelog of a store whose keys were each updated 10 times,
// before compaction): a snapshot restore does not depend on history.
// Run with -benchtime 1x: one iteration builds a 110 MB store.
func BenchmarkRestoreVsReplay(b *testing.B) {
	const keys = 1_000_000
	srv := startServer(b)
	bk := srv.newBucket(b)
	supply := snapshot.Supplier(bk, pebble.SnapshotLocal())
	bc := store.BackendContext{App: "bench", Store: "s", Task: "0_0", Dir: newStateDir(b)}
	s, err := supply(bc)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, rand.New(rand.NewPCG(1, 2)), 0, keys)
	if err := s.(store.OffsetKeeper).FlushAt(0); err != nil {
		b.Fatal(err)
	}
	s.Close()

	b.Run("restore-from-bucket", func(b *testing.B) {
		for range b.N {
			bc.Dir = newStateDir(b)
			r, err := supply(bc)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, ok, err := r.Get([]byte("key-999999")); err != nil || !ok {
				b.Fatalf("restored store: Get = %v, %v", ok, err)
			}
			r.Close()
			b.StartTimer()
		}
	})
	for _, history := range []int{1, 10} {
		b.Run(fmt.Sprintf("replay-history%d", history), func(b *testing.B) {
			for range b.N {
				p, err := pebble.Open(newStateDir(b))
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for range history {
					fill(b, p, rng, 0, keys)
				}
				if err := p.Flush(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				p.Close()
				b.StartTimer()
			}
		})
	}
}
