package kstreams

import (
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// RecordError is the error for one input record that failed: it names the
// record (topic, partition, offset), the node that failed and the stage.
// Use errors.As to get it from the error of App.Run or of the test driver;
// errors.Is and errors.As also reach the cause, Err.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Node      string // the node that failed, if known
	Stage     Stage
	Err       error // the cause
}

func (e *RecordError) Error() string {
	node := ""
	if e.Node != "" {
		node = " at node " + e.Node
	}
	return fmt.Sprintf("%s failed for record %s/%d@%d%s: %v", e.Stage, e.Topic, e.Partition, e.Offset, node, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// Stage says where processing a record failed: StageDeserialize,
// StageProcess or StageProduce.
type Stage uint8

// Failure stages.
const (
	StageDeserialize Stage = iota + 1 // decoding the input key or value, or extracting its timestamp
	StageProcess                      // a processor's Process, or encoding in a sink
	StageProduce                      // producing an output record to Kafka
)

func (s Stage) String() string {
	switch s {
	case StageDeserialize:
		return "deserialize"
	case StageProcess:
		return "process"
	case StageProduce:
		return "produce"
	}
	return "unknown"
}

func init() {
	// The runtime's writes return the public value.
	runtime.ErrNotOwner = ErrNotOwner
	// The runtime and the test driver report *graph.RecordError; errors.As
	// finds it as a *RecordError too.
	graph.AsPublicRecordError = func(e *graph.RecordError, target any) bool {
		t, ok := target.(**RecordError)
		if ok {
			*t = &RecordError{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Node: e.Node, Stage: Stage(e.Stage), Err: e.Err}
		}
		return ok
	}
}

// ErrNotOwner is returned by the writes (Forward to a sink, store writes) of
// a record still running when its task stopped being owned by this instance:
// revoked, lost, or closing. The write did not happen and the record is not
// committed; the task's current owner processes it again. A processor that
// gets it should return it (or any error): its output would be a stale
// owner's. See docs/architecture.md, "Ownership".
var ErrNotOwner = errors.New("kstreams: task no longer owned by this instance (revoked, lost or closing); write refused")
