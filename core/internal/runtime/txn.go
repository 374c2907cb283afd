package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions (Config.Transactions): the brokers fence stale owners.
//
// Every commit ends a Kafka transaction that holds everything the instance
// produced since the last one (outputs, changelog records, dead letters)
// and its input offsets, committed with the group generation (KIP-447,
// franz-go's GroupTransactSession). A member that lost its tasks cannot
// commit: its transaction aborts and nothing it wrote becomes visible to
// read_committed readers, restores included. Inputs and restores read
// read_committed.
//
// A transaction commits only the offsets franz-go polled, so a commit first
// waits until every record dispatched is complete (quiesce). Any rebalance
// that revokes or loses partitions of the instance, and a lease that ran
// out, abort the open transaction; the instance then rebuilds every task
// from its changelog and rewinds to the committed offsets, as Kafka
// Streams does with a corrupted task under exactly-once.

// transactionalID returns the instance's transactional id: kept in the
// state directory when there is one, so that a restart after a crash
// reuses it and the brokers abort the crashed instance's open transaction
// at once instead of after its timeout.
func (r *Runtime) transactionalID() (string, error) {
	random := func() string {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return r.cfg.AppID + "-" + hex.EncodeToString(b)
	}
	if r.cfg.StateDir == "" {
		return random(), nil
	}
	dir := filepath.Join(r.cfg.StateDir, r.cfg.AppID)
	path := filepath.Join(dir, ".transactional-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the transactional id: %w", err)
	}
	id := random()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the state directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing the transactional id: %w", err)
	}
	return id, nil
}

// enterProcess marks a processor call of ts starting; with transactions,
// it waits while a commit holds starts (see commitTxn). Paired with
// exitProcess. Costs nothing without transactions.
func (r *Runtime) enterProcess(ts *taskState) {
	if r.txn == nil {
		return
	}
	for {
		ts.inProcess.Add(1)
		if !r.holdStarts.Load() || ts.stopped.Load() {
			return
		}
		ts.inProcess.Add(-1)
		for r.holdStarts.Load() && !ts.stopped.Load() {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func (r *Runtime) exitProcess(ts *taskState) {
	if r.txn != nil {
		ts.inProcess.Add(-1)
	}
}

// idle reports whether no processor call of a task still owned runs and no
// punctuation output is pending.
func (r *Runtime) idle(tasks []*taskState) bool {
	if r.punctPending.Load() > 0 {
		return false
	}
	for _, ts := range tasks {
		if ts.inProcess.Load() > 0 && !ts.stopped.Load() {
			return false
		}
	}
	return true
}

// commitTxn ends the open transaction and, unless final, begins the next
// one. To commit, it holds new processor calls and waits up to wait for
// those running to return (else a periodic round is skipped and a final
// one aborts): the transaction then holds every output and changelog
// record of the units started, and with them the tracked commit points
// and the complete offsets above them, exactly as an offset commit would.
// Units queued and not started produced nothing. A transaction that must
// abort (a rebalance took partitions, the lease ran out, a changelog write
// failed) aborts at once, and every task is rebuilt. Called by the loop
// with r.mu held: nothing is dispatched meanwhile.
func (r *Runtime) commitTxn(ctx context.Context, wait time.Duration, final bool) error {
	tasks := r.allTasks()
	try := kgo.TryCommit
	if r.suspended.Load() || r.txnDoomed || r.txnAborted.Load() {
		try = kgo.TryAbort
	}
	for _, ts := range tasks {
		if ts.failed.Load() {
			try = kgo.TryAbort // a changelog write failed: the state is not durable
		}
	}
	r.holdStarts.Store(true)
	defer r.holdStarts.Store(false)
	if try == kgo.TryCommit {
		for deadline := time.Now().Add(wait); !r.idle(tasks); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				if !final {
					r.log.Debug("records still in flight; transaction not committed this round")
					return nil
				}
				r.log.Warn("records still in flight at shutdown; aborting the transaction (their next owner processes them again)")
				try = kgo.TryAbort
				break
			}
		}
	}
	if try == kgo.TryCommit {
		// Every record the transaction holds must be acknowledged before
		// the commit points are taken: a unit completes only once its
		// records are, and a unit whose outputs commit with this
		// transaction but whose offset does not would be processed again
		// by the next owner, its outputs then committed twice.
		fctx, cancel := context.WithTimeout(ctx, max(wait, 5*time.Second))
		err := r.cl.Flush(fctx)
		cancel()
		if err != nil {
			if !final {
				r.log.Debug("records not acknowledged yet; transaction not committed this round", "error", err)
				return nil
			}
			r.log.Warn("records not acknowledged at shutdown; aborting the transaction (their next owner processes them again)", "error", err)
			try = kgo.TryAbort
		}
	}
	if try != kgo.TryCommit {
		// Nothing may produce while the transaction ends.
		for _, ts := range tasks {
			ts.orphaned.Store(true)
			r.fence(ts, true)
		}
	}
	// Commit the offsets of partitions whose tasks run, only, and what is
	// complete: the tracked point and the complete offsets above it
	// (franz-go would commit what it polled, of tasks being rebuilt or
	// fenced too, and those records were not processed).
	type point struct {
		off  int64
		meta *string
	}
	points := map[string]map[int32]point{}
	for _, ts := range r.tasks {
		if ts.stopped.Load() {
			continue
		}
		for topic, tr := range ts.trackers {
			off, done, ok := tr.commitPoint()
			if !ok {
				continue
			}
			pt := point{off: off}
			if meta := encodeDone(off, done); len(meta) <= r.cfg.MaxMetadataBytes {
				pt.meta = &meta
			} else {
				r.stats.metaDropped.Add(1)
			}
			if points[topic] == nil {
				points[topic] = map[int32]point{}
			}
			points[topic][ts.t.ID().Partition] = pt
		}
	}
	ctx = kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		topics := req.Topics[:0]
		for _, t := range req.Topics {
			parts := t.Partitions[:0]
			for _, p := range t.Partitions {
				pt, ok := points[t.Topic][p.Partition]
				if !ok {
					continue
				}
				p.Offset, p.LeaderEpoch, p.Metadata = pt.off, -1, pt.meta
				parts = append(parts, p)
			}
			if t.Partitions = parts; len(parts) > 0 {
				topics = append(topics, t)
			}
		}
		req.Topics = topics
		return nil
	})
	// Stores without changelog hold the only copy of their state: flushed
	// before the offsets are committed.
	// Stores keeping input offsets are flushed only once the transaction
	// committed (below): flushed before, an abort would leave them ahead of
	// the committed offsets with the outputs of the records in between
	// aborted, and resuming from their offsets would lose those outputs.
	for _, ts := range tasks {
		if try == kgo.TryCommit && !ts.stopped.Load() {
			if err := r.flushStores(ts, unloggedStores, nil); err != nil {
				r.log.Warn("flushing stores failed; aborting the transaction", "task", ts.t.ID().String(), "error", err)
				try = kgo.TryAbort
			}
		}
	}
	// To commit, End forces a heartbeat, which franz-go sends only within a
	// group session: while a rebalance waits for this loop to let it go on,
	// there is none. So a commit is tried only while heartbeats are being
	// answered (else this round is skipped and the loop lets the rebalance
	// go on), and End gets a bound for the rare rebalance that starts in
	// between (it then aborts).
	if try == kgo.TryCommit && !final && !r.lease.heartbeating(time.Now()) {
		r.log.Debug("no heartbeat answered lately (a rebalance is pending); transaction not committed this round")
		return nil
	}
	endCtx, cancel := context.WithTimeout(ctx, time.Duration(r.lease.span.Load())+5*time.Second)
	endStart := time.Now()
	committed, err := r.txn.End(endCtx, try)
	cancel()
	r.observeCommit(endStart, &err)
	if fenced(err) {
		return fmt.Errorf("kstreams: the instance's transactional producer was fenced (%w): its transaction outlived the transaction timeout (a network partition, say) or another instance uses its transactional id; the instance stops: restart it", err)
	}
	if err != nil {
		// End gave up before ending the transaction (its context ran out
		// while flushing or sending EndTxn): still open, it must be
		// aborted before the next one begins.
		r.log.Warn("ending the transaction failed; aborting it", "error", err)
		committed = false
		if err := r.abortOpenTxn(ctx); err != nil {
			return err
		}
	}
	r.txnDoomed = false
	r.txnAborted.Store(false)
	if committed {
		r.stats.commits.Add(1)
		// No unit starts until this returns (holdStarts): the stores hold
		// the effects of exactly the records below the points committed.
		// A crash before the flush leaves a store behind the committed
		// offsets; it resumes from its own, and those records are
		// processed again.
		for _, ts := range tasks {
			if ts.stopped.Load() || !ts.keepsInputs() {
				continue
			}
			in := store.InputOffsets{}
			for topic := range ts.trackers {
				if pt, ok := points[topic][ts.t.ID().Partition]; ok {
					in[topic] = pt.off
				}
			}
			if err := r.flushStores(ts, inputStores, in); err != nil {
				r.log.Warn("flushing stores with the committed input offsets failed; they resume from their previous flush, and the records since are processed again",
					"task", ts.t.ID().String(), "error", err)
			}
		}
	}
	if committed && final {
		// A clean shutdown: the stores hold exactly what the changelogs
		// committed, and the next open may restore only the tail. (While
		// processing, a store holds writes of the open transaction, which
		// may abort: its checkpoint was dropped when it opened, see
		// OpenStore, so a crash restores it from scratch.)
		for _, ts := range tasks {
			if err := r.flushStores(ts, loggedStores, nil); err != nil {
				r.log.Warn("flushing stores failed; they restore from scratch", "task", ts.t.ID().String(), "error", err)
			}
		}
	}
	if final {
		return nil
	}
	if !committed && len(tasks) > 0 {
		r.log.Warn("transaction aborted; rebuilding the tasks from their changelogs", "tasks", len(tasks))
		for _, ts := range tasks {
			ts.orphaned.Store(true)
			r.fence(ts, true)
		}
		r.suspended.Store(true)
		if err := r.txn.Begin(); err != nil {
			return fmt.Errorf("kstreams: beginning a transaction: %w", err)
		}
		return r.readopt(ctx)
	}
	if err := r.txn.Begin(); err != nil {
		return fmt.Errorf("kstreams: beginning a transaction: %w", err)
	}
	return nil
}

// abortOpenTxn aborts the transaction an End that failed left open,
// retrying for up to a minute.
func (r *Runtime) abortOpenTxn(ctx context.Context) error {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err = r.txn.End(actx, kgo.TryAbort)
		cancel()
		if err == nil || fenced(err) {
			break
		}
		r.log.Warn("aborting the transaction failed; retrying", "error", err)
		time.Sleep(time.Second)
	}
	switch {
	case fenced(err):
		return fmt.Errorf("kstreams: the instance's transactional producer was fenced (%w) while aborting its transaction; the instance stops: restart it", err)
	case err != nil:
		return fmt.Errorf("kstreams: the open transaction could not be aborted for a minute (%w); the instance stops: restart it", err)
	}
	return nil
}

// fenced reports whether err means the transactional producer is fenced
// for good: franz-go cannot use it again.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// abortProduceTxn fails the buffered records of a transactional instance
// and waits for the requests in flight until deadline (abandoning them
// would break the transaction's sequence numbers). Requests still in
// flight then (the brokers are unreachable) are harmless: the transaction
// they belong to can only abort, so they never become visible; the loop
// ends it (see commitTxn) once the brokers answer again.
func (r *Runtime) abortProduceTxn(deadline time.Time) {
	r.txnAborted.Store(true)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := r.cl.AbortBufferedRecords(ctx); err != nil {
		r.log.Warn("produce requests of an aborting transaction still in flight; the transaction aborts once the brokers answer", "error", err)
	}
}
