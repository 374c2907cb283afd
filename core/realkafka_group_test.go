package kstreams_test

// Integration tests written for the real broker (tools/test.sh runs them
// with KSTREAMS_TEST_BROKERS pointing at Apache Kafka); they run on the
// embedded cluster too.

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sendIDs produces records with ids from..to-1 (the value) over keys keys.
func sendIDs(t *testing.T, cl *kgo.Client, topic string, from, to, keys int, inputs map[string]string) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		id, key := strconv.Itoa(i), "k"+strconv.Itoa(i%keys)
		inputs[id] = key
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(id)})
	}
	produce(t, cl, recs...)
}

// outputIDs returns how many times each id is in the output.
func outputIDs(recs []*kgo.Record) map[string]int {
	ids := map[string]int{}
	for _, r := range recs {
		var o countOutput
		if json.Unmarshal(r.Value, &o) == nil {
			ids[o.ID]++
		}
	}
	return ids
}

// checkNoLoss checks that every input id is in the output under its key and
// that each key's last count is at least its number of inputs. Unlike
// checkAtLeastOnce it allows a count above the inputs plus duplicate outputs:
// after a real crash, a changelog write can be acknowledged while the output
// record of the same input is not; the input is then processed again, its
// count applied twice, its output written once.
func checkNoLoss(t *testing.T, inputs map[string]string, outputs []*kgo.Record) (duplicates int) {
	t.Helper()
	seen := outputIDs(outputs)
	last := map[string]int64{}
	for _, r := range outputs { // one partition per key: collected in offset order
		var o countOutput
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("bad output %q: %v", r.Value, err)
		}
		if inputs[o.ID] != string(r.Key) {
			t.Fatalf("output for id %s has key %q, input had %q", o.ID, r.Key, inputs[o.ID])
		}
		last[string(r.Key)] = o.Count
	}
	truth := map[string]int64{}
	for id, key := range inputs {
		truth[key]++
		if seen[id] == 0 {
			t.Errorf("input %s (key %s) is not in the output: lost", id, key)
		}
	}
	for key, n := range truth {
		if last[key] < n {
			t.Errorf("key %s: last count %d, below its %d inputs", key, last[key], n)
		}
	}
	return len(outputs) - len(seen)
}

// TestRealKafkaHelperProcess is not a test: TestRealKafkaKill9Takeover runs
// the test binary with this test selected and KSTREAMS_HELPER_APP set, to
// get an application instance in a process of its own, which it kills.
func TestRealKafkaHelperProcess(t *testing.T) {
	if os.Getenv("KSTREAMS_HELPER_APP") != "1" {
		t.Skip("helper process for TestRealKafkaKill9Takeover")
	}
	brokers := strings.Split(os.Getenv("KSTREAMS_HELPER_BROKERS"), ",")
	in, out, appID := os.Getenv("KSTREAMS_HELPER_IN"), os.Getenv("KSTREAMS_HELPER_OUT"), os.Getenv("KSTREAMS_HELPER_APPID")
	app, err := kstreams.NewApp(countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(100*time.Millisecond),
		kstreams.WithSessionTimeout(6*time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRealKafkaKill9Takeover kills (SIGKILL) an instance running in another
// process while it processes, between two of its commits: it neither
// commits nor leaves the group. A new instance takes its tasks once the
// group coordinator expires its session, restores the counts from the
// changelog, and nothing is lost; only records in flight since the killed
// instance's last commit are processed again, at most once more.
func TestRealKafkaKill9Takeover(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 4, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	inputs := map[string]string{}
	sendIDs(t, producer, in, 0, 5000, 40, inputs)

	helper := exec.Command(os.Args[0], "-test.run=^TestRealKafkaHelperProcess$", "-test.count=1")
	helper.Env = append(os.Environ(), "KSTREAMS_HELPER_APP=1", "KSTREAMS_HELPER_BROKERS="+strings.Join(brokers, ","),
		"KSTREAMS_HELPER_IN="+in, "KSTREAMS_HELPER_OUT="+out, "KSTREAMS_HELPER_APPID="+appID)
	var helperOut strings.Builder
	helper.Stdout, helper.Stderr = &helperOut, &helperOut
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- helper.Wait() }()
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		<-exited
	})

	// Records keep flowing while the helper runs, so that it has work in
	// flight when it is killed.
	stopProducing, produced := make(chan struct{}), make(chan struct{})
	var flowing map[string]string
	go func() {
		defer close(produced)
		flowing = map[string]string{}
		for next := 5000; ; next += 200 {
			select {
			case <-stopProducing:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var recs []*kgo.Record
			for i := next; i < next+200; i++ {
				id, key := strconv.Itoa(i), "k"+strconv.Itoa(i%40)
				flowing[id] = key
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(id)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := producer.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
		}
	}()
	// Kill it between two commits: after it committed at least once (a
	// runtime that never commits fails here).
	waitFor(t, 90*time.Second, "the helper instance to commit and process 5000 records", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("helper exited early (%v):\n%s", err, helperOut.String())
		default:
		}
		var sum int64
		for _, o := range committedOffsets(t, brokers, appID, in) {
			sum += o
		}
		return sum > 0 && len(results.snapshot()) >= 5000
	})
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- nil
	close(stopProducing)
	<-produced
	maps.Copy(inputs, flowing)
	// Dead, it commits nothing more; the next instance has not started:
	// these are exactly its last commits.
	atKill := committedOffsets(t, brokers, appID, in)
	killedAt := len(results.snapshot())
	sendIDs(t, producer, in, 100000, 105000, 40, inputs)

	start := time.Now()
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(100*time.Millisecond),
		kstreams.WithSessionTimeout(6*time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second)))
	waitFor(t, 90*time.Second, "every input id in the output", func() bool { return len(outputIDs(results.snapshot())) == len(inputs) })
	took := time.Since(start)
	stats := a.app.Stats()
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if stats.Restored == 0 {
		t.Errorf("the new instance restored nothing from the changelogs")
	}
	outputs := readTopic(t, brokers, out)
	checkNoLoss(t, inputs, outputs)
	dups := checkReplaysBounded(t, atKill, readTopic(t, brokers, in), outputs)
	t.Logf("killed after %d outputs, committed offsets then %v; the new instance restored %d changelog records and finished in %v; %d duplicates",
		killedAt, atKill, stats.Restored, took.Round(time.Millisecond), dups)
}

// TestRealKafkaScaleOutAndInNoDuplicates adds an instance and then removes
// it gracefully while records flow: the cooperative rebalances commit the
// revoked tasks first, so no record is processed twice.
func TestRealKafkaScaleOutAndInNoDuplicates(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 6, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	topo := countingTopology(t, in, out, memory.Supplier())
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(time.Second)}
	inputs := map[string]string{}

	a := startApp(t, topo, opts...)
	sendIDs(t, producer, in, 0, 3000, 60, inputs)
	waitFor(t, 60*time.Second, "3000 outputs", func() bool { return len(results.snapshot()) >= 3000 })

	b := startApp(t, topo, opts...)
	waitFor(t, 60*time.Second, "the second instance to own tasks", func() bool { return b.app.Stats().Tasks > 0 })
	sendIDs(t, producer, in, 3000, 6000, 60, inputs)
	waitFor(t, 60*time.Second, "6000 outputs", func() bool { return len(outputIDs(results.snapshot())) >= 6000 })
	bStats := b.app.Stats()
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the first instance to own all tasks again", func() bool { return a.app.Stats().Tasks == 6 })
	sendIDs(t, producer, in, 6000, 9000, 60, inputs)
	waitFor(t, 60*time.Second, "9000 outputs", func() bool { return len(outputIDs(results.snapshot())) >= 9000 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if dups := checkAtLeastOnce(t, inputs, readTopic(t, brokers, out)); dups != 0 {
		t.Errorf("%d duplicates after graceful scale out and in, want 0 (revoked tasks are committed before they move)", dups)
	}
	if bStats.Restored == 0 {
		t.Errorf("the second instance restored nothing: its tasks' state did not follow them")
	}
}

// TestRealKafkaInternalTopics checks the internal topics the application
// creates on a broker that does not create topics by itself: a compacted
// changelog with the source's partition count, and a dead-letter topic.
func TestRealKafkaInternalTopics(t *testing.T) {
	brokers := testBrokers(t)
	in, out, dlt, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "dlt"), uniqueName(t, "app")
	createTopics(t, brokers, 3, in, out)
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithProcessingErrors(kstreams.DeadLetterOnError(dlt)))
	waitFor(t, 60*time.Second, "the instance to own its tasks", func() bool { return a.app.Stats().Tasks == 3 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changelog := appID + "-counts-changelog"
	td, err := adm.ListTopics(ctx, changelog, dlt)
	if err != nil {
		t.Fatal(err)
	}
	if d := td[changelog]; d.Err != nil || len(d.Partitions) != 3 {
		t.Fatalf("changelog %s: %v, %d partitions, want 3", changelog, d.Err, len(d.Partitions))
	}
	if d := td[dlt]; d.Err != nil || len(d.Partitions) == 0 {
		t.Fatalf("dead-letter topic %s: %v", dlt, d.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, changelog)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(changelog, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Fatalf("changelog %s has cleanup.policy %q, want compact", changelog, policy)
	}
}
