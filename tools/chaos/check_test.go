package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// topics is a hand-made history of the counting app: its input, output and
// dead-letter records, with offsets assigned in the order they are added.
type topics struct {
	inputs, outputs, dead []*kgo.Record
	next                  map[string]int64 // topic/partition -> next offset
	clock                 time.Time
}

const (
	inTopic  = "in"
	outTopic = "out"
)

func newTopics() *topics {
	return &topics{next: map[string]int64{}, clock: time.Unix(1_700_000_000, 0)}
}

func (tp *topics) record(topic string, part int32, key, value string) *kgo.Record {
	tp.clock = tp.clock.Add(time.Millisecond)
	tpKey := fmt.Sprintf("%s/%d", topic, part)
	r := &kgo.Record{Topic: topic, Partition: part, Offset: tp.next[tpKey], Key: []byte(key), Value: []byte(value), Timestamp: tp.clock}
	tp.next[tpKey]++
	return r
}

// in adds input records of key, one per id.
func (tp *topics) in(part int32, key string, ids ...string) {
	for _, id := range ids {
		tp.inputs = append(tp.inputs, tp.record(inTopic, part, key, id))
	}
}

// out adds the app's output for id: the key's count after it.
func (tp *topics) out(part int32, key, id string, count int64) *kgo.Record {
	v, _ := json.Marshal(map[string]any{"id": id, "count": count})
	r := tp.record(outTopic, part, key, string(v))
	tp.outputs = append(tp.outputs, r)
	return r
}

// outs adds outputs of key for ids with counts from, from+1, ...
func (tp *topics) outs(part int32, key string, from int64, ids ...string) {
	for i, id := range ids {
		tp.out(part, key, id, from+int64(i))
	}
}

func (tp *topics) deadLetter(value string, headers map[string]string) {
	r := tp.record("dlq", 0, "k", value)
	for k, v := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	tp.dead = append(tp.dead, r)
}

func (tp *topics) judge(dlq bool) *verdict {
	return judge(inTopic, tp.inputs, tp.outputs, tp.dead, dlq)
}

func ids(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, "id"+strconv.Itoa(i))
	}
	return s
}

// mustPass fails the test unless v passes, showing its problems.
func mustPass(t *testing.T, v *verdict) {
	t.Helper()
	if !v.ok() {
		t.Fatalf("verdict fails, want a pass: lost %d, regressions %d, count loss %d, problems:\n%s",
			v.Lost, v.Regressions, v.CountLoss, strings.Join(v.problems, "\n"))
	}
}

// mustFail fails the test unless v fails with a problem containing want.
func mustFail(t *testing.T, v *verdict, want string) {
	t.Helper()
	if v.ok() {
		t.Fatalf("verdict passes, want a failure (%q)", want)
	}
	for _, p := range v.problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("no problem mentions %q; problems:\n%s", want, strings.Join(v.problems, "\n"))
}

func TestJudgeCleanRun(t *testing.T) {
	tp := newTopics()
	tp.in(0, "a", "1", "2", "3")
	tp.in(1, "b", "4", "5")
	tp.in(0, "c", "6")
	tp.in(0, "a", "7")
	tp.outs(0, "a", 1, "1", "2", "3")
	tp.outs(1, "b", 1, "4", "5")
	tp.outs(0, "c", 1, "6")
	tp.outs(0, "a", 4, "7")
	v := tp.judge(false)
	mustPass(t, v)
	if v.In != 7 || v.Good != 7 || v.Out != 7 || v.UniqueOut != 7 || v.Duplicates != 0 || v.Replays != 0 || v.OverCount != 0 {
		t.Fatalf("figures of a clean run: %+v", *v)
	}
}

// TestJudgeTrueLoss: an input id that never reaches the output fails,
// wherever it is in its key's history.
func TestJudgeTrueLoss(t *testing.T) {
	for _, missing := range []int{0, 2, 4} {
		t.Run(strconv.Itoa(missing), func(t *testing.T) {
			tp := newTopics()
			all := ids(0, 5)
			tp.in(0, "k", all...)
			count := int64(1)
			for i, id := range all {
				if i == missing {
					continue
				}
				tp.out(0, "k", id, count)
				count++
			}
			v := tp.judge(false)
			mustFail(t, v, "id"+strconv.Itoa(missing)+" (key k) is not in the output: lost")
			if v.Lost != 1 {
				t.Fatalf("Lost = %d, want 1", v.Lost)
			}
		})
	}
	// A key with no output at all: every id lost, and its whole count.
	tp := newTopics()
	tp.in(0, "k", "1", "2")
	tp.in(0, "other", "3")
	tp.outs(0, "other", 1, "3")
	v := tp.judge(false)
	mustFail(t, v, "lost")
	if v.Lost != 2 || v.CountLoss != 2 {
		t.Fatalf("Lost = %d, CountLoss = %d, want 2 and 2", v.Lost, v.CountLoss)
	}
}

// TestJudgeReplayAfterKill9 checks histories a kill -9 produces: the next
// owner resumes at the committed offset and writes outputs again, with
// counts restored from a changelog that may be ahead of or behind the
// outputs. Duplicates, outputs going back in the key's history, and counts
// above the truth are fine.
func TestJudgeReplayAfterKill9(t *testing.T) {
	all := ids(1, 6) // ranks 1..5
	t.Run("changelog ahead of the outputs", func(t *testing.T) {
		// Ranks 1-4 processed, outputs and changelog of all four acked,
		// committed at rank 2: the new owner restores 4 and processes
		// ranks 2-5 again.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:4]...)
		tp.outs(0, "k", 5, all[1:]...)
		v := tp.judge(false)
		mustPass(t, v)
		if v.Duplicates != 3 || v.Replays != 1 || v.OverCount != 3 {
			t.Fatalf("duplicates %d, replays %d, over-count %d; want 3, 1, 3", v.Duplicates, v.Replays, v.OverCount)
		}
	})
	t.Run("changelog behind the outputs", func(t *testing.T) {
		// Outputs of ranks 1-3 acked, changelog only of rank 1: the counts
		// written again are lower than those already written.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:3]...)
		tp.outs(0, "k", 2, all[1:]...)
		v := tp.judge(false)
		mustPass(t, v)
		if v.Replays != 1 || v.OverCount != 0 || v.Duplicates != 2 {
			t.Fatalf("replays %d, over-count %d, duplicates %d; want 1, 0, 2", v.Replays, v.OverCount, v.Duplicates)
		}
	})
	t.Run("outputs cut off, changelog not", func(t *testing.T) {
		// Ranks 1-3 processed; outputs of 1-2 acked, changelog of 1-3;
		// committed after rank 2: the new owner restores 3 and resumes at
		// rank 3, counting it twice.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:2]...)
		tp.outs(0, "k", 4, all[2:]...)
		v := tp.judge(false)
		mustPass(t, v)
		if v.Replays != 0 || v.OverCount != 1 {
			t.Fatalf("replays %d, over-count %d; want 0, 1", v.Replays, v.OverCount)
		}
	})
	t.Run("two kills", func(t *testing.T) {
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:3]...)  // first owner, killed
		tp.outs(0, "k", 2, all[1:4]...) // second: restored 1, killed after rank 4
		tp.outs(0, "k", 4, all[2:]...)  // third: restored 3, resumes at rank 3
		v := tp.judge(false)
		mustPass(t, v)
		if v.Replays != 2 {
			t.Fatalf("replays %d, want 2", v.Replays)
		}
	})
	t.Run("the last output is a re-delivered id with an older timestamp", func(t *testing.T) {
		// The signature the checker used to excuse (as a bug of the runtime) is also
		// what a replay of only the last record looks like: legitimate when
		// its count is not below the truth.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all...)
		last := tp.out(0, "k", all[4], 6)
		last.Timestamp = tp.inputs[4].Timestamp
		mustPass(t, tp.judge(false))
	})
}

// TestJudgeZombieWrite: an old owner's write that lands after the new
// owner's newer ones fails, with or without a count lost.
func TestJudgeZombieWrite(t *testing.T) {
	all := ids(1, 7) // ranks 1..6
	t.Run("followed by the new owner's outputs", func(t *testing.T) {
		// Old owner A wrote ranks 1-2 and had rank 3 in flight when it lost
		// the partition; new owner B resumed at rank 3; A's rank 3 lands
		// after B's rank 5, then B goes on. No count is lost in the output,
		// but A's changelog write would roll the state back.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:5]...)
		tp.out(0, "k", all[2], 3) // A, late
		tp.out(0, "k", all[5], 6) // B
		v := tp.judge(false)
		mustFail(t, v, "follows the output for record 3")
		if v.Regressions != 1 || v.CountLoss != 0 || v.Lost != 0 {
			t.Fatalf("regressions %d, count loss %d, lost %d; want 1, 0, 0", v.Regressions, v.CountLoss, v.Lost)
		}
	})
	t.Run("landing last", func(t *testing.T) {
		// The case the checker used to excuse (as a bug of the runtime): the late,
		// older count is the key's last output.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all...)
		late := tp.out(0, "k", all[2], 3)
		late.Timestamp = tp.inputs[2].Timestamp
		v := tp.judge(false)
		mustFail(t, v, "its last output is for record 3 of 6")
		if v.CountLoss != 3 || v.CountLossKeys != 1 {
			t.Fatalf("count loss %d over %d keys, want 3 over 1", v.CountLoss, v.CountLossKeys)
		}
	})
	t.Run("landing last with a count above the truth", func(t *testing.T) {
		// No count is lost, but no owner processing to the end leaves an
		// older record's output last.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all...)
		tp.out(0, "k", all[4], 9)
		mustFail(t, tp.judge(false), "its last output is for record 5 of 6")
	})
}

// TestJudgeRegression: a count that goes back in a way no replay explains.
func TestJudgeRegression(t *testing.T) {
	all := ids(1, 6)
	t.Run("count below its rank", func(t *testing.T) {
		tp := newTopics()
		tp.in(0, "k", all[:3]...)
		tp.outs(0, "k", 1, all[:2]...)
		tp.out(0, "k", all[2], 2)
		mustFail(t, tp.judge(false), "has count 2, below its rank 3")
	})
	t.Run("count not above the previous record's", func(t *testing.T) {
		// Over-counted by an earlier replay (rank 2 has count 5); rank 3
		// with count 4 is above its rank but lost rank 2's increment.
		tp := newTopics()
		tp.in(0, "k", all[:3]...)
		tp.out(0, "k", all[0], 1)
		tp.out(0, "k", all[1], 5)
		tp.out(0, "k", all[2], 4)
		v := tp.judge(false)
		mustFail(t, v, "has count 4, not above the previous record's 5")
		if v.CountLoss != 0 {
			t.Fatalf("count loss %d, want 0 (only the history shows the loss)", v.CountLoss)
		}
	})
	t.Run("increments of committed records lost by a restore", func(t *testing.T) {
		// Ranks 1-3 committed (their changelog writes durable), but the
		// new owner restored 1: rank 4 gets count 2.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:3]...)
		tp.outs(0, "k", 2, all[3:]...)
		v := tp.judge(false)
		mustFail(t, v, "has count 2, below its rank 4")
		if v.CountLoss != 2 {
			t.Fatalf("count loss %d, want 2", v.CountLoss)
		}
	})
	t.Run("replay with a count below its rank", func(t *testing.T) {
		// Going back to rank 2 with count 1 means the restore lost rank 1's
		// increment, though rank 1 was committed before rank 2 ran again.
		tp := newTopics()
		tp.in(0, "k", all...)
		tp.outs(0, "k", 1, all[:3]...)
		tp.outs(0, "k", 1, all[1:]...)
		v := tp.judge(false)
		mustFail(t, v, "below its rank 2")
		if v.Regressions != 4 || v.CountLoss != 1 {
			t.Fatalf("regressions %d, count loss %d; want 4 (each replayed output is below its rank), 1", v.Regressions, v.CountLoss)
		}
	})
	t.Run("skipping ahead", func(t *testing.T) {
		tp := newTopics()
		tp.in(0, "k", all[:3]...)
		tp.out(0, "k", all[0], 1)
		tp.out(0, "k", all[2], 3)
		tp.out(0, "k", all[1], 2)
		tp.out(0, "k", all[2], 3)
		mustFail(t, tp.judge(false), "follows the output for record 1")
	})
}

func TestJudgeDeadLetters(t *testing.T) {
	headers := map[string]string{"kstreams.source.topic": inTopic, "kstreams.error.stage": "process", "kstreams.source.offset": "1"}
	build := func() *topics {
		tp := newTopics()
		tp.in(0, "k", "1", "poison:2", "3", "garbage:4")
		tp.outs(0, "k", 1, "1", "3")
		return tp
	}
	tp := build()
	tp.deadLetter("poison:2", headers)
	tp.deadLetter("garbage:4", headers)
	v := tp.judge(true)
	mustPass(t, v)
	if v.Poison != 1 || v.Garbage != 1 || v.Good != 2 || v.DeadLetters != 2 {
		t.Fatalf("figures: %+v", *v)
	}

	tp = build()
	tp.deadLetter("poison:2", headers)
	v = tp.judge(true)
	mustFail(t, v, "bad record 4 is neither in the output nor in the dead-letter topic")
	if v.Lost != 1 {
		t.Fatalf("Lost = %d, want 1", v.Lost)
	}

	tp = build()
	tp.deadLetter("poison:2", headers)
	tp.deadLetter("garbage:4", map[string]string{"kstreams.source.topic": inTopic})
	mustFail(t, tp.judge(true), "lacks its error headers")

	// Without a dead-letter topic (skip policy), bad records are not looked for.
	mustPass(t, build().judge(false))
}

func TestJudgeForeignOutputs(t *testing.T) {
	tp := newTopics()
	tp.in(0, "a", "1")
	tp.outs(0, "a", 1, "1")
	tp.outs(0, "a", 2, "nobody")
	mustFail(t, tp.judge(false), "not a good input id")

	tp = newTopics()
	tp.in(0, "a", "1")
	tp.in(0, "b", "2")
	tp.outs(0, "a", 1, "1", "2")
	tp.outs(0, "b", 1, "2")
	mustFail(t, tp.judge(false), `has key "a", its input had "b"`)

	tp = newTopics()
	tp.in(0, "a", "1")
	tp.outs(0, "a", 1, "1")
	tp.outputs = append(tp.outputs, tp.record(outTopic, 0, "a", "not json"))
	mustFail(t, tp.judge(false), "undecodable output")

	tp = newTopics()
	tp.in(0, "a", "1", "1")
	tp.outs(0, "a", 1, "1")
	mustFail(t, tp.judge(false), "appears twice in the input")
}

// TestJudgeOrderIsPerPartitionOffset: the checker orders records by
// partition and offset, not by the order it reads them in, and refuses
// keys whose order it cannot know.
func TestJudgeOrderIsPerPartitionOffset(t *testing.T) {
	tp := newTopics()
	tp.in(0, "a", ids(0, 3)...)
	tp.in(1, "b", ids(3, 6)...)
	tp.outs(0, "a", 1, ids(0, 3)...)
	tp.outs(1, "b", 1, ids(3, 6)...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(tp.outputs), func(i, j int) { tp.outputs[i], tp.outputs[j] = tp.outputs[j], tp.outputs[i] })
	mustPass(t, tp.judge(false))

	tp = newTopics()
	tp.in(0, "a", "1")
	tp.in(1, "a", "2")
	tp.outs(0, "a", 1, "1", "2")
	mustFail(t, tp.judge(false), "is in input partitions 0 and 1")

	tp = newTopics()
	tp.in(0, "a", "1", "2")
	tp.outs(0, "a", 1, "1")
	tp.outs(1, "a", 2, "2")
	mustFail(t, tp.judge(false), "has outputs in partitions 0 and 1")
}

// simulate runs the counting app's at-least-once protocol on one input
// partition with random crashes and returns the topics it leaves. Each owner
// restores every key's count from the acknowledged changelog and resumes at
// the committed offset; outputs and changelog writes are acknowledged in
// order, each topic at its own pace; a commit moves to the first record
// whose output or changelog write is not acknowledged; a crash keeps a
// random prefix of what is in flight; a graceful hand-over commits
// everything first. The last owner processes to the end.
func simulate(rnd *rand.Rand, records, keys int) *topics {
	tp := newTopics()
	for i := range records {
		tp.in(0, "k"+strconv.Itoa(rnd.IntN(keys)), "id"+strconv.Itoa(i))
	}
	type write struct {
		offset int
		key    string
		count  int64
	}
	var changelog []write // acknowledged
	committed := 0
	for owner := 0; committed < records; owner++ {
		last := owner >= 6
		counts := map[string]int64{}
		for _, w := range changelog {
			counts[w.key] = w.count
		}
		var outQ, logQ []write // produced, not acknowledged
		ackedOut, ackedLog := committed, committed
		ack := func(q *[]write, acked *int, n int, toOutput bool) {
			n = min(n, len(*q))
			for _, w := range (*q)[:n] {
				if toOutput {
					tp.out(0, w.key, "id"+strconv.Itoa(w.offset), w.count)
				} else {
					changelog = append(changelog, w)
				}
				*acked = w.offset + 1
			}
			*q = (*q)[n:]
		}
		crashAt := committed + 1 + rnd.IntN(records)
		next := committed
		for ; next < records && (last || next < crashAt); next++ {
			r := tp.inputs[next]
			key := string(r.Key)
			counts[key]++
			w := write{next, key, counts[key]}
			outQ, logQ = append(outQ, w), append(logQ, w)
			ack(&outQ, &ackedOut, rnd.IntN(3), true)
			ack(&logQ, &ackedLog, rnd.IntN(3), false)
			if rnd.IntN(4) == 0 {
				committed = min(ackedOut, ackedLog)
			}
		}
		switch {
		case last || rnd.IntN(3) == 0: // graceful: everything acknowledged and committed
			ack(&outQ, &ackedOut, len(outQ), true)
			ack(&logQ, &ackedLog, len(logQ), false)
			committed = next
		default: // kill -9: what was in flight lands or not, in order
			ack(&outQ, &ackedOut, rnd.IntN(len(outQ)+1), true)
			ack(&logQ, &ackedLog, rnd.IntN(len(logQ)+1), false)
		}
	}
	return tp
}

// TestJudgeSimulatedCrashes: every history the at-least-once protocol can
// produce under crashes passes, and a late write of an old owner inserted
// into one fails.
func TestJudgeSimulatedCrashes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 3))
	replays, zombies := 0, 0
	for round := range 300 {
		tp := simulate(rnd, 20+rnd.IntN(80), 1+rnd.IntN(5))
		v := tp.judge(false)
		if !v.ok() {
			t.Fatalf("round %d (seed %d): a legitimate history fails: %s", round, seed, strings.Join(v.problems, "\n"))
		}
		if v.Lost != 0 || v.CountLoss != 0 {
			t.Fatalf("round %d: lost %d, count loss %d", round, v.Lost, v.CountLoss)
		}
		replays += v.Replays

		// A late write: a copy of an earlier output of some key, placed
		// after a later output of that key and before that key's next
		// output, when the next output continues the history past it (the
		// new owner goes on) or when nothing follows (it lands last).
		outs := tp.outputs
		i := rnd.IntN(len(outs))
		key := string(outs[i].Key)
		var earlier []int
		for j := range i {
			if string(outs[j].Key) == key && rankOf(tp, outs[j]) < rankOf(tp, outs[i]) {
				earlier = append(earlier, j)
			}
		}
		if len(earlier) == 0 {
			continue
		}
		stale := outs[earlier[rnd.IntN(len(earlier))]]
		nextOfKey := -1
		for j := i + 1; j < len(outs); j++ {
			if string(outs[j].Key) == key {
				nextOfKey = j
				break
			}
		}
		if nextOfKey >= 0 && rankOf(tp, outs[nextOfKey]) <= rankOf(tp, stale)+1 {
			continue // indistinguishable from a replay that stopped after one record
		}
		zombie := *stale
		mutated := slices.Insert(slices.Clone(outs), i+1, &zombie)
		for j, r := range mutated {
			r2 := *r
			r2.Offset = int64(j)
			mutated[j] = &r2
		}
		if v := judge(inTopic, tp.inputs, mutated, nil, false); v.ok() || v.Regressions == 0 {
			t.Fatalf("round %d (seed %d): a late write of %s after output %d passes", round, seed, stale.Value, i)
		}
		zombies++
	}
	if replays < 100 || zombies < 50 {
		t.Fatalf("the simulation produced %d replays and %d late writes: too few to mean anything", replays, zombies)
	}
	t.Logf("histories with %d replays passed, %d late writes failed", replays, zombies)
}

// rankOf returns the rank of an output's id among its key's inputs.
func rankOf(tp *topics, out *kgo.Record) int {
	var o struct{ ID string }
	_ = json.Unmarshal(out.Value, &o)
	n := 0
	for _, r := range tp.inputs {
		if string(r.Key) == string(out.Key) {
			n++
			if string(r.Value) == o.ID {
				return n
			}
		}
	}
	return -1
}

// A store keeping its input offsets makes the state exact: the replay of
// outputs passes, a count above the truth fails checkExactState.
func TestJudgeExactState(t *testing.T) {
	all := ids(1, 6)
	tp := newTopics()
	tp.in(0, "k", all...)
	tp.outs(0, "k", 1, all[:3]...) // killed after rank 3's output, state flushed at rank 2
	tp.outs(0, "k", 3, all[2:]...) // resumed at rank 3 from the stored offsets
	v := tp.judge(false)
	v.checkExactState()
	mustPass(t, v)
	if v.OverCount != 0 || v.Duplicates != 1 {
		t.Fatalf("over-count %d, duplicates %d; want 0, 1", v.OverCount, v.Duplicates)
	}
	tp = newTopics()
	tp.in(0, "k", all...)
	tp.outs(0, "k", 1, all[:4]...)
	tp.outs(0, "k", 4, all[2:]...) // state at rank 3, resumed at rank 3: rank 3 counted twice
	v = tp.judge(false)
	v.checkExactState()
	if v.ok() || v.OverCount != 1 {
		t.Fatalf("ok %v, over-count %d; want a failure with over-count 1", v.ok(), v.OverCount)
	}
}
