package kstreams

import "github.com/kstreams-go/kstreams/core/store"

// AddGlobalStore declares spec as a global store of b's topology and
// returns its typed handle. A global store holds every partition of its
// topic on every instance of the application (Kafka Streams' global state
// store): the application fills it from the topic before any task
// processes a record, and keeps applying the topic's new records while it
// runs. The processors of every task may read it (WithStores, then Get in
// Init, as for any store); its writes are refused, since it holds what its
// topic holds.
//
// spec must name its topic and how a record of it is applied with
// store.WithSourceChangelog; the topic must not be read by a source of the
// topology. A global store joins no sub-topologies: a processor that reads
// it stays in its own, so that its input needs no co-partitioning with the
// topic. The store is rebuilt from the topic's start at every start of the
// application (it has no changelog or checkpoint of its own).
//
// Updates are applied by their own consumer, concurrently with processing:
// a processor sees the store as of some recent point of the topic, with no
// ordering against its own input records (as in Kafka Streams). The
// backend must allow reads concurrent with writes (the in-memory and
// Pebble backends do).
func AddGlobalStore[S any](b *Builder, spec store.TypedSpec[S]) Store[S] {
	if b == nil {
		return Store[S]{}
	}
	if spec.Spec != nil && spec.Source() == nil {
		b.errorf("global store %q names no topic (declare it with store.WithSourceChangelog)", spec.Name())
		return Store[S]{}
	}
	h := AddStore(b, spec)
	if h.spec != nil {
		b.globals[h.spec.Name()] = true
	}
	return h
}
