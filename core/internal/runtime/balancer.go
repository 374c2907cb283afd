package runtime

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

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
// A task goes only to a member whose topology has it. Members may run
// different topologies during a rolling upgrade, so the leader does not
// balance by its own topology: each member announces its sub-topologies in
// its join metadata (see encodeSubscription), and the leader merges the
// sub-topologies of all members that share a source topic into one group of
// co-partitioned topics. A task is a group × partition; a member can run it
// when its own sub-topologies cover every topic of the group (it then runs
// its own tasks of that partition). Partitions of groups no member can run
// stay unassigned, and the leader logs them.
//
// Member metadata is the consumer protocol's (ConsumerMemberMetadata v3), so
// franz-go's handling of owned partitions and generations applies unchanged.
type taskBalancer struct {
	own [][]string // source topics of each own sub-topology: canonical (see canonical)
	log *slog.Logger
}

func newTaskBalancer(g *graph.Topology) *taskBalancer {
	b := &taskBalancer{log: slog.Default()}
	for _, st := range g.Subtopologies {
		b.own = append(b.own, slices.Clone(st.SourceTopics))
	}
	b.own = canonical(b.own)
	return b
}

// withLogger sets where the leader logs what it could not assign.
func (b *taskBalancer) withLogger(l *slog.Logger) *taskBalancer {
	if l != nil {
		b.log = l
	}
	return b
}

// ProtocolName is distinct from "cooperative-sticky": every member of a
// kstreams group must balance by task. Members of kstreams versions whose
// metadata lacks the subscription (see encodeSubscription) use the same
// name; the leader reads their metadata as described at decodeSubscription.
func (b *taskBalancer) ProtocolName() string { return "kstreams-task-v1" }
func (b *taskBalancer) IsCooperative() bool  { return true }

func (b *taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for topic, partitions := range current {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = partitions
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	slices.SortFunc(meta.OwnedPartitions, func(a, c kmsg.ConsumerMemberMetadataOwnedPartition) int {
		return cmp.Compare(a.Topic, c.Topic) // KAFKA-12898
	})
	meta.UserData = encodeSubscription(b.own)
	return meta.AppendTo(nil)
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

// The subscription: what a member announces in the UserData of its
// ConsumerMemberMetadata. Version 1, big-endian, Kafka's primitive types:
//
//	magic     [2]byte  "ks"
//	version   int16    1
//	subs      int32    number of sub-topologies
//	subs × {
//	  topics  int32    number of source topics
//	  topics × {len int16, name [len]byte}
//	}
//
// A sub-topology is named by its source topics, sorted (sub-topology numbers
// change between versions of a topology; the topics they read do not).
// Sub-topologies are sorted by their first topic. Later versions only append
// fields: a decoder reads the version 1 fields of any version >= 1 and
// ignores the rest.
const (
	subscriptionMagic   = "ks"
	subscriptionVersion = 1
)

// encodeSubscription encodes the source topics of each sub-topology.
func encodeSubscription(subs [][]string) []byte {
	subs = canonical(slices.Clone(subs))
	out := make([]byte, 0, 64)
	out = append(out, subscriptionMagic...)
	out = binary.BigEndian.AppendUint16(out, subscriptionVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(subs)))
	for _, topics := range subs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(topics)))
		for _, t := range topics {
			out = binary.BigEndian.AppendUint16(out, uint16(len(t)))
			out = append(out, t...)
		}
	}
	return out
}

// errNoSubscription: the user data is not a kstreams subscription (a
// member of a kstreams version before it sends cooperative-sticky user data,
// which starts with a topic count, never "ks").
var errNoSubscription = errors.New("no kstreams subscription in the member's user data")

// decodeSubscription decodes what encodeSubscription encodes, in canonical
// order. It returns errNoSubscription for data without the magic.
func decodeSubscription(data []byte) ([][]string, error) {
	if len(data) < 4 || string(data[:2]) != subscriptionMagic {
		return nil, errNoSubscription
	}
	if v := int16(binary.BigEndian.Uint16(data[2:])); v < 1 {
		return nil, fmt.Errorf("kstreams subscription version %d", v)
	}
	r := data[4:]
	short := errors.New("kstreams subscription: truncated")
	u32 := func() (int, error) {
		if len(r) < 4 {
			return 0, short
		}
		n := int32(binary.BigEndian.Uint32(r))
		r = r[4:]
		if n < 0 || int(n) > len(r)/2 { // every element takes at least 2 bytes
			return 0, fmt.Errorf("kstreams subscription: count %d with %d bytes left", n, len(r))
		}
		return int(n), nil
	}
	nsubs, err := u32()
	if err != nil {
		return nil, err
	}
	subs := make([][]string, 0, nsubs)
	for range nsubs {
		ntopics, err := u32()
		if err != nil {
			return nil, err
		}
		topics := make([]string, 0, ntopics)
		for range ntopics {
			if len(r) < 2 {
				return nil, short
			}
			n := int(binary.BigEndian.Uint16(r))
			r = r[2:]
			if n == 0 || n > len(r) || n > 0x7fff {
				return nil, fmt.Errorf("kstreams subscription: topic name of %d bytes with %d left", n, len(r))
			}
			topics = append(topics, string(r[:n]))
			r = r[n:]
		}
		if len(topics) == 0 {
			return nil, errors.New("kstreams subscription: a sub-topology without topics")
		}
		subs = append(subs, topics)
	}
	return canonical(subs), nil
}

// canonical sorts each sub-topology's topics (dropping duplicates) and the
// sub-topologies by their topics, in place (the topic lists are copied).
func canonical(subs [][]string) [][]string {
	for i, topics := range subs {
		topics = slices.Clone(topics)
		slices.Sort(topics)
		subs[i] = slices.Compact(topics)
	}
	slices.SortFunc(subs, slices.Compare)
	return subs
}

// memberSubs returns the sub-topologies member m runs: those it announces,
// or, for a member without a subscription (kstreams before it), the
// leader's own sub-topologies restricted to the topics it subscribes to
// (such a member was not told apart by topology either when it was leader).
func (b *taskBalancer) memberSubs(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) [][]string {
	subs, err := decodeSubscription(meta.UserData)
	if err == nil {
		return subs
	}
	if !errors.Is(err, errNoSubscription) {
		b.log.Warn("kstreams balancer: unreadable member metadata; assuming the member runs this instance's topology", "member", m.MemberID, "error", err)
	}
	subs = nil
	for _, own := range b.own {
		var topics []string
		for _, t := range own {
			if slices.Contains(meta.Topics, t) {
				topics = append(topics, t)
			}
		}
		if len(topics) > 0 {
			subs = append(subs, topics)
		}
	}
	return subs
}

// taskKey is a task of the group being balanced: a group of co-partitioned
// topics (an index into the groups, see Balance) and a partition.
type taskKey struct {
	group     int
	partition int32
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members := cb.Members()
	n := len(members)

	// Each member's sub-topologies, and the groups: the sub-topologies of
	// all members merged wherever they share a topic.
	subsOf := make([][][]string, 0, n)
	parent := map[string]string{}
	var find func(string) string
	find = func(t string) string {
		p, ok := parent[t]
		if !ok || p == t {
			parent[t] = t
			return t
		}
		root := find(p)
		parent[t] = root
		return root
	}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		subs := b.memberSubs(m, meta)
		subsOf = append(subsOf, subs)
		for _, s := range subs {
			for _, t := range s[1:] {
				if a, c := find(s[0]), find(t); a != c {
					parent[max(a, c)] = min(a, c)
				}
			}
			find(s[0])
		}
	})
	if slices.ContainsFunc(subsOf, func(s [][]string) bool { return !slices.EqualFunc(s, subsOf[0], slices.Equal) }) {
		b.log.Info("kstreams balancer: members run different topologies (a rolling upgrade?); each task goes only to members whose topology has it")
	}
	byRoot := map[string][]string{}
	for t := range parent {
		r := find(t)
		byRoot[r] = append(byRoot[r], t)
	}
	var groups [][]string
	for _, g := range byRoot {
		groups = append(groups, g)
	}
	groups = canonical(groups)
	groupOf := map[string]int{}
	for i, g := range groups {
		for _, t := range g {
			groupOf[t] = i
		}
	}

	// Which members can run each group: those whose sub-topologies read all
	// its topics (each sub-topology lies within one group).
	runs := make([][]bool, n) // member -> group -> can run
	for i, subs := range subsOf {
		reads := map[string]bool{}
		for _, s := range subs {
			for _, t := range s {
				reads[t] = true
			}
		}
		runs[i] = make([]bool, len(groups))
		for g, group := range groups {
			runs[i][g] = !slices.ContainsFunc(group, func(t string) bool { return !reads[t] })
		}
	}
	eligible := make([]int, len(groups))
	for g := range groups {
		for i := range n {
			if runs[i][g] {
				eligible[g]++
			}
		}
	}

	// Tasks, from the partition counts of each group's topics.
	var tasks []taskKey
	for g, group := range groups {
		var count int32 = -1
		for _, t := range group {
			c, ok := topics[t]
			if !ok {
				continue // not in the brokers' metadata (yet)
			}
			if count >= 0 && c != count {
				cb.SetError(fmt.Errorf("topics %v are read together (co-partitioned) but have different partition counts (%s has %d, another %d); co-partitioned topics need equal counts", group, t, c, count))
				return cb.NewPlan()
			}
			count = c
		}
		for p := range max(count, 0) {
			tasks = append(tasks, taskKey{g, p})
		}
	}
	// Tasks fewer members can run come first, so that they get a place
	// before the flexible ones fill up the members.
	slices.SortFunc(tasks, func(a, c taskKey) int {
		return cmp.Or(cmp.Compare(eligible[a.group], eligible[c.group]),
			cmp.Compare(a.partition, c.partition), cmp.Compare(a.group, c.group))
	})

	// Current owners, from the owned partitions members report; the highest
	// generation wins a conflicting claim. Only a member that can run a task
	// keeps it.
	type claim struct {
		member int
		gen    int32
	}
	owner := map[taskKey]claim{}
	i := 0
	cb.EachMember(func(_ *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		defer func() { i++ }()
		for _, owned := range meta.OwnedPartitions {
			g, ok := groupOf[owned.Topic]
			if !ok || !runs[i][g] {
				continue
			}
			for _, p := range owned.Partitions {
				k := taskKey{g, p}
				if c, ok := owner[k]; !ok || meta.Generation > c.gen {
					owner[k] = claim{i, meta.Generation}
				}
			}
		}
	})

	// Keep tasks with their owners up to the balanced maximum, then give each
	// remaining task to the least loaded member that can run it. Tasks that
	// fewer members can run go first, a tier at a time (one tier when all
	// members run the same topology): the flexible ones then fill up the
	// members that the constrained ones left least loaded.
	runnable := 0
	for _, t := range tasks {
		if eligible[t.group] > 0 {
			runnable++
		}
	}
	maxPer := (runnable + n - 1) / max(n, 1)
	load := make([]int, n)
	assigned := make(map[taskKey]int, len(tasks))
	unassigned := map[int]int{} // group -> tasks no member can run
	for rest := tasks; len(rest) > 0; {
		e := eligible[rest[0].group]
		end := slices.IndexFunc(rest, func(t taskKey) bool { return eligible[t.group] != e })
		if end < 0 {
			end = len(rest)
		}
		tier := rest[:end]
		rest = rest[end:]
		if e == 0 {
			for _, t := range tier {
				unassigned[t.group]++
			}
			continue
		}
		for _, t := range tier {
			if c, ok := owner[t]; ok && load[c.member] < maxPer {
				assigned[t] = c.member
				load[c.member]++
			}
		}
		for _, t := range tier {
			if _, ok := assigned[t]; ok {
				continue
			}
			best := -1
			for i := range load {
				if runs[i][t.group] && (best < 0 || load[i] < load[best]) {
					best = i
				}
			}
			assigned[t] = best
			load[best]++
		}
	}
	plan := cb.NewPlan()
	for _, t := range tasks {
		m, ok := assigned[t]
		if !ok {
			continue
		}
		for _, topic := range groups[t.group] {
			if _, ok := topics[topic]; ok {
				plan.AddPartition(&members[m], topic, t.partition)
			}
		}
	}
	var lost []string // topics with partitions no member runs
	lostTasks := 0
	for g, count := range unassigned {
		lost = append(lost, groups[g]...)
		lostTasks += count
	}
	// Topics members subscribe to that no sub-topology reads (only members
	// without a subscription can bring them) are not assigned either.
	for t, count := range topics {
		if _, ok := groupOf[t]; !ok {
			lost = append(lost, t)
			lostTasks += int(count)
		}
	}
	b.report(lost, lostTasks, subsOf, members)
	plan.AdjustCooperative(cb)
	return plan
}

// report logs the topics whose partitions no member can run, loudly:
// their records wait in Kafka, unprocessed, until a member that runs them
// joins.
func (b *taskBalancer) report(topics []string, tasks int, subsOf [][][]string, members []kmsg.JoinGroupResponseMember) {
	if len(topics) == 0 {
		return
	}
	slices.Sort(topics)
	var announced []string
	for i, subs := range subsOf {
		var s []string
		for _, topics := range subs {
			s = append(s, "["+strings.Join(topics, " ")+"]")
		}
		announced = append(announced, members[i].MemberID+": "+strings.Join(s, " "))
	}
	b.log.Warn("kstreams balancer: partitions of these topics are NOT ASSIGNED: no member of the group runs a topology that reads all the topics they are co-partitioned with; their records wait unprocessed (and uncommitted) until such a member joins. Did the grouping of topics into sub-topologies change in a rolling upgrade?",
		"topics", topics, "tasks", tasks, "members", announced)
}
