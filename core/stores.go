package kstreams

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/kstreams-go/kstreams/core/store"
)

// Store is a typed handle to a store of a topology. AddStore returns it;
// attach it to the processors that use the store with WithStores, and get
// the task's instance, an S, in a processor's Init with Get:
//
//	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
//	kstreams.Process(words, "count", func() kstreams.Processor[string, string, string, int64] {
//		return &counter{counts: counts}
//	}, kstreams.WithStores(counts))
//	...
//	func (c *counter) Init(pc kstreams.ProcessorContext[string, int64]) (err error) {
//		c.kv, err = c.counts.Get(pc) // a store.KeyValueStore[string, int64]
//		return err
//	}
//
// S is the typed view of the spec the store was declared with:
// store.KeyValueStore[K, V] for store.KeyValue, store.WindowStore[K, V] for
// store.Windows, store.SessionStore[K, V] for store.Sessions. The zero Store
// is invalid: attaching it is a Build error.
type Store[S any] struct {
	spec *store.Spec
}

// AddStore declares the store spec in b's topology and returns its typed
// handle. A store name is declared once per topology. A declared store must
// be attached to at least one processor (WithStores).
//
// Builder functions of add-on packages declare the stores they need
// themselves, on their parent node's Builder (Node.Builder): window.Aggregate
// declares its window and pending-emission stores, for example.
func AddStore[S any](b *Builder, spec store.TypedSpec[S]) Store[S] {
	if b == nil {
		return Store[S]{}
	}
	s := spec.Spec
	switch {
	case s == nil:
		b.errorf("AddStore: nil store spec")
		return Store[S]{}
	case slices.ContainsFunc(b.stores, func(o *store.Spec) bool { return o.Name() == s.Name() }):
		b.errorf("store name %q is declared twice", s.Name())
		return Store[S]{}
	case s.Supplier() == nil:
		b.errorf("store %q has no backend supplier", s.Name())
		return Store[S]{}
	}
	b.stores = append(b.stores, s)
	return Store[S]{spec: s}
}

// Name returns the store's name: what the state directory, the changelog
// topic (<application id>-<name>-changelog) and kstreamstest.GetStore know
// it by. It is empty for the zero Store.
func (s Store[S]) Name() string {
	if s.spec == nil {
		return ""
	}
	return s.spec.Name()
}

// Get returns the task's instance of the store. Call it from the Init of a
// processor the store is attached to (WithStores), with the
// ProcessorContext Init receives.
func (s Store[S]) Get(pc StoreContext) (S, error) {
	var zero S
	if s.spec == nil {
		return zero, fmt.Errorf("processor %s: a zero kstreams.Store handle (declare stores with kstreams.AddStore)", pc.Node())
	}
	st, err := pc.Store(s.spec.Name())
	if err != nil {
		return zero, err
	}
	typed, ok := st.(S)
	if !ok {
		// AddStore ties S to the spec's typed view, so this means a
		// StoreContext that is not the runtime's.
		return zero, fmt.Errorf("processor %s: store %q is a %T, not a %v", pc.Node(), s.spec.Name(), st, reflect.TypeFor[S]())
	}
	return typed, nil
}

func (s Store[S]) storeSpec() *store.Spec { return s.spec }

// StoreContext is what Store.Get needs of a processor's context: every
// ProcessorContext is a StoreContext.
type StoreContext interface {
	// Node returns the processor's node name.
	Node() string
	// Store returns the store named name, untyped.
	Store(name string) (any, error)
}

// AnyStore is a store handle of any type, as WithStores takes it: every
// Store[S] is an AnyStore.
type AnyStore interface {
	storeSpec() *store.Spec
}
