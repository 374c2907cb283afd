package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// InputOffsets are the positions in a task's input partitions that a store's
// contents cover: for each source topic of the task, the offset of the next
// record to process in the task's partition. The store's contents hold the
// effects of every record below those offsets and of none at or above them.
type InputOffsets map[string]int64

// Equal reports whether o and p hold the same topics and offsets.
func (o InputOffsets) Equal(p InputOffsets) bool { return maps.Equal(o, p) }

// String formats o as "topic@offset" pairs sorted by topic.
func (o InputOffsets) String() string {
	s := "{"
	for i, t := range slices.Sorted(maps.Keys(o)) {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s@%d", t, o[t])
	}
	return s + "}"
}

// inputOffsetsVersion is the first byte of the binary encoding.
const inputOffsetsVersion = 1

// AppendBinary appends a stable binary encoding of o to b (as
// encoding.BinaryAppender): a version byte, the number of topics, then each
// topic sorted by name as its length, its bytes and its offset, all as
// unsigned varints. Backends store these bytes with their data;
// ParseInputOffsets reads them back.
func (o InputOffsets) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, inputOffsetsVersion)
	b = binary.AppendUvarint(b, uint64(len(o)))
	for _, t := range slices.Sorted(maps.Keys(o)) {
		off := o[t]
		if t == "" || off < 0 {
			return nil, fmt.Errorf("store: input offsets: invalid entry %q@%d", t, off)
		}
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
		b = binary.AppendUvarint(b, uint64(off))
	}
	return b, nil
}

// MarshalBinary returns AppendBinary's encoding of o.
func (o InputOffsets) MarshalBinary() ([]byte, error) { return o.AppendBinary(nil) }

// ParseInputOffsets decodes the encoding written by AppendBinary. It refuses
// anything else (an unknown version, truncated or trailing bytes, unsorted
// or repeated topics, offsets out of range, varints longer than needed)
// with an error saying what.
func ParseInputOffsets(b []byte) (InputOffsets, error) {
	bad := func(what string) (InputOffsets, error) {
		return nil, fmt.Errorf("store: decoding input offsets (%d bytes): %s", len(b), what)
	}
	if len(b) == 0 {
		return bad("empty")
	}
	if b[0] != inputOffsetsVersion {
		return bad(fmt.Sprintf("unknown version %d", b[0]))
	}
	p := b[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	n, ok := uvarint()
	if !ok {
		return bad("truncated topic count")
	}
	if n > uint64(len(p)) {
		return bad(fmt.Sprintf("topic count %d exceeds the remaining bytes", n))
	}
	o := make(InputOffsets, n)
	prev := ""
	for i := uint64(0); i < n; i++ {
		l, ok := uvarint()
		if !ok || l == 0 || l > uint64(len(p)) {
			return bad(fmt.Sprintf("topic %d: bad name length", i))
		}
		t := string(p[:l])
		p = p[l:]
		if i > 0 && t <= prev {
			return bad(fmt.Sprintf("topic %q not after %q (unsorted or repeated)", t, prev))
		}
		prev = t
		off, ok := uvarint()
		if !ok || off > 1<<63-1 {
			return bad(fmt.Sprintf("topic %q: bad offset", t))
		}
		o[t] = int64(off)
	}
	if len(p) != 0 {
		return bad(fmt.Sprintf("%d trailing bytes", len(p)))
	}
	if again, _ := o.AppendBinary(nil); len(again) != len(b) {
		return bad("varints not in their shortest form")
	}
	return o, nil
}

// InputOffsetKeeper is implemented by backends that are durable by
// themselves (remote stores, object-storage snapshots) and can keep,
// atomically with their data, the input offsets the data covers (as Kafka
// Streams' KIP-1035 does). For such a store without a changelog, the
// runtime:
//
//   - before each commit of a task's input offsets, lets the task's work in
//     flight finish (so the store holds the effects of exactly the records
//     below the offsets), then calls FlushInputs with the offsets it is
//     about to commit, and commits only if every such store of the task
//     returned nil;
//   - when the task opens, resumes its partitions from StoredInputs rather
//     than from the committed offsets where they differ (a crash between
//     the flush and the commit leaves the store ahead).
//
// So the store's contents and the offsets processing resumes from never
// disagree, without a changelog: no input record is applied twice to the
// store and none is skipped. With several such stores in one task, a crash
// between their flushes leaves them at different offsets; the runtime then
// rewinds those ahead of the committed offsets (InputRewinder) or, if one
// cannot rewind, fails the task with an error naming the stores.
//
// The runtime calls Flush, not FlushInputs, on stores that have a changelog.
type InputOffsetKeeper interface {
	// StoredInputs returns the offsets stored by the last FlushInputs, or
	// nil if none were stored.
	StoredInputs() (InputOffsets, error)
	// FlushInputs makes every write that returned before the call durable
	// together with offsets, in one atomic step: after a crash the backend
	// holds both or neither.
	FlushInputs(offsets InputOffsets) error
}

// InputRewinder is implemented by InputOffsetKeepers that keep some of their
// earlier flushes (object-storage snapshots keep earlier manifests).
type InputRewinder interface {
	// RewindInputs replaces the store's contents with those of the newest
	// earlier flush whose input offsets equal to, and makes that flush the
	// current one. ok is false, and nothing changes, if no kept flush has
	// exactly those offsets.
	RewindInputs(to InputOffsets) (ok bool, err error)
}

// ErrInputsDisagree is returned (wrapped) when a task's stores that keep
// input offsets hold different ones and cannot be brought back to the same.
var ErrInputsDisagree = errors.New("store: stores of a task hold different input offsets")
