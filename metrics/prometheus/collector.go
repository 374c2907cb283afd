// Package prometheus exports the metrics of a kstreams App to Prometheus.
//
// A Collector observes one App (pass its Option to kstreams.NewApp) and is
// registered like any Prometheus collector:
//
//	c := prometheus.New()
//	app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...),
//		kstreams.WithApplicationID("orders"), c.Option())
//	...
//	registry.MustRegister(c)
//	http.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
//
// Every metric name starts with kstreams_, is in base units (seconds,
// bytes) and ends in _total only for counters. Labels are low-cardinality
// by default: topic, node (a processor or sink of the topology), store,
// operation. Per-partition labels (lag, records consumed) and per-task
// labels (restore progress) come with WithPartitionLabels. docs/metrics.md
// lists every metric with the Kafka Streams metric it corresponds to.
//
// Timings taken per record (processing per node, end-to-end latency,
// store operations) are sampled, one record in 64 by default (see
// WithSampleEvery): a histogram's _count is then a count of samples, and
// rates come from the counters.
//
// Remote stores report their round trips, bytes and time through
// store.StatsReporter when their supplier goes through Collector.Supplier.
package prometheus

import (
	"strconv"
	"sync"
	"sync/atomic"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store"
	prom "github.com/prometheus/client_golang/prometheus"
)

// Namespace is the prefix of every metric name.
const Namespace = "kstreams"

// Collector is a prometheus.Collector of one App's metrics. Create it with
// New, hand its Option to kstreams.NewApp, and register it.
type Collector struct {
	cfg   config
	app   atomic.Pointer[kstreams.App] // set by Option
	state atomic.Int32                 // the App's state, once Run started; -1 before

	consumed, produced, producedBytes, retries, commitFailures *prom.CounterVec
	process, endToEnd, storeOps, commit, rebalance             *prom.HistogramVec

	mu      sync.Mutex
	lag     map[topicPartition]int64  // per input partition owned
	restore map[storeTask]restoreInfo // per store of a task restoring
	late    map[string]*atomic.Int64  // per aggregation (see LateRecords)

	reporters []reporter                  // open backends reporting stats (see Supplier)
	retired   map[remoteKey]store.OpStats // final counts of closed ones

	pulled            []*prom.Desc // the metrics read from the App at each scrape
	names, histograms []string     // see MetricNames
}

type topicPartition struct {
	topic     string
	partition int32
}

type storeTask struct{ store, task string }

type restoreInfo struct {
	remaining int64
	rate      float64 // records per second so far
}

type config struct {
	partitions  bool
	sampleEvery int
	constLabels prom.Labels
	buckets     map[string][]float64
}

// Option configures a Collector.
type Option func(*config)

// WithPartitionLabels adds a partition label to the consumer lag and the
// records consumed, and a task label to the restore gauges. Off by
// default: an instance may own hundreds of partitions.
func WithPartitionLabels() Option { return func(c *config) { c.partitions = true } }

// WithSampleEvery times one record in n (rounded up to a power of two) for
// the per-record histograms: processing per node, end-to-end latency and
// store operations. Default 64; 1 times every record, which costs
// throughput when the work per record is cheap.
func WithSampleEvery(n int) Option { return func(c *config) { c.sampleEvery = n } }

// WithConstLabels adds labels with fixed values to every metric (the
// application id, say, when one process runs several apps).
func WithConstLabels(l prom.Labels) Option { return func(c *config) { c.constLabels = l } }

// WithBuckets sets the buckets, in seconds, of one histogram, named
// without its namespace ("process_duration_seconds", say).
func WithBuckets(histogram string, buckets []float64) Option {
	return func(c *config) {
		if c.buckets == nil {
			c.buckets = map[string][]float64{}
		}
		c.buckets[histogram] = buckets
	}
}

// Default buckets, in seconds.
var (
	// Fast: from 1 µs to 4 s, for a processor call or a store operation.
	fastBuckets = prom.ExponentialBuckets(1e-6, 4, 12)
	// Slow: from 1 ms to about 1 min, for commits and rebalances.
	slowBuckets = prom.ExponentialBuckets(1e-3, 3, 11)
	// Latency: from 1 ms to about 4 min, for end-to-end latency.
	latencyBuckets = prom.ExponentialBuckets(1e-3, 4, 10)
)

// New returns a Collector.
func New(opts ...Option) *Collector {
	c := &Collector{lag: map[topicPartition]int64{}, restore: map[storeTask]restoreInfo{}, late: map[string]*atomic.Int64{}, retired: map[remoteKey]store.OpStats{}}
	c.state.Store(-1)
	for _, o := range opts {
		o(&c.cfg)
	}
	partition := []string{"topic"}
	if c.cfg.partitions {
		partition = []string{"topic", "partition"}
	}
	counter := func(name, help string, labels ...string) *prom.CounterVec {
		c.names = append(c.names, Namespace+"_"+name)
		return prom.NewCounterVec(prom.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: c.cfg.constLabels}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prom.HistogramVec {
		c.names = append(c.names, Namespace+"_"+name)
		c.histograms = append(c.histograms, Namespace+"_"+name)
		if b, ok := c.cfg.buckets[name]; ok {
			buckets = b
		}
		return prom.NewHistogramVec(prom.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets, ConstLabels: c.cfg.constLabels}, labels)
	}
	c.consumed = counter("consumed_records_total", "Input records fetched and handed to their tasks.", partition...)
	c.produced = counter("produced_records_total", "Records written to Kafka and acknowledged: outputs, changelog records and dead letters, by topic.", "topic")
	c.producedBytes = counter("produced_bytes_total", "Uncompressed bytes of the records written to Kafka, by topic.", "topic")
	c.retries = counter("retries_total", "Retries of failed records by processors with WithRetry.", "node")
	c.commitFailures = counter("commit_failures_total", "Offset commits (or transactions) that failed; their records are processed again by the next owner.")
	c.process = histogram("process_duration_seconds", "Time of a processor node's Process call, the nodes it forwards to included (sampled).", fastBuckets, "node")
	c.endToEnd = histogram("end_to_end_latency_seconds", "Time from a record's timestamp to its arrival at a sink node (sampled).", latencyBuckets, "node")
	c.storeOps = histogram("store_operation_duration_seconds", "Time of an operation on a store (sampled).", fastBuckets, "store", "operation")
	c.commit = histogram("commit_duration_seconds", "Time of an offset commit, or of the end of a transaction.", slowBuckets)
	c.rebalance = histogram("rebalance_duration_seconds", "Time the instance spent in a rebalance callback (assigned, revoked, lost); it processes nothing meanwhile.", slowBuckets, "callback")
	c.describePulled()
	return c
}

// Option returns the kstreams.Option that makes the App report to c. A
// Collector observes one App.
func (c *Collector) Option() kstreams.Option {
	return func(a *kstreams.App) error {
		if !c.app.CompareAndSwap(nil, a) {
			return errAlreadyUsed
		}
		return kstreams.WithObserver(c.Observer())(a)
	}
}

// Observer returns the kstreams.Observer that updates c. Option installs
// it; use Observer to combine it with an observer of your own.
func (c *Collector) Observer() *kstreams.Observer {
	return &kstreams.Observer{
		SampleEvery: c.cfg.sampleEvery,
		Fetched:     c.fetched,
		Produced: func(ev kstreams.ProduceEvent) {
			c.produced.WithLabelValues(ev.Topic).Add(float64(ev.Records))
			c.producedBytes.WithLabelValues(ev.Topic).Add(float64(ev.Bytes))
		},
		Processed: func(ev kstreams.NodeTiming) { c.process.WithLabelValues(ev.Node).Observe(ev.Duration.Seconds()) },
		EndToEnd: func(ev kstreams.NodeTiming) {
			c.endToEnd.WithLabelValues(ev.Node).Observe(max(0, ev.Duration.Seconds()))
		},
		Retried: func(node string) { c.retries.WithLabelValues(node).Inc() },
		Committed: func(ev kstreams.CommitEvent) {
			if ev.Err != nil {
				c.commitFailures.WithLabelValues().Inc()
				return
			}
			c.commit.WithLabelValues().Observe(ev.Duration.Seconds())
		},
		Rebalanced: c.rebalanced,
		StoreOp: func(ev kstreams.StoreOpEvent) {
			c.storeOps.WithLabelValues(ev.Store, ev.Op.String()).Observe(ev.Duration.Seconds())
		},
		Restore: c.restored,
		// The App is read (Stats) only once Run started: NewApp has
		// returned by then.
		StateChanged: func(ev kstreams.StateEvent) { c.state.Store(int32(ev.New)) },
	}
}

func (c *Collector) fetched(ev kstreams.FetchEvent) {
	if c.cfg.partitions {
		c.consumed.WithLabelValues(ev.Topic, strconv.Itoa(int(ev.Partition))).Add(float64(ev.Records))
	} else {
		c.consumed.WithLabelValues(ev.Topic).Add(float64(ev.Records))
	}
	c.mu.Lock()
	c.lag[topicPartition{ev.Topic, ev.Partition}] = ev.Lag
	c.mu.Unlock()
}

func (c *Collector) rebalanced(ev kstreams.RebalanceEvent) {
	c.rebalance.WithLabelValues(ev.Kind.String()).Observe(ev.Duration.Seconds())
	if ev.Kind == kstreams.RebalanceAssigned {
		return
	}
	// Partitions given up: their lag is no longer this instance's.
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range ev.Topics {
		for _, p := range ps {
			delete(c.lag, topicPartition{topic, p})
		}
	}
}

func (c *Collector) restored(p kstreams.RestoreProgress) {
	k := storeTask{p.Store, p.Task}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Done {
		delete(c.restore, k)
		return
	}
	ri := restoreInfo{remaining: max(0, p.End-p.Start-p.Restored)}
	if p.Elapsed > 0 {
		ri.rate = float64(p.Restored) / p.Elapsed.Seconds()
	}
	c.restore[k] = ri
}

// LateRecords returns a counter of late records for the windowed
// aggregation named name, exported as kstreams_late_records_total: pass
// it to window.CountLate.
func (c *Collector) LateRecords(name string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.late[name]
	if n == nil {
		n = new(atomic.Int64)
		c.late[name] = n
	}
	return n
}
