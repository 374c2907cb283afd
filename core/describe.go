package kstreams

import (
	"fmt"
	"strings"

	"github.com/kstreams-go/kstreams/core/internal/graph"
)

func init() {
	graph.FromTopology = func(t any) *graph.Topology { return t.(*Topology).g }
}

// String describes the topology as text: its sub-topologies with their nodes,
// topics and stores, in the order they were added, then its global stores.
func (t *Topology) String() string {
	var sb strings.Builder
	for i, st := range t.g.Subtopologies {
		if i > 0 {
			sb.WriteByte('\n')
		}
		fmt.Fprintf(&sb, "Sub-topology %d", st.ID)
		if len(st.SourceTopics) > 0 {
			fmt.Fprintf(&sb, " (co-partitioned: %s)", strings.Join(st.SourceTopics, ", "))
		}
		sb.WriteByte('\n')
		for _, n := range st.Nodes {
			switch n.Kind {
			case graph.KindSource:
				fmt.Fprintf(&sb, "  Source: %s (topics: %s)\n", n.Name, strings.Join(n.Topics, ", "))
			case graph.KindProcessor:
				fmt.Fprintf(&sb, "  Processor: %s", n.Name)
				if len(n.Stores) > 0 {
					fmt.Fprintf(&sb, " (stores: %s)", strings.Join(n.Stores, ", "))
				}
				sb.WriteByte('\n')
			case graph.KindSink:
				topic := "chosen per record"
				if !n.DynamicTopic {
					topic = n.Topics[0]
				}
				fmt.Fprintf(&sb, "  Sink: %s (topic: %s)\n", n.Name, topic)
			}
			if len(n.Children) > 0 {
				fmt.Fprintf(&sb, "    --> %s\n", names(n.Children))
			}
			if len(n.Parents) > 0 {
				fmt.Fprintf(&sb, "    <-- %s\n", names(n.Parents))
			}
		}
	}
	for _, spec := range t.g.GlobalStores {
		fmt.Fprintf(&sb, "\nGlobal store: %s (topic: %s)\n", spec.Name(), spec.Source().Topic)
	}
	return sb.String()
}

func names(ns []*graph.Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}

// Mermaid describes the topology as a Mermaid flowchart: one subgraph per
// sub-topology, topics as stadiums, stores as cylinders.
func (t *Topology) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	id := func(prefix, name string) string {
		r := strings.NewReplacer(" ", "_", "-", "_", ".", "_", "\"", "_")
		return prefix + "_" + r.Replace(name)
	}
	topics := map[string]bool{}
	stores := map[string]bool{}
	for _, st := range t.g.Subtopologies {
		fmt.Fprintf(&sb, "  subgraph sub%d [\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			fmt.Fprintf(&sb, "    %s[\"%s\"]\n", id("n", n.Name), n.Name)
		}
		sb.WriteString("  end\n")
		for _, n := range st.Nodes {
			for _, c := range n.Children {
				fmt.Fprintf(&sb, "  %s --> %s\n", id("n", n.Name), id("n", c.Name))
			}
			for _, s := range n.Stores {
				if !stores[s] {
					stores[s] = true
					fmt.Fprintf(&sb, "  %s[(\"%s\")]\n", id("s", s), s)
				}
				fmt.Fprintf(&sb, "  %s --- %s\n", id("n", n.Name), id("s", s))
			}
			for _, tp := range n.Topics {
				if !topics[tp] {
					topics[tp] = true
					fmt.Fprintf(&sb, "  %s([\"%s\"])\n", id("t", tp), tp)
				}
				if n.Kind == graph.KindSource {
					fmt.Fprintf(&sb, "  %s --> %s\n", id("t", tp), id("n", n.Name))
				} else {
					fmt.Fprintf(&sb, "  %s --> %s\n", id("n", n.Name), id("t", tp))
				}
			}
		}
	}
	return sb.String()
}
