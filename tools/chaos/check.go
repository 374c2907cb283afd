package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readAll reads topic from the start to its current end offsets.
func readAll(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	remaining := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(remaining) == 0 {
		return nil, nil
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(32<<20))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	var recs []*kgo.Record
	for len(remaining) > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %d partitions not read to the end: %w", topic, len(remaining), ctx.Err())
		}
		fs.EachError(func(t string, p int32, e error) { err = fmt.Errorf("reading %s/%d: %w", t, p, e) })
		if err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, r)
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
	}
	return recs, nil
}

// lag returns how many records of topic the group has not committed.
func lag(ctx context.Context, brokers []string, group, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, o.Partition)
		at := int64(0)
		if ok && c.At >= 0 {
			at = c.At
		}
		total += o.Offset - at
	})
	return total, nil
}

// waitDrained waits until group has committed every record of topic, and
// instances that should run are still running; it returns the remaining lag.
func waitDrained(ctx context.Context, brokers []string, group, topic string, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	var l int64 = -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := lag(ctx, brokers, group, topic)
		if err == nil {
			l = n
			if n == 0 {
				return 0
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return l
}

// verdict is what the checker found in one scenario's topics.
type verdict struct {
	In, Out         int // input records; output records
	Good            int // input records that should produce output
	Poison, Garbage int // input records made to fail processing / deserialization
	UniqueOut       int // distinct ids in the output
	Duplicates      int // output records beyond one per id
	Lost            int // good ids missing from the output (or poison ids missing from the dead-letter topic)
	Regressions     int // outputs whose count is not above the previous output of the same key
	OverCount       int64
	CountLoss       int64 // sum over keys of true count minus final count, where final < true
	CountLossKeys   int   // keys whose final count is below their true count
	LateLoss        int64 // the part of CountLoss whose keys end with a late re-delivered record (known bug)
	DeadLetters     int
	problems        []string
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.problems) < 20 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

// check reads the input, output and (if set) dead-letter topics and proves
// at-least-once for the counting app: every good input id is in the output
// under its key, the counts are consistent, and (with dlq) every bad record
// is in the dead-letter topic.
func check(ctx context.Context, brokers []string, in, out, dlq string) (*verdict, error) {
	inputs, err := readAll(ctx, brokers, in)
	if err != nil {
		return nil, err
	}
	outputs, err := readAll(ctx, brokers, out)
	if err != nil {
		return nil, err
	}
	v := &verdict{In: len(inputs), Out: len(outputs)}
	keyOf := make(map[string]string, len(inputs)) // good id -> key
	bad := map[string]bool{}                      // ids of poison and garbage records
	truth := map[string]int64{}
	for _, r := range inputs {
		val := string(r.Value)
		switch {
		case strings.HasPrefix(val, "poison:"):
			v.Poison++
			bad[strings.TrimPrefix(val, "poison:")] = true
		case strings.HasPrefix(val, "garbage:"):
			v.Garbage++
			bad[strings.TrimPrefix(val, "garbage:")] = true
		default:
			if _, dup := keyOf[val]; dup {
				v.problem("input id %s appears twice in the input", val)
			}
			keyOf[val] = string(r.Key)
			truth[string(r.Key)]++
		}
	}
	v.Good = len(keyOf)

	// Outputs, per partition in offset order (a key's outputs are all in
	// one partition).
	sort.SliceStable(outputs, func(i, j int) bool {
		if outputs[i].Partition != outputs[j].Partition {
			return outputs[i].Partition < outputs[j].Partition
		}
		return outputs[i].Offset < outputs[j].Offset
	})
	seen := make(map[string]int, len(outputs))
	last := map[string]int64{}
	// late marks keys whose last output is a late re-delivery: an id already
	// in the output, timestamped before the output preceding it.
	late := map[string]bool{}
	lastTs := map[string]time.Time{}
	outPerKey := map[string]int{}
	for _, r := range outputs {
		var o struct {
			ID    string `json:"id"`
			Count int64  `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			v.problem("undecodable output %q at %s/%d@%d", r.Value, r.Topic, r.Partition, r.Offset)
			continue
		}
		key := string(r.Key)
		want, ok := keyOf[o.ID]
		switch {
		case !ok:
			v.problem("output for id %s, which is not a good input id", o.ID)
		case want != key:
			v.problem("output for id %s has key %q, its input had %q", o.ID, key, want)
		}
		seen[o.ID]++
		outPerKey[key]++
		if prev, ok := last[key]; ok && o.Count <= prev {
			v.Regressions++
		}
		late[key] = seen[o.ID] > 1 && r.Timestamp.Before(lastTs[key])
		last[key] = o.Count
		lastTs[key] = r.Timestamp
	}
	v.UniqueOut = len(seen)
	v.Duplicates = v.Out - v.UniqueOut
	for id, key := range keyOf {
		if seen[id] == 0 {
			v.Lost++
			v.problem("input id %s (key %s) is not in the output: lost", id, key)
		}
	}
	for key, n := range truth {
		final := last[key]
		if final < n {
			v.CountLoss += n - final
			v.CountLossKeys++
			if late[key] {
				// The known bug of TestRealKafkaZombieWritesAfterBrokerKill: an
				// instance that lost its partitions delivered an old record
				// after the new owner's newer ones.
				v.LateLoss += n - final
				continue
			}
			v.problem("key %s: final count %d is below the true count %d: state updates lost", key, final, n)
		} else {
			v.OverCount += final - n
		}
	}
	if dlq != "" {
		dls, err := readAll(ctx, brokers, dlq)
		if err != nil {
			return nil, err
		}
		v.DeadLetters = len(dls)
		dead := map[string]bool{}
		for _, r := range dls {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if h["kstreams.source.topic"] != in || h["kstreams.error.stage"] == "" || h["kstreams.source.offset"] == "" {
				v.problem("dead letter %q lacks its error headers: %v", r.Value, h)
			}
			_, id, _ := strings.Cut(string(r.Value), ":")
			dead[id] = true
		}
		for id := range bad {
			if !dead[id] {
				v.Lost++
				v.problem("bad record %s is neither in the output nor in the dead-letter topic: lost", id)
			}
		}
	}
	return v, nil
}

// ok: nothing lost, and no count below its truth other than by the known
// late-write bug (reported, see scenario.report).
func (v *verdict) ok() bool { return v.Lost == 0 && v.CountLoss == v.LateLoss && len(v.problems) == 0 }
