package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreConsumer is the instance's one client for reading changelogs back
// into stores: a consumer without a group. Each restore adds its changelog
// partition (a feed) and removes it when done. One goroutine polls the
// client and hands each partition's records to its feed; a feed holding
// more than feedPauseAt records, or more than its share of holdBytes,
// pauses its partition until its restore takes them, so a slow store does
// not hold up the others and memory stays bounded.
//
// Partitions are added and removed only by the polling goroutine, between
// polls: removing a partition drops the client's buffered fetches, so a
// partition restored again later never receives records fetched for the
// earlier restore.
type restoreConsumer struct {
	cl      *kgo.Client
	stop    context.CancelFunc
	done    chan struct{}
	pauseAt int // feedPauseAt; tests lower it
	// holdBytes bounds the decoded records (see recordOverhead) the feeds
	// hold together: each feed pauses past holdBytes / active feeds.
	holdBytes int64
	active    int // feeds open (the polling goroutine only)

	mu        sync.Mutex
	changes   []feedChange       // to apply before the next poll
	interrupt context.CancelFunc // ends the poll in progress
	closed    bool
	wake      chan struct{} // a change is waiting (capacity 1)
}

// feedChange adds or removes a feed.
type feedChange struct {
	f   *restoreFeed
	add bool
}

// feedPauseAt is how many records a feed holds before its partition is
// paused.
const feedPauseAt = 50_000

// restoreFeed is one changelog partition being restored: the records
// fetched for it and not yet applied.
type restoreFeed struct {
	c         *restoreConsumer
	topic     string
	partition int32
	start     int64

	mu     sync.Mutex
	recs   [][]*kgo.Record
	n      int   // records in recs
	bytes  int64 // their decoded size
	peak   int64 // the most bytes held (tests)
	err    error // a fetch error: the restore fails
	paused bool
	pauses int           // times paused
	ready  chan struct{} // records or an error arrived (capacity 1)
}

// minFeedHold is the least a feed may hold before it pauses, whatever the
// budget: a few fetches of one partition.
const minFeedHold = 1 << 20

func newRestoreConsumer(holdBytes int64, opts []kgo.Opt) (*restoreConsumer, error) {
	// A partition resumed, or added, is fetched once the fetch in flight
	// returns: franz-go's default wait of 5 s would stall it that long.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &restoreConsumer{cl: cl, stop: stop, done: make(chan struct{}), pauseAt: feedPauseAt, holdBytes: holdBytes, wake: make(chan struct{}, 1)}
	go c.poll(ctx)
	return c, nil
}

// close stops the polling goroutine and closes the client. Feeds still
// open get no more records.
func (c *restoreConsumer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	<-c.done
	c.cl.Close()
}

// open starts fetching topic/partition from offset start.
func (c *restoreConsumer) open(topic string, partition int32, start int64) (*restoreFeed, error) {
	f := &restoreFeed{c: c, topic: topic, partition: partition, start: start, ready: make(chan struct{}, 1)}
	if !c.change(feedChange{f: f, add: true}) {
		return nil, errors.New("the restore consumer is closed")
	}
	return f, nil
}

// change queues ch for the polling goroutine and interrupts its poll.
func (c *restoreConsumer) change(ch feedChange) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.changes = append(c.changes, ch)
	if c.interrupt != nil {
		c.interrupt()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

func (c *restoreConsumer) poll(ctx context.Context) {
	defer close(c.done)
	feeds := map[string]map[int32]*restoreFeed{}
	active := 0
	for {
		c.mu.Lock()
		changes := c.changes
		c.changes = nil
		pollCtx, cancel := context.WithCancel(ctx)
		c.interrupt = cancel
		c.mu.Unlock()
		for _, ch := range changes {
			f := ch.f
			if ch.add {
				if feeds[f.topic] == nil {
					feeds[f.topic] = map[int32]*restoreFeed{}
				}
				if old := feeds[f.topic][f.partition]; old != nil {
					// A restore of the partition ended without closing its
					// feed: replace it.
					c.cl.RemoveConsumePartitions(map[string][]int32{f.topic: {f.partition}})
					active--
				}
				feeds[f.topic][f.partition] = f
				active++
				c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: {f.partition: kgo.NewOffset().At(f.start)}})
			} else if feeds[f.topic][f.partition] == f {
				delete(feeds[f.topic], f.partition)
				active--
				c.cl.RemoveConsumePartitions(map[string][]int32{f.topic: {f.partition}})
				// Paused state outlives the removal in franz-go.
				c.cl.ResumeFetchPartitions(map[string][]int32{f.topic: {f.partition}})
			}
		}
		c.active = active
		if active == 0 {
			cancel()
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		fs := c.cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			f := feeds[p.Topic][p.Partition]
			if f == nil {
				return
			}
			if p.Err != nil {
				if !errors.Is(p.Err, context.Canceled) {
					f.fail(fmt.Errorf("fetching changelog %s/%d: %w", p.Topic, p.Partition, p.Err))
				}
				return
			}
			if len(p.Records) > 0 {
				f.push(p.Records)
			}
		})
	}
}

// push queues records for the restore (the polling goroutine only).
func (f *restoreFeed) push(recs []*kgo.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, recs)
	f.n += len(recs)
	for _, r := range recs {
		f.bytes += int64(len(r.Key)+len(r.Value)) + recordOverhead
	}
	f.peak = max(f.peak, f.bytes)
	hold := f.c.holdBytes
	if hold > 0 {
		hold = max(hold/int64(max(f.c.active, 1)), minFeedHold)
	}
	if (f.n >= f.c.pauseAt || hold > 0 && f.bytes >= hold) && !f.paused {
		// Under f.mu, so that take's resume cannot come first.
		f.paused = true
		f.pauses++
		f.c.cl.PauseFetchPartitions(map[string][]int32{f.topic: {f.partition}})
	}
	f.signal()
}

func (f *restoreFeed) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
	f.signal()
}

func (f *restoreFeed) signal() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// take waits for records fetched for the feed and returns them, oldest
// first. Records of offsets before the feed's start, or already returned
// (a refetch after a pause), are for the caller to skip.
func (f *restoreFeed) take(ctx context.Context) ([][]*kgo.Record, error) {
	for {
		f.mu.Lock()
		recs, err := f.recs, f.err
		f.recs, f.n, f.bytes = nil, 0, 0
		if len(recs) > 0 && f.paused {
			f.paused = false
			f.c.cl.ResumeFetchPartitions(map[string][]int32{f.topic: {f.partition}})
		}
		f.mu.Unlock()
		if len(recs) > 0 {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.ready:
		case <-f.c.done:
			return nil, errors.New("the restore consumer is closed")
		}
	}
}

// close stops fetching the feed's partition.
func (f *restoreFeed) close() {
	f.c.change(feedChange{f: f})
}
