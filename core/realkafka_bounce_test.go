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
	"github.com/kstreams-go/kstreams/core/serde"
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
	t.Parallel()
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
		kstreams.WithSessionTimeout(6*time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second)))
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
	t.Parallel()
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
			kstreams.WithSessionTimeout(6 * time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second))}
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
// of inputs, and no count may go back in the changelog.
//
// It reproduced (sometimes: the timing decided) what tools/chaos
// broker-bounce found: an instance whose partitions were lost while the
// broker was down still held produce requests in flight; franz-go retried
// them once the broker was back, after the new owner had restored the task
// and written newer counts, so an old count landed last in the changelog
// (offsets ...4617 = 55, 4702..5042 = 56..60 from the new owner, 5127 = 56
// from the old owner's retry) and the increments in between were lost for
// every later restore. The fencing in the runtime (a lost task's records are
// aborted before the callback returns; the membership lease fences earlier)
// prevents it; TestNetworkPartitionIsFenced makes the case deterministic
// through a fault proxy.
func TestRealKafkaZombieWritesAfterBrokerKill(t *testing.T) {
	t.Parallel()
	sh := kafkaScript(t)
	dir := t.TempDir()
	brokers := strings.Split(kafkaSh(t, sh, dir, "start"), ",")
	t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })

	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 8, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(time.Second),
		kstreams.WithSessionTimeout(6 * time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second))}
	opts = append(opts, modeOptions(false)...)
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
	waitFor(t, 60*time.Second, "both instances to own tasks", func() bool {
		return a.app.Stats().Tasks > 0 && b.app.Stats().Tasks > 0 && a.app.Stats().Tasks+b.app.Stats().Tasks == 8
	})
	time.Sleep(3 * time.Second)
	kafkaSh(t, sh, dir, "stop-node", "1", "-9")
	time.Sleep(12 * time.Second) // longer than the session timeout
	kafkaSh(t, sh, dir, "start-node", "1")
	time.Sleep(8 * time.Second)
	close(stop)
	n := <-sent
	for i := range n {
		inputs[strconv.Itoa(i)] = "k" + strconv.Itoa(i%200)
	}
	waitFor(t, 120*time.Second, "every input in the output", func() bool {
		for _, x := range []*runningApp{a, b} {
			select {
			case err := <-x.err:
				x.err <- err
				t.Fatalf("an instance stopped: %v", err)
			default:
			}
		}
		return len(outputIDs(results.snapshot())) >= n
	})
	time.Sleep(2 * time.Second) // late records land now, if any
	for _, x := range []*runningApp{a, b} {
		if err := x.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	dups := checkNoLoss(t, inputs, results.snapshot())
	checkNoRegression(t, collectAll(t, brokers, appID+"-counts-changelog"))
	t.Logf("%d inputs, %d duplicates", n, dups)
}

// collectAll reads topic from its start to its current end.
func collectAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	c := collect(t, brokers, topic)
	ends := endOffsets(t, brokers, topic)
	waitFor(t, 60*time.Second, "reading "+topic+" to its end", func() bool {
		got := map[int32]int64{}
		for _, r := range c.snapshot() {
			got[r.Partition] = r.Offset + 1
		}
		for p, end := range ends {
			if end > 0 && got[p] < end {
				return false
			}
		}
		return true
	})
	return c.snapshot()
}

// endOffsets returns the end offset of each partition of topic.
func endOffsets(t *testing.T, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(newClient(t, brokers)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// checkNoRegression fails if a key's count in a counts changelog goes
// down: a stale owner's count landed after a newer one.
func checkNoRegression(t *testing.T, changelog []*kgo.Record) {
	t.Helper()
	last := map[string]int64{}
	for _, r := range changelog {
		if r.Value == nil {
			continue
		}
		n, err := serde.StoreForm(serde.Int64).Deserialize("", nil, r.Value)
		if err != nil {
			t.Fatalf("changelog %d/%d: %v", r.Partition, r.Offset, err)
		}
		if prev, ok := last[string(r.Key)]; ok && n < prev {
			t.Errorf("changelog %d/%d: count of %s went from %d down to %d (a stale write)", r.Partition, r.Offset, r.Key, prev, n)
		}
		last[string(r.Key)] = n
	}
}

// TestRealKafkaLongBrokerOutage stops the (single) broker for two minutes
// while an instance has records in flight, and restarts it: the instance
// must survive the outage (produce retries, failed commits, no punctuator
// timing out) and then catch up with nothing lost. A long test: it runs
// with KSTREAMS_TEST_LONG=1 (tools/test.sh --soak sets it).
func TestRealKafkaLongBrokerOutage(t *testing.T) {
	if os.Getenv("KSTREAMS_TEST_LONG") == "" {
		t.Skip("long test (a 2-minute broker outage): set KSTREAMS_TEST_LONG=1 (tools/test.sh --soak does)")
	}
	sh := kafkaScript(t)
	dir := t.TempDir()
	brokers := strings.Split(kafkaSh(t, sh, dir, "start"), ",")
	t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })

	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 4, in, out)
	producer := newClient(t, brokers)
	results := collect(t, brokers, out)
	inputs := map[string]string{}
	a := startApp(t, countingTopology(t, in, out, memory.Supplier()),
		kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(200*time.Millisecond),
		kstreams.WithSessionTimeout(6*time.Second), kstreams.WithKgoOptions(kgo.HeartbeatInterval(time.Second)))
	sendIDs(t, producer, in, 0, 2000, 20, inputs)
	waitFor(t, 60*time.Second, "the first outputs", func() bool { return len(outputIDs(results.snapshot())) >= 100 })

	kafkaSh(t, sh, dir, "stop-node", "1", "-9") // records of the app still in flight
	time.Sleep(2 * time.Minute)
	select {
	case err := <-a.err:
		a.err <- err
		t.Fatalf("the app stopped during a 2-minute broker outage: %v", err)
	default:
	}
	kafkaSh(t, sh, dir, "start-node", "1")
	sendIDs(t, producer, in, 2000, 4000, 20, inputs)
	waitFor(t, 3*time.Minute, "4000 outputs", func() bool {
		select {
		case err := <-a.err:
			a.err <- err
			t.Fatalf("the app stopped after the outage: %v", err)
		default:
		}
		return len(outputIDs(results.snapshot())) >= 4000
	})
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	dups := checkNoLoss(t, inputs, results.snapshot())
	checkNoRegression(t, collectAll(t, brokers, appID+"-counts-changelog"))
	t.Logf("4000 inputs, %d duplicates", dups)
}
