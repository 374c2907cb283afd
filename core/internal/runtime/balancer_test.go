package runtime

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testMember is a group member as the leader sees it in a JoinGroup
// response.
type testMember struct {
	id     string
	subs   [][]string         // the source topics of each of its sub-topologies
	owned  map[string][]int32 // partitions it owns
	gen    int32
	legacy bool // metadata of kstreams before the subscription (cooperative-sticky)
}

func topologyOf(subs [][]string) *graph.Topology {
	g := &graph.Topology{}
	for i, s := range subs {
		g.Subtopologies = append(g.Subtopologies, &graph.Subtopology{ID: i, SourceTopics: s})
	}
	return g
}

func (m testMember) metadata() []byte {
	var interests []string
	for _, s := range m.subs {
		interests = append(interests, s...)
	}
	if m.legacy {
		return kgo.CooperativeStickyBalancer().JoinGroupMetadata(interests, m.owned, m.gen)
	}
	return newTaskBalancer(topologyOf(m.subs)).JoinGroupMetadata(interests, m.owned, m.gen)
}

// balance runs leader's Balance over members and returns the plan by member
// id, or the balancer's error.
func balance(t *testing.T, leader *taskBalancer, members []testMember, topics map[string]int32) (map[string]map[string][]int32, error) {
	t.Helper()
	if leader.log == slog.Default() {
		leader.withLogger(slog.New(slog.DiscardHandler))
	}
	var jm []kmsg.JoinGroupResponseMember
	for _, m := range members {
		jm = append(jm, kmsg.JoinGroupResponseMember{MemberID: m.id, ProtocolMetadata: m.metadata()})
	}
	gmb, _, err := leader.MemberBalancer(jm)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		return nil, err
	}
	return into.(*kgo.BalancePlan).AsMemberIDMap(), nil
}

// checkPlan checks what every plan must satisfy: no partition goes to two
// members; a member gets only topics it reads, and for each partition p of
// one of its sub-topologies, p of every topic of that sub-topology
// (co-partitioning). It returns the owner of each assigned partition.
func checkPlan(t *testing.T, members []testMember, plan map[string]map[string][]int32) map[string]map[int32]string {
	t.Helper()
	ownerOf := map[string]map[int32]string{}
	for _, m := range members {
		for topic, ps := range plan[m.id] {
			sub := slices.IndexFunc(m.subs, func(s []string) bool { return slices.Contains(s, topic) })
			if sub < 0 {
				t.Errorf("member %s got %s %v, which its topology does not read", m.id, topic, ps)
				continue
			}
			for _, p := range ps {
				if ownerOf[topic] == nil {
					ownerOf[topic] = map[int32]string{}
				}
				if o, ok := ownerOf[topic][p]; ok {
					t.Errorf("%s/%d assigned to %s and %s", topic, p, o, m.id)
				}
				ownerOf[topic][p] = m.id
				for _, other := range m.subs[sub] {
					if !slices.Contains(plan[m.id][other], p) {
						t.Errorf("member %s got %s/%d but not %s/%d, which is co-partitioned with it", m.id, topic, p, other, p)
					}
				}
			}
		}
	}
	return ownerOf
}

// tasksOf counts the partitions of topic per member.
func countOf(plan map[string]map[string][]int32, member, topic string) int {
	return len(plan[member][topic])
}

func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestSubscriptionEncoding(t *testing.T) {
	subs := [][]string{{"orders", "customers"}, {"clicks"}}
	enc := encodeSubscription(subs)
	// The encoding is part of the group protocol: members of different
	// versions read each other's. It must not change.
	golden := "6b73" + "0001" + "00000002" +
		"00000001" + "0006" + hex.EncodeToString([]byte("clicks")) +
		"00000002" + "0009" + hex.EncodeToString([]byte("customers")) + "0006" + hex.EncodeToString([]byte("orders"))
	if got := hex.EncodeToString(enc); got != golden {
		t.Fatalf("encoding\n got %s\nwant %s", got, golden)
	}
	if !slices.EqualFunc(subs, [][]string{{"orders", "customers"}, {"clicks"}}, slices.Equal) {
		t.Fatalf("encoding changed its argument: %v", subs)
	}
	dec, err := decodeSubscription(enc)
	if err != nil || !slices.EqualFunc(dec, [][]string{{"clicks"}, {"customers", "orders"}}, slices.Equal) {
		t.Fatalf("decoded %v, %v", dec, err)
	}
	// A later version appends fields: read as version 1.
	v2 := append(slices.Clone(enc), 0xde, 0xad)
	v2[3] = 2
	if dec, err := decodeSubscription(v2); err != nil || len(dec) != 2 {
		t.Fatalf("version 2 with more fields: %v, %v", dec, err)
	}
	// kstreams before the subscription: cooperative-sticky user data.
	var sticky kmsg.ConsumerMemberMetadata
	if err := sticky.ReadFrom(kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a"}, map[string][]int32{"a": {0, 1}}, 3)); err != nil {
		t.Fatal(err)
	}
	for _, legacy := range [][]byte{nil, {}, sticky.UserData} {
		if _, err := decodeSubscription(legacy); !errors.Is(err, errNoSubscription) {
			t.Errorf("%x: %v, want errNoSubscription", legacy, err)
		}
	}
	for _, bad := range []string{
		"6b730000",                         // version 0
		"6b730001",                         // no count
		"6b73000100000001",                 // a sub-topology missing
		"6b7300010000000100000000",         // a sub-topology without topics
		"6b730001000000010000000100",       // truncated length
		"6b730001000000010000000100056162", // truncated name
		"6b730001000000010000000100000000", // empty name
		"6b7300017fffffff",                 // absurd count
	} {
		b, _ := hex.DecodeString(bad)
		if dec, err := decodeSubscription(b); err == nil || errors.Is(err, errNoSubscription) {
			t.Errorf("%s: decoded %v, %v; want an error", bad, dec, err)
		}
	}
}

func FuzzDecodeSubscription(f *testing.F) {
	f.Add(encodeSubscription([][]string{{"orders", "customers"}, {"clicks"}}))
	f.Add(encodeSubscription(nil))
	f.Add([]byte("ks\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01a"))
	f.Add([]byte("ks\x00\x02\x00\x00\x00\x00trailing"))
	f.Fuzz(func(t *testing.T, data []byte) {
		subs, err := decodeSubscription(data)
		if err != nil {
			return
		}
		for _, s := range subs {
			if len(s) == 0 || slices.Contains(s, "") || !slices.IsSorted(s) {
				t.Fatalf("decoded a sub-topology that is empty, has an empty name or is not canonical: %q", s)
			}
		}
		again, err := decodeSubscription(encodeSubscription(subs))
		if err != nil || !slices.EqualFunc(again, subs, slices.Equal) {
			t.Fatalf("re-encoding %q: %q, %v", subs, again, err)
		}
	})
}

func TestBalancerSameTopology(t *testing.T) {
	subs := [][]string{{"a", "b"}, {"c"}}
	members := []testMember{{id: "m0", subs: subs}, {id: "m1", subs: subs}, {id: "m2", subs: subs}}
	topics := map[string]int32{"a": 4, "b": 4, "c": 5}
	plan, err := balance(t, newTaskBalancer(topologyOf(subs)), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	owners := checkPlan(t, members, plan)
	for topic, n := range topics {
		if len(owners[topic]) != int(n) {
			t.Errorf("%s: %d of %d partitions assigned", topic, len(owners[topic]), n)
		}
	}
	// 9 tasks over 3 members.
	for _, m := range members {
		if tasks := countOf(plan, m.id, "a") + countOf(plan, m.id, "c"); tasks != 3 {
			t.Errorf("member %s has %d tasks, want 3: %v", m.id, tasks, plan[m.id])
		}
	}
}

// A rolling upgrade adds a sub-topology: its tasks go to the members that
// run it only, whichever member leads.
func TestBalancerAddedSubtopology(t *testing.T) {
	oldSubs, newSubs := [][]string{{"a"}}, [][]string{{"a"}, {"n"}}
	members := []testMember{{id: "old0", subs: oldSubs}, {id: "new1", subs: newSubs}, {id: "old2", subs: oldSubs}}
	topics := map[string]int32{"a": 6, "n": 3}
	for _, leader := range []testMember{members[0], members[1]} {
		t.Run("leader="+leader.id, func(t *testing.T) {
			plan, err := balance(t, newTaskBalancer(topologyOf(leader.subs)), members, topics)
			if err != nil {
				t.Fatal(err)
			}
			owners := checkPlan(t, members, plan)
			if len(owners["n"]) != 3 || countOf(plan, "new1", "n") != 3 {
				t.Errorf("n's partitions: %v; want all 3 with new1", owners["n"])
			}
			if len(owners["a"]) != 6 {
				t.Errorf("a: %d of 6 partitions assigned", len(owners["a"]))
			}
			// 9 tasks, 3 of them only new1 can run: the old members take a.
			if got := []int{countOf(plan, "old0", "a"), countOf(plan, "new1", "a"), countOf(plan, "old2", "a")}; !slices.Equal(got, []int{3, 0, 3}) {
				t.Errorf("a's partitions per member %v, want [3 0 3]", got)
			}
		})
	}
}

// A rolling upgrade adds a source topic to a sub-topology: the
// sub-topology's tasks go, topic and all, to the members that read both.
func TestBalancerAddedSourceTopic(t *testing.T) {
	oldSubs, newSubs := [][]string{{"a"}, {"x"}}, [][]string{{"a", "n"}, {"x"}}
	members := []testMember{{id: "old0", subs: oldSubs}, {id: "new1", subs: newSubs}, {id: "new2", subs: newSubs}}
	topics := map[string]int32{"a": 4, "n": 4, "x": 3}
	for _, leader := range []testMember{members[0], members[1]} {
		t.Run("leader="+leader.id, func(t *testing.T) {
			plan, err := balance(t, newTaskBalancer(topologyOf(leader.subs)), members, topics)
			if err != nil {
				t.Fatal(err)
			}
			owners := checkPlan(t, members, plan)
			for _, topic := range []string{"a", "n"} {
				if len(owners[topic]) != 4 || countOf(plan, "old0", topic) != 0 {
					t.Errorf("%s: owners %v; want all 4 partitions, none with old0", topic, owners[topic])
				}
			}
			if countOf(plan, "old0", "x") != 3 {
				t.Errorf("x: owners %v; the old member should run all of x (it runs nothing else)", owners["x"])
			}
		})
	}
}

// Members whose groupings of topics conflict so that no member reads a
// whole group: its partitions stay unassigned and the leader says so.
func TestBalancerUnrunnableTopicsAreLogged(t *testing.T) {
	members := []testMember{
		{id: "m0", subs: [][]string{{"a", "b"}, {"d"}}},
		{id: "m1", subs: [][]string{{"b", "c"}, {"d"}}},
	}
	topics := map[string]int32{"a": 2, "b": 2, "c": 2, "d": 4}
	log, buf := captureLog()
	plan, err := balance(t, newTaskBalancer(topologyOf(members[0].subs)).withLogger(log), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	owners := checkPlan(t, members, plan)
	for _, topic := range []string{"a", "b", "c"} {
		if len(owners[topic]) != 0 {
			t.Errorf("%s assigned %v; no member reads a, b and c together", topic, owners[topic])
		}
	}
	if len(owners["d"]) != 4 || countOf(plan, "m0", "d") != 2 {
		t.Errorf("d: %v; want 2 partitions each", owners["d"])
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "NOT ASSIGNED") || !strings.Contains(out, "topics=\"[a b c]\"") || !strings.Contains(out, "tasks=2") {
		t.Errorf("log does not warn naming the topics a, b, c and 2 tasks:\n%s", out)
	}
	// Once the members agree, nothing is logged.
	buf.Reset()
	members[1].subs = members[0].subs
	delete(topics, "c") // nobody subscribes to it any more
	plan, err = balance(t, newTaskBalancer(topologyOf(members[0].subs)).withLogger(log), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	if owners := checkPlan(t, members, plan); len(owners["a"]) != 2 || len(owners["b"]) != 2 || strings.Contains(buf.String(), "NOT ASSIGNED") {
		t.Errorf("same topologies: owners %v, log:\n%s", owners, buf.String())
	}
}

// A group regrouped between versions (a and b read apart, then together)
// still runs: a member whose sub-topologies cover the merged group runs its
// own tasks of each partition.
func TestBalancerRegroupedTopicsStayTogether(t *testing.T) {
	members := []testMember{
		{id: "old", subs: [][]string{{"a"}, {"b"}}},
		{id: "new", subs: [][]string{{"a", "b"}}},
	}
	topics := map[string]int32{"a": 4, "b": 4}
	plan, err := balance(t, newTaskBalancer(topologyOf(members[0].subs)), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	owners := checkPlan(t, members, plan)
	for p := range int32(4) {
		if owners["a"][p] == "" || owners["a"][p] != owners["b"][p] {
			t.Errorf("partition %d: a with %q, b with %q; want one member for both", p, owners["a"][p], owners["b"][p])
		}
	}
	if countOf(plan, "old", "a") != 2 {
		t.Errorf("plan %v: want 2 tasks each", plan)
	}
}

func TestBalancerSticky(t *testing.T) {
	subs := [][]string{{"a", "b"}}
	owned := map[string][]int32{"a": {0, 1, 2, 3, 4, 5}, "b": {0, 1, 2, 3, 4, 5}}
	members := []testMember{{id: "m0", subs: subs, owned: owned, gen: 4}, {id: "m1", subs: subs}}
	topics := map[string]int32{"a": 6, "b": 6}
	plan, err := balance(t, newTaskBalancer(topologyOf(subs)), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, members, plan)
	// m0 keeps 3 tasks; the other 3 are revoked first (cooperative), so
	// nobody gets them in this round.
	kept := plan["m0"]["a"]
	if len(kept) != 3 || !slices.Equal(kept, plan["m0"]["b"]) || len(plan["m1"]) != 0 {
		t.Fatalf("first round: %v", plan)
	}
	// Second round: m0 owns what it kept; m1 gets the rest.
	members[0].owned = map[string][]int32{"a": kept, "b": kept}
	members[0].gen, members[1].gen = 5, 5
	plan2, err := balance(t, newTaskBalancer(topologyOf(subs)), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, members, plan2)
	if !slices.Equal(plan2["m0"]["a"], kept) || len(plan2["m1"]["a"]) != 3 {
		t.Fatalf("second round: %v (m0 kept %v)", plan2, kept)
	}
}

// A member that owns partitions it cannot run (given by a balancer that
// ignored subscriptions) loses them to one that can, and tasks only some
// members can run are placed before flexible ones fill those members up.
func TestBalancerOwnedButNotRunnable(t *testing.T) {
	oldSubs, newSubs := [][]string{{"a"}}, [][]string{{"a"}, {"n"}}
	members := []testMember{
		{id: "new", subs: newSubs, owned: map[string][]int32{"a": {0, 1, 2, 3}, "n": {0, 1}}, gen: 7},
		{id: "old", subs: oldSubs, owned: map[string][]int32{"n": {2, 3}}, gen: 7},
	}
	topics := map[string]int32{"a": 4, "n": 4}
	leader := newTaskBalancer(topologyOf(oldSubs))
	plan, err := balance(t, leader, members, topics)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, members, plan)
	// First round (cooperative): old gives up n2 and n3, new gives up a;
	// new keeps n0 and n1.
	if len(plan["old"]) != 0 || len(plan["new"]["a"]) != 0 || !slices.Equal(plan["new"]["n"], []int32{0, 1}) {
		t.Fatalf("first round: %v", plan)
	}
	members[0].owned, members[1].owned = plan["new"], plan["old"]
	members[0].gen, members[1].gen = 8, 8
	plan, err = balance(t, leader, members, topics)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, members, plan)
	// new runs all of n (only it can), old all of a: 4 tasks each.
	if len(plan["new"]["n"]) != 4 || len(plan["new"]["a"]) != 0 || len(plan["old"]["a"]) != 4 {
		t.Fatalf("second round: %v", plan)
	}
}

// Members of kstreams before the subscription send cooperative-sticky
// metadata: the leader reads them as running its own topology, restricted
// to the topics they subscribe to.
func TestBalancerLegacyMembers(t *testing.T) {
	newSubs := [][]string{{"a"}, {"n"}}
	members := []testMember{
		{id: "legacy-same", subs: newSubs, legacy: true},
		{id: "legacy-old", subs: [][]string{{"a"}, {"x"}}, legacy: true}, // x: a topic the leader does not know
		{id: "new", subs: newSubs},
	}
	topics := map[string]int32{"a": 3, "n": 6, "x": 2}
	log, buf := captureLog()
	plan, err := balance(t, newTaskBalancer(topologyOf(newSubs)).withLogger(log), members, topics)
	if err != nil {
		t.Fatal(err)
	}
	owners := checkPlan(t, members, plan)
	if len(owners["a"]) != 3 || len(owners["n"]) != 6 || countOf(plan, "legacy-old", "n") != 0 || countOf(plan, "legacy-same", "n") == 0 {
		t.Errorf("plan %v", plan)
	}
	// The leader cannot tell what x is co-partitioned with: not assigned, and said.
	if len(owners["x"]) != 0 || !strings.Contains(buf.String(), "NOT ASSIGNED") || !strings.Contains(buf.String(), "topics=[x]") || !strings.Contains(buf.String(), "tasks=2") {
		t.Errorf("x: owners %v; log:\n%s", owners["x"], buf.String())
	}
}

func TestBalancerPartitionCountMismatch(t *testing.T) {
	subs := [][]string{{"a", "b"}}
	_, err := balance(t, newTaskBalancer(topologyOf(subs)), []testMember{{id: "m0", subs: subs}}, map[string]int32{"a": 4, "b": 3})
	if err == nil || !strings.Contains(err.Error(), "different partition counts") {
		t.Fatalf("err %v", err)
	}
}

// Assignments of many members over random topologies keep the invariants
// and assign every partition some member can run.
func TestBalancerRandomUpgrades(t *testing.T) {
	versions := [][][]string{
		{{"a"}, {"b", "c"}},
		{{"a"}, {"b", "c"}, {"d"}},
		{{"a", "e"}, {"b", "c"}, {"d"}},
	}
	topics := map[string]int32{"a": 5, "b": 3, "c": 3, "d": 7, "e": 5}
	for mask := range 1 << 6 { // 6 members, each on version 0 or 2, plus one on 1
		var members []testMember
		for i := range 6 {
			v := 0
			if mask&(1<<i) != 0 {
				v = 2
			}
			members = append(members, testMember{id: fmt.Sprintf("m%d", i), subs: versions[v]})
		}
		members = append(members, testMember{id: "m6", subs: versions[1]})
		plan, err := balance(t, newTaskBalancer(topologyOf(versions[mask%3])), members, topics)
		if err != nil {
			t.Fatal(err)
		}
		owners := checkPlan(t, members, plan)
		for _, topic := range slices.Sorted(maps.Keys(topics)) {
			if topic == "e" && mask == 0 {
				continue // nobody reads it
			}
			if len(owners[topic]) != int(topics[topic]) {
				t.Errorf("mask %b: %s has %d of %d partitions assigned", mask, topic, len(owners[topic]), topics[topic])
			}
		}
	}
}
