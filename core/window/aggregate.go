package window

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Option configures a windowed aggregation.
type Option func(*config)

type config struct {
	final     bool
	lateCount *atomic.Int64
	lateWire  any // a lateWire[K, V]
}

// lateWire attaches the consumers of late records to the node that carries
// them; name is the aggregation's name.
type lateWire[K, V any] func(name string, late kstreams.Node[K, V])

// EmitOnUpdate makes the aggregation forward a window's new result after
// every record that changes it (the default). Downstream sees a stream of
// updates per window, the last of which is final.
func EmitOnUpdate() Option { return func(c *config) { c.final = false } }

// EmitFinal makes the aggregation forward each window's result exactly once,
// when the window closes: when stream time reaches its end plus the grace
// period. Nothing is forwarded for windows still open. Closed windows are
// found through the pending-emission store (see Store), checked on every
// record, so the check costs one seek when nothing is due; results carry
// the timestamp of the window's latest record. Stream time is the greatest
// timestamp of the records the aggregation has processed in its task, so a
// window closes once a later record arrives (on any key of the task).
//
// After a crash, records since the last commit are processed again, so a
// window closed by one of them can be emitted again (at-least-once).
func EmitFinal() Option { return func(c *config) { c.final = true } }

// CountLate adds the number of late records the aggregation sees (dropped,
// or sent to the late-record output) to n. Several aggregations and tasks
// may share one counter.
func CountLate(n *atomic.Int64) Option { return func(c *config) { c.lateCount = n } }

// LateRecords sends late records (records all of whose windows are closed)
// to a side output instead of dropping them: the aggregation gets a second
// output node, named "<name>-late", of the input's key and value types, and
// wire attaches its consumers, for example a sink:
//
//	window.LateRecords(func(late kstreams.Node[string, Event]) {
//		kstreams.Sink(late, "late-events", "events-late", serde.String, eventSerde)
//	})
//
// Records are forwarded unchanged. With this option the aggregation is
// three nodes: the aggregation processor "<name>", its results
// "<name>-results" (the node Aggregate returns) and "<name>-late". K and V
// must be the aggregation's input types; otherwise the topology fails when
// its tasks start.
//
// By default late records are dropped, counted (see CountLate) and logged
// at most once every 10 seconds per task, with the number dropped since the
// previous log line.
func LateRecords[K, V any](wire func(late kstreams.Node[K, V])) Option {
	return func(c *config) {
		c.lateWire = lateWire[K, V](func(_ string, late kstreams.Node[K, V]) { wire(late) })
	}
}

// LateToTopic writes late records unchanged to topic (a dead-letter topic),
// encoded with the given serdes, through a sink named "<name>-late-sink".
// See LateRecords.
func LateToTopic[K, V any](topic string, keys serde.Serde[K], values serde.Serde[V]) Option {
	return func(c *config) {
		c.lateWire = lateWire[K, V](func(name string, late kstreams.Node[K, V]) {
			kstreams.Sink(late, name+"-late-sink", topic, keys, values)
		})
	}
}

// Identity is a result function that outputs the aggregate itself, for
// aggregations whose output type is their aggregate type:
//
//	window.Aggregate(events, "hourly-sum", st, zero, add, window.Identity)
func Identity[K, A any](_ Key[K], agg A) (A, error) { return agg, nil }

// Aggregate adds a node aggregating parent's records per key and window.
//
// The windows are those of st, the aggregation's store (see NewStore):
// tumbling, hopping, calendar or sliding. For each record, init creates the
// aggregate of a window the key does not have yet, add folds the record's
// value into it, and result maps a window's aggregate to the output value;
// A, the aggregate type, is what the store keeps. Output records are keyed
// by Key[K] (the key and the window) and are timestamped with the window's
// latest record; encode their keys with KeySerde in a sink.
//
// By default every update is forwarded (EmitOnUpdate); EmitFinal forwards
// each window once when it closes. A record whose windows are all closed
// is late: dropped and counted, or sent to a side output (LateRecords,
// LateToTopic). Windows are deleted from the store once the store's
// retention has passed.
//
// The aggregation keeps per-task state and serializes its records, so it is
// correct under every ordering mode; it needs its input partitioned by K
// (see kstreams.Through).
//
// Go has no method type parameters, so this is a function taking the parent
// node, like the builder functions of package kstreams.
func Aggregate[K, V, A, VOut any](parent kstreams.Node[K, V], name string, st *Store[K, A],
	init func() A, add func(key K, value V, agg A) (A, error), result func(key Key[K], agg A) (VOut, error),
	opts ...Option) kstreams.Node[Key[K], VOut] {
	a := &spec[K, V, A, VOut]{name: name, init: init, add: add, result: result}
	if st == nil {
		a.err = fmt.Errorf("window aggregation %s: nil store", name)
	} else {
		a.err = st.err
		a.keys, a.defn = st.keys, st.windows
		if b := parent.Builder(); b != nil {
			a.windowsStore, a.pendingStore = st.declare(b)
			a.stores = []kstreams.ProcessOption{kstreams.WithStores(a.windowsStore, a.pendingStore)}
		}
	}
	return build(parent, a, opts)
}

// AggregateSessions adds a node aggregating parent's records per key and
// session (see SessionWindows), with the sessions of st. It works as
// Aggregate, and merge combines the aggregates of two sessions that a
// record bridges (it is called with the aggregate built so far, starting
// from init, and the aggregate of each merged session in turn; then add
// folds in the record).
//
// Under EmitOnUpdate a session absorbed by a merge gets no further output:
// the merged session's output, whose window covers it, supersedes it.
func AggregateSessions[K, V, A, VOut any](parent kstreams.Node[K, V], name string, st *SessionStore[K, A],
	init func() A, add func(key K, value V, agg A) (A, error), merge func(key K, a, b A) (A, error),
	result func(key Key[K], agg A) (VOut, error), opts ...Option) kstreams.Node[Key[K], VOut] {
	a := &spec[K, V, A, VOut]{name: name, init: init, add: add, merge: merge, result: result, session: true}
	if st == nil {
		a.err = fmt.Errorf("session aggregation %s: nil store", name)
	} else {
		a.err = st.err
		a.keys, a.sessions = st.keys, st.windows
		if b := parent.Builder(); b != nil {
			a.sessionStore, a.pendingStore = st.declare(b)
			a.stores = []kstreams.ProcessOption{kstreams.WithStores(a.sessionStore, a.pendingStore)}
		}
	}
	if a.err == nil && merge == nil {
		a.err = fmt.Errorf("session aggregation %s: nil merge function", name)
	}
	return build(parent, a, opts)
}

// Count adds a node counting parent's records per key and window of st.
// See Aggregate.
func Count[K, V any](parent kstreams.Node[K, V], name string, st *Store[K, int64], opts ...Option) kstreams.Node[Key[K], int64] {
	return Aggregate(parent, name, st, zero, countOne[K, V], Identity[K, int64], opts...)
}

// CountSessions adds a node counting parent's records per key and session
// of st. See AggregateSessions.
func CountSessions[K, V any](parent kstreams.Node[K, V], name string, st *SessionStore[K, int64], opts ...Option) kstreams.Node[Key[K], int64] {
	return AggregateSessions(parent, name, st, zero, countOne[K, V], sum[K], Identity[K, int64], opts...)
}

func zero() int64                                         { return 0 }
func countOne[K, V any](_ K, _ V, n int64) (int64, error) { return n + 1, nil }
func sum[K any](_ K, a, b int64) (int64, error)           { return a + b, nil }

// spec is an aggregation as declared; each task instantiates a processor
// from it.
type spec[K, V, A, VOut any] struct {
	name         string
	init         func() A
	add          func(K, V, A) (A, error)
	merge        func(K, A, A) (A, error)
	result       func(Key[K], A) (VOut, error)
	session      bool
	defn         Windows
	sessions     SessionWindows
	windowsStore kstreams.Store[store.WindowStore[K, Stamped[A]]]  // all but sessions
	sessionStore kstreams.Store[store.SessionStore[K, Stamped[A]]] // sessions
	pendingStore kstreams.Store[store.KeyValueStore[pending[K], []byte]]
	stores       []kstreams.ProcessOption // attaches the stores, if declared
	keys         serde.Serde[K]
	cfg          config
	err          error
}

func build[K, V, A, VOut any](parent kstreams.Node[K, V], a *spec[K, V, A, VOut], opts []Option) kstreams.Node[Key[K], VOut] {
	for _, o := range opts {
		o(&a.cfg)
	}
	if a.err == nil {
		switch {
		case a.init == nil || a.add == nil || a.result == nil:
			a.err = fmt.Errorf("window aggregation %s: nil init, add or result function", a.name)
		}
	}
	wire, ok := a.cfg.lateWire.(lateWire[K, V])
	if a.cfg.lateWire != nil && !ok && a.err == nil {
		a.err = fmt.Errorf("window aggregation %s: the LateRecords/LateToTopic option is for other key or value types than the input's", a.name)
	}
	if b := parent.Builder(); b != nil && a.err != nil {
		// Reported at Build; the processor reports it again at Init in
		// case the topology is built anyway (it cannot be).
		b.AddError(a.err)
	}
	stores := a.stores
	if a.cfg.lateWire == nil {
		return kstreams.Process(parent, a.name, func() kstreams.Processor[K, V, Key[K], VOut] {
			return &directProc[K, V, A, VOut]{p: newProc(a)}
		}, stores...)
	}
	resultsName, lateName := a.name+"-results", a.name+"-late"
	node := kstreams.Process(parent, a.name, func() kstreams.Processor[K, V, struct{}, split[K, V, VOut]] {
		return &splitProc[K, V, A, VOut]{p: newProc(a), results: resultsName, late: lateName}
	}, stores...)
	results := kstreams.Func(node, resultsName, func(ctx context.Context, pc kstreams.ProcessorContext[Key[K], VOut], r kstreams.Record[struct{}, split[K, V, VOut]]) error {
		return pc.Forward(ctx, r.Value.result)
	})
	late := kstreams.Func(node, lateName, func(ctx context.Context, pc kstreams.ProcessorContext[K, V], r kstreams.Record[struct{}, split[K, V, VOut]]) error {
		return pc.Forward(ctx, r.Value.input)
	})
	if ok {
		wire(a.name, late)
	}
	return results
}

// split carries either a result or a late input record from the
// aggregation processor to its two output nodes.
type split[K, V, VOut any] struct {
	result kstreams.Record[Key[K], VOut]
	input  kstreams.Record[K, V]
}

// host is what the aggregation uses of its ProcessorContext, whatever the
// context's output types.
type host interface {
	Store(name string) (any, error)
	Logger() *slog.Logger
	Node() string
}

type directProc[K, V, A, VOut any] struct {
	p *proc[K, V, A, VOut]
}

func (d *directProc[K, V, A, VOut]) Init(pc kstreams.ProcessorContext[Key[K], VOut]) error {
	d.p.out = pc.Forward
	return d.p.initStores(pc)
}

func (d *directProc[K, V, A, VOut]) Process(ctx context.Context, r kstreams.Record[K, V]) error {
	return d.p.process(ctx, r)
}

func (d *directProc[K, V, A, VOut]) Close() error { return nil }

type splitProc[K, V, A, VOut any] struct {
	p             *proc[K, V, A, VOut]
	results, late string
}

func (s *splitProc[K, V, A, VOut]) Init(pc kstreams.ProcessorContext[struct{}, split[K, V, VOut]]) error {
	s.p.out = func(ctx context.Context, r kstreams.Record[Key[K], VOut]) error {
		return pc.ForwardTo(ctx, s.results, kstreams.Record[struct{}, split[K, V, VOut]]{
			Value: split[K, V, VOut]{result: r}, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin})
	}
	s.p.lateOut = func(ctx context.Context, r kstreams.Record[K, V]) error {
		return pc.ForwardTo(ctx, s.late, kstreams.Record[struct{}, split[K, V, VOut]]{
			Value: split[K, V, VOut]{input: r}, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin})
	}
	return s.p.initStores(pc)
}

func (s *splitProc[K, V, A, VOut]) Process(ctx context.Context, r kstreams.Record[K, V]) error {
	return s.p.process(ctx, r)
}

func (s *splitProc[K, V, A, VOut]) Close() error { return nil }

// lateLogEvery is the least time between two log lines about dropped late
// records, per task and aggregation.
const lateLogEvery = 10 * time.Second

// proc is one task's instance of an aggregation.
type proc[K, V, A, VOut any] struct {
	*spec[K, V, A, VOut]
	host    host
	out     func(context.Context, kstreams.Record[Key[K], VOut]) error
	lateOut func(context.Context, kstreams.Record[K, V]) error // nil: drop

	windows  store.WindowStore[K, Stamped[A]]  // all but sessions
	sessStor store.SessionStore[K, Stamped[A]] // sessions
	pending  store.KeyValueStore[pending[K], []byte]

	// mu serializes records: under the async ordering modes Process is
	// called concurrently for different keys, but emission and the caches
	// below span keys.
	mu      sync.Mutex
	buf     []Window
	lastCal Window // the calendar window computed last: most records fall in it
	due     []pending[K]
	// nextDue is the earliest close time in the pending store, when
	// nextKnown: until stream time reaches it, nothing is due and the
	// store is not read.
	nextDue   int64
	nextKnown bool

	observed  int64     // stream time: the greatest record timestamp processed
	lateSince int64     // late records dropped since the last log line
	lastLog   time.Time // wall-clock time of the last log line
}

func newProc[K, V, A, VOut any](s *spec[K, V, A, VOut]) *proc[K, V, A, VOut] {
	return &proc[K, V, A, VOut]{spec: s, observed: math.MinInt64}
}

// storeName returns the name of the aggregation's window or session store.
func (p *proc[K, V, A, VOut]) storeName() string {
	if p.session {
		return p.sessionStore.Name()
	}
	return p.windowsStore.Name()
}

func (p *proc[K, V, A, VOut]) initStores(h host) error {
	if p.err != nil {
		return p.err
	}
	p.host = h
	var err error
	if p.session {
		p.sessStor, err = p.sessionStore.Get(h)
	} else {
		p.windows, err = p.windowsStore.Get(h)
	}
	if err != nil {
		return err
	}
	p.pending, err = p.pendingStore.Get(h)
	return err
}

// streamTime advances the aggregation's stream time to r if r is later and
// returns it, in Unix nanoseconds. It is the greatest timestamp of the
// records this instance has processed, record by record: the task's stream
// time can be ahead of the record being processed (a source that decodes a
// batch observes every timestamp first), which would close windows early.
func (p *proc[K, V, A, VOut]) streamTime(r time.Time) int64 {
	if t := r.UnixNano(); t > p.observed {
		p.observed = t
	}
	return p.observed
}

func (p *proc[K, V, A, VOut]) process(ctx context.Context, r kstreams.Record[K, V]) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.streamTime(r.Timestamp)
	if p.cfg.final {
		// Emit what closed before writing: a write can expire old windows.
		if err := p.emitDue(ctx, now, r.Origin); err != nil {
			return err
		}
	}
	var (
		applied bool
		err     error
	)
	if p.session {
		applied, err = p.processSession(ctx, r, now)
	} else {
		switch d := p.defn.(type) {
		case FixedWindows:
			p.buf = d.AppendWindowsAt(p.buf[:0], r.Timestamp)
			applied, err = p.processAssigned(ctx, r, now, p.buf, d.grace)
		case CalendarWindows:
			if w := p.lastCal; w.Start.IsZero() || r.Timestamp.Before(w.Start) || !r.Timestamp.Before(w.End) {
				p.lastCal = d.WindowAt(r.Timestamp)
			}
			p.buf = append(p.buf[:0], p.lastCal)
			applied, err = p.processAssigned(ctx, r, now, p.buf, d.grace)
		case SlidingWindows:
			applied, err = p.processSliding(ctx, r, now, d)
		default:
			err = fmt.Errorf("unsupported window definition %T", d)
		}
	}
	if err != nil {
		return fmt.Errorf("window aggregation %s: %w", p.name, err)
	}
	if !applied {
		return p.onLate(ctx, r, now)
	}
	return nil
}

// processAssigned aggregates r into its windows ws (fixed or calendar
// windows, half-open: closed at End + grace).
func (p *proc[K, V, A, VOut]) processAssigned(ctx context.Context, r kstreams.Record[K, V], now int64, ws []Window, grace time.Duration) (bool, error) {
	applied := false
	for _, w := range ws {
		closeAt := w.End.UnixNano() + int64(grace)
		if now >= closeAt {
			continue
		}
		applied = true
		cur, found, err := p.windows.Get(r.Key, w)
		if err != nil {
			return applied, err
		}
		if !found {
			cur = Stamped[A]{Value: p.init(), Timestamp: r.Timestamp}
		}
		if err := p.update(ctx, r, w, cur, !found, closeAt); err != nil {
			return applied, err
		}
	}
	return applied, nil
}

// update folds r into window w's aggregate cur, stores it, and forwards it
// (EmitOnUpdate) or lists the window for final emission if it is new.
func (p *proc[K, V, A, VOut]) update(ctx context.Context, r kstreams.Record[K, V], w Window, cur Stamped[A], isNew bool, closeAt int64) error {
	v, err := p.add(r.Key, r.Value, cur.Value)
	if err != nil {
		return err
	}
	next := Stamped[A]{Value: v, Timestamp: cur.Timestamp}
	if r.Timestamp.After(next.Timestamp) {
		next.Timestamp = r.Timestamp
	}
	return p.put(ctx, r, w, next, isNew, closeAt)
}

// put stores agg for r's key and window w, then forwards it or lists it
// for final emission.
func (p *proc[K, V, A, VOut]) put(ctx context.Context, r kstreams.Record[K, V], w Window, agg Stamped[A], isNew bool, closeAt int64) error {
	var err error
	if p.session {
		err = p.sessStor.Put(r.Key, w, agg)
	} else {
		err = p.windows.Put(r.Key, w, agg)
	}
	if err != nil {
		return err
	}
	if p.cfg.final {
		if isNew {
			if p.nextKnown && closeAt < p.nextDue {
				p.nextDue = closeAt
			}
			return p.pending.Put(pending[K]{close: closeAt, win: w, key: r.Key}, []byte{})
		}
		return nil
	}
	return p.emit(ctx, r.Key, w, agg, r.Headers, r.Origin)
}

// emit forwards the result of window w.
func (p *proc[K, V, A, VOut]) emit(ctx context.Context, key K, w Window, agg Stamped[A], headers []kstreams.Header, origin kstreams.Origin) error {
	k := Key[K]{Key: key, Window: p.present(w)}
	v, err := p.result(k, agg.Value)
	if err != nil {
		return fmt.Errorf("result of window %v: %w", k.Window, err)
	}
	return p.out(ctx, kstreams.Record[Key[K], VOut]{Key: k, Value: v, Timestamp: agg.Timestamp, Headers: headers, Origin: origin})
}

// present returns w as output: calendar windows in their zone, others in
// UTC.
func (p *proc[K, V, A, VOut]) present(w Window) Window {
	if c, ok := p.defn.(CalendarWindows); ok && !p.session {
		return Window{Start: w.Start.In(c.loc), End: w.End.In(c.loc)}
	}
	return Window{Start: w.Start.UTC(), End: w.End.UTC()}
}

// emitBatch bounds the pending entries read at once.
const emitBatch = 256

// emitDue forwards, once each, the windows that are closed at stream time
// now, in the order they closed, and removes them from the pending store.
func (p *proc[K, V, A, VOut]) emitDue(ctx context.Context, now int64, origin kstreams.Origin) error {
	if p.nextKnown && now < p.nextDue {
		return nil
	}
	p.nextKnown = false // until this emission completes
	for {
		due := p.due[:0]
		next := int64(math.MaxInt64)
		for kv, err := range p.pending.All() {
			if err != nil {
				return fmt.Errorf("window aggregation %s: reading pending windows: %w", p.name, err)
			}
			if kv.Key.close > now {
				next = kv.Key.close
				break
			}
			due = append(due, kv.Key)
			if len(due) == emitBatch {
				break
			}
		}
		p.due = due
		for _, d := range due {
			var (
				agg   Stamped[A]
				found bool
				err   error
			)
			if p.session {
				agg, found, err = p.sessStor.Get(d.key, d.win)
			} else {
				agg, found, err = p.windows.Get(d.key, d.win)
			}
			if err != nil {
				return fmt.Errorf("window aggregation %s: %w", p.name, err)
			}
			if found {
				if err := p.emit(ctx, d.key, d.win, agg, nil, origin); err != nil {
					return fmt.Errorf("window aggregation %s: %w", p.name, err)
				}
			} else {
				p.host.Logger().Warn("window listed for emission is not in the store; skipped",
					"store", p.storeName(), "key", d.key, "window", d.win.String())
			}
			if err := p.pending.Delete(d); err != nil {
				return fmt.Errorf("window aggregation %s: %w", p.name, err)
			}
		}
		clear(p.due)
		if len(due) < emitBatch {
			p.nextDue, p.nextKnown = next, true
			return nil
		}
	}
}

// onLate handles a record whose windows are all closed.
func (p *proc[K, V, A, VOut]) onLate(ctx context.Context, r kstreams.Record[K, V], now int64) error {
	if p.cfg.lateCount != nil {
		p.cfg.lateCount.Add(1)
	}
	if p.lateOut != nil {
		return p.lateOut(ctx, r)
	}
	p.lateSince++
	if wall := time.Now(); wall.Sub(p.lastLog) >= lateLogEvery {
		p.host.Logger().Warn("dropped late records: their windows are closed (stream time is past window end + grace)",
			"dropped", p.lateSince, "timestamp", r.Timestamp, "stream_time", time.Unix(0, now).UTC(),
			"topic", r.Origin.Topic, "partition", r.Origin.Partition, "offset", r.Origin.Offset)
		p.lateSince, p.lastLog = 0, wall
	}
	return nil
}

var errUnexpectedWindow = errors.New("unexpected sliding window in the store")
