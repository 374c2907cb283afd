package runtime

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// partTracker tracks, for one input partition, which dispatched offset
// ranges are complete: processed, their outputs acknowledged, their
// changelog writes acknowledged. The committable offset is the start of the
// first incomplete range; complete ranges above it go into the commit
// metadata so a restart can skip them.
type partTracker struct {
	mu      sync.Mutex
	entries []*trackEntry // dispatched ranges in offset order; entries[0] is the oldest not yet committed past
	next    int64         // offset after the last dispatched range; -1 before the first
	skip    map[int64]bool
	hasSkip atomic.Bool   // skip is not empty; spares the lock on the fast path
	slab    []trackEntry  // entries are carved from here, a chunk at a time
	total   *atomic.Int64 // if set, counts len(entries) of every tracker sharing it (see count)
}

type trackEntry struct {
	from, to int64 // [from, to)
	done     bool
}

func newPartTracker() *partTracker { return &partTracker{next: -1} }

// count adds d to the shared total, if any. Called with t.mu held.
func (t *partTracker) count(d int) {
	if t.total != nil && d != 0 {
		t.total.Add(int64(d))
	}
}

// detach takes t's entries out of the shared total: its task is gone.
func (t *partTracker) detach() {
	t.mu.Lock()
	t.count(-len(t.entries))
	t.total = nil
	t.mu.Unlock()
}

// add registers the dispatch of [from, to).
func (t *partTracker) add(from, to int64) *trackEntry {
	t.mu.Lock()
	if len(t.slab) == 0 {
		t.slab = make([]trackEntry, 256)
	}
	e := &t.slab[0]
	t.slab = t.slab[1:]
	e.from, e.to = from, to
	t.entries = append(t.entries, e)
	t.count(1)
	t.next = to
	t.mu.Unlock()
	return e
}

// splitAt replaces the incomplete entry e by entries cut at cuts: offsets
// in (e.from, e.to), ascending. It returns the new entries in order.
func (t *partTracker) splitAt(e *trackEntry, cuts []int64) []*trackEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].from >= e.from })
	if i == len(t.entries) || t.entries[i] != e {
		panic("kstreams: splitting a tracker entry that is not tracked") // an invariant of the runtime, not input
	}
	parts := make([]*trackEntry, 0, len(cuts)+1)
	from := e.from
	for _, c := range cuts {
		parts = append(parts, &trackEntry{from: from, to: c})
		from = c
	}
	parts = append(parts, &trackEntry{from: from, to: e.to})
	t.entries = slices.Replace(t.entries, i, i+1, parts...)
	t.count(len(cuts))
	return parts
}

// markDone marks e complete and drops the complete prefix of the entries.
// The first entry left (if any) is the lowest incomplete one.
func (t *partTracker) markDone(e *trackEntry) {
	t.mu.Lock()
	e.done = true
	t.dropDone()
	t.mu.Unlock()
}

// dropDone drops the complete prefix of the entries. Called with t.mu held.
func (t *partTracker) dropDone() {
	i := 0
	for i < len(t.entries) && t.entries[i].done {
		i++
	}
	if i > 0 {
		clear(t.entries[:i])
		t.entries = t.entries[i:]
		t.count(-i)
	}
}

// markDoneAll marks the entries of refs that belong to t complete, under
// one lock, and drops the complete prefix; it returns how many it marked.
// refs are in offset order, so those of t come first.
func (t *partTracker) markDoneAll(refs []entryRef) int {
	t.mu.Lock()
	n := 0
	for n < len(refs) && refs[n].tr == t {
		refs[n].e.done = true
		n++
	}
	t.dropDone()
	t.mu.Unlock()
	return n
}

// setSkip records offsets that the commit metadata says are complete.
func (t *partTracker) setSkip(done []int64) {
	if len(done) == 0 {
		return
	}
	t.mu.Lock()
	t.skip = make(map[int64]bool, len(done))
	for _, o := range done {
		t.skip[o] = true
	}
	t.mu.Unlock()
	t.hasSkip.Store(true)
}

// resumeAt makes the partition resume at offset, not at the committed one
// (see resumeInputs): the complete offsets setSkip recorded (which describe
// the committed offset) are forgotten, and offset is committable at once,
// so the group's commit reaches it even if no record follows.
func (t *partTracker) resumeAt(offset int64) {
	t.mu.Lock()
	t.skip = nil
	if t.next < 0 && len(t.entries) == 0 {
		t.next = offset
	}
	t.mu.Unlock()
	t.hasSkip.Store(false)
}

// settled reports whether every dispatched range is complete, so that the
// commit point is the offset after the last dispatched record.
func (t *partTracker) settled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.entries {
		if !e.done {
			return false
		}
	}
	return true
}

// skipDone reports whether offset was recorded as complete in the commit
// metadata this partition was assigned with.
func (t *partTracker) skipDone(offset int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.skip[offset] {
		delete(t.skip, offset)
		if len(t.skip) == 0 {
			t.hasSkip.Store(false)
		}
		return true
	}
	return false
}

// dispatched reports whether a range was ever dispatched.
func (t *partTracker) dispatched() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next >= 0
}

// inFlight returns the number of dispatched ranges not yet committed past.
func (t *partTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// commitPoint drops the complete prefix and returns the committable offset
// and the complete offsets above it. ok is false when nothing was ever
// dispatched.
func (t *partTracker) commitPoint() (offset int64, done []int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next < 0 {
		return 0, nil, false
	}
	if len(t.entries) == 0 {
		return t.next, nil, true
	}
	offset = t.entries[0].from
	for _, e := range t.entries[1:] {
		if e.done {
			for o := e.from; o < e.to; o++ {
				done = append(done, o)
			}
		}
	}
	return offset, done, true
}

// Commit metadata encodes the complete offsets above the committed offset
// C, as deltas from C, in whichever of two forms is smaller:
//
//	'r' runs:   uvarint pairs (gap, length): skip gap offsets, then length complete ones
//	'b' bitset: bit i set if C+1+i is complete
//
// then base64 (the metadata is a Kafka string; tools read it as UTF-8).
const (
	formatRuns   = 'r'
	formatBitset = 'b'
	metaPrefix   = "ks1"
)

// encodeDone encodes the sorted complete offsets above committed.
func encodeDone(committed int64, done []int64) string {
	if len(done) == 0 {
		return ""
	}
	runs := []byte{formatRuns}
	prev := committed // the next offset not yet described
	for i := 0; i < len(done); {
		j := i
		for j+1 < len(done) && done[j+1] == done[j]+1 {
			j++
		}
		runs = binary.AppendUvarint(runs, uint64(done[i]-prev-1))
		runs = binary.AppendUvarint(runs, uint64(j-i+1))
		prev = done[j]
		i = j + 1
	}
	span := done[len(done)-1] - committed
	out := runs
	if bitLen := 1 + (span+7)/8; bitLen < int64(len(runs)) {
		bits := make([]byte, bitLen)
		bits[0] = formatBitset
		for _, o := range done {
			i := o - committed - 1
			bits[1+i/8] |= 1 << (i % 8)
		}
		out = bits
	}
	return metaPrefix + base64.RawStdEncoding.EncodeToString(out)
}

var errBadMetadata = errors.New("malformed completed-offsets metadata")

// maxDecoded bounds what decoding may produce, whatever the input claims.
const maxDecoded = 1 << 20

// decodeDone decodes commit metadata written by encodeDone. Metadata not
// written by kstreams (no prefix) decodes to nothing.
func decodeDone(committed int64, meta string) ([]int64, error) {
	if len(meta) < len(metaPrefix) || meta[:len(metaPrefix)] != metaPrefix {
		return nil, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(meta[len(metaPrefix):])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMetadata, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadMetadata)
	}
	var done []int64
	switch raw[0] {
	case formatRuns:
		b := raw[1:]
		prev := committed
		for len(b) > 0 {
			gap, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("%w: bad gap", errBadMetadata)
			}
			b = b[n:]
			length, n := binary.Uvarint(b)
			if n <= 0 || length == 0 {
				return nil, fmt.Errorf("%w: bad run length", errBadMetadata)
			}
			b = b[n:]
			if gap > maxDecoded || length > maxDecoded || uint64(len(done))+length > maxDecoded {
				return nil, fmt.Errorf("%w: more than %d offsets", errBadMetadata, maxDecoded)
			}
			start := prev + 1 + int64(gap)
			for i := range int64(length) {
				done = append(done, start+i)
			}
			prev = start + int64(length) - 1
		}
	case formatBitset:
		if len(raw)-1 > maxDecoded/8 {
			return nil, fmt.Errorf("%w: bitset too long", errBadMetadata)
		}
		for i, by := range raw[1:] {
			for bit := range 8 {
				if by&(1<<bit) != 0 {
					done = append(done, committed+1+int64(i*8+bit))
				}
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown format %q", errBadMetadata, raw[0])
	}
	if !sort.SliceIsSorted(done, func(i, j int) bool { return done[i] < done[j] }) {
		return nil, fmt.Errorf("%w: offsets out of order", errBadMetadata)
	}
	return done, nil
}
