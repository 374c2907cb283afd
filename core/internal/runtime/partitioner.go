package runtime

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner honours a partition set on the record (changelogs, custom
// sink partitioners) and otherwise hashes the key with murmur2, as the Java
// client does, so that co-partitioning holds across clients.
type partitioner struct{ keyed kgo.Partitioner }

func newPartitioner() kgo.Partitioner {
	return partitioner{keyed: kgo.StickyKeyPartitioner(nil)}
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{keyed: p.keyed.ForTopic(topic)}
}

type topicPartitioner struct{ keyed kgo.TopicPartitioner }

func (t topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }
func (t topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return t.keyed.Partition(r, n)
}

// OnNewBatch lets the key hasher's sticky choice for records without a key
// move on when a batch fills, as it does without this wrapper.
func (t topicPartitioner) OnNewBatch() {
	if nb, ok := t.keyed.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
