package runtime

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskBalancer assigns partitions to group members by task: partition p of
// every source topic of a sub-topology goes to the same member, because one
// task processes them together (co-partitioning). It is sticky (a task stays
// with the member that owns it while that keeps the group balanced) and
// cooperative (only moved tasks are revoked, in the two-round KIP-429 way, via
// franz-go's AdjustCooperative).
//
// Member metadata is the cooperative-sticky format, so franz-go's own
// handling of owned partitions and generations applies unchanged.
type taskBalancer struct {
	subOf map[string]int // source topic -> sub-topology id
	inner kgo.GroupBalancer
}

func newTaskBalancer(g *graph.Topology) *taskBalancer {
	b := &taskBalancer{subOf: map[string]int{}, inner: kgo.CooperativeStickyBalancer()}
	for _, st := range g.Subtopologies {
		for _, t := range st.SourceTopics {
			b.subOf[t] = st.ID
		}
	}
	return b
}

// ProtocolName is distinct from "cooperative-sticky": every member of a
// kstreams group must balance by task.
func (b *taskBalancer) ProtocolName() string { return "kstreams-task-v1" }
func (b *taskBalancer) IsCooperative() bool  { return true }

func (b *taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	return b.inner.JoinGroupMetadata(interests, current, generation)
}

func (b *taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

type taskKey struct {
	sub       int
	partition int32
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	// Tasks, from the partition counts of each sub-topology's topics.
	topicsOf := map[int][]string{}
	count := map[int]int32{}
	for topic, n := range topics {
		sub, ok := b.subOf[topic]
		if !ok {
			continue
		}
		topicsOf[sub] = append(topicsOf[sub], topic)
		if c, seen := count[sub]; seen && c != n {
			cb.SetError(fmt.Errorf("sub-topology %d reads topics with different partition counts (%v); co-partitioned topics need equal counts", sub, topicsOf[sub]))
			return cb.NewPlan()
		}
		count[sub] = n
	}
	var tasks []taskKey
	for sub, n := range count {
		slices.Sort(topicsOf[sub])
		for p := range n {
			tasks = append(tasks, taskKey{sub, p})
		}
	}
	slices.SortFunc(tasks, func(a, c taskKey) int {
		return cmp.Or(cmp.Compare(a.partition, c.partition), cmp.Compare(a.sub, c.sub))
	})

	// Current owners, from the owned partitions members report; the highest
	// generation wins a conflicting claim.
	type claim struct {
		member int
		gen    int32
	}
	owner := map[taskKey]claim{}
	members := cb.Members()
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		idx := slices.IndexFunc(members, func(o kmsg.JoinGroupResponseMember) bool { return o.MemberID == m.MemberID })
		for _, owned := range meta.OwnedPartitions {
			sub, ok := b.subOf[owned.Topic]
			if !ok {
				continue
			}
			for _, p := range owned.Partitions {
				k := taskKey{sub, p}
				if c, ok := owner[k]; !ok || meta.Generation > c.gen {
					owner[k] = claim{idx, meta.Generation}
				}
			}
		}
	})

	// Keep tasks with their owners up to the balanced maximum, then give each
	// remaining task to the least loaded member.
	n := len(members)
	maxPer := (len(tasks) + n - 1) / max(n, 1)
	load := make([]int, n)
	assigned := make(map[taskKey]int, len(tasks))
	for _, t := range tasks {
		if c, ok := owner[t]; ok && load[c.member] < maxPer {
			assigned[t] = c.member
			load[c.member]++
		}
	}
	for _, t := range tasks {
		if _, ok := assigned[t]; ok {
			continue
		}
		best := 0
		for i := range load {
			if load[i] < load[best] {
				best = i
			}
		}
		assigned[t] = best
		load[best]++
	}
	plan := cb.NewPlan()
	for _, t := range tasks {
		m := &members[assigned[t]]
		for _, topic := range topicsOf[t.sub] {
			plan.AddPartition(m, topic, t.partition)
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}
