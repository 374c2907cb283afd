package pebble

import "github.com/kstreams-go/kstreams/core/store/snapshot"

// SnapshotLocal returns Pebble as the local side of object-storage state
// (core/store/snapshot): the working copy of each store instance is a
// Pebble database opened as Supplier(opts...) opens one, restored from a
// snapshot with RestoreCheckpoint.
//
//	b := s3.New(client, "my-bucket")
//	counts := store.KeyValue("counts", serde.String, serde.Int64,
//		snapshot.Supplier(b, pebble.SnapshotLocal()))
//
// The working copy runs without a write-ahead log (WithoutWAL is added to
// opts): its durability is the bucket, and a snapshot writes the memtables
// out as table files anyway. With a log, every snapshot would upload a copy
// of it, and Pebble reuses log files, so the copy would carry up to a
// memtable of stale bytes.
func SnapshotLocal(opts ...Option) snapshot.Local {
	return snapshot.Local{
		Open:    Supplier(append(append([]Option(nil), opts...), WithoutWAL())...),
		Restore: RestoreCheckpoint,
	}
}
