package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAppRunsOnce: a second Run, while the first runs or after it
// returned, is ErrRunOnce and does not disturb the first.
func TestAppRunsOnce(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	ra := startApp(t, countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	waitFor(t, 60*time.Second, "the app to own its task", func() bool { return ra.app.Stats().Tasks == 1 })
	if err := ra.app.Run(context.Background()); !errors.Is(err, kstreams.ErrRunOnce) {
		t.Fatalf("second Run while the first runs = %v, want ErrRunOnce", err)
	}
	produce(t, newClient(t, brokers), &kgo.Record{Topic: in, Key: []byte("k"), Value: []byte("1")})
	waitFor(t, 60*time.Second, "the first Run to go on processing", func() bool { return len(readTopic(t, brokers, out)) == 1 })
	if err := ra.stop(t); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	err := ra.app.Run(context.Background())
	if !errors.Is(err, kstreams.ErrRunOnce) {
		t.Fatalf("Run after Run returned = %v, want ErrRunOnce", err)
	}
	t.Logf("second Run: %v", err)
}

// TestCrashForUserRecoveryTests is what a user's recovery test looks
// like: kstreamstest.Crash stops an App without committing, so a new App
// with the same id processes every record again; a graceful stop commits,
// so the next App would not.
func TestCrashForUserRecoveryTests(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 2, in, out)
	topo := countingTopology(t, in, out, memory.Supplier())
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(time.Hour)} // no commit but on a graceful stop
	const n = 20
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%3)), Value: []byte(strconv.Itoa(i))})
	}
	produce(t, newClient(t, brokers), recs...)

	first := startApp(t, topo, opts...)
	waitFor(t, 60*time.Second, "the first app's outputs", func() bool { return len(readTopic(t, brokers, out)) >= n })
	kstreamstest.Crash(first.app)
	if err := first.wait(t); err != nil {
		t.Fatalf("Run of the crashed app = %v, want nil", err)
	}
	if got := committedOffsets(t, brokers, appID, in); len(got) != 0 {
		t.Fatalf("the crashed app committed %v; a crash commits nothing", got)
	}
	if err := first.app.Run(context.Background()); !errors.Is(err, kstreams.ErrRunOnce) {
		t.Fatalf("Run of the crashed app again = %v, want ErrRunOnce", err)
	}

	second := startApp(t, topo, opts...)
	waitFor(t, 60*time.Second, "the second app to process every record again", func() bool { return len(readTopic(t, brokers, out)) >= 2*n })
	if err := second.stop(t); err != nil {
		t.Fatalf("second app: %v", err)
	}
	seen := map[string]int{}
	for _, r := range readTopic(t, brokers, out) {
		var o countOutput
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		seen[o.ID]++
	}
	for i := range n {
		if seen[strconv.Itoa(i)] != 2 {
			t.Errorf("input %d has %d outputs, want 2 (once per app)", i, seen[strconv.Itoa(i)])
		}
	}
	committed := committedOffsets(t, brokers, appID, in)
	if total := committed[0] + committed[1]; total != n {
		t.Errorf("after a graceful stop the group committed %v (%d records), want all %d", committed, total, n)
	}
}
