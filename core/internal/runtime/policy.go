package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Error policies: what happens to a record whose processing, decoding or
// output failed.

// handleRecordError applies the policy of the failed stage; it returns the
// error if the policy is to fail. ctx carries the record's completion, so a
// dead letter is acknowledged before the record's offset is committed.
func (r *Runtime) handleRecordError(ctx context.Context, rec *kgo.Record, err error) error {
	if c := completionFrom(ctx); c != nil && c.ts != nil && errors.Is(err, store.ErrFenced) {
		// Not the record's fault: the task has a newer owner, which
		// processes the record again.
		r.storeFenced(c.ts, "", err)
		return nil
	}
	var re *graph.RecordError
	if !errors.As(err, &re) {
		return fmt.Errorf("kstreams: %w", err) // a punctuator error: no record to blame
	}
	p := r.cfg.Policies[re.Stage]
	switch p.Action {
	case Skip:
		r.stats.skipped.Add(1)
		r.log.Warn("skipped record after error", "topic", re.Topic, "partition", re.Partition, "offset", re.Offset,
			"node", re.Node, "stage", re.Stage.String(), "error", re.Err)
		return nil
	case DeadLetter:
		r.deadLetter(completionFrom(ctx), rec, re.Stage, re.Node, re.Err)
		return nil
	}
	return fmt.Errorf("kstreams: %w (the record is not committed and will be retried on restart; to move past it, fix the cause or set a skip or dead-letter policy for %s errors)", err, re.Stage)
}

// deadLetter writes the original record to the stage's dead-letter topic
// with headers describing the failure, as part of c.
func (r *Runtime) deadLetter(c *completion, rec *kgo.Record, stage graph.Stage, node string, cause error) {
	p := r.cfg.Policies[stage]
	h := make([]kgo.RecordHeader, 0, len(rec.Headers)+8)
	h = append(h, rec.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: "kstreams.error.stage", Value: []byte(stage.String())},
		kgo.RecordHeader{Key: "kstreams.error.message", Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: "kstreams.error.node", Value: []byte(node)},
		kgo.RecordHeader{Key: "kstreams.source.topic", Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: "kstreams.source.partition", Value: fmt.Appendf(nil, "%d", rec.Partition)},
		kgo.RecordHeader{Key: "kstreams.source.offset", Value: fmt.Appendf(nil, "%d", rec.Offset)},
		kgo.RecordHeader{Key: "kstreams.source.timestamp", Value: fmt.Appendf(nil, "%d", rec.Timestamp.UnixMilli())},
	)
	r.stats.deadLettered.Add(1)
	r.log.Warn("dead-lettered record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
		"dead_letter_topic", p.Topic, "stage", stage.String(), "error", cause)
	// Refused if the task is fenced: then c never completes.
	_ = c.produce(&kgo.Record{Topic: p.Topic, Partition: -1, Key: rec.Key, Value: rec.Value, Headers: h, Timestamp: rec.Timestamp})
}

// onProduced applies the production error policy to a record of ts
// (nil: of no task) that the brokers refused. It runs in franz-go's promise
// goroutine and returns whether the record's unit may still complete.
func (r *Runtime) onProduced(ts *taskState, rec *kgo.Record, err error) bool {
	if r.killed.Load() {
		return false
	}
	if ts != nil && ts.stopped.Load() {
		// Aborted (or failed) after the task was given up: its next owner
		// processes the record again.
		return false
	}
	p := r.cfg.Policies[graph.StageProduce]
	switch {
	case p.Action == Skip || p.Action == DeadLetter && rec.Topic == p.Topic:
		r.stats.skipped.Add(1)
		r.log.Warn("skipped record that failed to produce", "topic", rec.Topic, "partition", rec.Partition, "error", err)
		return true
	case p.Action == DeadLetter:
		// Producing from a promise could block on a full buffer: hand the
		// dead letter to its own goroutine, holding an untracked count.
		// The count taken here is released by c: commits wait for it.
		r.punctPending.Add(1)
		go func() {
			c := newCompletion(r, nil)
			c.punct = true
			r.deadLetter(c, rec, graph.StageProduce, "", err)
			c.processed()
		}()
		return true
	}
	r.setFatal(fmt.Errorf("kstreams: producing to %s/%d failed: %w (check the topic exists, the client's authorization and the record size limits)", rec.Topic, rec.Partition, err))
	return false
}
