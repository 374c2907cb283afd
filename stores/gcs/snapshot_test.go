package gcs_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/core/store/storetest"
	"github.com/kstreams-go/kstreams/stores/gcs"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// Pebble stores kept in GCS (fake-gcs-server): the durable-store contract, owner
// fencing included, with the real GCS client.
func TestSnapshotDurable(t *testing.T) {
	srv := startServer(t)
	supply := snapshot.Supplier(srv.newBucket(t), pebble.SnapshotLocal(pebble.WithCacheSize(8<<20)), snapshot.WithGarbageInterval(0))
	disks := t.TempDir() // outlives the subtests, whose cleanups close the stores
	storetest.RunDurable(t, func(t *testing.T, bc store.BackendContext) store.Backend {
		var err error
		if bc.Dir, err = os.MkdirTemp(disks, ""); err != nil {
			t.Fatal(err)
		}
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Pebble stores without changelog kept in GCS (fake-gcs-server): input offsets stored
// with the snapshot, owner fencing and rewinds to kept snapshots.
func TestSnapshotInputs(t *testing.T) {
	srv := startServer(t)
	supply := snapshot.Supplier(srv.newBucket(t), pebble.SnapshotLocal(pebble.WithCacheSize(8<<20)), snapshot.WithGarbageInterval(0))
	disks := t.TempDir() // outlives the subtests, whose cleanups close the stores
	reopen := func(t *testing.T, bc store.BackendContext) store.Backend {
		var err error
		if bc.Dir, err = os.MkdirTemp(disks, ""); err != nil {
			t.Fatal(err)
		}
		b, err := supply(bc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	storetest.RunInputs(t, reopen)
	storetest.RunRewind(t, reopen)
}

// A store written, snapshotted and reopened on a new disk through GCS holds
// every key.
func TestSnapshotRestore(t *testing.T) {
	srv := startServer(t)
	supply := snapshot.Supplier(srv.newBucket(t, gcs.WithPrefix("env/")), pebble.SnapshotLocal(pebble.WithCacheSize(8<<20)))
	bc := store.BackendContext{App: "app", Store: "counts", Task: "0_0", Dir: t.TempDir()}
	b, err := supply(bc)
	if err != nil {
		t.Fatal(err)
	}
	const keys = 5000
	for round := range 3 {
		var batch store.Batch
		for i := range keys {
			batch.Set(fmt.Appendf(nil, "key-%05d", i), fmt.Appendf(nil, "round %d value %d", round, i))
		}
		if err := b.Write(&batch); err != nil {
			t.Fatal(err)
		}
		if err := b.(store.OffsetKeeper).FlushAt(int64(round)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	bc.Dir = t.TempDir()
	r, err := supply(bc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for e, err := range r.Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("key-%05d=round 2 value %d", n, n); string(e.Key)+"="+string(e.Value) != want {
			t.Fatalf("entry %d: %s=%s; want %s", n, e.Key, e.Value, want)
		}
		n++
	}
	if n != keys {
		t.Fatalf("restored %d keys; want %d", n, keys)
	}
	if off, ok, err := r.(store.OffsetKeeper).StoredOffset(); err != nil || !ok || off != 2 {
		t.Fatalf("StoredOffset = %d, %v, %v; want 2", off, ok, err)
	}
}
