package kstreams

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Builder collects the nodes and stores of a topology. Add nodes with the
// package-level functions (Source, Process, Map, Sink, ...), stores with
// AddStore, then call Build. A Builder is not safe for concurrent use.
type Builder struct {
	nodes   []*nodeDef
	byName  map[string]*nodeDef
	stores  []*store.Spec
	managed map[string]int32 // topics the application creates (Through), with partition counts
	globals map[string]bool  // names of the stores declared with AddGlobalStore
	errs    []error
	built   bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{byName: map[string]*nodeDef{}, managed: map[string]int32{}, globals: map[string]bool{}}
}

// Node is a typed handle to a node whose output records are Record[K, V].
// Pass it as the parent of the nodes that consume that output. The zero Node
// is invalid.
type Node[K, V any] struct {
	b   *Builder
	def *nodeDef
}

// Name returns the node's name.
func (n Node[K, V]) Name() string {
	if n.def == nil {
		return ""
	}
	return n.def.Name
}

// Builder returns the Builder the node belongs to, so that builder
// functions of add-on packages can declare stores (AddStore) or report
// problems (AddError) for the node they add. It is nil for the zero Node.
func (n Node[K, V]) Builder() *Builder { return n.b }

// AddError records a problem found while adding to the topology; Build
// reports it with the others. Builder functions of add-on packages use it
// for invalid arguments, so that they surface at Build, not at run time.
func (b *Builder) AddError(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

// nodeDef is a node under construction: its graph description and how to
// instantiate it for a task.
type nodeDef struct {
	graph.Node
	parents  []*nodeDef
	children []*nodeDef
	// instantiate creates the node for one task and returns its receiver
	// (nil for sources). Children are instantiated before their parents.
	instantiate func(in *instance) (any, error)
	// storeSpecs are the specs of the stores attached with WithStores (the
	// names are in Node.Stores).
	storeSpecs []*store.Spec
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// add registers a node with parents. It returns nil (after recording an
// error for Build) when the node cannot be added.
func (b *Builder) add(name string, kind graph.Kind, parents []*nodeDef) *nodeDef {
	if b.built {
		b.errorf("node %q added after Build", name)
	}
	if name == "" {
		b.errorf("a %s node has an empty name", kindName(kind))
		return nil
	}
	if _, dup := b.byName[name]; dup {
		b.errorf("node name %q is used twice", name)
		return nil
	}
	d := &nodeDef{Node: graph.Node{Name: name, Kind: kind}, parents: parents}
	for _, p := range parents {
		p.children = append(p.children, d)
	}
	b.nodes = append(b.nodes, d)
	b.byName[name] = d
	return d
}

// parentDefs validates parent handles for a node named name.
func parentDefs[K, V any](name string, parents ...Node[K, V]) (*Builder, []*nodeDef) {
	var b *Builder
	defs := make([]*nodeDef, 0, len(parents))
	for _, p := range parents {
		if p.b == nil || p.def == nil {
			if p.b != nil {
				p.b.errorf("node %q has an invalid parent (a parent that failed to be added, or a zero Node)", name)
				continue
			}
			continue
		}
		if b == nil {
			b = p.b
		} else if b != p.b {
			b.errorf("node %q has parents from different Builders", name)
			continue
		}
		defs = append(defs, p.def)
	}
	if b != nil && len(defs) == 0 {
		b.errorf("node %q has no valid parent", name)
	}
	return b, defs
}

func kindName(k graph.Kind) string {
	switch k {
	case graph.KindSource:
		return "source"
	case graph.KindProcessor:
		return "processor"
	case graph.KindSink:
		return "sink"
	}
	return "unknown"
}

// Topology is a validated topology, ready to run with an App or the test
// driver. It is immutable and may be run by several apps.
type Topology struct {
	g *graph.Topology
}

// Build validates the topology and splits it into sub-topologies. It reports
// every problem it finds: duplicate or empty names, processors using
// undeclared stores, declared stores no processor uses, sources sharing a
// topic, cycles.
func (b *Builder) Build() (*Topology, error) {
	b.built = true
	errs := slices.Clone(b.errs)
	storeByName := map[string]*store.Spec{}
	for _, s := range b.stores {
		storeByName[s.Name()] = s
	}
	used := map[string]bool{}
	topicOwner := map[string]string{}
	for _, n := range b.nodes {
		for _, spec := range n.storeSpecs {
			s := spec.Name()
			switch declared := storeByName[s]; {
			case declared == nil:
				errs = append(errs, fmt.Errorf("processor %q uses store %q, which is not declared in this topology (a handle of another Builder's AddStore)", n.Name, s))
			case declared != spec:
				errs = append(errs, fmt.Errorf("processor %q uses a store %q declared by another Builder; this topology declares its own store of that name", n.Name, s))
			}
			used[s] = true
		}
		if n.Kind == graph.KindSource {
			for _, t := range n.Topics {
				if other, ok := topicOwner[t]; ok {
					errs = append(errs, fmt.Errorf("topic %q is read by two sources, %q and %q", t, other, n.Name))
				}
				topicOwner[t] = n.Name
			}
		}
	}
	for _, s := range b.stores {
		if src := s.Source(); b.globals[s.Name()] && src != nil {
			if other, ok := topicOwner[src.Topic]; ok {
				errs = append(errs, fmt.Errorf("topic %q is read by source %q and by global store %q; a global store's topic is read by it alone", src.Topic, other, s.Name()))
			}
			topicOwner[src.Topic] = "global store " + s.Name()
		}
		if !used[s.Name()] {
			errs = append(errs, fmt.Errorf("store %q is declared but no processor uses it", s.Name()))
		}
	}
	if err := checkCycles(b.nodes); err != nil {
		errs = append(errs, err)
	}
	if len(b.nodes) == 0 {
		errs = append(errs, errors.New("the topology has no nodes"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid topology: %w", errors.Join(errs...))
	}
	g := b.compile(storeByName)
	if err := checkDispatch(g); err != nil {
		return nil, fmt.Errorf("invalid topology: %w", err)
	}
	return &Topology{g: g}, nil
}

// checkCycles reports a cycle through parent/child edges. The typed API
// cannot create one (a parent exists before its children); the check guards
// builders layered on top of this one.
func checkCycles(nodes []*nodeDef) error {
	const (
		unseen = iota
		active
		done
	)
	state := map[*nodeDef]int{}
	var visit func(n *nodeDef, path []string) error
	visit = func(n *nodeDef, path []string) error {
		switch state[n] {
		case active:
			return fmt.Errorf("cycle: %v", append(path, n.Name))
		case done:
			return nil
		}
		state[n] = active
		for _, c := range n.children {
			if err := visit(c, append(path, n.Name)); err != nil {
				return err
			}
		}
		state[n] = done
		return nil
	}
	for _, n := range nodes {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	return nil
}

// compile links the graph nodes and computes sub-topologies: the connected
// components of nodes joined by edges and by shared stores.
func (b *Builder) compile(storeByName map[string]*store.Spec) *graph.Topology {
	g := &graph.Topology{Stores: b.stores, ManagedTopics: b.managed}
	for _, s := range b.stores {
		if b.globals[s.Name()] {
			g.GlobalStores = append(g.GlobalStores, s)
		}
	}
	idx := map[*nodeDef]int{}
	parent := make([]int, len(b.nodes))
	for i, n := range b.nodes {
		idx[n] = i
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, c int) { parent[find(a)] = find(c) }
	storeUser := map[string]int{}
	for i, n := range b.nodes {
		for _, p := range n.parents {
			union(i, idx[p])
		}
		for _, s := range n.Stores {
			if b.globals[s] {
				continue // every task reads a global store: it joins no sub-topologies
			}
			if j, ok := storeUser[s]; ok {
				union(i, j)
			} else {
				storeUser[s] = i
			}
		}
	}
	gnodes := make([]*graph.Node, len(b.nodes))
	for i, n := range b.nodes {
		gnodes[i] = &n.Node
	}
	for i, n := range b.nodes {
		gn := gnodes[i]
		gn.Parents, gn.Children = nil, nil
		for _, p := range n.parents {
			gn.Parents = append(gn.Parents, gnodes[idx[p]])
		}
		for _, c := range n.children {
			gn.Children = append(gn.Children, gnodes[idx[c]])
		}
	}
	g.Nodes = gnodes
	subByRoot := map[int]*graph.Subtopology{}
	var defsBySub [][]*nodeDef
	for i, n := range b.nodes {
		r := find(i)
		st, ok := subByRoot[r]
		if !ok {
			st = &graph.Subtopology{ID: len(g.Subtopologies)}
			subByRoot[r] = st
			g.Subtopologies = append(g.Subtopologies, st)
			defsBySub = append(defsBySub, nil)
		}
		st.Nodes = append(st.Nodes, gnodes[i])
		defsBySub[st.ID] = append(defsBySub[st.ID], n)
		switch n.Kind {
		case graph.KindSource:
			st.SourceTopics = append(st.SourceTopics, n.Topics...)
		case graph.KindSink:
			st.SinkTopics = append(st.SinkTopics, n.Topics...)
		}
		for _, s := range n.Stores {
			if b.globals[s] {
				continue
			}
			if !slices.ContainsFunc(st.Stores, func(o *store.Spec) bool { return o.Name() == s }) {
				st.Stores = append(st.Stores, storeByName[s])
			}
		}
	}
	for _, st := range g.Subtopologies {
		defs := defsBySub[st.ID]
		st.New = func(env graph.Env) (graph.Instance, error) { return instantiate(defs, env) }
	}
	return g
}

// instance is a sub-topology's nodes instantiated for one task.
type instance struct {
	env          graph.Env
	receivers    map[string]any
	sources      map[string]func(context.Context, *kgo.Record) error
	batchSources map[string]func(context.Context, []*kgo.Record) error
	closers      []func() error
}

func instantiate(defs []*nodeDef, env graph.Env) (graph.Instance, error) {
	in := &instance{
		env:          env,
		receivers:    make(map[string]any, len(defs)),
		sources:      map[string]func(context.Context, *kgo.Record) error{},
		batchSources: map[string]func(context.Context, []*kgo.Record) error{},
	}
	// Nodes are stored parents first, so walking backwards instantiates
	// every child before its parents look it up.
	for i := len(defs) - 1; i >= 0; i-- {
		d := defs[i]
		r, err := d.instantiate(in)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("node %s: %w", d.Name, err)
		}
		if r != nil {
			in.receivers[d.Name] = r
		}
	}
	return in, nil
}

// childReceivers returns the typed receivers of d's children.
func childReceivers[K, V any](in *instance, d *nodeDef) []namedReceiver[K, V] {
	out := make([]namedReceiver[K, V], 0, len(d.children))
	for _, c := range d.children {
		// The typed API only lets a Node[K, V] be the parent of nodes that
		// receive Record[K, V], so this assertion cannot fail.
		out = append(out, namedReceiver[K, V]{name: c.Name, recv: observeNode(in, c, in.receivers[c.Name].(receiver[K, V]))})
	}
	return out
}

func (in *instance) Process(ctx context.Context, r *kgo.Record) error {
	fn := in.sources[r.Topic]
	if fn == nil {
		return fmt.Errorf("no source reads topic %q", r.Topic)
	}
	return fn(ctx, r)
}

func (in *instance) ProcessBatch(ctx context.Context, rs []*kgo.Record) error {
	if len(rs) == 0 {
		return nil
	}
	fn := in.batchSources[rs[0].Topic]
	if fn == nil {
		return fmt.Errorf("no source reads topic %q", rs[0].Topic)
	}
	return fn(ctx, rs)
}

func (in *instance) Close() error {
	var errs []error
	for i := len(in.closers) - 1; i >= 0; i-- {
		errs = append(errs, in.closers[i]())
	}
	in.closers = nil
	return errors.Join(errs...)
}

// checkDispatch sets each sub-topology's ordering mode and batching from
// its processors, and reports processors of one sub-topology that ask for
// different modes or several batch processors in one sub-topology.
func checkDispatch(g *graph.Topology) error {
	var errs []error
	for _, st := range g.Subtopologies {
		var orderBy, batchBy string
		for _, n := range st.Nodes {
			if n.Order != 0 {
				if st.Order != 0 && n.Order != st.Order {
					errs = append(errs, fmt.Errorf("processors %q and %q are in sub-topology %d but ask for different ordering modes (%s, %s)",
						orderBy, n.Name, st.ID, st.Order, n.Order))
				}
				st.Order, orderBy = n.Order, n.Name
			}
			if n.Batch != nil {
				if batchBy != "" {
					errs = append(errs, fmt.Errorf("batch processors %q and %q are both in sub-topology %d; it may have one", batchBy, n.Name, st.ID))
				}
				st.Batch, batchBy = n.Batch, n.Name
			}
		}
		if st.Order == 0 {
			st.Order = graph.OrderPartition
		}
		for _, spec := range st.Stores {
			src := spec.Source()
			switch {
			case src == nil:
			case !slices.Contains(st.SourceTopics, src.Topic):
				errs = append(errs, fmt.Errorf("store %q is restored from topic %q (store.WithSourceChangelog), which its sub-topology %d does not read (it reads %v)",
					spec.Name(), src.Topic, st.ID, st.SourceTopics))
			case st.Order != graph.OrderPartition:
				// Completed records above the committed offset are not
				// processed again, and a restore from the source topic
				// stops at the committed offset: their writes would be lost.
				errs = append(errs, fmt.Errorf("store %q is restored from its source topic %q, which needs records processed in partition order, but processor %q of sub-topology %d asks for %s",
					spec.Name(), src.Topic, orderBy, st.ID, st.Order))
			}
		}
	}
	return errors.Join(errs...)
}
