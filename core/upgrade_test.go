package kstreams_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// seenRecords records, per topic, the values an instance processed.
type seenRecords struct {
	mu  sync.Mutex
	ids map[string]map[string]int // topic -> value -> times processed
}

func (s *seenRecords) add(topic, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]map[string]int{}
	}
	if s.ids[topic] == nil {
		s.ids[topic] = map[string]int{}
	}
	s.ids[topic][id]++
}

// missing returns how many of ids s has not processed for topic.
func (s *seenRecords) missing(topic string, ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if s.ids[topic][id] == 0 {
			n++
		}
	}
	return n
}

// count returns how many distinct values of topic s processed.
func (s *seenRecords) count(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids[topic])
}

// recordingTopology has one sub-topology per element of sources, reading
// those topics and recording what it processes in seen.
func recordingTopology(t *testing.T, seen *seenRecords, sources ...[]string) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	for i, topics := range sources {
		src := kstreams.Source(b, fmt.Sprintf("source-%d", i), topics, serde.String, serde.String)
		kstreams.ForEach(src, fmt.Sprintf("record-%d", i), func(r kstreams.Record[string, string]) error {
			seen.add(r.Origin.Topic, r.Value)
			return nil
		})
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestRollingUpgrade runs two instances of one application in one group,
// an old one and a new one whose topology reads a topic the old one does
// not, as during a rolling upgrade. Each record of the new topic must be
// processed by the new instance (none lost to the old one, which has no task
// for it), and the old instance keeps processing what it runs.
func TestRollingUpgrade(t *testing.T) {
	// The first instance to start leads the group: a rebalance keeps the
	// leader it had (kfake and Kafka alike).
	for _, tc := range []struct {
		name     string
		old, new [][]string // source topics of each sub-topology ("a": the old topic, "n": the new one)
		newFirst bool       // the new instance starts (and leads the group) first
		oldKeeps bool       // the old instance still runs tasks with the new one in the group
	}{
		// A sub-topology added: the old instance keeps a's tasks.
		{name: "AddedSubtopology/OldLeads", old: [][]string{{"a"}}, new: [][]string{{"a"}, {"n"}}, oldKeeps: true},
		{name: "AddedSubtopology/NewLeads", old: [][]string{{"a"}}, new: [][]string{{"a"}, {"n"}}, newFirst: true, oldKeeps: true},
		// A source topic added to a's sub-topology: a and n are
		// co-partitioned in the new version, so only the new instance runs them.
		{name: "AddedSourceTopic/OldLeads", old: [][]string{{"a"}}, new: [][]string{{"a", "n"}}},
		{name: "AddedSourceTopic/NewLeads", old: [][]string{{"a"}}, new: [][]string{{"a", "n"}}, newFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := testBrokers(t)
			a, n, appID := uniqueName(t, "a"), uniqueName(t, "n"), uniqueName(t, "app")
			createTopics(t, brokers, 4, a, n)
			names := map[string]string{"a": a, "n": n}
			topics := func(subs [][]string) [][]string {
				var out [][]string
				for _, s := range subs {
					var ts []string
					for _, x := range s {
						ts = append(ts, names[x])
					}
					out = append(out, ts)
				}
				return out
			}
			var oldSeen, newSeen seenRecords
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(200 * time.Millisecond)}
			start := func(isNew bool) *runningApp {
				if isNew {
					return startApp(t, recordingTopology(t, &newSeen, topics(tc.new)...), opts...)
				}
				return startApp(t, recordingTopology(t, &oldSeen, topics(tc.old)...), opts...)
			}

			producer := newClient(t, brokers)
			next := 0
			partitionOf := map[string]int32{} // value -> partition
			// produceBatch writes count records to each topic, keys spread
			// over the partitions; it returns the values per topic.
			produceBatch := func(count int) map[string][]string {
				ids := map[string][]string{}
				var recs []*kgo.Record
				for range count {
					for _, topic := range []string{a, n} {
						id := strconv.Itoa(next)
						next++
						ids[topic] = append(ids[topic], id)
						recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(next%37)), Value: []byte(id)})
					}
				}
				produce(t, producer, recs...)
				for _, r := range recs {
					partitionOf[string(r.Value)] = r.Partition
				}
				return ids
			}
			first := start(tc.newFirst)
			waitFor(t, 30*time.Second, "the first instance to own tasks", func() bool { return first.app.Stats().Tasks > 0 })
			phase1 := produceBatch(200)
			second := start(!tc.newFirst)
			oldApp, newApp := first, second
			if tc.newFirst {
				oldApp, newApp = second, first
			}
			waitFor(t, 30*time.Second, "the second instance to join (the new one to own tasks)", func() bool {
				return newApp.app.Stats().Tasks > 0 && (!tc.oldKeeps || oldApp.app.Stats().Tasks > 0)
			})
			// Records keep coming while the group settles and after.
			phase2 := produceBatch(200)
			time.Sleep(500 * time.Millisecond)
			phase3 := produceBatch(200)

			// waitAll waits until missing reports none of ids, or fails
			// naming what is missing.
			waitAll := func(what string, ids []string, missing func(id string) bool) {
				t.Helper()
				deadline := time.Now().Add(45 * time.Second)
				for {
					var lost []string
					parts := map[int32]int{}
					for _, id := range ids {
						if missing(id) {
							lost = append(lost, id)
							parts[partitionOf[id]]++
						}
					}
					if len(lost) == 0 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("after 45s, %d of %d records %s are missing (per partition: %v)", len(lost), len(ids), what, parts)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			for i, ph := range []map[string][]string{phase1, phase2, phase3} {
				waitAll(fmt.Sprintf("of the new topic (batch %d) that the new instance should have processed", i+1), ph[n], func(id string) bool {
					return newSeen.missing(n, []string{id}) == 1
				})
				waitAll(fmt.Sprintf("of the old topic (batch %d) that an instance should have processed", i+1), ph[a], func(id string) bool {
					return oldSeen.missing(a, []string{id}) == 1 && newSeen.missing(a, []string{id}) == 1
				})
			}
			if c := oldSeen.count(n); c != 0 {
				t.Errorf("the old instance processed %d records of the new topic; its topology does not read it", c)
			}
			oldA := len(phase3[a]) - oldSeen.missing(a, phase3[a])
			if tc.oldKeeps && oldA == 0 {
				t.Errorf("the old instance processed none of the last %d records of its topic: it stopped running its tasks", len(phase3[a]))
			}
			if !tc.oldKeeps {
				// a's tasks read n too in the new version, which the old
				// instance cannot run.
				waitFor(t, 10*time.Second, "the old instance to own no task", func() bool { return oldApp.app.Stats().Tasks == 0 })
			}
			oldTasks, newTasks := oldApp.app.Stats().Tasks, newApp.app.Stats().Tasks
			for _, ra := range []*runningApp{first, second} {
				if err := ra.stop(t); err != nil {
					t.Errorf("Run: %v", err)
				}
			}
			t.Logf("tasks at the end: old %d, new %d; last batch of a processed by the old instance: %d of %d",
				oldTasks, newTasks, oldA, len(phase3[a]))
		})
	}
}
