package kstreams

import (
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/kafkatime"
	"github.com/twmb/franz-go/pkg/kgo"
)

// exactTimestamps is a franz-go hook that gives fetched records their exact
// timestamps: franz-go's consumer wraps those past 2262-04-11 around to
// dates before 1970 (see package internal/kafkatime). Fixing the record as
// it is buffered, before kstreams polls it, makes everything downstream
// (sources, error messages, dead letters) see the timestamp in the topic.
type exactTimestamps struct{}

// OnFetchRecordBuffered implements kgo.HookFetchRecordBuffered.
func (exactTimestamps) OnFetchRecordBuffered(r *kgo.Record) {
	if t := kafkatime.Exact(r.Timestamp); !t.Equal(r.Timestamp) {
		r.Timestamp = t
	}
}

// checkEventTime reports an event time kstreams cannot represent.
func checkEventTime(t time.Time) error {
	if kafkatime.InRange(t) {
		return nil
	}
	return fmt.Errorf("event time %s (%d ms since 1970) is outside the range kstreams represents, %s to %s (int64 nanoseconds since 1970)",
		t.UTC().Format(time.RFC3339Nano), t.UnixMilli(), kafkatime.Min.Format(time.RFC3339), kafkatime.Max.Format(time.RFC3339))
}
