package window

import (
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// Store declares the state of one windowed aggregation: a window store
// named name holding a Stamped[A] per key and window, and a key-value store
// named name+"-pending" listing the windows not yet emitted by EmitFinal
// (empty under EmitOnUpdate). Declare both in the topology:
//
//	hourly := window.Tumbling(time.Hour).Grace(5 * time.Minute)
//	st := window.NewStore("hourly-counts", hourly, serde.String, serde.Int64, memory.Supplier())
//	kstreams.AddStore(b, st.Specs()...)
//	counts := window.Count(events, "hourly-count", st)
//
// A Store serves one aggregation. Other processors may read its windows
// with kstreams.GetStore[store.WindowStore[K, window.Stamped[A]]] after
// attaching the store with kstreams.WithStores(st.Name()).
type Store[K, A any] struct {
	name      string
	windows   Windows
	keys      serde.Serde[K]
	aggs      serde.Serde[A]
	retention time.Duration
	specs     []*store.Spec
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
// backends opened by supplier (store/memory, stores/pebble, ...). Add its
// Specs to the topology with kstreams.AddStore.
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
	s.specs = []*store.Spec{
		store.Windows(name, s.retention, keys, StampedSerde(serde.StoreForm(aggs)), supplier, cfg.specOpts...),
		pendingSpec(name, keys, supplier, cfg.specOpts),
	}
	return s
}

// Name returns the window store's name.
func (s *Store[K, A]) Name() string { return s.name }

// Windows returns the window definition.
func (s *Store[K, A]) Windows() Windows { return s.windows }

// Retention returns how long windows are kept, counted back from the latest
// window start.
func (s *Store[K, A]) Retention() time.Duration { return s.retention }

// Specs returns the store specs to declare with kstreams.AddStore: the
// window store and the pending-emission store.
func (s *Store[K, A]) Specs() []*store.Spec { return s.specs }

// SessionStore declares the state of one session aggregation: a session
// store (store.SessionStore) named name holding a Stamped[A] per key and
// session, and a key-value store named name+"-pending" listing the sessions
// not yet emitted by EmitFinal. Declare both with
// kstreams.AddStore(b, st.Specs()...).
type SessionStore[K, A any] struct {
	name      string
	windows   SessionWindows
	keys      serde.Serde[K]
	aggs      serde.Serde[A]
	retention time.Duration
	specs     []*store.Spec
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
	s.specs = []*store.Spec{
		store.Sessions(name, s.retention, keys, StampedSerde(serde.StoreForm(aggs)), supplier, cfg.specOpts...),
		pendingSpec(name, keys, supplier, cfg.specOpts),
	}
	return s
}

// Name returns the session store's name.
func (s *SessionStore[K, A]) Name() string { return s.name }

// Windows returns the session definition.
func (s *SessionStore[K, A]) Windows() SessionWindows { return s.windows }

// Retention returns how long sessions are kept after their end.
func (s *SessionStore[K, A]) Retention() time.Duration { return s.retention }

// Specs returns the store specs to declare with kstreams.AddStore: the
// session store and the pending-emission store.
func (s *SessionStore[K, A]) Specs() []*store.Spec { return s.specs }

// pendingSpec declares the index of windows awaiting final emission. Its
// keys order by close time (see pendingSerde); values are empty.
func pendingSpec[K any](name string, keys serde.Serde[K], supplier store.Supplier, opts []store.SpecOption) *store.Spec {
	return store.KeyValue(PendingStoreName(name), pendingSerde[K]{keys: serde.StoreForm(keys)}, serde.Bytes, supplier, opts...)
}

// PendingStoreName returns the name of the pending-emission store that
// NewStore and NewSessionStore declare next to the store named name.
func PendingStoreName(name string) string { return name + "-pending" }
