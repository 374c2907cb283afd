package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// prepareTopics checks the source and sink topics, and creates the
// changelog and dead-letter topics that are missing. It fills r.partitions.
func (r *Runtime) prepareTopics(ctx context.Context) error {
	g := r.cfg.Topology
	var need []string
	for _, st := range g.Subtopologies {
		need = append(need, st.SourceTopics...)
		need = append(need, st.SinkTopics...)
	}
	slices.Sort(need)
	need = slices.Compact(need)
	if err := r.createManaged(ctx); err != nil {
		return err
	}
	td, err := r.listTopics(ctx, need...)
	if err != nil {
		return err
	}
	var problems []string
	for _, t := range need {
		d, ok := td[t]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			problems = append(problems, fmt.Sprintf("topic %q does not exist: create it before starting the application", t))
			continue
		}
		if d.Err != nil {
			problems = append(problems, fmt.Sprintf("topic %q: %v", t, d.Err))
			continue
		}
		r.partitions[t] = int32(len(d.Partitions))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	// Co-partitioning, and the changelogs of each sub-topology.
	type want struct {
		partitions int32
		spec       *store.Spec
	}
	changelogs := map[string]want{}
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
				changelogs[graph.ChangelogTopic(r.cfg.AppID, spec.Name())] = want{n, spec}
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	var internal []string
	for t := range changelogs {
		internal = append(internal, t)
	}
	for _, p := range r.cfg.Policies {
		if p.Action == DeadLetter && !slices.Contains(internal, p.Topic) {
			internal = append(internal, p.Topic)
		}
	}
	if len(internal) == 0 {
		return nil
	}
	td, err = r.listTopics(ctx, internal...)
	if err != nil {
		return err
	}
	for _, t := range internal {
		w, isChangelog := changelogs[t]
		d, ok := td[t]
		if ok && d.Err == nil {
			r.partitions[t] = int32(len(d.Partitions))
			if isChangelog && int32(len(d.Partitions)) != w.partitions {
				problems = append(problems, fmt.Sprintf("changelog topic %q has %d partitions but its store's sources have %d: delete the changelog topic (its state is rebuilt from the sources only if you reprocess them) or restore the source partition count",
					t, len(d.Partitions), w.partitions))
			}
			continue
		}
		partitions, configs := int32(1), map[string]*string{}
		if isChangelog {
			partitions = w.partitions
			policy := "compact"
			configs["cleanup.policy"] = &policy
			if w.spec.Kind() == store.KindWindow {
				policy = "compact,delete"
				if ret, ok := w.spec.Retention(); ok {
					ms := strconv.FormatInt((ret + 24*time.Hour).Milliseconds(), 10)
					configs["retention.ms"] = &ms
				}
			}
		}
		resp, err := r.adm.CreateTopic(ctx, partitions, r.cfg.ReplicationFactor, configs, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			problems = append(problems, fmt.Sprintf("creating internal topic %q: %v", t, err))
			continue
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			problems = append(problems, fmt.Sprintf("creating internal topic %q: %v", t, resp.Err))
			continue
		}
		r.partitions[t] = partitions
		r.log.Info("created internal topic", "topic", t, "partitions", partitions)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (r *Runtime) listTopics(ctx context.Context, topics ...string) (kadm.TopicDetails, error) {
	td, err := r.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of topics %v: %w", topics, err)
	}
	return td, nil
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

// createManaged creates the missing repartition topics.
func (r *Runtime) createManaged(ctx context.Context) error {
	for t, n := range r.cfg.Topology.ManagedTopics {
		resp, err := r.adm.CreateTopic(ctx, n, r.cfg.ReplicationFactor, nil, t)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			r.log.Info("created repartition topic", "topic", t, "partitions", n)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return fmt.Errorf("creating repartition topic %q: %w", t, err)
		}
	}
	// A topic created moments ago may be missing from metadata for a while.
	for attempt := 0; len(r.cfg.Topology.ManagedTopics) > 0; attempt++ {
		var topics []string
		for t := range r.cfg.Topology.ManagedTopics {
			topics = append(topics, t)
		}
		td, err := r.listTopics(ctx, topics...)
		if err == nil && td.Error() == nil {
			return nil
		}
		if attempt == 50 {
			return fmt.Errorf("repartition topics %v not visible after creation: %v", topics, errors.Join(err, td.Error()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
