package runtime

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The runtime's configuration, error policies and counters.

// Action is what an error policy does with a failed record.
type Action uint8

// Actions.
const (
	Fail       Action = iota // stop the application with the error
	Skip                     // count, log and continue
	DeadLetter               // write the record to a dead-letter topic and continue
)

// Policy is the error policy of one stage.
type Policy struct {
	Action Action
	Topic  string // dead-letter topic
}

// Config is everything the runtime needs.
type Config struct {
	Topology *graph.Topology
	AppID    string
	Brokers  []string
	StateDir string
	// StateCleanupDelay is how long the state directory of a task no
	// longer owned is kept; 0 means 10 minutes.
	StateCleanupDelay time.Duration
	CommitInterval    time.Duration
	Logger            *slog.Logger
	KgoOpts           []kgo.Opt
	Policies          map[graph.Stage]Policy
	ReplicationFactor int16
	MaxPollRecords    int
	OnRestore         func(RestoreProgress)
	// Concurrency is the number of worker goroutines shared by the tasks
	// of the concurrent ordering modes.
	Concurrency int
	// MaxInFlight bounds, per input partition, the records dispatched and
	// not yet committable; past it the partition's fetching pauses.
	MaxInFlight int
	// MaxInFlightTotal bounds the same over all the partitions; past it
	// each partition dispatched pauses.
	MaxInFlightTotal int
	// MaxMetadataBytes is the broker's offset metadata limit
	// (offset.metadata.max.bytes).
	MaxMetadataBytes int
	// Transactions makes every commit a Kafka transaction fenced by the
	// group generation (see txn.go).
	Transactions bool
	// SessionTimeout is the consumer group's session timeout; 0 means
	// franz-go's default (45s).
	SessionTimeout time.Duration
	// InlineBelow: in the concurrent modes, the records of a task whose
	// measured processing time averages less than this are processed in
	// offset-order segments when their key has nothing in flight (see
	// dispatchPartition). 0 means the default, 10µs; negative turns it off.
	InlineBelow time.Duration
	// MemoryBudget is the memory the instance aims to use for fetched
	// records, restores and stores (see memory.go); 0 means
	// DefaultMemoryBudget.
	MemoryBudget int64
	// FetchSizesGiven: KgoOpts set the fetch sizes
	// (kgo.FetchMaxPartitionBytes or kgo.FetchMaxBytes); the budget leaves
	// them alone.
	FetchSizesGiven bool
	// Observer receives the runtime's events (see observe.go); nil for none.
	Observer *Observer
	// OnState is called on every change of the application's state.
	OnState func(old, new State)
}

// Stats are the runtime's counters.
type Stats struct {
	Processed        int64 // input records handled: processed, skipped or dead-lettered (or dispatched, in the concurrent modes)
	Skipped          int64 // records skipped by a policy
	DeadLettered     int64 // records written to a dead-letter topic
	Commits          int64 // offset commits
	Restored         int64 // changelog records applied by restoration
	SkippedCompleted int64 // records not processed again because the commit metadata listed them as complete
	MetadataDropped  int64 // commits whose completed-offsets metadata exceeded the limit (those records will be replayed)
	Inline           int64 // records of the concurrent modes processed in offset-order segments because their work is cheap
	InlineStalls     int64 // segments taken back from a stalled record and handed to the workers
	Tasks            int   // tasks currently owned
	Consumed         int64 // input records fetched and handed to their tasks
	Produced         int64 // records written to Kafka: outputs, changelog records, dead letters
	InFlight         int64 // records dispatched to the concurrent modes and not yet committable
	Units            int64 // units of work started and not complete
	Paused           int64 // input partitions paused for backpressure
}

type stats struct {
	processed, skipped, deadLettered, commits, restored, skippedDone, metaDropped, inline, inlineStalls atomic.Int64
	consumed, produced                                                                                  atomic.Int64 // see observe.go
}
