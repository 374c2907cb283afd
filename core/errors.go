package kstreams

import "github.com/kstreams-go/kstreams/core/internal/graph"

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
