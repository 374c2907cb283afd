package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkAtLeastOnce verifies a counting run: every input id is in the
// output, and each key's final count is at least its true count and at most
// the true count plus the key's duplicated outputs.
func checkAtLeastOnce(t *testing.T, inputs map[string]string, outputs []*kgo.Record) (duplicates int) {
	t.Helper()
	seen := map[string]int{}
	final := map[string]int64{}
	outPerKey := map[string]int{}
	for _, r := range outputs {
		var o countOutput
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("bad output record %s: %v", r.Value, err)
		}
		seen[o.ID]++
		key := string(r.Key)
		outPerKey[key]++
		final[key] = max(final[key], o.Count)
		if inputs[o.ID] != key {
			t.Fatalf("output for id %s has key %q, input had %q", o.ID, key, inputs[o.ID])
		}
	}
	truth := map[string]int64{}
	for id, key := range inputs {
		truth[key]++
		if seen[id] == 0 {
			t.Errorf("input %s (key %s) is not reflected in the output: lost", id, key)
		}
	}
	for key, n := range truth {
		dupKey := int64(outPerKey[key]) - n
		if final[key] < n || final[key] > n+dupKey {
			t.Errorf("key %s: final count %d, true count %d, %d duplicate outputs", key, final[key], n, dupKey)
		}
		duplicates += int(dupKey)
	}
	return duplicates
}

// TestGroupSurvivesAbruptStop runs three instances over eight partitions,
// kills one (no flush, no commit) after it committed, while records flow,
// and checks that the survivors take over, that nothing is lost, and that
// only records in flight since the last commits are processed again.
func TestGroupSurvivesAbruptStop(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 8, in, out)
	topo := countingTopology(t, in, out, memory.Supplier())
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(200 * time.Millisecond)}
	apps := []*runningApp{startApp(t, topo, opts...), startApp(t, topo, opts...), startApp(t, topo, opts...)}
	results := collect(t, brokers, out)

	// Records flow, 500 every 20 ms, until the kill and for 10000 more
	// after it (they flow while the group recovers). The kill waits for the
	// instance to have committed, so production does not stop before it:
	// an instance given its tasks late still gets records to commit.
	const after = 10000
	inputs := map[string]string{}
	var inputsMu sync.Mutex
	producer := newClient(t, brokers)
	prodDone, killed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(prodDone)
		left := -1 // batches still to send after the kill
		for next := 0; left != 0; next += 500 {
			select {
			case <-killed:
				if left < 0 {
					left = after / 500
				}
			default:
			}
			if left > 0 {
				left--
			}
			recs := make([]*kgo.Record, 0, 500)
			inputsMu.Lock()
			for j := next; j < next+500; j++ {
				id, key := strconv.Itoa(j), "k"+strconv.Itoa(j%50)
				inputs[id] = key
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(id)})
			}
			inputsMu.Unlock()
			if err := producer.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor(t, 60*time.Second, "all three instances to own tasks", func() bool {
		for _, a := range apps {
			if a.app.Stats().Tasks == 0 {
				return false
			}
		}
		return true
	})
	// Kill it between two of its commits: once it has committed (a runtime
	// that never commits fails here), while records flow. What it may
	// process again is bounded by the offsets committed before the kill.
	waitFor(t, 60*time.Second, "the instance to kill to have committed, and 2500 outputs", func() bool {
		return apps[1].app.Stats().Commits > 0 && len(results.snapshot()) > 2500
	})
	before := committedOffsets(t, brokers, appID, in)
	killedTasks := apps[1].app.Stats().Tasks
	apps[1].app.Kill()
	close(killed) // the second half flows while the group recovers
	if err := apps[1].wait(t); err != nil {
		t.Fatalf("killed app returned %v", err)
	}
	<-prodDone
	total := len(inputs)
	waitFor(t, 90*time.Second, "every input id in the output", func() bool {
		ids := map[string]bool{}
		for _, r := range results.snapshot() {
			var o countOutput
			if json.Unmarshal(r.Value, &o) == nil {
				ids[o.ID] = true
			}
		}
		return len(ids) == total
	})
	waitFor(t, 30*time.Second, "the survivors to own all 8 tasks", func() bool {
		return apps[0].app.Stats().Tasks+apps[2].app.Stats().Tasks == 8
	})
	for _, i := range []int{0, 2} {
		if err := apps[i].stop(t); err != nil {
			t.Errorf("survivor %d: %v", i, err)
		}
	}
	outputs := readTopic(t, brokers, out)
	dups := checkAtLeastOnce(t, inputs, outputs)
	checkReplaysBounded(t, before, readTopic(t, brokers, in), outputs)
	t.Logf("%d inputs, %d outputs, %d duplicates; killed instance owned %d tasks; committed before the kill: %v",
		total, len(outputs), dups, killedTasks, before)
}

// TestRestartRestoresOnlyTheTail checks that a persistent store reopened on
// the same state directory replays only the changelog records written after
// its checkpoint.
func TestRestartRestoresOnlyTheTail(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	topo := countingTopology(t, in, out, fileSupplier())
	dirA, dirB := t.TempDir(), t.TempDir()
	opts := func(dir string) []kstreams.Option {
		return []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithStateDir(dir)}
	}
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	inputs := map[string]string{}
	send := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			id, key := strconv.Itoa(i), "k"+strconv.Itoa(i%100)
			inputs[id] = key
			recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(id)})
		}
		produce(t, producer, recs...)
	}
	runUntil := func(dir string, outputs int) kstreams.AppStats {
		a := startApp(t, topo, opts(dir)...)
		waitFor(t, 60*time.Second, fmt.Sprintf("%d outputs", outputs), func() bool { return len(results.snapshot()) >= outputs })
		stats := a.app.Stats()
		if err := a.stop(t); err != nil {
			t.Fatal(err)
		}
		return stats
	}

	send(0, 1000)
	if st := runUntil(dirA, 1000); st.Restored != 0 {
		t.Fatalf("first run restored %d records from an empty changelog", st.Restored)
	}
	send(1000, 1300)
	// Another instance, with an empty state directory, restores everything.
	if st := runUntil(dirB, 1300); st.Restored != 1000 {
		t.Fatalf("fresh state directory restored %d records, want all 1000", st.Restored)
	}
	send(1300, 1400)
	// Back on the first directory: only the 300 records written since its
	// checkpoint are read.
	if st := runUntil(dirA, 1400); st.Restored != 300 {
		t.Fatalf("restart on the same state directory restored %d records, want the 300 of the tail", st.Restored)
	}
	if dups := checkAtLeastOnce(t, inputs, readTopic(t, brokers, out)); dups != 0 {
		t.Fatalf("%d duplicates after graceful restarts, want 0", dups)
	}
}

// TestPoisonRecordPolicies feeds a bad value (undecodable) and a value the
// processor rejects among good records, under each error policy.
func TestPoisonRecordPolicies(t *testing.T) {
	brokers := testBrokers(t)
	for _, policy := range []string{"fail", "skip", "dead-letter"} {
		t.Run(policy, func(t *testing.T) {
			in, out, dlt, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "dlt"), uniqueName(t, "app")
			createTopics(t, brokers, 1, in, out)
			producer := newClient(t, brokers)
			inputs := map[string]string{}
			var recs []*kgo.Record
			for i := range 20 {
				id := strconv.Itoa(i)
				value := id
				if i == 7 {
					value = "poison"
				} else {
					inputs[id] = "k"
				}
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k"), Value: []byte(value),
					Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(id)}}})
			}
			produce(t, producer, recs...)
			topo := countingTopology(t, in, out, memory.Supplier())
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(100 * time.Millisecond)}
			switch policy {
			case "skip":
				opts = append(opts, kstreams.WithProcessingErrors(kstreams.SkipOnError()))
			case "dead-letter":
				opts = append(opts, kstreams.WithProcessingErrors(kstreams.DeadLetterOnError(dlt)))
			}
			results := collect(t, brokers, out)
			a := startApp(t, topo, opts...)
			if policy == "fail" {
				err := a.wait(t)
				var re *kstreams.RecordError
				if !errors.As(err, &re) || re.Topic != in || re.Partition != 0 || re.Offset != 7 || re.Node != "count" {
					t.Fatalf("Run returned %v; want a RecordError for %s/0@7 at node count", err, in)
				}
				// The records before the poison one are committed, the poison
				// one and those after it are not: nothing after it is lost.
				committed := committedOffset(t, brokers, appID, in)
				if committed != 7 {
					t.Fatalf("committed offset %d, want 7 (just before the poison record)", committed)
				}
				// Restarting with a skip policy processes the rest.
				a = startApp(t, topo, append(opts, kstreams.WithProcessingErrors(kstreams.SkipOnError()))...)
			}
			waitFor(t, 30*time.Second, "19 outputs", func() bool { return len(results.snapshot()) >= 19 })
			stats := a.app.Stats()
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			checkAtLeastOnce(t, inputs, readTopic(t, brokers, out))
			switch policy {
			case "skip", "fail":
				if stats.Skipped != 1 {
					t.Fatalf("Skipped = %d, want 1", stats.Skipped)
				}
			case "dead-letter":
				if stats.DeadLettered != 1 {
					t.Fatalf("DeadLettered = %d, want 1", stats.DeadLettered)
				}
				// The app stopped gracefully: its dead letters are acknowledged.
				dl := readTopic(t, brokers, dlt)
				if len(dl) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dl))
				}
				r := dl[0]
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				if string(r.Value) != "poison" || string(r.Key) != "k" || h["trace"] != "7" || h["kstreams.source.topic"] != in ||
					h["kstreams.source.offset"] != "7" || h["kstreams.source.partition"] != "0" || h["kstreams.error.stage"] != "process" ||
					h["kstreams.error.node"] != "count" || h["kstreams.error.message"] != "poison value" {
					t.Fatalf("dead letter %q=%q headers %v", r.Key, r.Value, h)
				}
			}
		})
	}
}

// TestDeserializationErrorNamesRecord checks the default policy for a value
// the source cannot decode.
func TestDeserializationErrorNamesRecord(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "numbers", []string{in}, serde_String, serde_Int64)
	kstreams.Sink(src, "copy", out, serde_String, serde_Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	producer := newClient(t, brokers)
	good, _ := serde_Int64.Serialize(nil, in, nil, 42)
	produce(t, producer, &kgo.Record{Topic: in, Value: good}, &kgo.Record{Topic: in, Value: []byte("not a number")})
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	err = a.wait(t)
	var re *kstreams.RecordError
	if !errors.As(err, &re) || re.Stage != kstreams.StageDeserialize || re.Offset != 1 || re.Node != "numbers" {
		t.Fatalf("Run returned %v; want a deserialization RecordError at offset 1", err)
	}
}

func committedOffset(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return -1
	}
	return o.At
}
