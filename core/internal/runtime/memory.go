package runtime

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The memory budget (Config.MemoryBudget, kstreams.WithMemoryBudget) and
// what the runtime sizes from it. Of the budget:
//
//   - a quarter for fetched records, counted decoded (the kgo.Record and
//     its bytes after decompression), buffered by franz-go or being
//     processed: the instance's consumer fetch sizes follow it, measured
//     against what the fetched bytes decode to (see fetchSizer);
//   - an eighth for the restore consumer's fetches and the records its
//     feeds hold;
//   - a quarter for the stores, handed to their suppliers as a hint
//     (store.BackendContext.MemoryBudget);
//   - the rest is headroom: the produce buffer, Go's heap growth between
//     collections (GOGC), code and stacks.
//
// The budget is a target, not a limit: records the processors keep, stores
// that ignore the hint and Go's heap growth are not bounded by it.

// DefaultMemoryBudget is the memory budget when none is given.
const DefaultMemoryBudget = 128 << 20

const (
	// recordOverhead is what a decoded record takes besides its key,
	// value and headers: the kgo.Record (about 150 bytes) and its share of
	// the slices holding it.
	recordOverhead = 200
	// The range of the per-partition fetch size: below 16 KiB a fetch
	// holds a few batches, and above 1 MiB (franz-go's default) records
	// wait buffered for long without adding throughput.
	minPartitionFetch = 16 << 10
	maxPartitionFetch = 1 << 20
	// The range of the fetch size (all partitions of a broker).
	minFetch = 1 << 20
	maxFetch = 50 << 20
	// The decoded bytes per fetched byte assumed before any was measured:
	// on the high side (compressed data decodes to 2-4 times its size,
	// plus the records' overhead), so that the first fetches, sized before
	// any measurement, do not overshoot; the sizes grow once measured.
	initialExpansion = 10
	// resizeEvery is how many fetched batches pass between two checks of
	// the fetch sizes (a batch is up to a producer's batch: up to 1 MiB).
	resizeEvery = 16
)

// budgetShares splits a budget.
type budgetShares struct {
	fetch, restore, stores int64
}

func sharesOf(budget int64) budgetShares {
	return budgetShares{fetch: budget / 4, restore: budget / 8, stores: budget / 4}
}

// fetchSizer sets the consumer's fetch sizes (compressed bytes, as the
// brokers count them) so that the records fetched and not yet processed
// stay within share once decoded. franz-go keeps one fetch per broker
// buffered while the loop processes the previous one, so a fetch gets half
// the share. It measures how many bytes a fetched byte decodes to (the
// test data of the benchmarks, repeated bytes compressed with snappy,
// decode to about 25 times their size) from franz-go's batch metrics,
// and divides the fetch among the partitions the instance owns.
type fetchSizer struct {
	share      int64
	partitions func() int // partitions fetched; 0 before any is assigned

	cl  atomic.Pointer[kgo.Client]
	log *slog.Logger // nil for none

	mu                  sync.Mutex
	batches             int
	compressed, decoded int64   // since the last check
	expansion           float64 // decoded bytes per fetched byte
	part, max           int32   // current sizes
	parts               int     // partitions they were computed for
}

func newFetchSizer(share int64, partitions func() int) *fetchSizer {
	f := &fetchSizer{share: share, partitions: partitions, expansion: initialExpansion}
	f.parts = max(partitions(), 1)
	f.part, f.max = f.sizes(f.parts)
	return f
}

// sizes returns the per-partition and the per-fetch size for n partitions
// at the current expansion.
func (f *fetchSizer) sizes(n int) (part, max int32) {
	perFetch := float64(f.share) / 2 / f.expansion
	part = int32(clamp(int64(perFetch)/int64(n), minPartitionFetch, maxPartitionFetch))
	max = int32(clamp(int64(perFetch), minFetch, maxFetch))
	return part, max
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// OnFetchBatchRead implements kgo.HookFetchBatchRead.
func (f *fetchSizer) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	f.compressed += int64(m.CompressedBytes)
	f.decoded += int64(m.UncompressedBytes) + int64(m.NumRecords)*recordOverhead
	if f.batches < resizeEvery {
		return
	}
	measured := float64(f.decoded) / float64(f.compressed)
	f.batches, f.compressed, f.decoded = 0, 0, 0
	// Half the old estimate, half the new measurement.
	f.expansion = max((f.expansion+measured)/2, 1)
	f.resize()
}

// check recomputes the sizes for the partitions owned now (after an
// assignment changed them).
func (f *fetchSizer) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resize()
}

func (f *fetchSizer) resize() {
	n := max(f.partitions(), 1)
	part, mx := f.sizes(n)
	f.parts = n
	// Moves of less than an eighth are noise.
	if near(part, f.part) && near(mx, f.max) {
		return
	}
	f.part, f.max = part, mx
	if cl := f.cl.Load(); cl != nil {
		cl.UpdateFetchMaxBytes(mx, part)
	}
	if f.log != nil {
		f.log.Debug("fetch sizes changed", "partition_bytes", part, "fetch_bytes", mx, "partitions", n,
			"decoded_per_fetched_byte", fmt.Sprintf("%.1f", f.expansion))
	}
}

func near(a, b int32) bool {
	d := int64(a) - int64(b)
	return d*8 <= int64(b) && -d*8 <= int64(b)
}

// current returns the sizes in use.
func (f *fetchSizer) current() (part, max int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.part, f.max
}

// checkFetchSizes resizes the fetches after the tasks owned changed (the
// loop only).
func (r *Runtime) checkFetchSizes() {
	if r.sizer == nil {
		return
	}
	if p := r.owned.Load(); p != r.sizerSeen {
		r.sizerSeen = p
		r.sizer.check()
	}
}

// ownedPartitions counts the input partitions of the tasks owned.
func (r *Runtime) ownedPartitions() int {
	p := r.owned.Load()
	if p == nil {
		return 0
	}
	n := 0
	for _, ts := range *p {
		n += len(ts.sub.SourceTopics)
	}
	return n
}

// restoreFetchSizes returns the restore consumer's fetch sizes for a share
// of the budget: half the share for the fetch buffered and the one in
// flight, at 4 decoded bytes per fetched byte (changelog records are small
// and compress less than inputs), so an eighth of it per fetch and a
// sixteenth per partition; the other half is for the records the feeds
// hold (newRestoreConsumer's holdBytes).
func restoreFetchSizes(share int64) (part, max int32) {
	return int32(clamp(share/16, 256<<10, 32<<20)), int32(clamp(share/8, minFetch, 64<<20))
}

// storeInstances returns how many store instances the topology has over
// all its partitions: the most this instance may hold (see
// store.BackendContext.StoreInstances).
func (r *Runtime) storeInstances() int {
	n := 0
	for _, st := range r.cfg.Topology.Subtopologies {
		if len(st.Stores) == 0 {
			continue
		}
		parts := int32(1)
		for _, t := range st.SourceTopics {
			if p, err := r.partitionCount(t); err == nil {
				parts = max(parts, p)
			}
		}
		n += len(st.Stores) * int(parts)
	}
	return max(n, 1)
}
