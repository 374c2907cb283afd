package kstreams

import (
	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// RecordError is the error for one input record that failed: it names the
// record (topic, partition, offset), the node that failed and the stage.
// Use errors.As to get it from the error of App.Run or of the test driver.
type RecordError = graph.RecordError

// Stage says where processing a record failed: StageDeserialize,
// StageProcess or StageProduce.
type Stage = graph.Stage

// Failure stages.
const (
	StageDeserialize = graph.StageDeserialize // decoding the input key or value, or extracting its timestamp
	StageProcess     = graph.StageProcess     // a processor's Process, or encoding in a sink
	StageProduce     = graph.StageProduce     // producing an output record to Kafka
)

// ErrNotOwner is returned by the writes (Forward to a sink, store writes) of
// a record still running when its task stopped being owned by this instance:
// revoked, lost, or closing. The write did not happen and the record is not
// committed; the task's current owner processes it again. A processor that
// gets it should return it (or any error): its output would be a stale
// owner's. See docs/architecture.md, "Ownership".
var ErrNotOwner = runtime.ErrNotOwner
