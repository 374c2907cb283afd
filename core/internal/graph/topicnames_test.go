package graph

import (
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

func TestCheckTopicName(t *testing.T) {
	for _, ok := range []string{"a", "orders.v2_EU-1", strings.Repeat("x", 249), "..."} {
		if err := CheckTopicName(ok); err != nil {
			t.Errorf("CheckTopicName(%q) = %v, want nil", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                       "empty",
		".":                      `Kafka refuses "." and ".."`,
		"..":                     `Kafka refuses "." and ".."`,
		"my app":                 `contains ' ' (at byte 2)`,
		"team/app":               `contains '/' (at byte 4)`,
		"zählwerk":               `contains 'ä' (at byte 1)`,
		strings.Repeat("x", 250): "250 characters long; Kafka allows at most 249",
	} {
		err := CheckTopicName(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckTopicName(%q) = %v, want an error containing %q", name, err, want)
		}
	}
}

func TestCheckAppID(t *testing.T) {
	topo := &Topology{
		Stores:        []*store.Spec{store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()).Spec},
		ManagedTopics: map[string]int32{"words": 4},
	}
	if err := CheckAppID("wordcount", topo); err != nil {
		t.Fatalf("CheckAppID(wordcount) = %v", err)
	}
	// "-counts-changelog" is 17 characters: an id of 232 makes a changelog
	// of exactly 249, one of 233 a changelog Kafka refuses.
	if err := CheckAppID(strings.Repeat("a", 232), topo); err != nil {
		t.Errorf("a 232-character id (changelog of 249) refused: %v", err)
	}
	err := CheckAppID(strings.Repeat("a", 233), topo)
	if err == nil || !strings.Contains(err.Error(), `store "counts"`) || !strings.Contains(err.Error(), "-counts-changelog\"") ||
		!strings.Contains(err.Error(), "250 characters long") {
		t.Errorf("a 233-character id: %v, want an error naming the store and its 250-character changelog", err)
	}
	// Without stores the id still has to be usable as a prefix.
	if err := CheckAppID("my app", &Topology{}); err == nil || !strings.Contains(err.Error(), `application id "my app"`) {
		t.Errorf(`CheckAppID("my app") = %v, want an error naming the id`, err)
	}
	bad := &Topology{ManagedTopics: map[string]int32{"by word": 4}}
	if err := CheckAppID("wordcount", bad); err == nil || !strings.Contains(err.Error(), `repartition topic "by word"`) {
		t.Errorf("a repartition topic with a space: %v, want an error naming it", err)
	}
}
