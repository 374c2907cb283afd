package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// durableStore is a store of a task that is flushed before the task's
// offsets are committed, and where the changelog offset its flushed data
// covers is kept:
//
//   - a logged store whose backend keeps that offset itself
//     (store.OffsetKeeper: remote stores, object-storage snapshots): FlushAt;
//   - a logged persistent store (store.Persistent) with a state directory:
//     Flush, then the offset in a checkpoint file of that directory;
//   - a store without changelog whose backend keeps the input offsets its
//     data covers (store.InputOffsetKeeper): FlushInputs with the offsets
//     about to be committed (see inputs.go);
//   - any other store without changelog: Flush (its backend is its only
//     copy).
//
// In-memory logged stores are not durable stores: their changelog is.
type durableStore struct {
	name   string
	b      store.Backend
	keeper store.OffsetKeeper      // set: the backend keeps the changelog offset
	inputs store.InputOffsetKeeper // set (only without changelog): the backend keeps the input offsets
	dir    string                  // set: the checkpoint file's directory
	cl     *changelogBackend       // nil without changelog
}

// storedOffset returns the changelog offset ds's data covers, or -1.
func (ds *durableStore) storedOffset() (int64, error) {
	if ds.keeper != nil {
		off, ok, err := ds.keeper.StoredOffset()
		if err != nil {
			return -1, fmt.Errorf("reading the stored changelog offset of store %s: %w", ds.name, err)
		}
		if !ok || off < 0 {
			return -1, nil
		}
		return off, nil
	}
	return readCheckpoint(ds.dir)
}

// flush makes ds's writes durable, with the offset after the task's last
// acknowledged changelog write (read before the flush, so the flushed data
// covers it; not the partition's end, which could hold writes of another
// owner), or, for a store keeping input offsets, with in: the offsets about
// to be committed.
func (ds *durableStore) flush(in store.InputOffsets) error {
	if ds.inputs != nil {
		if in == nil {
			return fmt.Errorf("no input offsets to store with the data (an internal error of the runtime)")
		}
		return ds.inputs.FlushInputs(in)
	}
	if ds.cl == nil {
		return ds.b.Flush()
	}
	end := ds.cl.next.Load()
	if ds.keeper != nil {
		return ds.keeper.FlushAt(end)
	}
	if err := ds.b.Flush(); err != nil {
		return err
	}
	if err := writeCheckpoint(ds.dir, end); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

// forget drops ds's stored offset: its data may hold writes its changelog
// lacks, and the next open must restore it from scratch.
func (ds *durableStore) forget() error {
	switch {
	case ds.cl == nil:
		return nil
	case ds.keeper != nil:
		return ds.keeper.FlushAt(-1)
	}
	if err := os.Remove(checkpointFile(ds.dir)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Which durable stores flushStores flushes.
const (
	loggedStores   = 1 << iota // with a changelog
	unloggedStores             // without, not keeping input offsets
	inputStores                // without, keeping input offsets
	allStores      = loggedStores | unloggedStores | inputStores
)

// flushStores flushes the durable stores of ts before its offsets are
// committed; in are those offsets, for the stores that keep them (nil: ts
// has none). A store fenced by a newer owner fences ts (see storeFenced).
func (r *Runtime) flushStores(ts *taskState, which int, in store.InputOffsets) error {
	if ts.restoring.Load() {
		return nil // its stores' changelog offsets are not known yet
	}
	for _, ds := range ts.durable {
		kind := unloggedStores
		switch {
		case ds.cl != nil:
			kind = loggedStores
		case ds.inputs != nil:
			kind = inputStores
		}
		if which&kind == 0 {
			continue
		}
		if err := ds.flush(in); err != nil {
			if errors.Is(err, store.ErrFenced) {
				r.storeFenced(ts, ds.name, err)
			}
			return fmt.Errorf("kstreams: flushing store %s of task %s: %w", ds.name, ts.t.ID(), err)
		}
	}
	return nil
}

// dirty drops the stored offsets of ts's durable stores: ts was given up
// with writes possibly aborted, so its state may hold writes its changelog
// lacks, and the next open of each store must restore it from scratch.
func (r *Runtime) dirty(ts *taskState) {
	for _, ds := range ts.durable {
		if err := ds.forget(); err != nil && !errors.Is(err, store.ErrFenced) {
			r.log.Warn("could not drop the checkpoint of a store given up dirty; it will restore from that checkpoint", "task", ts.t.ID().String(), "store", ds.name, "error", err)
		}
	}
}

// storeFenced handles a store of ts (name, if known) refusing a write
// because a newer owner of the task opened it (store.ErrFenced): ts is
// fenced as lost, nothing more of it is written or committed here. The
// group moves the task away from this instance in its next rebalance; if
// it still assigns the task here after twice the session timeout, the
// instance stops.
func (r *Runtime) storeFenced(ts *taskState, name string, err error) {
	if ts.orphaned.Swap(true) {
		return
	}
	what := "a store"
	if name != "" {
		what = "store " + name
	}
	r.log.Error("a newer owner of the task opened "+what+" of it: the task is fenced here", "task", ts.t.ID().String(), "error", err)
	r.fence(ts, true)
	session := r.cl.OptValue(kgo.SessionTimeout).(time.Duration)
	time.AfterFunc(2*session+time.Second, func() {
		r.mu.Lock()
		still := r.tasks[ts.t.ID()] == ts
		r.mu.Unlock()
		if still {
			r.setFatal(fmt.Errorf("kstreams: %s of task %s was opened by a newer owner (%w), but the group still assigns the task to this instance; the instance stops", what, ts.t.ID(), err))
		}
	})
}

// checkpointFile is where a persistent store records the changelog offset
// its flushed data covers.
func checkpointFile(dir string) string { return filepath.Join(dir, ".changelog-offset") }

// readCheckpoint returns the changelog offset recorded in dir, or -1.
func readCheckpoint(dir string) (int64, error) {
	b, err := os.ReadFile(checkpointFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return -1, fmt.Errorf("corrupt checkpoint file %s: %q", checkpointFile(dir), b)
	}
	return n, nil
}

// writeCheckpoint records offset atomically (write to a temporary file,
// sync, rename).
func writeCheckpoint(dir string, offset int64) error {
	tmp := checkpointFile(dir) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatInt(offset, 10) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, checkpointFile(dir))
}
