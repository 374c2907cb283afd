package kstreamstest

import (
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// globalStore is a global store of the topology (kstreams.AddGlobalStore):
// one instance for all tasks, updated by each record piped or written into
// its topic before Pipe returns.
type globalStore struct {
	spec    *store.Spec
	backend store.Backend
	typed   any // the updater's view
	view    any // the processors' read-only view
}

// openGlobals opens the topology's global stores.
func (d *Driver) openGlobals() error {
	d.globals = map[string]*globalStore{}
	d.globalByTopic = map[string]*globalStore{}
	for _, spec := range d.g.GlobalStores {
		topic := spec.Source().Topic
		b, err := spec.Supplier()(store.BackendContext{App: d.appID, Store: spec.Name(), Task: "global", Partition: -1, Logger: d.logger})
		if err != nil {
			d.closeGlobals()
			return fmt.Errorf("kstreamstest: opening global store %s: %w", spec.Name(), err)
		}
		g := &globalStore{spec: spec, backend: b, typed: spec.Open(b, topic), view: spec.Open(graph.ReadOnly(b, spec.Name()), topic)}
		d.globals[spec.Name()] = g
		d.globalByTopic[topic] = g
	}
	return nil
}

// applyGlobal applies r to the global store of its topic. A record the
// store's apply function refuses fails the Pipe that led to it, with an
// error naming the record.
func (d *Driver) applyGlobal(g *globalStore, r *kgo.Record) error {
	if err := g.spec.Source().Apply(g.typed, r.Key, r.Value, r.Headers, r.Timestamp); err != nil {
		return fmt.Errorf("kstreamstest: global store %s: applying record %s/%d@%d: %w", g.spec.Name(), r.Topic, r.Partition, r.Offset, err)
	}
	return nil
}

func (d *Driver) closeGlobals() error {
	var errs []error
	for _, g := range d.globals {
		if err := g.backend.Close(); err != nil {
			errs = append(errs, fmt.Errorf("kstreamstest: closing global store %s: %w", g.spec.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// GlobalStore implements task.GlobalHost.
func (h *host) GlobalStore(name string) (any, bool) {
	g, ok := h.globals[name]
	if !ok {
		return nil, false
	}
	return g.view, true
}
