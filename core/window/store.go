package window

import (
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Store describes the state of one windowed aggregation: a window store
// named name holding a Stamped[A] per key and window, and a key-value store
// named name+"-pending" listing the windows not yet emitted by EmitFinal
// (empty under EmitOnUpdate). The aggregation that uses it declares both in
// its topology:
//
//	hourly := window.Tumbling(time.Hour).Grace(5 * time.Minute)
//	st := window.NewStore("hourly-counts", hourly, serde.String, serde.Int64, memory.Supplier())
//	counts := window.Count(events, "hourly-count", st)
//
// A Store serves one aggregation. Other processors may read its windows:
// once the aggregation is added, attach st.Handle() with
// kstreams.WithStores and get the store in Init with st.Handle().Get(pc).
type Store[K, A any] struct {
	name      string
	windows   Windows
	keys      serde.Serde[K]
	aggs      serde.Serde[A]
	retention time.Duration
	spec      store.TypedSpec[store.WindowStore[K, Stamped[A]]]
	pending   store.TypedSpec[store.KeyValueStore[pending[K], []byte]]
	handle    kstreams.Store[store.WindowStore[K, Stamped[A]]]
	err       error
}

// StoreOption configures a Store or SessionStore.
type StoreOption func(*storeConfig)

type storeConfig struct {
	retention time.Duration
	specOpts  []store.SpecOption
}

// Retention keeps windows (or sessions) for d instead of the minimum the
// definition needs (its maximum window size plus the grace period; for
// sliding windows twice the time difference plus grace; for sessions twice
// the gap plus grace). A d below that minimum is raised to it. Longer
// retention serves interactive queries of older windows; it does not
// reopen closed windows.
func Retention(d time.Duration) StoreOption {
	return func(c *storeConfig) { c.retention = d }
}

// SpecOptions passes options to the underlying store specs, for example
// store.WithSegmentInterval or store.WithoutChangelog.
func SpecOptions(opts ...store.SpecOption) StoreOption {
	return func(c *storeConfig) { c.specOpts = append(c.specOpts, opts...) }
}

// NewStore declares the stores of an aggregation over windows w, with keys
// and aggregates encoded by the store form of the given serdes
// (serde.StoreForm: order-preserving for the built-in numbers) and kept in
// backends opened by supplier (store/memory, stores/pebble, ...). The
// aggregation given the Store (Aggregate, Count) declares its stores in the
// topology.
func NewStore[K, A any](name string, w Windows, keys serde.Serde[K], aggs serde.Serde[A], supplier store.Supplier, opts ...StoreOption) *Store[K, A] {
	var cfg storeConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &Store[K, A]{name: name, windows: w, keys: keys, aggs: aggs}
	switch {
	case w == nil:
		s.err = fmt.Errorf("window store %s: nil window definition", name)
	case keys == nil || aggs == nil:
		s.err = fmt.Errorf("window store %s: nil serde", name)
	default:
		s.err = w.Validate()
	}
	if w != nil {
		s.retention = max(w.retention(), cfg.retention)
	}
	s.spec = store.Windows(name, s.retention, keys, StampedSerde(serde.StoreForm(aggs)), supplier, cfg.specOpts...)
	s.pending = pendingSpec(name, keys, supplier, cfg.specOpts)
	return s
}

// Name returns the window store's name.
func (s *Store[K, A]) Name() string { return s.name }

// Windows returns the window definition.
func (s *Store[K, A]) Windows() Windows { return s.windows }

// Retention returns how long windows are kept, counted back from the latest
// window start.
func (s *Store[K, A]) Retention() time.Duration { return s.retention }

// Handle returns the window store's handle in the topology of the
// aggregation that uses the Store: attach it to other processors with
// kstreams.WithStores to read the windows. It is the zero handle (an error
// at Build if attached) until an aggregation has been added with this Store.
func (s *Store[K, A]) Handle() kstreams.Store[store.WindowStore[K, Stamped[A]]] { return s.handle }

// declare declares the Store's window and pending-emission stores in b.
func (s *Store[K, A]) declare(b *kstreams.Builder) (kstreams.Store[store.WindowStore[K, Stamped[A]]], kstreams.Store[store.KeyValueStore[pending[K], []byte]]) {
	s.handle = kstreams.AddStore(b, s.spec)
	return s.handle, kstreams.AddStore(b, s.pending)
}

// SessionStore describes the state of one session aggregation: a session
// store (store.SessionStore) named name holding a Stamped[A] per key and
// session, and a key-value store named name+"-pending" listing the sessions
// not yet emitted by EmitFinal. The aggregation that uses it
// (AggregateSessions, CountSessions) declares both in its topology.
type SessionStore[K, A any] struct {
	name      string
	windows   SessionWindows
	keys      serde.Serde[K]
	aggs      serde.Serde[A]
	retention time.Duration
	spec      store.TypedSpec[store.SessionStore[K, Stamped[A]]]
	pending   store.TypedSpec[store.KeyValueStore[pending[K], []byte]]
	handle    kstreams.Store[store.SessionStore[K, Stamped[A]]]
	err       error
}

// NewSessionStore declares the stores of a session aggregation over
// sessions w. See NewStore.
func NewSessionStore[K, A any](name string, w SessionWindows, keys serde.Serde[K], aggs serde.Serde[A], supplier store.Supplier, opts ...StoreOption) *SessionStore[K, A] {
	var cfg storeConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &SessionStore[K, A]{name: name, windows: w, keys: keys, aggs: aggs, err: w.Validate()}
	if s.err == nil && (keys == nil || aggs == nil) {
		s.err = fmt.Errorf("session store %s: nil serde", name)
	}
	s.retention = max(w.retention(), cfg.retention)
	s.spec = store.Sessions(name, s.retention, keys, StampedSerde(serde.StoreForm(aggs)), supplier, cfg.specOpts...)
	s.pending = pendingSpec(name, keys, supplier, cfg.specOpts)
	return s
}

// Name returns the session store's name.
func (s *SessionStore[K, A]) Name() string { return s.name }

// Windows returns the session definition.
func (s *SessionStore[K, A]) Windows() SessionWindows { return s.windows }

// Retention returns how long sessions are kept after their end.
func (s *SessionStore[K, A]) Retention() time.Duration { return s.retention }

// Handle returns the session store's handle in the topology of the
// aggregation that uses the SessionStore: attach it to other processors
// with kstreams.WithStores to read the sessions. It is the zero handle (an
// error at Build if attached) until an aggregation has been added with this
// SessionStore.
func (s *SessionStore[K, A]) Handle() kstreams.Store[store.SessionStore[K, Stamped[A]]] {
	return s.handle
}

// declare declares the SessionStore's session and pending-emission stores
// in b.
func (s *SessionStore[K, A]) declare(b *kstreams.Builder) (kstreams.Store[store.SessionStore[K, Stamped[A]]], kstreams.Store[store.KeyValueStore[pending[K], []byte]]) {
	s.handle = kstreams.AddStore(b, s.spec)
	return s.handle, kstreams.AddStore(b, s.pending)
}

// pendingSpec declares the index of windows awaiting final emission. Its
// keys order by close time (see pendingSerde); values are empty.
func pendingSpec[K any](name string, keys serde.Serde[K], supplier store.Supplier, opts []store.SpecOption) store.TypedSpec[store.KeyValueStore[pending[K], []byte]] {
	return store.KeyValue(PendingStoreName(name), pendingSerde[K]{keys: serde.StoreForm(keys)}, serde.Bytes, supplier, opts...)
}

// PendingStoreName returns the name of the pending-emission store that
// NewStore and NewSessionStore declare next to the store named name.
func PendingStoreName(name string) string { return name + "-pending" }
