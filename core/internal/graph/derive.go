package graph

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DerivePartitions returns the partition counts of the repartition topics
// whose count is derived (0 in ManagedTopics) and that known does not
// know: each takes the count of the other source topics of the
// sub-topology that reads it (with which it must be co-partitioned), which
// may be derived in turn. known returns the count of a topic that exists
// or has a given count. A topic whose count cannot be derived is an error
// naming it.
func (g *Topology) DerivePartitions(known func(topic string) (int32, bool)) (map[string]int32, error) {
	derived := map[string]int32{}
	count := func(t string) (int32, bool) {
		if n, ok := derived[t]; ok {
			return n, true
		}
		return known(t)
	}
	var pending []string
	for _, t := range slices.Sorted(maps.Keys(g.ManagedTopics)) {
		if _, ok := known(t); !ok && g.ManagedTopics[t] == 0 {
			pending = append(pending, t)
		}
	}
	for changed := true; changed && len(pending) > 0; {
		changed = false
		left := pending[:0]
		for _, t := range pending {
			n, ok := int32(0), false
			for _, st := range g.Subtopologies {
				if !slices.Contains(st.SourceTopics, t) {
					continue
				}
				for _, o := range st.SourceTopics {
					if o != t && !ok {
						n, ok = count(o)
					}
				}
			}
			if ok {
				derived[t], changed = n, true
			} else {
				left = append(left, t)
			}
		}
		pending = left
	}
	if len(pending) > 0 {
		return derived, fmt.Errorf("no partition count for repartition topics %s: none was given, and the sub-topology that reads each reads no other topic of known count to take it from", strings.Join(pending, ", "))
	}
	return derived, nil
}
