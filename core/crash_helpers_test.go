package kstreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readTopic reads every record of topic up to its end offsets at the time
// of the call (see kafkatest.ReadToEnd).
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	return kafkatest.ReadToEnd(t, brokers, topic)
}

// committedOffsets returns the group's committed offset of each partition
// of topic (partitions without a commit are absent).
func committedOffsets(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[int32]int64{}
	adm := kadm.NewClient(newClient(t, brokers))
	offs, err := adm.FetchOffsets(ctx, group)
	// A broker that has just started answers COORDINATOR_NOT_AVAILABLE
	// until its offsets topic exists: ask again.
	for kerr.IsRetriable(err) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		offs, err = adm.FetchOffsets(ctx, group)
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out // nothing committed yet
	}
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitCommitted waits until group has committed every record of topic.
func waitCommitted(t testing.TB, brokers []string, group, topic string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	waitFor(t, timeout, "every record of "+topic+" to be committed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, o.Partition)
			all = all && (o.Offset == 0 || ok && c.At == o.Offset)
		})
		return all
	})
}

// checkReplaysBounded checks what a crash may process again: only records
// at or above their partition's offset committed at the crash (those in
// flight since the last commit), each at most once more. committed holds
// the committed offsets taken at (or before) the crash; inputs are the
// input topic's records, whose values are the ids of the counting topology.
// It returns the number of duplicate outputs.
func checkReplaysBounded(t *testing.T, committed map[int32]int64, inputs, outputs []*kgo.Record) (duplicates int) {
	t.Helper()
	type at struct {
		partition int32
		offset    int64
	}
	where := make(map[string]at, len(inputs))
	for _, r := range inputs {
		where[string(r.Value)] = at{r.Partition, r.Offset}
	}
	times := map[string]int{}
	for _, r := range outputs {
		var o countOutput
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("bad output %q: %v", r.Value, err)
		}
		times[o.ID]++
	}
	bad := 0
	for id, n := range times {
		if n < 2 {
			continue
		}
		duplicates += n - 1
		w, ok := where[id]
		switch {
		case !ok:
			t.Errorf("output id %s is not an input id", id)
		case n > 2:
			t.Errorf("id %s (input %d@%d) is in the output %d times; one crash replays a record at most once", id, w.partition, w.offset, n)
		case w.offset < committed[w.partition]:
			bad++
			if bad <= 5 {
				t.Errorf("id %s (input %d@%d) was processed again though offset %d of partition %d was committed before the crash",
					id, w.partition, w.offset, committed[w.partition], w.partition)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d records below the committed offsets were processed again", bad)
	}
	return duplicates
}
