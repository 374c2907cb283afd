// Package graph is the type-erased form of a topology: what the runtime and
// the test driver execute. The typed builder (package kstreams) compiles into
// it; this package never imports the typed layer.
package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kind is the role of a node.
type Kind uint8

// Node kinds.
const (
	KindSource Kind = iota + 1
	KindProcessor
	KindSink
)

// Node describes one node of a topology.
type Node struct {
	Name     string
	Kind     Kind
	Parents  []*Node
	Children []*Node
	// Topics are a source's topics or a sink's fixed topic.
	Topics []string
	// DynamicTopic is set for sinks that choose the topic per record.
	DynamicTopic bool
	// Stores are the names of the stores a processor uses.
	Stores []string
	// Order is the ordering mode a processor asks for (0: not set).
	Order Order
	// Batch is set for batch processors.
	Batch *BatchConfig
	// Retry is set for processors that retry failures.
	Retry *Retry
}

// Retry is a processor's retry policy.
type Retry struct {
	Attempts            int
	Backoff, MaxBackoff time.Duration
	// Retried, if set, is called before each retry (see NodeObserver).
	Retried func()
}

// Order is how a sub-topology's records may be processed concurrently.
type Order uint8

// Ordering modes.
const (
	OrderPartition Order = iota + 1 // one record at a time per partition, in offset order
	OrderKey                        // records with equal keys in offset order, other keys concurrently
	OrderUnordered                  // any record concurrently with any other
)

func (o Order) String() string {
	switch o {
	case OrderPartition:
		return "partition"
	case OrderKey:
		return "key"
	case OrderUnordered:
		return "unordered"
	}
	return "unset"
}

// BatchConfig bounds the batches given to a batch processor.
type BatchConfig struct {
	MaxSize int
	Linger  time.Duration
}

// Topology is a validated topology split into sub-topologies.
type Topology struct {
	Nodes         []*Node // parents before children
	Stores        []*store.Spec
	Subtopologies []*Subtopology
	// ManagedTopics are topics the application creates if missing, with
	// their partition counts (repartition topics).
	ManagedTopics map[string]int32
	// GlobalStores are the global stores (see global.go): in no
	// sub-topology, each filled from every partition of its source topic
	// (Spec.Source) and read by the processors of any task.
	GlobalStores []*store.Spec
}

// Subtopology is a connected part of a topology: the nodes reachable from
// each other through parent/child edges or shared stores. All its source
// topics must have the same partition count; partition p of each of them is
// processed by task (ID, p).
type Subtopology struct {
	ID           int
	SourceTopics []string
	SinkTopics   []string // fixed sink topics
	Nodes        []*Node
	Stores       []*store.Spec
	// Order is the sub-topology's ordering mode.
	Order Order
	// Batch is set when the sub-topology's source feeds a batch processor:
	// records are then dispatched in batches.
	Batch *BatchConfig
	// New instantiates the sub-topology's processors for one task.
	New func(Env) (Instance, error)
}

// TaskID identifies a task: a sub-topology and a partition.
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// PunctuationType says which clock drives a punctuator.
type PunctuationType uint8

// Punctuation clocks.
const (
	StreamTime PunctuationType = iota + 1
	WallClockTime
)

// Cancel cancels a scheduled punctuator.
type Cancel func()

// Env is what a task offers the processors instantiated for it.
type Env interface {
	TaskID() TaskID
	// Store returns the typed store named name for this task.
	Store(name string) (any, error)
	// Emit hands a produced record to the task's producer. Partition is -1
	// for the default (key-hash) partitioner.
	Emit(ctx context.Context, r *kgo.Record) error
	// Partitions returns the partition count of topic.
	Partitions(topic string) (int32, error)
	// ObserveTimestamp advances stream time to t if t is later.
	ObserveTimestamp(t time.Time)
	// StreamTime returns the task's stream time (zero before the first record).
	StreamTime() time.Time
	// Schedule runs fn every interval of the given clock.
	Schedule(kind PunctuationType, interval time.Duration, fn func(context.Context, time.Time) error) (Cancel, error)
	Logger() *slog.Logger
}

// Instance is a sub-topology's processors instantiated for one task. Under
// the concurrent ordering modes Process is called from several goroutines.
type Instance interface {
	// Process runs a record read from one of the sub-topology's source
	// topics through the processors.
	Process(ctx context.Context, r *kgo.Record) error
	// ProcessBatch runs records of one source topic through the
	// processors; a batch processor right after the source gets them as one
	// batch.
	ProcessBatch(ctx context.Context, rs []*kgo.Record) error
	// Close closes the processors.
	Close() error
}

// Stage says where processing a record failed.
type Stage uint8

// Stages.
const (
	StageDeserialize Stage = iota + 1
	StageProcess
	StageProduce
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

// NodeError attributes an error to a node and a stage.
type NodeError struct {
	Node  string
	Stage Stage
	Err   error
}

func (e *NodeError) Error() string { return e.Node + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// WrapNode wraps err with node unless it already carries a node.
func WrapNode(node string, stage Stage, err error) error {
	if err == nil {
		return nil
	}
	var ne *NodeError
	if errors.As(err, &ne) {
		return err
	}
	return &NodeError{Node: node, Stage: stage, Err: err}
}

// BatchError says which record of a batch failed before the batch was
// processed (it could not be decoded).
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("record %d of the batch: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// RecordError is an error processing one input record. It names the record
// by topic, partition and offset, the node that failed and the stage.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Node      string // the node that failed, if known
	Stage     Stage
	Err       error
}

func (e *RecordError) Error() string {
	node := ""
	if e.Node != "" {
		node = " at node " + e.Node
	}
	return fmt.Sprintf("%s failed for record %s/%d@%d%s: %v", e.Stage, e.Topic, e.Partition, e.Offset, node, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// AsPublicRecordError is set by package kstreams at init: it converts e to
// the public *kstreams.RecordError when target points to one, so that
// errors.As finds the public type in any error that wraps e.
var AsPublicRecordError func(e *RecordError, target any) bool

// As lets errors.As convert e to the public RecordError (see
// AsPublicRecordError).
func (e *RecordError) As(target any) bool {
	return AsPublicRecordError != nil && AsPublicRecordError(e, target)
}

// NewRecordError describes err as a failure processing r.
func NewRecordError(r *kgo.Record, err error) *RecordError {
	re := &RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Stage: StageProcess, Err: err}
	var ne *NodeError
	if errors.As(err, &ne) {
		re.Node, re.Stage, re.Err = ne.Node, ne.Stage, ne.Err
	}
	return re
}

// FromTopology returns the graph of a *kstreams.Topology. The kstreams
// package sets it at init, so that packages it cannot import without a cycle
// (the test driver) can reach the graph.
var FromTopology func(t any) *Topology

// ChangelogTopic is the name of the changelog topic of store in the
// application appID.
func ChangelogTopic(appID, store string) string { return appID + "-" + store + "-changelog" }
