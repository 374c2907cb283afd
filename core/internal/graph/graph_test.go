package graph

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{OrderPartition.String(), "partition"},
		{OrderKey.String(), "key"},
		{OrderUnordered.String(), "unordered"},
		{Order(0).String(), "unset"},
		{StageDeserialize.String(), "deserialize"},
		{StageProcess.String(), "process"},
		{StageProduce.String(), "produce"},
		{Stage(0).String(), "unknown"},
		{TaskID{Subtopology: 1, Partition: 7}.String(), "1_7"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestNamesOutliveReleases: the names the runtime derives for state that
// stays in Kafka or on disk (changelog topics, task directories) must not
// change between versions, or a new version starts from empty state.
func TestNamesOutliveReleases(t *testing.T) {
	if got := ChangelogTopic("orders-app", "counts"); got != "orders-app-counts-changelog" {
		t.Fatalf("ChangelogTopic = %q", got)
	}
	if got := (TaskID{Subtopology: 0, Partition: 11}).String(); got != "0_11" {
		t.Fatalf("task directory name = %q", got)
	}
}

func TestWrapNodeKeepsTheFirstNode(t *testing.T) {
	if WrapNode("n", StageProcess, nil) != nil {
		t.Fatal("WrapNode(nil) is not nil")
	}
	boom := errors.New("boom")
	inner := WrapNode("inner", StageDeserialize, boom)
	outer := WrapNode("outer", StageProcess, fmt.Errorf("calling child: %w", inner))
	var ne *NodeError
	if !errors.As(outer, &ne) || ne.Node != "inner" || ne.Stage != StageDeserialize {
		t.Fatalf("outer wrap = %#v; want the innermost node's attribution kept", outer)
	}
	if !errors.Is(outer, boom) {
		t.Fatal("the cause is not reachable through the node error")
	}
	if got := inner.Error(); got != "inner: boom" {
		t.Fatalf("NodeError.Error() = %q", got)
	}
}

func TestRecordErrors(t *testing.T) {
	boom := errors.New("boom")
	r := &kgo.Record{Topic: "orders", Partition: 2, Offset: 40}

	re := NewRecordError(r, WrapNode("enrich", StageProcess, boom))
	if re.Topic != "orders" || re.Partition != 2 || re.Offset != 40 || re.Node != "enrich" || re.Stage != StageProcess || re.Err != boom {
		t.Fatalf("NewRecordError = %+v", re)
	}
	if got, want := re.Error(), "process failed for record orders/2@40 at node enrich: boom"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(re, boom) {
		t.Fatal("the cause is not reachable")
	}

	bare := NewRecordError(r, boom)
	if bare.Node != "" || bare.Stage != StageProcess || bare.Err != boom {
		t.Fatalf("NewRecordError without a node = %+v", bare)
	}
	if got, want := bare.Error(), "process failed for record orders/2@40: boom"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}

	decode := NewRecordError(r, WrapNode("source", StageDeserialize, boom))
	if decode.Stage != StageDeserialize || decode.Error() != "deserialize failed for record orders/2@40 at node source: boom" {
		t.Fatalf("deserialization error = %+v (%s)", decode, decode.Error())
	}

	be := &BatchError{Index: 3, Err: boom}
	if be.Error() != "record 3 of the batch: boom" || !errors.Is(be, boom) {
		t.Fatalf("BatchError = %q", be.Error())
	}
}
