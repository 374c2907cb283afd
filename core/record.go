package kstreams

import (
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
)

// Header is a Kafka record header (franz-go's type).
type Header = serde.Header

// Record is a typed Kafka record flowing through a topology.
//
// Records are passed by value. Sinks write a record's Timestamp and Headers
// unchanged; a processor that builds a new record decides what they are.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
	// Origin is the input record this record derives from. Processors
	// copy it when they build output records from input ones, so errors and
	// dead letters can name the input; it is zero for records created by
	// punctuators.
	Origin Origin
}

// Origin locates an input record in Kafka.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// WithKeyValue returns r with its key and value replaced (and possibly their
// types changed), keeping timestamp, headers and origin.
func WithKeyValue[K, V, K2, V2 any](r Record[K, V], key K2, value V2) Record[K2, V2] {
	return Record[K2, V2]{Key: key, Value: value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}

// WithValue returns r with its value replaced, keeping everything else.
func WithValue[K, V, V2 any](r Record[K, V], value V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}
