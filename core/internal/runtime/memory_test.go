package runtime

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The fetch sizes follow the budget, the partitions owned and what the
// fetched bytes decode to.
func TestFetchSizer(t *testing.T) {
	parts := 8
	f := newFetchSizer(32<<20, func() int { return parts })
	// 32 MiB for fetched records, half per fetch, 10 decoded bytes per
	// fetched byte assumed: 1.6 MiB per fetch, 200 KiB per partition.
	if part, mx := f.current(); part != 16<<20/10/8 || mx != 16<<20/10 {
		t.Fatalf("initial sizes %d / %d, want %d / %d", part, mx, 16<<20/10/8, 16<<20/10)
	}

	// Batches that decode to 16 times their size (the estimate halves the
	// distance to each measurement).
	read := func(n int, compressed, uncompressed, records int) {
		for range n {
			f.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, kgo.FetchBatchMetrics{
				NumRecords: records, CompressedBytes: compressed, UncompressedBytes: uncompressed})
		}
	}
	// Batches that decode to 3 times their size: the fetches grow.
	read(resizeEvery-1, 1000, 3000-10*recordOverhead, 10)
	if part, _ := f.current(); part != 16<<20/10/8 {
		t.Fatalf("resized before %d batches: %d per partition", resizeEvery, part)
	}
	read(1, 1000, 3000-10*recordOverhead, 10)
	// Expansion (10 + 3) / 2 = 6.5.
	perFetch := float64(16<<20) / 6.5
	wantMax := int32(perFetch)
	if part, mx := f.current(); mx != wantMax || part != wantMax/8 {
		t.Fatalf("after measuring 3x: %d / %d, want %d / %d", part, mx, wantMax/8, wantMax)
	}
	// Then 16 times: they shrink.
	for range 10 {
		read(resizeEvery, 1000, 15000-10*recordOverhead+1000, 10)
	}
	if part, mx := f.current(); mx < 1<<20 || mx > 1100<<10 || part < 128<<10 || part > 140<<10 {
		t.Fatalf("after measuring 16x repeatedly: %d / %d, want about 1 MiB / 128 KiB", part, mx)
	}

	// Uncompressed data gets the most per fetch.
	g := newFetchSizer(32<<20, func() int { return parts })
	for range 20 * resizeEvery {
		g.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, kgo.FetchBatchMetrics{NumRecords: 1, CompressedBytes: 100000, UncompressedBytes: 100000})
	}
	if part, mx := g.current(); part != maxPartitionFetch || mx < 14<<20 || mx > 16<<20 {
		t.Fatalf("uncompressed data: %d / %d, want %d per partition and about 16 MiB (within an eighth)", part, mx, maxPartitionFetch)
	}

	// More partitions owned: less per partition.
	parts = 64
	f.check()
	f.mu.Lock()
	wantPart, wantMax := f.sizes(64)
	f.mu.Unlock()
	if part, mx := f.current(); part != wantPart || mx != wantMax || part > 20<<10 {
		t.Fatalf("64 partitions: %d / %d, want %d / %d", part, mx, wantPart, wantMax)
	}
	// 1000 partitions: the floor per partition (moves of less than an
	// eighth are not applied).
	parts = 1000
	f.check()
	if part, _ := f.current(); part < minPartitionFetch || part > minPartitionFetch*9/8 {
		t.Fatalf("1000 partitions: %d per partition, want the floor %d", part, minPartitionFetch)
	}
}

// A huge budget never fetches more than franz-go's defaults; a small one
// never less than the floors.
func TestFetchSizerBounds(t *testing.T) {
	if part, mx := newFetchSizer(64<<30, func() int { return 1 }).current(); part != maxPartitionFetch || mx != maxFetch {
		t.Errorf("64 GiB: %d / %d, want %d / %d", part, mx, maxPartitionFetch, maxFetch)
	}
	if part, mx := newFetchSizer(1<<20, func() int { return 100 }).current(); part != minPartitionFetch || mx != minFetch {
		t.Errorf("1 MiB: %d / %d, want %d / %d", part, mx, minPartitionFetch, minFetch)
	}
	if part, mx := restoreFetchSizes(sharesOf(DefaultMemoryBudget).restore); part != 1<<20 || mx != 2<<20 {
		t.Errorf("restore at the default budget: %d / %d, want 1 MiB / 2 MiB", part, mx)
	}
}
