package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// prepareTopics checks every topic the application reads, writes or
// creates, and only if all is well creates the internal topics that are
// missing (repartition, changelog and dead-letter topics): a start that
// fails leaves the cluster as it found it. It fills r.partitions.
func (r *Runtime) prepareTopics(ctx context.Context) error {
	g := r.cfg.Topology
	// What the application creates if missing, with partition counts and
	// configs. Repartition topics have the count Through asked for;
	// changelogs that of their sub-topology's sources; dead-letter topics 1.
	type internalTopic struct {
		kind       string // "repartition", "changelog" or "dead-letter"
		partitions int32
		spec       *store.Spec // changelogs only
	}
	internal := map[string]*internalTopic{}
	for t, n := range g.ManagedTopics {
		internal[t] = &internalTopic{kind: "repartition", partitions: n}
	}
	for _, p := range r.cfg.Policies {
		if p.Action == DeadLetter {
			if _, ok := internal[p.Topic]; !ok {
				internal[p.Topic] = &internalTopic{kind: "dead-letter", partitions: 1}
			}
		}
	}
	var external []string // source and sink topics the user creates
	for _, st := range g.Subtopologies {
		for _, t := range append(slices.Clone(st.SourceTopics), st.SinkTopics...) {
			if _, ok := g.ManagedTopics[t]; !ok {
				external = append(external, t)
			}
		}
		for _, spec := range st.Stores {
			if spec.Logged() {
				internal[graph.ChangelogTopic(r.cfg.AppID, spec.Name())] = &internalTopic{kind: "changelog", spec: spec}
			}
		}
	}
	slices.Sort(external)
	external = slices.Compact(external)
	all := slices.Concat(external, slices.Sorted(maps.Keys(internal)))
	if len(all) == 0 {
		return nil
	}
	td, err := r.listTopics(ctx, all...)
	if err != nil {
		return err
	}
	// A source or sink topic created just before the application started
	// can be missing from the metadata for a moment: look again (up to
	// 10 s) before calling it missing.
	for attempt := 0; attempt < 50 && missingAny(td, external); attempt++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if td, err = r.listTopics(ctx, all...); err != nil {
			return err
		}
	}
	exists := func(t string) (kadm.TopicDetail, bool, error) {
		d, ok := td[t]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return d, false, nil
		}
		return d, d.Err == nil, d.Err
	}

	var problems []string
	for _, t := range external {
		d, ok, err := exists(t)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("topic %q: %v", t, err))
		case !ok:
			problems = append(problems, fmt.Sprintf("topic %q does not exist: create it before starting the application", t))
		default:
			r.partitions[t] = int32(len(d.Partitions))
		}
	}
	// Repartition topics first: sub-topologies read them, so changelog
	// partition counts can depend on them. An existing one keeps its
	// count.
	for t, it := range internal {
		if it.kind != "repartition" {
			continue
		}
		if d, ok, err := exists(t); err != nil {
			problems = append(problems, fmt.Sprintf("repartition topic %q: %v", t, err))
		} else if ok {
			r.partitions[t] = int32(len(d.Partitions))
		} else {
			r.partitions[t] = it.partitions
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	// Repartition topics created with the count of their co-partitioned
	// topics (a count of 0).
	derived, err := g.DerivePartitions(func(t string) (int32, bool) {
		n, ok := r.partitions[t]
		return n, ok && n > 0
	})
	if err != nil {
		return err
	}
	for t, n := range derived {
		r.partitions[t], internal[t].partitions = n, n
	}
	// Co-partitioning, and the changelogs' partition counts.
	for _, st := range g.Subtopologies {
		var n int32 = -1
		for _, t := range st.SourceTopics {
			if p := r.partitions[t]; n >= 0 && p != n {
				problems = append(problems, fmt.Sprintf("sub-topology %d reads topics %v, which must be co-partitioned, but %q has %d partitions and another %d",
					st.ID, st.SourceTopics, t, p, n))
			} else {
				n = p
			}
		}
		for _, spec := range st.Stores {
			if spec.Logged() {
				internal[graph.ChangelogTopic(r.cfg.AppID, spec.Name())].partitions = n
			}
		}
	}
	var create []string
	for _, t := range slices.Sorted(maps.Keys(internal)) {
		it := internal[t]
		if it.kind == "repartition" {
			if _, ok, _ := exists(t); !ok {
				create = append(create, t)
			}
			continue
		}
		d, ok, err := exists(t)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s topic %q: %v", it.kind, t, err))
		case !ok:
			create = append(create, t)
		case it.kind == "changelog" && int32(len(d.Partitions)) != it.partitions:
			problems = append(problems, fmt.Sprintf("changelog topic %q has %d partitions but its store's sources have %d: delete the changelog topic (its state is rebuilt from the sources only if you reprocess them) or restore the source partition count",
				t, len(d.Partitions), it.partitions))
		default:
			r.partitions[t] = int32(len(d.Partitions))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s (no topic was created)", strings.Join(problems, "; "))
	}

	// Every check passed: create what is missing.
	for _, t := range create {
		it := internal[t]
		configs := map[string]*string{}
		if it.kind == "changelog" {
			policy := "compact"
			if it.spec.Kind() == store.KindWindow {
				policy = "compact,delete"
				if ret, ok := it.spec.Retention(); ok {
					ms := strconv.FormatInt((ret + 24*time.Hour).Milliseconds(), 10)
					configs["retention.ms"] = &ms
				}
			}
			configs["cleanup.policy"] = &policy
		}
		resp, err := r.adm.CreateTopic(ctx, it.partitions, r.cfg.ReplicationFactor, configs, t)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			r.log.Info("created internal topic", "topic", t, "kind", it.kind, "partitions", it.partitions)
		case errors.Is(err, kerr.TopicAlreadyExists): // another instance was quicker
		case transient(err):
			return &transientError{fmt.Errorf("creating %s topic %q: %w", it.kind, t, err)}
		default:
			problems = append(problems, fmt.Sprintf("creating %s topic %q: %v", it.kind, t, err))
			continue
		}
		r.partitions[t] = it.partitions
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	// The consumer subscribes to the repartition topics it created: wait
	// until they are in the metadata. Not for the others: franz-go answers
	// metadata requests from a cache up to MetadataMinAge (5 s) old, which
	// may predate the creation, and producing or restoring finds them
	// without the wait.
	var repartition []string
	for _, t := range create {
		if internal[t].kind == "repartition" {
			repartition = append(repartition, t)
		}
	}
	return r.awaitTopics(ctx, repartition)
}

// awaitTopics waits until topics, created moments ago, are in the
// metadata: a topic may be missing from it for a while after creation.
func (r *Runtime) awaitTopics(ctx context.Context, topics []string) error {
	for attempt := 0; len(topics) > 0; attempt++ {
		td, err := r.listTopics(ctx, topics...)
		if err == nil && visible(td, topics) {
			return nil
		}
		if attempt == 300 || ctx.Err() != nil {
			return fmt.Errorf("topics %v not visible after creation: %v", topics, errors.Join(err, td.Error(), ctx.Err()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// missingAny reports whether a topic of topics is not in td.
func missingAny(td kadm.TopicDetails, topics []string) bool {
	for _, t := range topics {
		if d, ok := td[t]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return true
		}
	}
	return false
}

// visible reports whether every topic is in td with its partitions. A
// partition without a leader yet (LEADER_NOT_AVAILABLE, for a few seconds
// after creation on a busy broker) is franz-go's to wait for, not ours.
func visible(td kadm.TopicDetails, topics []string) bool {
	for _, t := range topics {
		d, ok := td[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false
		}
	}
	return true
}

func (r *Runtime) listTopics(ctx context.Context, topics ...string) (kadm.TopicDetails, error) {
	td, err := r.adm.ListTopics(ctx, topics...)
	if err != nil {
		err = fmt.Errorf("reading metadata of topics %v: %w", topics, err)
		if transient(err) {
			err = &transientError{err}
		}
		return nil, err
	}
	return td, nil
}

// transientError is a start-up error worth retrying: the cluster could not
// be reached, or answered with a retriable error (a broker restarting).
type transientError struct{ error }

func (e *transientError) Unwrap() error { return e.error }

// (A broker's connection closed or refused counts: it may be restarting.
// A misconfiguration such as missing TLS looks the same; it is logged at
// each retry and returned after startupRetry.)
func transient(err error) bool {
	var eof *kgo.ErrFirstReadEOF
	var sys *os.SyscallError
	return kgo.IsRetryableBrokerErr(err) || kerr.IsRetriable(err) || errors.As(err, &eof) || errors.As(err, &sys) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// startupRetry bounds how long start-up retries transient errors.
const startupRetry = time.Minute

// prepareTopicsRetrying runs prepareTopics, again after transient errors
// for up to startupRetry.
func (r *Runtime) prepareTopicsRetrying(ctx context.Context) error {
	deadline := time.Now().Add(startupRetry)
	for {
		err := r.prepareTopics(ctx)
		var te *transientError
		if err == nil || !errors.As(err, &te) || time.Now().After(deadline) {
			return err
		}
		r.log.Warn("preparing topics failed; retrying (a broker may be restarting)", "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// partitionCount returns the partition count of topic, asking the cluster
// for topics not seen before (sinks that choose topics per record).
func (r *Runtime) partitionCount(topic string) (int32, error) {
	r.partMu.Lock()
	n, ok := r.partitions[topic]
	r.partMu.Unlock()
	if ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := r.listTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("topic %q: %v", topic, d.Err)
	}
	r.partMu.Lock()
	r.partitions[topic] = int32(len(d.Partitions))
	r.partMu.Unlock()
	return int32(len(d.Partitions)), nil
}
