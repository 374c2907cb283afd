package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/kafkatime"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a record to produce to a topic of the cluster, or one read from
// it. For records as bytes, use serde.Bytes for keys and values; a nil
// []byte is a Kafka null.
type Record[K, V any] struct {
	Key   K
	Value V
	// Timestamp is the record's Kafka timestamp. Produce writes the time
	// of production for a zero Timestamp.
	Timestamp time.Time
	Headers   []serde.Header
	// Partition and Offset say where Read found the record. Produce
	// ignores them: it partitions records by key as Kafka's Java client and
	// kstreams' sinks do (murmur2), so co-partitioning holds.
	Partition int32
	Offset    int64
}

// Produce writes records to topic, encoding keys and values with the given
// serdes, and returns once the cluster has acknowledged them all (or the
// first error, naming the topic).
func Produce[K, V any](ctx context.Context, c *Cluster, topic string, keys serde.Serde[K], values serde.Serde[V], records ...Record[K, V]) error {
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		k, err := keys.Serialize(nil, topic, r.Headers, r.Key)
		if err != nil {
			return fmt.Errorf("embedded: encoding the key of record %d for topic %s: %w", i, topic, err)
		}
		v, err := values.Serialize(nil, topic, r.Headers, r.Value)
		if err != nil {
			return fmt.Errorf("embedded: encoding the value of record %d for topic %s: %w", i, topic, err)
		}
		recs[i] = &kgo.Record{Topic: topic, Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return fmt.Errorf("embedded: producing to %s: %w", topic, err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("embedded: producing to %s: %w", topic, err)
	}
	return nil
}

// Read returns every record of topic up to its end at the time of the
// call, decoded with the given serdes, ordered by partition and offset.
// Records of transactions not committed are left out, as kstreams' own
// read_committed consumers leave them out.
func Read[K, V any](ctx context.Context, c *Cluster, topic string, keys serde.Serde[K], values serde.Serde[V]) ([]Record[K, V], error) {
	adm, err := newAdmin(c)
	if err != nil {
		return nil, fmt.Errorf("embedded: reading %s: %w", topic, err)
	}
	defer adm.Close()
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: reading the end offsets of %s: %w", topic, err)
	}
	remaining := map[int32]int64{} // partition → end offset not reached yet
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if len(remaining) == 0 {
		return nil, nil
	}
	recs, err := readUntil(ctx, c, topic, keys, values, func(r *kgo.Record) bool {
		if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
			delete(remaining, r.Partition)
		}
		return len(remaining) == 0
	})
	if err != nil {
		return recs, fmt.Errorf("embedded: reading %s to its end: %w", topic, err)
	}
	return recs, nil
}

// ReadAtLeast reads topic from its start until it has read at least n
// records (or ctx is done: then it returns an error saying how many it
// read), and returns them decoded with the given serdes, ordered by
// partition and offset. It may return more than n: all that the last
// fetch brought. Use it to wait for an application's output.
func ReadAtLeast[K, V any](ctx context.Context, c *Cluster, topic string, n int, keys serde.Serde[K], values serde.Serde[V]) ([]Record[K, V], error) {
	if n <= 0 {
		return nil, nil
	}
	got := 0
	recs, err := readUntil(ctx, c, topic, keys, values, func(r *kgo.Record) bool {
		if !r.Attrs.IsControl() {
			got++
		}
		return got >= n
	})
	if err != nil {
		return recs, fmt.Errorf("embedded: read %d of at least %d records of %s: %w", len(recs), n, topic, err)
	}
	return recs, nil
}

// readUntil consumes topic from its start, control records included (so
// that the offset of a transaction's marker counts as reached), until
// done says so after a record.
func readUntil[K, V any](ctx context.Context, c *Cluster, topic string, keys serde.Serde[K], values serde.Serde[V], done func(*kgo.Record) bool) ([]Record[K, V], error) {
	var out []Record[K, V]
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	sort := func() {
		slices.SortFunc(out, func(a, b Record[K, V]) int {
			return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			sort()
			return out, err
		}
		var errs []error
		fs.EachError(func(t string, p int32, err error) {
			errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
		})
		if len(errs) > 0 {
			sort()
			return out, errors.Join(errs...)
		}
		stop := false
		var decodeErr error
		fs.EachRecord(func(r *kgo.Record) {
			if stop || decodeErr != nil {
				return
			}
			if !r.Attrs.IsControl() {
				rec, err := decode(r, keys, values)
				if err != nil {
					decodeErr = err
					return
				}
				out = append(out, rec)
			}
			stop = done(r)
		})
		sort()
		if decodeErr != nil {
			return out, decodeErr
		}
		if stop {
			return out, nil
		}
	}
}

func decode[K, V any](r *kgo.Record, keys serde.Serde[K], values serde.Serde[V]) (Record[K, V], error) {
	k, err := keys.Deserialize(r.Topic, r.Headers, r.Key)
	if err != nil {
		return Record[K, V]{}, fmt.Errorf("decoding the key of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	v, err := values.Deserialize(r.Topic, r.Headers, r.Value)
	if err != nil {
		return Record[K, V]{}, fmt.Errorf("decoding the value of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return Record[K, V]{Key: k, Value: v, Timestamp: kafkatime.Exact(r.Timestamp), Headers: r.Headers,
		Partition: r.Partition, Offset: r.Offset}, nil
}

func newAdmin(c *Cluster) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}
