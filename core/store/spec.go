package store

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// Supplier opens the Backend of one store for one task. It is called when a
// task is created (on partition assignment) and the Backend is closed when
// the task is closed.
type Supplier func(BackendContext) (Backend, error)

// BackendContext tells a Supplier which store instance to open.
type BackendContext struct {
	// App is the application id. Backends shared by many applications
	// (remote stores, buckets) namespace their data by it.
	App string
	// Store is the store's name, unique in the topology.
	Store string
	// Task identifies the task owning this instance, e.g. "0_3" for
	// sub-topology 0, partition 3.
	Task string
	// Partition is the task's partition.
	Partition int32
	// Dir is a directory reserved for this store instance (it exists).
	// Backends that keep files keep them here. Empty for the test driver
	// and when the application has no state directory.
	Dir string
	// Logger is the application's logger.
	Logger *slog.Logger
	// MemoryBudget is the part of the application's memory budget
	// (kstreams.WithMemoryBudget) for the stores of the instance, all of
	// them together; 0 when no budget applies (the test driver). Backends
	// that cache or buffer in memory size themselves from it when not
	// configured explicitly, as stores/pebble does with its block cache
	// and memtables.
	MemoryBudget int64
	// StoreInstances is how many store instances share MemoryBudget at
	// most: every store of the topology times its partitions, as if this
	// instance owned every task (so with several instances, each store's
	// share is smaller than it could be). 0 when MemoryBudget is 0.
	StoreInstances int
}

// Kind is the shape of a store.
type Kind uint8

// Store kinds.
const (
	KindKeyValue Kind = iota + 1
	KindWindow
)

func (k Kind) String() string {
	switch k {
	case KindKeyValue:
		return "key-value"
	case KindWindow:
		return "window"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Spec declares a store of a topology: its name, the backend that holds it,
// whether it is changelogged, and the typed view processors get. KeyValue,
// Windows and Sessions build one, wrapped in a TypedSpec that records the
// typed view; add it to a topology with kstreams.AddStore.
type Spec struct {
	name      string
	kind      Kind
	supplier  Supplier
	logged    bool
	segment   time.Duration // window stores only
	retention time.Duration // window stores only
	open      func(Backend, string) any
	source    *SourceChangelog
}

// SourceChangelog is the topic a store is restored from when it has no
// changelog of its own (see WithSourceChangelog).
type SourceChangelog struct {
	// Topic is a source topic of the sub-topology that writes the store:
	// the task of partition p restores from partition p.
	Topic string
	// Apply writes one record of Topic into the store: st is the typed
	// store (the KeyValueStore or WindowStore processors get) over the
	// backend being restored. A record Apply fails is logged and skipped,
	// as a deserialization error policy that lets the app commit past a
	// record would have skipped it.
	Apply func(st any, key, value []byte, headers []serde.Header, timestamp time.Time) error
}

// Name returns the store's name.
func (s *Spec) Name() string { return s.name }

// Kind returns the store's shape.
func (s *Spec) Kind() Kind { return s.kind }

// Supplier returns the function that opens the store's Backend.
func (s *Spec) Supplier() Supplier { return s.supplier }

// Logged reports whether writes to the store are recorded in a changelog
// topic (the default).
func (s *Spec) Logged() bool { return s.logged }

// Source returns where the store is restored from when its source topic
// serves as its changelog (see WithSourceChangelog), or nil.
func (s *Spec) Source() *SourceChangelog { return s.source }

// Retention returns a window store's retention; ok is false for key-value
// stores.
func (s *Spec) Retention() (d time.Duration, ok bool) {
	return s.retention, s.kind == KindWindow
}

// Open returns the typed store (a KeyValueStore or WindowStore) over b.
// topic is the name serializers see: the changelog topic, or the store name
// when the store is not logged.
func (s *Spec) Open(b Backend, topic string) any { return s.open(b, topic) }

// TypedSpec is a Spec whose processors get an S: a KeyValueStore,
// WindowStore or SessionStore of the spec's key and value types. KeyValue,
// Windows and Sessions return one; kstreams.AddStore turns it into a typed
// handle that attaches the store to processors and gets it in their Init.
type TypedSpec[S any] struct {
	*Spec
}

// SpecOption configures a Spec.
type SpecOption func(*Spec)

// WithoutChangelog disables the store's changelog topic. Use it for backends
// that are durable by themselves (remote stores) or for state that may be
// lost: without a changelog, a store's contents do not follow its partition
// to another instance.
func WithoutChangelog() SpecOption {
	return func(s *Spec) { s.logged = false }
}

// WithSourceChangelog makes a source topic the store's changelog: the
// store writes no changelog topic of its own, and a task restores it by
// applying its partition of topic, from the log start up to the group's
// committed offset (records after it are processed again, and write the
// store then). It fits a store whose content is a function of that topic
// alone, record by record, such as a table materialized from a topic
// (Kafka Streams' source-topic changelog). apply writes one record into
// the typed store; see SourceChangelog. The store is rebuilt at every
// open: a persistent backend's content is not kept across restarts.
func WithSourceChangelog(topic string, apply func(st any, key, value []byte, headers []serde.Header, timestamp time.Time) error) SpecOption {
	return func(s *Spec) {
		s.logged = false
		s.source = &SourceChangelog{Topic: topic, Apply: apply}
	}
}
