package graph

import (
	"fmt"

	"github.com/kstreams-go/kstreams/core/store"
)

// A global store holds every partition of its topic on every instance of an
// application (Kafka Streams' global state store): whoever runs the
// topology (the runtime, the test driver) opens it once, fills it from the
// topic before any task processes a record, keeps applying the topic's new
// records, and gives the processors of every task a read-only view of it.

// GlobalTopics returns the topics of g's global stores.
func (g *Topology) GlobalTopics() []string {
	topics := make([]string, 0, len(g.GlobalStores))
	for _, spec := range g.GlobalStores {
		topics = append(topics, spec.Source().Topic)
	}
	return topics
}

// ReadOnly returns a view of the backend b of the global store named name
// that refuses writes, for the processors: a global store is what its topic
// says. Closing the view does not close b.
func ReadOnly(b store.Backend, name string) store.Backend { return readOnly{b, name} }

type readOnly struct {
	store.Backend
	name string
}

func (r readOnly) refuse() error {
	return fmt.Errorf("global store %s is read-only: it holds what its topic holds", r.name)
}

func (r readOnly) Set(_, _ []byte) error         { return r.refuse() }
func (r readOnly) Delete(_ []byte) error         { return r.refuse() }
func (r readOnly) DeleteRange(_, _ []byte) error { return r.refuse() }
func (r readOnly) Write(*store.Batch) error      { return r.refuse() }
func (r readOnly) Flush() error                  { return nil }
func (r readOnly) Close() error                  { return nil }
