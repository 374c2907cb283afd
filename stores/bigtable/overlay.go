package bigtable

import (
	"bytes"
	"slices"
)

// layer holds writes not yet committed to Bigtable: point writes (values
// and deletions, ordered by key) and deleted ranges. A point write made
// after a range deletion overrides it; a range deletion removes the point
// writes it covers. A backend has one layer, two while a flush runs (the
// one being flushed and the one taking new writes).
type layer struct {
	points *pointSet  // key → tag byte + value
	ranges []keyRange // sorted, disjoint
	bytes  int        // approximate size of the point writes
}

// keyRange is [lo, hi); a nil hi is unbounded.
type keyRange struct{ lo, hi []byte }

func (r keyRange) contains(k []byte) bool {
	return bytes.Compare(k, r.lo) >= 0 && (r.hi == nil || bytes.Compare(k, r.hi) < 0)
}

func newLayer() *layer { return &layer{points: newPointSet()} }

func (l *layer) empty() bool { return l.points.Len() == 0 && len(l.ranges) == 0 }

func (l *layer) set(key, value []byte) {
	l.points.Set(key, tagValue, value)
	l.bytes += len(key) + 1 + len(value)
}

func (l *layer) delete(key []byte) {
	l.points.Set(key, tagDeleted, nil)
	l.bytes += len(key) + 1
}

func (l *layer) deleteRange(lo, hi []byte) {
	if lo == nil {
		lo = []byte{}
	}
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return
	}
	l.points.DeleteRange(lo, hi)
	l.ranges = addRange(l.ranges, keyRange{lo: bytes.Clone(lo), hi: bytes.Clone(hi)})
}

// addRange merges r into the sorted, disjoint rs.
func addRange(rs []keyRange, r keyRange) []keyRange {
	out := make([]keyRange, 0, len(rs)+1)
	for _, x := range rs {
		// x entirely before or after r: keep it apart.
		if x.hi != nil && bytes.Compare(x.hi, r.lo) < 0 || r.hi != nil && bytes.Compare(r.hi, x.lo) < 0 {
			out = append(out, x)
			continue
		}
		if bytes.Compare(x.lo, r.lo) < 0 {
			r.lo = x.lo
		}
		if r.hi != nil && (x.hi == nil || bytes.Compare(x.hi, r.hi) > 0) {
			r.hi = x.hi
		}
	}
	i, _ := slices.BinarySearchFunc(out, r, func(a, b keyRange) int { return bytes.Compare(a.lo, b.lo) })
	return slices.Insert(out, i, r)
}

func (l *layer) covered(key []byte) bool {
	for _, r := range l.ranges {
		if r.contains(key) {
			return true
		}
	}
	return false
}

// lookup reports what the layer says of key: decided is false when the key
// is neither written nor covered by a deleted range.
func (l *layer) lookup(key []byte) (value []byte, found, decided bool) {
	if v, ok := l.points.Get(key); ok {
		if v[0] == tagDeleted {
			return nil, false, true
		}
		return v[1:], true, true
	}
	if l.covered(key) {
		return nil, false, true
	}
	return nil, false, false
}

// lookupLayers asks the layers, newest first.
func lookupLayers(layers []*layer, key []byte) (value []byte, found, decided bool) {
	for _, l := range layers {
		if v, ok, d := l.lookup(key); d {
			return v, ok, true
		}
	}
	return nil, false, false
}

// pointWrite is one point write of an overlay snapshot.
type pointWrite struct {
	key, value []byte
	deleted    bool
	tagged     []byte // the tag byte and value, as a cell holds them
}

// snapshot returns the point writes of layers (newest first) in [lo, hi),
// in key order, each key once with its newest write, and the union of their
// deleted ranges. The slices share the layers' immutable values.
func snapshot(layers []*layer, lo, hi []byte) (points []pointWrite, ranges []keyRange) {
	for i := len(layers) - 1; i >= 0; i-- { // oldest first; newer layers override
		l := layers[i]
		var next []pointWrite
		// Older writes survive unless this layer deleted their range or
		// wrote them again.
		for _, p := range points {
			if l.covered(p.key) {
				continue
			}
			if _, _, d := l.lookup(p.key); d {
				continue
			}
			next = append(next, p)
		}
		var mine []pointWrite
		if lo == nil && hi == nil {
			mine = make([]pointWrite, 0, l.points.Len())
		}
		l.points.Range(lo, hi, func(key, tagged []byte) bool {
			mine = append(mine, pointWrite{key: key, value: tagged[1:], deleted: tagged[0] == tagDeleted, tagged: tagged})
			return true
		})
		points = mergePoints(next, mine)
		for _, r := range l.ranges {
			ranges = addRange(ranges, r)
		}
	}
	return points, ranges
}

// mergePoints merges two sorted lists with disjoint keys.
func mergePoints(a, b []pointWrite) []pointWrite {
	if len(a) == 0 {
		return b
	}
	out := make([]pointWrite, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if bytes.Compare(a[i].key, b[j].key) < 0 {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// mergeLayers folds a newer layer over an older one, as after a failed
// flush: the result reads exactly as the two did stacked.
func mergeLayers(newer, older *layer) *layer {
	out := newLayer()
	// Both layers' keys and values are immutable: the merged one shares them.
	older.points.Range(nil, nil, func(key, tagged []byte) bool {
		if newer.covered(key) {
			return true
		}
		if _, _, d := newer.lookup(key); d {
			return true
		}
		out.points.set(key, tagged)
		out.bytes += len(key) + len(tagged)
		return true
	})
	newer.points.Range(nil, nil, func(key, tagged []byte) bool {
		out.points.set(key, tagged)
		out.bytes += len(key) + len(tagged)
		return true
	})
	out.ranges = slices.Clone(older.ranges)
	for _, r := range newer.ranges {
		out.ranges = addRange(out.ranges, r)
	}
	return out
}
