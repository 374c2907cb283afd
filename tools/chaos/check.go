package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(32 << 20)}
	if *transactions {
		// What the transactions committed only; the markers are kept so
		// that a partition ending in one is seen to its end.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	cons, err := kgo.NewClient(opts...)
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
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
			}
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
	Replays         int // times a key's outputs go back to an earlier record: a restart processing records again (legitimate)
	Regressions     int // outputs no at-least-once history explains (see judge): state went back, or an old write landed late
	OverCount       int64
	CountLoss       int64 // sum over keys of true count minus final count, where final < true
	CountLossKeys   int   // keys whose final count is below their true count
	DeadLetters     int
	problems        []string
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.problems) < 20 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

// check reads the input, output and (if set) dead-letter topics and judges
// them (see judge).
func check(ctx context.Context, brokers []string, in, out, dlq string) (*verdict, error) {
	inputs, err := readAll(ctx, brokers, in)
	if err != nil {
		return nil, err
	}
	outputs, err := readAll(ctx, brokers, out)
	if err != nil {
		return nil, err
	}
	var dls []*kgo.Record
	if dlq != "" {
		if dls, err = readAll(ctx, brokers, dlq); err != nil {
			return nil, err
		}
	}
	v := judge(in, inputs, outputs, dls, dlq != "")
	if *transactions {
		v.checkExactlyOnce()
	}
	return v, nil
}

// judge proves at-least-once for the counting app (tools/chaos/app) from
// its input and output records (and, with dlq, its dead letters): every good
// input id is in the output under its key, each key's outputs form a history
// that at-least-once processing can produce, and (with dlq) every bad record
// is in the dead-letter topic.
//
// The history rule. Number a key's good input records 1..n in input offset
// order (its rank; one key is in one input partition, and the app processes
// a partition in offset order). A process that owns the partition processes
// records in rank order; it writes record r's output with the key's count
// after r. When it dies, the next owner restores the count from the
// changelog and resumes at the committed offset: at or before the first
// record whose output is not written (its output is written only after the
// outputs of the records before it), having restored at least the
// increments of every record it does not process again (a record is
// committed only once its changelog write is acknowledged). So, in output
// order, every output of a key
//
//	(a) is for a rank at most one above the previous output's (the first: rank 1);
//	(b) has a count of at least its rank;
//	(c) if its rank is one above the previous output's, has a count above it
//	    (the same process went on, or the next owner resumed after that record,
//	    whose increment was then durable);
//
// and the key's last output is for its last record (d): the last owner
// processes to the end. A replay after a crash satisfies these however many
// outputs and changelog writes the crash cut off (going back in rank is
// allowed, counted in Replays; the counts written again may be lower than
// those already written, and end above the truth). A write
// of an old owner that lands after the new owner's breaks (a) (the new
// owner's next output is ahead of it) or (d) (nothing follows it), and a
// restore that lost increments breaks (b) or (c), or leaves the final count
// below the truth: each is a Regression, and fails the verdict like a lost
// id or a final count below the truth.
func judge(in string, inputs, outputs, deadLetters []*kgo.Record, dlq bool) *verdict {
	v := &verdict{In: len(inputs), Out: len(outputs)}
	inputs, outputs = byPartitionOffset(inputs), byPartitionOffset(outputs)
	keyOf := make(map[string]string, len(inputs)) // good id -> key
	rank := make(map[string]int64, len(inputs))   // good id -> its rank among its key's good records
	bad := map[string]bool{}                      // ids of poison and garbage records
	truth := map[string]int64{}
	inPart := map[string]int32{}
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
			key := string(r.Key)
			if _, dup := keyOf[val]; dup {
				v.problem("input id %s appears twice in the input", val)
				continue
			}
			if p, ok := inPart[key]; ok && p != r.Partition {
				v.problem("key %s is in input partitions %d and %d: its records have no order to check", key, p, r.Partition)
			}
			inPart[key] = r.Partition
			keyOf[val] = key
			truth[key]++
			rank[val] = truth[key]
		}
	}
	v.Good = len(keyOf)

	// A key's history so far: its last output's rank and count.
	type history struct {
		rank, count int64
		partition   int32
		outputs     int
	}
	hist := map[string]*history{}
	seen := make(map[string]int, len(outputs))
	for _, r := range outputs {
		var o struct {
			ID    string `json:"id"`
			Count int64  `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			v.problem("undecodable output %q at %s/%d@%d", r.Value, r.Topic, r.Partition, r.Offset)
			continue
		}
		seen[o.ID]++
		key := string(r.Key)
		want, ok := keyOf[o.ID]
		switch {
		case !ok:
			v.problem("output for id %s, which is not a good input id", o.ID)
			continue
		case want != key:
			v.problem("output for id %s has key %q, its input had %q", o.ID, key, want)
			continue
		}
		h := hist[key]
		if h == nil {
			h = &history{partition: r.Partition}
			hist[key] = h
		}
		if h.partition != r.Partition {
			v.problem("key %s has outputs in partitions %d and %d: their order is unknown", key, h.partition, r.Partition)
		}
		h.outputs++
		at := fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
		rk := rank[o.ID]
		switch {
		case rk > h.rank+1:
			v.Regressions++
			v.problem("key %s: output %s (id %s, record %d of the key, count %d) follows the output for record %d (count %d): a late write of an old owner, or records skipped",
				key, at, o.ID, rk, o.Count, h.rank, h.count)
		case o.Count < rk:
			v.Regressions++
			v.problem("key %s: output %s (id %s) has count %d, below its rank %d among the key's records: state went back", key, at, o.ID, o.Count, rk)
		case rk == h.rank+1 && o.Count <= h.count:
			v.Regressions++
			v.problem("key %s: output %s (id %s, record %d) has count %d, not above the previous record's %d: an increment was lost", key, at, o.ID, rk, o.Count, h.count)
		}
		if rk <= h.rank {
			v.Replays++
		}
		h.rank, h.count = rk, o.Count
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
		h := hist[key]
		if h == nil {
			// Its ids are counted as lost above.
			v.CountLoss += n
			v.CountLossKeys++
			continue
		}
		if h.rank < n {
			v.Regressions++
			v.problem("key %s: its last output is for record %d of %d (count %d): an older output landed after newer ones", key, h.rank, n, h.count)
		}
		if h.count < n {
			v.CountLoss += n - h.count
			v.CountLossKeys++
			v.problem("key %s: final count %d is below the true count %d: state updates lost", key, h.count, n)
		} else {
			v.OverCount += h.count - n
		}
	}
	if dlq {
		v.DeadLetters = len(deadLetters)
		dead := map[string]bool{}
		for _, r := range deadLetters {
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
	return v
}

// byPartitionOffset returns recs sorted by partition, then offset.
func byPartitionOffset(recs []*kgo.Record) []*kgo.Record {
	recs = slices.Clone(recs)
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs
}

// ok: nothing lost, no history that at-least-once cannot produce, no final
// count below its truth, and nothing else wrong.
func (v *verdict) ok() bool {
	return v.Lost == 0 && v.Regressions == 0 && v.CountLoss == 0 && len(v.problems) == 0
}

// checkExactState adds the problem a store without changelog that keeps
// its input offsets with its data rules out: a restart resumes from the
// offsets the state covers, so no record is applied to the state twice
// and the final counts equal the inputs (outputs may still repeat).
func (v *verdict) checkExactState() {
	if v.OverCount > 0 {
		v.problem("the store keeps its input offsets with its data, yet counts exceed the inputs by %d: records applied to the state twice", v.OverCount)
	}
}

// checkExactlyOnce adds the problems exactly-once processing rules out:
// with transactions, committed outputs hold each input's output once, and
// the counts (state restored from committed changelogs only) never exceed
// the inputs.
func (v *verdict) checkExactlyOnce() {
	if v.Duplicates > 0 {
		v.problem("with transactions, %d outputs duplicate another (an input's output committed twice)", v.Duplicates)
	}
	if v.OverCount > 0 {
		v.problem("with transactions, counts exceed the inputs by %d (state kept increments of aborted transactions)", v.OverCount)
	}
}
