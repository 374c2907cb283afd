package join

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// JoinWindows says which records of two streams join: those of one key
// whose timestamps are at most a time difference apart. A record joins
// records of the other stream that arrive later too, until stream time
// passes its timestamp plus the difference plus the grace period; then its
// window is closed, and a left or outer join forwards it unmatched if
// nothing joined it.
type JoinWindows struct {
	diff, grace time.Duration
}

// Within returns join windows of records at most d apart, with no grace
// period.
func Within(d time.Duration) JoinWindows { return JoinWindows{diff: d} }

// Grace returns w with a grace period of d: how long after a record's
// window ends (stream time past its timestamp plus the difference) records
// out of order may still join it.
func (w JoinWindows) Grace(d time.Duration) JoinWindows { w.grace = d; return w }

func (w JoinWindows) validate() error {
	if w.diff < 0 || w.grace < 0 {
		return fmt.Errorf("negative time difference (%v) or grace period (%v)", w.diff, w.grace)
	}
	return nil
}

// retention is how long each side's records are kept: a record at the
// latest time needs the other side's records back to twice the difference
// plus the grace period. It is a nanosecond less, so that a record exactly
// that old is gone, as in Kafka Streams (whose window stores drop records
// at the retention boundary).
func (w JoinWindows) retention() time.Duration { return 2*w.diff + w.grace - time.Nanosecond }

// StreamStores are the serdes and backend of a stream-stream join's
// stores: each side's records (for the window), and the records not
// joined yet (left and outer joins).
type StreamStores[K, L, R any] struct {
	keys     serde.Serde[K]
	left     serde.Serde[L]
	right    serde.Serde[R]
	supplier store.Supplier
	opts     []store.SpecOption
}

// Stores returns the stores of a stream-stream join: keys and values are
// encoded with the given serdes, in backends supplier opens, with opts
// applied to each store's spec. The join names them "<name>-left",
// "<name>-right" and "<name>-unmatched".
func Stores[K, L, R any](keys serde.Serde[K], left serde.Serde[L], right serde.Serde[R], supplier store.Supplier, opts ...store.SpecOption) StreamStores[K, L, R] {
	return StreamStores[K, L, R]{keys: keys, left: left, right: right, supplier: supplier, opts: opts}
}

// StreamStream adds an inner join of two streams within w: each record is
// joined with every record of the other stream of its key whose timestamp
// is within w's difference of its own, those already seen and those still
// to come within the window. Results are keyed by the key and timestamped
// with the later of the two records; the left stream's records come first
// in joiner. A record later than its window's close (timestamp +
// difference + grace before stream time) still joins the records the
// stores keep.
//
// Stream time is the greatest timestamp of the records of both streams the
// join has seen in its task. The join keeps each side's records in a
// window store for twice the difference plus the grace period.
func StreamStream[K, L, R, VOut any](left kstreams.Node[K, L], right kstreams.Node[K, R], name string, w JoinWindows,
	st StreamStores[K, L, R], joiner func(key K, l L, r R) (VOut, error)) kstreams.Node[K, VOut] {
	if joiner == nil {
		addError(left, fmt.Errorf("stream-stream join %s: nil joiner", name))
	}
	return streamStream(left, right, name, w, st, innerJoin, func(key K, l *L, r *R) (VOut, error) {
		return joiner(key, *l, *r)
	})
}

// StreamStreamLeft adds a left join of two streams within w: as
// StreamStream, and a left record that no right record joined is forwarded
// with a nil right value once its window has closed (stream time past its
// timestamp + difference + grace), with its own timestamp. It is forwarded
// once, and never if a right record joins it in time: there are no early
// unmatched results that a later match contradicts.
func StreamStreamLeft[K, L, R, VOut any](left kstreams.Node[K, L], right kstreams.Node[K, R], name string, w JoinWindows,
	st StreamStores[K, L, R], joiner func(key K, l L, r *R) (VOut, error)) kstreams.Node[K, VOut] {
	if joiner == nil {
		addError(left, fmt.Errorf("stream-stream left join %s: nil joiner", name))
	}
	return streamStream(left, right, name, w, st, leftJoin, func(key K, l *L, r *R) (VOut, error) {
		return joiner(key, *l, r)
	})
}

// StreamStreamOuter adds an outer join of two streams within w: as
// StreamStreamLeft, for the records of both streams.
func StreamStreamOuter[K, L, R, VOut any](left kstreams.Node[K, L], right kstreams.Node[K, R], name string, w JoinWindows,
	st StreamStores[K, L, R], joiner func(key K, l *L, r *R) (VOut, error)) kstreams.Node[K, VOut] {
	if joiner == nil {
		addError(left, fmt.Errorf("stream-stream outer join %s: nil joiner", name))
	}
	return streamStream(left, right, name, w, st, outerJoin, joiner)
}

// either is a record of one of the two streams.
type either[L, R any] struct {
	left    *L
	right   *R
	isRight bool
}

func streamStream[K, L, R, VOut any](left kstreams.Node[K, L], right kstreams.Node[K, R], name string, w JoinWindows,
	st StreamStores[K, L, R], kind joinKind, join func(key K, l *L, r *R) (VOut, error)) kstreams.Node[K, VOut] {
	b := left.Builder()
	if b == nil {
		return kstreams.Node[K, VOut]{}
	}
	if err := w.validate(); err != nil {
		b.AddError(fmt.Errorf("stream-stream join %s: %w", name, err))
	}
	if st.keys == nil || st.left == nil || st.right == nil {
		b.AddError(fmt.Errorf("stream-stream join %s: nil serde in its Stores", name))
		return kstreams.Node[K, VOut]{}
	}
	p := &streamSpec[K, L, R, VOut]{w: w, kind: kind, join: join, keys: st.keys, leftValues: st.left, rightValues: st.right}
	p.leftStore = kstreams.AddStore(b, store.Windows(name+"-left", w.retention(), st.keys, st.left, st.supplier, st.opts...))
	p.rightStore = kstreams.AddStore(b, store.Windows(name+"-right", w.retention(), st.keys, st.right, st.supplier, st.opts...))
	stores := []kstreams.AnyStore{p.leftStore, p.rightStore}
	if kind != innerJoin {
		p.unmatchedStore = kstreams.AddStore(b, store.KeyValue(name+"-unmatched", unmatchedKeySerde[K]{keys: serde.StoreForm(st.keys)}, serde.Bytes, st.supplier, st.opts...))
		stores = append(stores, p.unmatchedStore)
	}
	l := kstreams.MapValues(left, name+"-left-in", func(v L) (either[L, R], error) { return either[L, R]{left: &v}, nil })
	r := kstreams.MapValues(right, name+"-right-in", func(v R) (either[L, R], error) { return either[L, R]{right: &v, isRight: true}, nil })
	both := kstreams.Merge(name+"-in", l, r)
	return kstreams.Process(both, name, func() kstreams.Processor[K, either[L, R], K, VOut] {
		return &streamProc[K, L, R, VOut]{streamSpec: p, observed: math.MinInt64}
	}, kstreams.WithStores(stores...))
}

type streamSpec[K, L, R, VOut any] struct {
	w              JoinWindows
	kind           joinKind
	join           func(key K, l *L, r *R) (VOut, error)
	keys           serde.Serde[K]
	leftValues     serde.Serde[L]
	rightValues    serde.Serde[R]
	leftStore      kstreams.Store[store.WindowStore[K, L]]
	rightStore     kstreams.Store[store.WindowStore[K, R]]
	unmatchedStore kstreams.Store[store.KeyValueStore[unmatchedKey[K], []byte]]
}

// streamProc is one task's instance of a stream-stream join. Both streams'
// records reach it through one merged node, so it keeps one stream time.
type streamProc[K, L, R, VOut any] struct {
	*streamSpec[K, L, R, VOut]
	pc        kstreams.ProcessorContext[K, VOut]
	lefts     store.WindowStore[K, L]
	rights    store.WindowStore[K, R]
	unmatched store.KeyValueStore[unmatchedKey[K], []byte] // nil for inner joins
	// mu serializes records: under the concurrent ordering modes Process
	// is called for several keys at once, and stream time and the
	// unmatched records span keys.
	mu       sync.Mutex
	observed int64 // stream time, Unix nanoseconds
}

func (p *streamProc[K, L, R, VOut]) Init(pc kstreams.ProcessorContext[K, VOut]) (err error) {
	p.pc = pc
	if p.lefts, err = p.leftStore.Get(pc); err != nil {
		return err
	}
	if p.rights, err = p.rightStore.Get(pc); err != nil {
		return err
	}
	if p.kind != innerJoin {
		p.unmatched, err = p.unmatchedStore.Get(pc)
	}
	return err
}

func (p *streamProc[K, L, R, VOut]) Close() error { return nil }

// keepsUnmatched says whether a side's records that nothing joined are
// forwarded alone: the left side's in left joins, both in outer joins.
func (p *streamProc[K, L, R, VOut]) keepsUnmatched(isRight bool) bool {
	return p.kind == outerJoin || p.kind == leftJoin && !isRight
}

func (p *streamProc[K, L, R, VOut]) Process(ctx context.Context, r kstreams.Record[K, either[L, R]]) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.process(ctx, r); err != nil {
		return fmt.Errorf("join %s: %w", p.pc.Node(), err)
	}
	return nil
}

func (p *streamProc[K, L, R, VOut]) process(ctx context.Context, r kstreams.Record[K, either[L, R]]) error {
	ts := r.Timestamp
	t := ts.UnixNano()
	in := r.Value
	// The record joins the records to come: keep it in its side's window.
	var err error
	if in.isRight {
		err = putDistinct(p.rights, r.Key, ts, *in.right)
	} else {
		err = putDistinct(p.lefts, r.Key, ts, *in.left)
	}
	if err != nil {
		return err
	}
	if t > p.observed {
		p.observed = t
	}
	if t == p.observed && p.unmatched != nil {
		if err := p.emitClosed(ctx, r); err != nil {
			return err
		}
	}
	from, to := ts.Add(-p.w.diff), ts.Add(p.w.diff)
	// In left and outer joins, a record whose window has closed was
	// forwarded unmatched, or joined already: a late record of the other
	// side does not join it (which would contradict the unmatched result).
	closedBefore := int64(math.MinInt64)
	if p.keepsUnmatched(!in.isRight) {
		closedBefore = p.observed - int64(p.w.diff) - int64(p.w.grace)
	}
	matched := false
	if in.isRight {
		for e, err := range p.lefts.Fetch(r.Key, from, to) {
			if err != nil {
				return err
			}
			if e.Window.Start.UnixNano() < closedBefore {
				continue
			}
			matched = true
			if err := p.forwardJoined(ctx, r, &e.Value, in.right, e.Window.Start, true); err != nil {
				return err
			}
		}
	} else {
		for e, err := range p.rights.Fetch(r.Key, from, to) {
			if err != nil {
				return err
			}
			if e.Window.Start.UnixNano() < closedBefore {
				continue
			}
			matched = true
			if err := p.forwardJoined(ctx, r, in.left, &e.Value, e.Window.Start, false); err != nil {
				return err
			}
		}
	}
	if matched || !p.keepsUnmatched(in.isRight) {
		return nil
	}
	if t+int64(p.w.diff)+int64(p.w.grace) < p.observed {
		// Its window closed already: nothing can join it any more.
		return p.forwardAlone(ctx, r.Key, in, ts, r)
	}
	var data []byte
	if in.isRight {
		data, err = p.rightValues.Serialize(nil, p.unmatched.Name(), nil, *in.right)
	} else {
		data, err = p.leftValues.Serialize(nil, p.unmatched.Name(), nil, *in.left)
	}
	if err != nil {
		return fmt.Errorf("encoding an unmatched record: %w", err)
	}
	if data == nil {
		data = []byte{}
	}
	k := unmatchedKey[K]{ts: t, right: in.isRight, key: r.Key}
	same, err := p.unmatchedOf(k)
	if err != nil {
		return err
	}
	if n := len(same); n > 0 {
		k.seq = same[n-1].seq + 1
	}
	return p.unmatched.Put(k, data)
}

// forwardJoined forwards the join of l and r, stamped with the later of
// the record's timestamp and the other's (at otherTS). The other record, if
// it waited unmatched, is matched now.
func (p *streamProc[K, L, R, VOut]) forwardJoined(ctx context.Context, r kstreams.Record[K, either[L, R]], l *L, rv *R, otherTS time.Time, otherLeft bool) error {
	if p.unmatched != nil {
		if err := p.dropUnmatched(r.Key, otherTS.UnixNano(), !otherLeft); err != nil {
			return err
		}
	}
	out, err := p.join(r.Key, l, rv)
	if err != nil {
		return err
	}
	ts := r.Timestamp
	if otherTS.After(ts) {
		ts = otherTS
	}
	return p.pc.Forward(ctx, kstreams.Record[K, VOut]{Key: r.Key, Value: out, Timestamp: ts, Headers: r.Headers, Origin: r.Origin})
}

// unmatchedOf returns the keys of the unmatched records of k's key, time
// and side, in arrival order.
func (p *streamProc[K, L, R, VOut]) unmatchedOf(k unmatchedKey[K]) ([]unmatchedKey[K], error) {
	want, err := p.keys.Serialize(nil, p.unmatched.Name(), nil, k.key)
	if err != nil {
		return nil, err
	}
	from, to := k, k
	from.seq, to.seq = 0, math.MaxUint64
	var found []unmatchedKey[K]
	for e, err := range p.unmatched.Range(from, to) {
		if err != nil {
			return nil, err
		}
		// The range holds the keys that extend this one's encoding too.
		got, err := p.keys.Serialize(nil, p.unmatched.Name(), nil, e.Key.key)
		if err != nil {
			return nil, err
		}
		if string(got) == string(want) {
			found = append(found, e.Key)
		}
	}
	return found, nil
}

// dropUnmatched removes the unmatched records of key at t of one side.
func (p *streamProc[K, L, R, VOut]) dropUnmatched(key K, t int64, right bool) error {
	found, err := p.unmatchedOf(unmatchedKey[K]{ts: t, right: right, key: key})
	if err != nil {
		return err
	}
	for _, k := range found {
		if err := p.unmatched.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// forwardAlone forwards an unmatched record with a nil other side.
func (p *streamProc[K, L, R, VOut]) forwardAlone(ctx context.Context, key K, in either[L, R], ts time.Time, src kstreams.Record[K, either[L, R]]) error {
	out, err := p.join(key, in.left, in.right)
	if err != nil {
		return err
	}
	return p.pc.Forward(ctx, kstreams.Record[K, VOut]{Key: key, Value: out, Timestamp: ts, Headers: src.Headers, Origin: src.Origin})
}

// emitClosed forwards, in timestamp order, the unmatched records whose
// window has closed, and removes them.
func (p *streamProc[K, L, R, VOut]) emitClosed(ctx context.Context, r kstreams.Record[K, either[L, R]]) error {
	limit := p.observed - int64(p.w.diff) - int64(p.w.grace) // closed: timestamp < limit
	var due []store.KV[unmatchedKey[K], []byte]
	for e, err := range p.unmatched.All() {
		if err != nil {
			return err
		}
		if e.Key.ts >= limit {
			break
		}
		due = append(due, e)
	}
	for _, e := range due {
		var in either[L, R]
		if e.Key.right {
			v, err := p.rightValues.Deserialize(p.unmatched.Name(), nil, e.Value)
			if err != nil {
				return fmt.Errorf("decoding an unmatched record: %w", err)
			}
			in = either[L, R]{right: &v, isRight: true}
		} else {
			v, err := p.leftValues.Deserialize(p.unmatched.Name(), nil, e.Value)
			if err != nil {
				return fmt.Errorf("decoding an unmatched record: %w", err)
			}
			in = either[L, R]{left: &v}
		}
		if err := p.forwardAlone(ctx, e.Key.key, in, time.Unix(0, e.Key.ts).UTC(), kstreams.Record[K, either[L, R]]{Origin: r.Origin}); err != nil {
			return err
		}
		if err := p.unmatched.Delete(e.Key); err != nil {
			return err
		}
	}
	return nil
}

// putDistinct puts v for key at ts in a side's window store, after the
// records already there at the same time: the window's end tells them
// apart (start + 1ns for the first, + 2ns for the second, ...).
func putDistinct[K, V any](ws store.WindowStore[K, V], key K, ts time.Time, v V) error {
	n := 0
	for _, err := range ws.Fetch(key, ts, ts) {
		if err != nil {
			return err
		}
		n++
	}
	return ws.Put(key, store.Window{Start: ts, End: ts.Add(time.Duration(n+1) * time.Nanosecond)}, v)
}

// unmatchedKey orders the records waiting for a match by timestamp, then
// side (right first, as Kafka Streams forwards them), then key, then
// arrival.
type unmatchedKey[K any] struct {
	ts    int64
	right bool
	key   K
	seq   uint64
}

type unmatchedKeySerde[K any] struct{ keys serde.Serde[K] }

func (s unmatchedKeySerde[K]) Serialize(dst []byte, topic string, headers []serde.Header, k unmatchedKey[K]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(k.ts)^(1<<63))
	side := byte(1)
	if k.right {
		side = 0
	}
	dst = append(dst, side)
	dst, err := s.keys.Serialize(dst, topic, headers, k.key)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(dst, k.seq), nil
}

func (s unmatchedKeySerde[K]) Deserialize(topic string, headers []serde.Header, data []byte) (unmatchedKey[K], error) {
	if len(data) < 17 {
		return unmatchedKey[K]{}, fmt.Errorf("unmatched-record key of %d bytes: shorter than 17", len(data))
	}
	if data[8] > 1 {
		return unmatchedKey[K]{}, fmt.Errorf("unmatched-record key: side byte %d is neither 0 nor 1", data[8])
	}
	key, err := s.keys.Deserialize(topic, headers, data[9:len(data)-8])
	if err != nil {
		return unmatchedKey[K]{}, fmt.Errorf("unmatched-record key: %w", err)
	}
	return unmatchedKey[K]{
		ts:    int64(binary.BigEndian.Uint64(data) ^ (1 << 63)),
		right: data[8] == 0,
		key:   key,
		seq:   binary.BigEndian.Uint64(data[len(data)-8:]),
	}, nil
}
