package kstreams_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// changelogWith creates the counts changelog of appID (one partition,
// cleanup.policy compact,delete as a window store's: Kafka refuses
// DeleteRecords on a compacted-only topic) holding counts for the keys,
// one record per count 1..n, and returns its name.
func changelogWith(t *testing.T, brokers []string, appID string, counts map[string]int) string {
	t.Helper()
	topic := appID + "-counts-changelog"
	cl := newClient(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": new("compact,delete")}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	var recs []*kgo.Record
	for key, n := range counts {
		for i := 1; i <= n; i++ {
			v, _ := serde.StoreForm(serde.Int64).Serialize(nil, topic, nil, int64(i))
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: v})
		}
	}
	produce(t, cl, recs...)
	return topic
}

// deleteRecordsBefore moves the log start of topic/0 to offset.
func deleteRecordsBefore(t *testing.T, brokers []string, topic string, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset})
	resps, err := kadm.NewClient(newClient(t, brokers)).DeleteRecords(ctx, os)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("deleting records of %s before %d: %v", topic, offset, err)
	}
}

// countAfter sends one record of key through the app a and returns the
// count it output.
func countAfter(t *testing.T, brokers []string, in, out, key string, a *runningApp) int64 {
	t.Helper()
	results := collect(t, brokers, out)
	id := "probe-" + key
	produce(t, newClient(t, brokers), &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(id)})
	var got countOutput
	waitFor(t, 30*time.Second, "the probe's output", func() bool {
		select {
		case err := <-a.err:
			a.err <- err
			t.Fatalf("app stopped: %v", err)
		default:
		}
		for _, r := range results.snapshot() {
			if err := json.Unmarshal(r.Value, &got); err == nil && got.ID == id {
				return true
			}
		}
		return false
	})
	return got.Count
}

// TestRestoreEndsWhenChangelogEmptied: the changelog's records were all
// deleted (DeleteRecords; retention does the same to a window store's
// changelog), so its log start equals its end. The restore must end at
// once and the task process records (it used to wait forever for offsets
// that no longer exist).
func TestRestoreEndsWhenChangelogEmptied(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	topic := changelogWith(t, brokers, appID, map[string]int{"a": 5, "b": 5})
	deleteRecordsBefore(t, brokers, topic, 10)
	var progress []kstreams.RestoreProgress
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) { progress = append(progress, p) }))
	if n := countAfter(t, brokers, in, out, "a", a); n != 1 {
		t.Errorf("count of a after an emptied changelog = %d, want 1", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].Start != 10 {
		t.Errorf("restore progress = %+v, want it done, starting at the log start 10", progress)
	}
}

// storeDir is where the app keeps store "counts" of task 0_0.
func storeDir(stateDir, appID string) string {
	return filepath.Join(stateDir, appID, "0_0", "counts")
}

// writeStore leaves a persistent fileBackend's data and checkpoint in dir.
func writeStore(t *testing.T, dir string, counts map[string]int64, checkpoint int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{}
	for k, n := range counts {
		data[k], _ = serde.StoreForm(serde.Int64).Serialize(nil, "", nil, n)
	}
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".changelog-offset"), []byte(strconv.FormatInt(checkpoint, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointAheadOfChangelogRestoresFromScratch: a store's checkpoint
// claims more than its changelog holds (the topic was deleted and
// recreated). The store is wiped and restored from the changelog, with a
// warning, instead of the app refusing to start.
func TestCheckpointAheadOfChangelogRestoresFromScratch(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	changelogWith(t, brokers, appID, map[string]int{"a": 3})
	stateDir := t.TempDir()
	writeStore(t, storeDir(stateDir, appID), map[string]int64{"a": 40, "stale": 9}, 1000)
	a := startApp(t, countingTopology(t, in, out, fileSupplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithStateDir(stateDir))
	if n := countAfter(t, brokers, in, out, "a", a); n != 4 {
		t.Errorf("count of a = %d, want 4 (3 in the changelog, the local 40 wiped)", n)
	}
	if n := countAfter(t, brokers, in, out, "stale", a); n != 1 {
		t.Errorf("count of stale = %d, want 1 (a key only the wiped store had)", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointBeforeLogStartRestoresFromScratch: a store's checkpoint is
// older than its changelog's log start: the records in between, and the
// tombstones among them, are gone. The store is wiped and restored from
// the log start, so a key deleted meanwhile does not come back.
func TestCheckpointBeforeLogStartRestoresFromScratch(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	topic := changelogWith(t, brokers, appID, map[string]int{"x": 5}) // offsets 0-4
	// The tombstone of "gone" (5), one more count of x (6), and the log
	// start moves past the tombstone.
	six, _ := serde.StoreForm(serde.Int64).Serialize(nil, topic, nil, 6)
	produce(t, newClient(t, brokers), &kgo.Record{Topic: topic, Key: []byte("gone")}, &kgo.Record{Topic: topic, Key: []byte("x"), Value: six})
	deleteRecordsBefore(t, brokers, topic, 6)
	stateDir := t.TempDir()
	writeStore(t, storeDir(stateDir, appID), map[string]int64{"x": 1, "gone": 7}, 1)
	a := startApp(t, countingTopology(t, in, out, fileSupplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithStateDir(stateDir))
	if n := countAfter(t, brokers, in, out, "gone", a); n != 1 {
		t.Errorf("count of gone = %d, want 1 (deleted in the changelog; the stale local 7 must not come back)", n)
	}
	if n := countAfter(t, brokers, in, out, "x", a); n != 7 {
		t.Errorf("count of x = %d, want 7 (6 in the changelog)", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointCoversOnlyWritesInTheStore: a store's checkpoint names the
// changelog offset after the task's own last acknowledged write, not the
// partition's end: a record another writer appended (a stale owner, say)
// is not in the store, so a restart restores it instead of skipping it,
// and the store agrees with its changelog.
func TestCheckpointCoversOnlyWritesInTheStore(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	topic := changelogWith(t, brokers, appID, map[string]int{"a": 1})
	stateDir := t.TempDir()
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithStateDir(stateDir), kstreams.WithCommitInterval(100 * time.Millisecond),
		kstreams.WithProcessingErrors(kstreams.SkipOnError())}
	a := startApp(t, countingTopology(t, in, out, fileSupplier()), opts...)
	if n := countAfter(t, brokers, in, out, "a", a); n != 2 {
		t.Fatalf("count of a = %d, want 2", n)
	}
	// Another writer appends to the changelog; then a record that writes
	// nothing (skipped) moves the committed offset, so the task commits and
	// checkpoints again without a write of its own.
	v, _ := serde.StoreForm(serde.Int64).Serialize(nil, topic, nil, 100)
	produce(t, newClient(t, brokers), &kgo.Record{Topic: topic, Key: []byte("x"), Value: v})
	produce(t, newClient(t, brokers), &kgo.Record{Topic: in, Key: []byte("p"), Value: []byte("poison")})
	waitFor(t, 30*time.Second, "the skipped record to be committed", func() bool {
		return a.app.Stats().Skipped == 1 && committedOffset(t, brokers, appID, in) == 2
	})
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, countingTopology(t, in, out, fileSupplier()), opts...)
	if n := countAfter(t, brokers, in, out, "x", b); n != 101 {
		t.Errorf("count of x after a restart = %d, want 101 (x=100 is the changelog's last value)", n)
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
}
