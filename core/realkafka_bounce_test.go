package kstreams_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaScript returns tools/kafka/kafka.sh when KSTREAMS_TEST_KAFKA_SH names
// it (tools/test.sh sets it), or skips: tests that stop and restart a broker
// start one of their own.
func kafkaScript(t *testing.T) string {
	t.Helper()
	sh := os.Getenv("KSTREAMS_TEST_KAFKA_SH")
	if sh == "" {
		t.Skip("needs a broker of its own to bounce: set KSTREAMS_TEST_KAFKA_SH to tools/kafka/kafka.sh (tools/test.sh does)")
	}
	return sh
}

func kafkaSh(t *testing.T, sh, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append(append([]string{sh}, args...), "-d", dir)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafka.sh %v: %v\n%s", args, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// TestRealKafkaBrokerBounce stops the (single) broker for a few seconds
// while an instance runs, and restarts it: the instance must ride it out
// (franz-go retries; the errors it reports meanwhile are not fatal) and
// process everything, with no restart by an operator.
//
// tools/chaos broker-bounce found that the poll loop returned the
// group-session error that franz-go reports while the coordinator is
// unreachable ("fetching /0: unable to join group session: unable to dial
// ... connection refused") and Run stopped; fixed in the runtime (retriable
// fetch errors are logged, not fatal).
func TestRealKafkaBrokerBounce(t *testing.T) {
	sh := kafkaScript(t)
	dir := t.TempDir()
	brokers := strings.Split(kafkaSh(t, sh, dir, "start"), ",")
	t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })

	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 4, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	inputs := map[string]string{}
	sendIDs(t, producer, in, 0, 2000, 20, inputs)
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(200*time.Millisecond),
		kstreams.WithKgoOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second)))
	waitFor(t, 60*time.Second, "2000 outputs", func() bool { return len(outputIDs(results.snapshot())) >= 2000 })

	kafkaSh(t, sh, dir, "stop-node", "1")
	time.Sleep(5 * time.Second)
	kafkaSh(t, sh, dir, "start-node", "1")
	select {
	case err := <-a.err:
		a.err <- err
		t.Fatalf("the app stopped while the broker restarted: %v", err)
	default:
	}
	sendIDs(t, producer, in, 2000, 4000, 20, inputs)
	waitFor(t, 90*time.Second, "4000 outputs", func() bool {
		select {
		case err := <-a.err:
			a.err <- err
			t.Fatalf("the app stopped after the broker restarted: %v", err)
		default:
		}
		return len(outputIDs(results.snapshot())) >= 4000
	})
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	checkNoLoss(t, inputs, results.snapshot())
}

// TestRealKafkaLeaderKill kills (SIGKILL) a broker of three that leads a
// changelog partition but does not coordinate the group, while an instance
// with a persistent store runs, and a second instance joins during the
// outage (so tasks are committed, checkpointed and restored while a leader
// is gone). With replication factor 3 both must ride it out.
//
// tools/chaos broker-kill once saw an instance stop with "checkpointing
// store counts of task 0_0: end offset of ...-changelog/0: ... unable to
// dial ... connection refused" when the killed broker was both the group
// coordinator and that partition's leader; this test, which avoids the
// coordinator (see TestRealKafkaBrokerBounce), has not reproduced it.
func TestRealKafkaLeaderKill(t *testing.T) {
	sh := kafkaScript(t)
	dir := t.TempDir()
	brokers := strings.Split(kafkaSh(t, sh, dir, "start", "-n", "3"), ",")
	t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })

	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 3, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	inputs := map[string]string{}
	sendIDs(t, producer, in, 0, 3000, 30, inputs)
	opts := func() []kstreams.Option {
		return []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithStateDir(t.TempDir()),
			kstreams.WithCommitInterval(200 * time.Millisecond),
			kstreams.WithKgoOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))}
	}
	a := startApp(t, countingTopology(t, in, out, fileSupplier()), opts()...)
	waitFor(t, 60*time.Second, "3000 outputs", func() bool { return len(outputIDs(results.snapshot())) >= 3000 })

	adm := kadm.NewClient(newClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coordinator := int32(-1)
	for _, c := range adm.FindGroupCoordinators(ctx, appID) {
		coordinator = c.NodeID
	}
	changelog := appID + "-counts-changelog"
	td, err := adm.ListTopics(ctx, changelog)
	if err != nil {
		t.Fatal(err)
	}
	victim := int32(-1)
	for _, p := range td[changelog].Partitions.Sorted() {
		if p.Leader != coordinator {
			victim = p.Leader
		}
	}
	if victim < 0 {
		t.Skipf("every changelog partition is led by the group coordinator %d", coordinator)
	}
	t.Logf("killing broker %d (coordinator %d)", victim, coordinator)
	// Records keep flowing through the outage, as in production: commits
	// (and checkpoints) keep happening while the leader is gone.
	flowing := make(chan int)
	go func() {
		next := 3000
		defer func() { flowing <- next }()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); next += 50 {
			var recs []*kgo.Record
			for i := next; i < next+50; i++ {
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%30)), Value: []byte(strconv.Itoa(i))})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := producer.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	kafkaSh(t, sh, dir, "stop-node", strconv.Itoa(int(victim)), "-9")
	// A second instance joins meanwhile: the first commits and checkpoints
	// the tasks it gives up, the second restores them.
	b := startApp(t, countingTopology(t, in, out, fileSupplier()), opts()...)
	time.Sleep(15 * time.Second)
	kafkaSh(t, sh, dir, "start-node", strconv.Itoa(int(victim)))
	sent := <-flowing
	for i := 3000; i < sent; i++ {
		inputs[strconv.Itoa(i)] = "k" + strconv.Itoa(i%30)
	}
	sendIDs(t, producer, in, sent, sent+1000, 30, inputs)
	total := len(inputs)
	waitFor(t, 90*time.Second, "every input in the output", func() bool {
		for _, x := range []*runningApp{a, b} {
			select {
			case err := <-x.err:
				x.err <- err
				t.Fatalf("an instance stopped: %v", err)
			default:
			}
		}
		return len(outputIDs(results.snapshot())) >= total
	})
	for _, x := range []*runningApp{a, b} {
		if err := x.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	checkNoLoss(t, inputs, results.snapshot())
}

// TestRealKafkaZombieWritesAfterBrokerKill kills (SIGKILL) the single broker
// while two instances process a steady flow, and restarts it after their
// sessions expired. Each key's last count must still be at least its number
// of inputs.
//
// Known bug (tools/chaos broker-bounce found it): an instance whose
// partitions were lost while the broker was down still holds produce
// requests in flight (the broker died before answering); franz-go retries
// them once the broker is back, after the new owner has restored the task
// and written newer counts. The late records (an old count in the changelog
// and in the output) land last: the changelog's latest value for the key
// goes back, and the increments in between are lost for every later
// restore. In the chaos run: changelog offsets ...4617 = 55, 4702..5042 =
// 56..60 (new owner), 5127 = 56 (timestamp 17:37:49, the old owner's retry).
// Fencing the old owner's writes (a transactional producer per instance, or
// failing its buffered records for lost partitions before they can be
// retried) would prevent it. Skipped unless KSTREAMS_TEST_KNOWN_BUGS=1.
func TestRealKafkaZombieWritesAfterBrokerKill(t *testing.T) {
	sh := kafkaScript(t)
	if os.Getenv("KSTREAMS_TEST_KNOWN_BUGS") == "" {
		t.Skip("known runtime bug: late writes of an instance whose partitions were lost can roll counts back (set KSTREAMS_TEST_KNOWN_BUGS=1 to run)")
	}
	dir := t.TempDir()
	brokers := strings.Split(kafkaSh(t, sh, dir, "start"), ",")
	t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })

	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 8, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(time.Second),
		kstreams.WithKgoOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))}
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()), opts...)
	b := startApp(t, countingTopology(t, in, out, memory.Supplier()), opts...)

	inputs := map[string]string{}
	stop := make(chan struct{})
	sent := make(chan int)
	go func() { // a steady flow, through the outage
		next := 0
		defer func() { sent <- next }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var recs []*kgo.Record
			for i := next; i < next+100; i++ {
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(i%200)), Value: []byte(strconv.Itoa(i))})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			err := producer.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			next += 100
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(5 * time.Second)
	kafkaSh(t, sh, dir, "stop-node", "1", "-9")
	time.Sleep(12 * time.Second) // longer than the session timeout
	kafkaSh(t, sh, dir, "start-node", "1")
	time.Sleep(8 * time.Second)
	close(stop)
	n := <-sent
	for i := range n {
		inputs[strconv.Itoa(i)] = "k" + strconv.Itoa(i%200)
	}
	waitFor(t, 120*time.Second, "every input in the output", func() bool { return len(outputIDs(results.snapshot())) >= n })
	time.Sleep(2 * time.Second) // late records land now, if any
	for _, x := range []*runningApp{a, b} {
		if err := x.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	dups := checkNoLoss(t, inputs, results.snapshot())
	t.Logf("%d inputs, %d duplicates", n, dups)
}
