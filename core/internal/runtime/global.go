package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Global stores (graph.GlobalStores, kstreams.AddGlobalStore): every
// instance opens each once, fills it from every partition of its topic up
// to the end offsets listed at start before it joins the group (so no task
// processes a record before they are complete), then keeps applying the
// topics' new records on a consumer of its own until Run returns. Tasks'
// processors read them through taskHost.GlobalStore, concurrently with
// those writes (the backend's own synchronization orders them).
//
// A global store is rebuilt from its topic's start at every start: it has
// no changelog and no checkpoint, and at-least-once delivery does not
// depend on it (it is read, never written, by processing).

// globals are the instance's global stores and their consumer.
type globals struct {
	byName  map[string]*globalStore
	byTopic map[string]*globalStore
	cl      *kgo.Client
	stop    context.CancelFunc
	done    sync.WaitGroup
}

type globalStore struct {
	spec    *store.Spec
	backend store.Backend
	typed   any // the consumer's view
	view    any // the processors' read-only view
	skipped int64
}

// startGlobals opens and fills the global stores, and starts the consumer
// that keeps them up to date. ctx is Run's: canceling it interrupts the
// fill.
func (r *Runtime) startGlobals(ctx context.Context) (err error) {
	specs := r.cfg.Topology.GlobalStores
	if len(specs) == 0 {
		return nil
	}
	gs := &globals{byName: map[string]*globalStore{}, byTopic: map[string]*globalStore{}}
	defer func() {
		if err != nil {
			gs.close()
		}
	}()
	for _, spec := range specs {
		topic := spec.Source().Topic
		bctx := store.BackendContext{App: r.cfg.AppID, Store: spec.Name(), Task: "global", Partition: -1, Logger: r.log}
		if dir := r.appStateDir(); dir != "" {
			bctx.Dir = filepath.Join(dir, "global", spec.Name())
			if err := os.MkdirAll(bctx.Dir, 0o755); err != nil {
				return fmt.Errorf("global store %s: creating state directory: %w", spec.Name(), err)
			}
		}
		b, err := spec.Supplier()(bctx)
		if err != nil {
			return fmt.Errorf("opening global store %s: %w", spec.Name(), err)
		}
		g := &globalStore{spec: spec, backend: b, typed: spec.Open(b, topic), view: spec.Open(graph.ReadOnly(b, spec.Name()), topic)}
		gs.byName[spec.Name()] = g
		gs.byTopic[topic] = g
		if err := b.DeleteRange(nil, nil); err != nil {
			return fmt.Errorf("clearing global store %s before filling it from %s: %w", spec.Name(), topic, err)
		}
	}
	topics := r.cfg.Topology.GlobalTopics()
	ends, err := r.globalEnds(ctx, topics)
	if err != nil {
		return err
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing the start offsets of the global tables' topics %v: %w", topics, err)
	}
	parts := map[string]map[int32]kgo.Offset{}
	behind := map[string]map[int32]int64{} // partitions not filled yet: their end offsets
	for topic, ps := range ends {
		parts[topic] = map[int32]kgo.Offset{}
		for p, end := range ps {
			parts[topic][p] = kgo.NewOffset().AtStart()
			// A partition emptied by retention or DeleteRecords has
			// nothing to fill, and no record would say it is filled.
			if so, ok := starts.Lookup(topic, p); end > 0 && !(ok && so.Err == nil && so.Offset >= end) {
				if behind[topic] == nil {
					behind[topic] = map[int32]int64{}
				}
				behind[topic][p] = end
			}
		}
	}
	gs.cl, err = kgo.NewClient(append(r.baseOpts(),
		kgo.ConsumePartitions(parts),
		// Transaction markers take offsets too: seeing them is how the
		// fill reaches an end that is a marker.
		kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(r.isolation()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("creating the global stores' consumer: %w", err)
	}
	started := time.Now()
	var applied int64
	for len(behind) > 0 {
		fs := gs.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("filling the global stores: %w", err)
		}
		var ferr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil {
				ferr = errors.Join(ferr, fmt.Errorf("fetching global topic %s/%d: %w", p.Topic, p.Partition, p.Err))
				return
			}
			applied += r.applyGlobal(gs.byTopic[p.Topic], p.Records)
			if len(p.Records) == 0 {
				return
			}
			next := p.Records[len(p.Records)-1].Offset + 1
			if end, ok := behind[p.Topic][p.Partition]; ok && next >= end {
				delete(behind[p.Topic], p.Partition)
				if len(behind[p.Topic]) == 0 {
					delete(behind, p.Topic)
				}
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	for _, g := range gs.byName {
		if err := g.backend.Flush(); err != nil {
			return fmt.Errorf("flushing global store %s: %w", g.spec.Name(), err)
		}
	}
	r.log.Info("global stores filled", "topics", topics, "records", applied, "elapsed", time.Since(started))
	bg, stop := context.WithCancel(context.Background())
	gs.stop = stop
	gs.done.Add(1)
	go r.followGlobals(bg, gs)
	r.globals = gs
	return nil
}

// globalEnds lists the partitions of the global topics with their end
// offsets (the last stable offsets with transactions).
func (r *Runtime) globalEnds(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
	list := r.adm.ListEndOffsets
	if r.cfg.Transactions {
		list = r.adm.ListCommittedOffsets
	}
	listed, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of the global tables' topics %v: %w", topics, err)
	}
	ends := map[string]map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("global topic %s/%d: %w", o.Topic, o.Partition, o.Err))
			return
		}
		if ends[o.Topic] == nil {
			ends[o.Topic] = map[int32]int64{}
		}
		ends[o.Topic][o.Partition] = o.Offset
	})
	for _, t := range topics {
		if len(ends[t]) == 0 {
			errs = append(errs, fmt.Errorf("global topic %s does not exist (create it before starting the application)", t))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ends, nil
}

// applyGlobal applies records to g and returns how many it applied. A
// record the store's apply function refuses (one that cannot be decoded)
// is logged and skipped: the store holds what the topic holds, and
// stopping would not make the record readable.
func (r *Runtime) applyGlobal(g *globalStore, recs []*kgo.Record) int64 {
	var n int64
	src := g.spec.Source()
	for _, rec := range recs {
		if rec.Attrs.IsControl() {
			continue
		}
		if err := src.Apply(g.typed, rec.Key, rec.Value, rec.Headers, rec.Timestamp); err != nil {
			g.skipped++
			r.log.Warn("skipping a record of a global store's topic it cannot apply", "store", g.spec.Name(),
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error", err)
			continue
		}
		n++
	}
	return n
}

// followGlobals applies the global topics' new records until ctx is done.
// A fetch error the client does not retry stops the application: its
// tables would silently fall behind.
func (r *Runtime) followGlobals(ctx context.Context, gs *globals) {
	defer gs.done.Done()
	for {
		fs := gs.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil {
				r.setFatal(fmt.Errorf("kstreams: fetching global topic %s/%d: %w", p.Topic, p.Partition, p.Err))
				return
			}
			r.applyGlobal(gs.byTopic[p.Topic], p.Records)
		})
	}
}

// stopGlobals stops the global stores' consumer and closes the stores.
// Run calls it once its tasks are closed.
func (r *Runtime) stopGlobals() {
	if r.globals != nil {
		r.globals.close()
	}
}

func (gs *globals) close() {
	if gs.stop != nil {
		gs.stop()
		gs.done.Wait()
	}
	if gs.cl != nil {
		gs.cl.Close()
	}
	for _, g := range gs.byName {
		_ = g.backend.Close()
	}
}

// GlobalStore implements task.GlobalHost: the processors' read-only view
// of the global store named name.
func (h *taskHost) GlobalStore(name string) (any, bool) {
	gs := h.r.globals
	if gs == nil {
		return nil, false
	}
	g, ok := gs.byName[name]
	if !ok {
		return nil, false
	}
	return g.view, true
}
