package prometheus

import (
	"errors"
	"slices"
	"strconv"

	kstreams "github.com/kstreams-go/kstreams/core"
	prom "github.com/prometheus/client_golang/prometheus"
)

var errAlreadyUsed = errors.New("prometheus: a Collector observes one App; create one per App")

// The metrics read from the App (App.Stats, App.State) and from c's own
// state at each scrape, in the order of c.pulled.
const (
	mProcessed = iota
	mSkipped
	mDeadLettered
	mReplaySkipped
	mMetadataDropped
	mRestored
	mTasks
	mInFlightRecords
	mInFlightUnits
	mPaused
	mState
	mLag
	mRestoreRemaining
	mRestoreRate
	mLate
	mRemoteRoundTrips
	mRemoteErrors
	mRemoteSent
	mRemoteReceived
	mRemoteSeconds
	nPulled
)

func (c *Collector) describePulled() {
	d := func(name, help string, labels ...string) *prom.Desc {
		c.names = append(c.names, Namespace+"_"+name)
		return prom.NewDesc(Namespace+"_"+name, help, labels, c.cfg.constLabels)
	}
	partition, task := []string{"topic"}, []string{"store"}
	if c.cfg.partitions {
		partition, task = []string{"topic", "partition"}, []string{"store", "task"}
	}
	c.pulled = make([]*prom.Desc, nPulled)
	c.pulled[mProcessed] = d("processed_records_total", "Input records handled: processed, skipped or dead-lettered (dispatched, in the concurrent modes).")
	c.pulled[mSkipped] = d("skipped_records_total", "Records skipped by an error policy (SkipOnError).")
	c.pulled[mDeadLettered] = d("dead_lettered_records_total", "Records written to a dead-letter topic.")
	c.pulled[mReplaySkipped] = d("replay_skipped_records_total", "Records not processed again after a restart because the commit metadata listed them as complete.")
	c.pulled[mMetadataDropped] = d("commit_metadata_dropped_total", "Commits whose completed-offsets metadata exceeded the broker's limit (their completed records will be replayed after a restart).")
	c.pulled[mRestored] = d("restored_records_total", "Changelog records applied to stores by restores that finished.")
	c.pulled[mTasks] = d("tasks", "Tasks the instance owns.")
	c.pulled[mInFlightRecords] = d("in_flight_records", "Records dispatched in the concurrent ordering modes and not yet committable.")
	c.pulled[mInFlightUnits] = d("in_flight_units", "Units of work (a record, a batch, a poll's records of a partition) started and not complete.")
	c.pulled[mPaused] = d("paused_partitions", "Input partitions paused for backpressure (WithMaxInFlight).")
	c.pulled[mState] = d("state", "1 for the App's current state, 0 for the others.", "state")
	c.pulled[mLag] = d("consumer_lag_records", "Records between the last record fetched and the partition's end, as of the last fetch, summed over the partitions owned unless labeled by partition.", partition...)
	c.pulled[mRestoreRemaining] = d("restore_remaining_records", "Changelog records left to restore, summed over the tasks restoring unless labeled by task (updated every 5 s).", task...)
	c.pulled[mRestoreRate] = d("restore_rate_records_per_second", "Records restored per second by the restores in progress, summed over tasks unless labeled by task.", task...)
	c.pulled[mLate] = d("late_records_total", "Late records of windowed aggregations (see Collector.LateRecords).", "aggregation")
	remote := append(task[:len(task):len(task)], "operation")
	c.pulled[mRemoteRoundTrips] = d("store_round_trips_total", "Requests a store sent to its remote service and waited for (a pipeline, script or bulk request counts once), by operation (see Collector.Supplier).", remote...)
	c.pulled[mRemoteErrors] = d("store_round_trip_errors_total", "Requests to a store's remote service that failed.", remote...)
	c.pulled[mRemoteSent] = d("store_sent_bytes_total", "Payload bytes (keys, values, objects) a store sent to its remote service.", remote...)
	c.pulled[mRemoteReceived] = d("store_received_bytes_total", "Payload bytes a store received from its remote service.", remote...)
	c.pulled[mRemoteSeconds] = d("store_round_trip_seconds_total", "Time a store spent waiting for its remote service, summed over requests (divide by store_round_trips_total for the mean).", remote...)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
	for _, d := range c.pulled {
		ch <- d
	}
}

func (c *Collector) vecs() []prom.Collector {
	return []prom.Collector{c.consumed, c.produced, c.producedBytes, c.retries, c.commitFailures,
		c.process, c.endToEnd, c.storeOps, c.commit, c.rebalance}
}

var states = []kstreams.State{kstreams.StateCreated, kstreams.StateStarting, kstreams.StateRebalancing, kstreams.StateRestoring,
	kstreams.StateRunning, kstreams.StateStopping, kstreams.StateStopped, kstreams.StateFailed}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
	counter := func(i int, v int64, labels ...string) {
		ch <- prom.MustNewConstMetric(c.pulled[i], prom.CounterValue, float64(v), labels...)
	}
	gauge := func(i int, v float64, labels ...string) {
		ch <- prom.MustNewConstMetric(c.pulled[i], prom.GaugeValue, v, labels...)
	}
	if a, st := c.app.Load(), c.state.Load(); a != nil && st < 0 {
		gauge(mState, 1, kstreams.StateCreated.String()) // NewApp may still run: the App is not read
	} else if a != nil {
		s := a.Stats()
		counter(mProcessed, s.Processed)
		counter(mSkipped, s.Skipped)
		counter(mDeadLettered, s.DeadLettered)
		counter(mReplaySkipped, s.SkippedCompleted)
		counter(mMetadataDropped, s.MetadataDropped)
		counter(mRestored, s.Restored)
		gauge(mTasks, float64(s.Tasks))
		gauge(mInFlightRecords, float64(s.InFlight))
		gauge(mInFlightUnits, float64(s.Units))
		gauge(mPaused, float64(s.Paused))
		cur := kstreams.State(st)
		for _, st := range states {
			v := 0.0
			if st == cur {
				v = 1
			}
			gauge(mState, v, st.String())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.partitions {
		for tp, lag := range c.lag {
			gauge(mLag, float64(lag), tp.topic, strconv.Itoa(int(tp.partition)))
		}
		for k, ri := range c.restore {
			gauge(mRestoreRemaining, float64(ri.remaining), k.store, k.task)
			gauge(mRestoreRate, ri.rate, k.store, k.task)
		}
	} else {
		lag := map[string]int64{}
		for tp, l := range c.lag {
			lag[tp.topic] += l
		}
		for topic, l := range lag {
			gauge(mLag, float64(l), topic)
		}
		remaining, rate := map[string]int64{}, map[string]float64{}
		for k, ri := range c.restore {
			remaining[k.store] += ri.remaining
			rate[k.store] += ri.rate
		}
		for s, n := range remaining {
			gauge(mRestoreRemaining, float64(n), s)
			gauge(mRestoreRate, rate[s], s)
		}
	}
	for name, n := range c.late {
		counter(mLate, n.Load(), name)
	}
	for k, s := range c.remoteStatsLocked() {
		labels := []string{k.store, k.op}
		if c.cfg.partitions {
			labels = []string{k.store, k.task, k.op}
		}
		ch <- prom.MustNewConstMetric(c.pulled[mRemoteRoundTrips], prom.CounterValue, float64(s.RoundTrips), labels...)
		ch <- prom.MustNewConstMetric(c.pulled[mRemoteErrors], prom.CounterValue, float64(s.Errors), labels...)
		ch <- prom.MustNewConstMetric(c.pulled[mRemoteSent], prom.CounterValue, float64(s.BytesSent), labels...)
		ch <- prom.MustNewConstMetric(c.pulled[mRemoteReceived], prom.CounterValue, float64(s.BytesReceived), labels...)
		ch <- prom.MustNewConstMetric(c.pulled[mRemoteSeconds], prom.CounterValue, s.Duration.Seconds(), labels...)
	}
}

// MetricNames returns the name of every metric c exports, histograms by
// their base name (without _bucket, _sum, _count), for dashboards and
// alerts to check against.
func (c *Collector) MetricNames() []string { return slices.Clone(c.names) }

// Histograms returns the names of the histograms among MetricNames.
func (c *Collector) Histograms() []string { return slices.Clone(c.histograms) }
