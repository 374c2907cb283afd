package graph

import (
	"maps"
	"strings"
	"testing"
)

func TestDerivePartitions(t *testing.T) {
	g := &Topology{
		ManagedTopics: map[string]int32{"a-rep": 0, "b-rep": 0, "given": 5},
		Subtopologies: []*Subtopology{
			{ID: 0, SourceTopics: []string{"left", "a-rep"}},  // a-rep takes left's count
			{ID: 1, SourceTopics: []string{"b-rep", "given"}}, // b-rep takes given's
		},
	}
	known := func(t string) (int32, bool) {
		switch t {
		case "left":
			return 6, true
		case "given":
			return 5, true
		}
		return 0, false
	}
	got, err := g.DerivePartitions(known)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int32{"a-rep": 6, "b-rep": 5}; !maps.Equal(got, want) {
		t.Errorf("derived %v, want %v", got, want)
	}

	g.ManagedTopics["alone"] = 0
	g.Subtopologies = append(g.Subtopologies, &Subtopology{ID: 3, SourceTopics: []string{"alone"}})
	if _, err := g.DerivePartitions(known); err == nil || !strings.Contains(err.Error(), "no partition count for repartition topics alone:") {
		t.Errorf("a topic read alone: %v", err)
	}
}
