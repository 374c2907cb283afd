package runtime

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readFeed takes records from f until offset end-1 (or n records if stop is
// reached), skipping offsets already seen as restore does, and returns
// the offsets in the order read.
func readFeed(t *testing.T, f *restoreFeed, start, end int64, slow bool) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []int64
	next := start
	for next < end {
		fetched, err := f.take(ctx)
		if err != nil {
			t.Fatalf("take from %s/%d at %d: %v", f.topic, f.partition, next, err)
		}
		for _, recs := range fetched {
			for _, r := range recs {
				if r.Offset < next || r.Offset >= end {
					continue
				}
				if want := fmt.Sprintf("p%d-%d", r.Partition, r.Offset); string(r.Value) != want {
					t.Fatalf("record at %s/%d@%d has value %q, want %q", r.Topic, r.Partition, r.Offset, r.Value, want)
				}
				got = append(got, r.Offset)
				next = r.Offset + 1
			}
		}
		if slow {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

func wantRange(t *testing.T, what string, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from {
		t.Fatalf("%s: read %d offsets, want %d (%d..%d)", what, len(got), to-from, from, to-1)
	}
	for i, o := range got {
		if o != from+int64(i) {
			t.Fatalf("%s: offset #%d is %d, want %d", what, i, o, from+int64(i))
		}
	}
}

// TestRestoreConsumerFeeds: one client serves concurrent restores of two
// partitions, one of them slow enough to be paused and resumed many
// times; a partition restored again from an earlier offset gets exactly
// its records from there, none of the earlier restore's.
func TestRestoreConsumerFeeds(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "cl"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for p, n := range []int{3000, 600} {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: "cl", Partition: int32(p), Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rc, err := newRestoreConsumer(0, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchMaxPartitionBytes(4000)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	rc.pauseAt = 50

	f0, err := rc.open("cl", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f1, err := rc.open("cl", 1, 200)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var got1 []int64
	wg.Go(func() { got1 = readFeed(t, f1, 200, 600, false) })
	got0 := readFeed(t, f0, 0, 3000, true)
	wg.Wait()
	wantRange(t, "partition 0", got0, 0, 3000)
	wantRange(t, "partition 1 from 200", got1, 200, 600)
	f0.mu.Lock()
	pauses := f0.pauses
	f0.mu.Unlock()
	if pauses == 0 {
		t.Error("the slow restore of partition 0 was never paused (it held 3000 records, the limit is 50)")
	}

	// Restore partition 1 halfway, give it up, restore it again from 100.
	f1.close()
	f1, err = rc.open("cl", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	readFeed(t, f1, 0, 300, false)
	f1.close()
	f1, err = rc.open("cl", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantRange(t, "partition 1 restored again from 100", readFeed(t, f1, 100, 600, false), 100, 600)
	f1.close()
	f0.close()

	rc.close()
	f, err := rc.open("cl", 0, 0)
	if err == nil {
		f.close()
		t.Fatal("open on a closed restore consumer succeeded")
	}
}

// A feed pauses on the bytes it holds, not only on its record count: with
// large records, 50,000 would be far over the budget.
func TestRestoreConsumerPausesOnBytes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "cl"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n, size = 4000, 2000 // 8 MB
	var recs []*kgo.Record
	for i := range n {
		v := make([]byte, size)
		copy(v, fmt.Sprintf("%d-", i))
		recs = append(recs, &kgo.Record{Topic: "cl", Partition: 0, Value: v})
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	const fetch = 64 << 10
	// 2 MiB for two feeds: 1 MiB each (minFeedHold).
	rc, err := newRestoreConsumer(2<<20, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchMaxPartitionBytes(fetch), kgo.FetchMaxBytes(fetch)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	f, err := rc.open("cl", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rc.open("cl", 1, 0) // an idle feed: the hold is shared by two
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := int64(0)
	for next < n {
		time.Sleep(20 * time.Millisecond) // a slow store: let the feed fill up
		fetched, err := f.take(ctx)
		if err != nil {
			t.Fatalf("take at %d: %v", next, err)
		}
		for _, rs := range fetched {
			for _, r := range rs {
				if r.Offset < next {
					continue
				}
				if r.Offset != next {
					t.Fatalf("offset %d after %d", r.Offset, next-1)
				}
				next++
			}
		}
	}
	f.close()
	f.mu.Lock()
	peak, pauses := f.peak, f.pauses
	f.mu.Unlock()
	if pauses == 0 {
		t.Errorf("never paused while holding up to %d bytes (limit 1 MiB; the record limit, %d, was not reached)", peak, rc.pauseAt)
	}
	// Fetches buffered or in flight when the feed paused still arrive: a
	// few fetches of the partition beyond the limit, decoded (each
	// record's overhead included).
	limit := int64(minFeedHold) + 4*fetch*(size+recordOverhead)/size
	if peak > limit {
		t.Errorf("the feed held up to %d bytes, want at most %d (1 MiB and four fetches)", peak, limit)
	}
	t.Logf("peak %d bytes held, %d pauses", peak, pauses)
}
