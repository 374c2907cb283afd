// Package pebble provides a kstreams state store kept on local disk in
// Pebble (github.com/cockroachdb/pebble), CockroachDB's LSM storage engine:
// for state larger than memory, and for state that should not be restored
// from its changelog from the beginning at every restart.
//
//	counts := store.KeyValue("counts", serde.String, serde.Int64, pebble.Supplier())
//
// # Directory layout
//
// The runtime reserves a directory per store instance (store × task); the
// Supplier opens a Pebble database in its pebble subdirectory:
//
//	<state dir>/.../<store instance dir>/   BackendContext.Dir (the runtime's)
//	    pebble/                             DBDir: one Pebble database
//	        000123.sst ...                  table files, immutable
//	        000124.log                      write-ahead log
//	        MANIFEST-000001                 the list of live table files
//	        OPTIONS-000003, marker.*, LOCK  Pebble's bookkeeping
//
// Other files the runtime keeps in the instance directory (the changelog
// offset checkpoint, for example) stay out of Pebble's way. Inside the
// database, the store's entries are kept under a one-byte key prefix, and a
// format record under another (see WithTTL).
//
// # Durability
//
// A kstreams store has a durability source other than its disk: the
// changelog topic (or, with object-storage snapshots, the uploaded
// checkpoints). At each commit the runtime waits for the changelog records
// to be acknowledged, calls Flush, and only then writes the changelog offset
// it may restart from. So writes need not be durable one by one, only at
// Flush:
//
//   - Writes go to Pebble's write-ahead log without fsync, and to the
//     memtable. A crash may lose the writes since the last Flush; the
//     runtime restores them from the changelog, from the offset written
//     after that Flush.
//   - Flush syncs the log: one fsync, whose cost grows with the bytes
//     written since the previous Flush. Measured on the 2-core reference
//     machine (BenchmarkCommit, 100-byte values): 0.4-0.8 ms after 10 to
//     1,000 writes, 4-11 ms after 10,000.
//   - The alternative, no log (WithoutWAL) and Flush writing the memtable
//     out as a table file, measured in the same loop: 5-7 ms after 10 to
//     1,000 writes (several fsyncs: the table, the manifest, the
//     directory), 14-20 ms after 10,000, so 6-17 times the log sync for
//     typical commits and 2-3 times for large ones; and every commit leaves
//     a small table file for compaction to merge. Its writes are about 20%
//     cheaper (no log record), which does not make up for the Flush, and
//     restores (large batches, one Flush at the end) run at the same speed
//     either way.
//   - Nothing is lost on a clean Close: Close flushes.
//   - A batch (Write) is atomic across crashes either way: Pebble applies it
//     as one log record and one memtable insertion, and writes memtables
//     out whole. The crash test kills a writer with SIGKILL to check this.
//
// # Resources
//
// Every database a Supplier opens shares one block cache (WithCacheSize)
// and one table-file cache (WithMaxOpenFiles), created with the first store
// and released with the last. Memtables are per store (WithMemTableSize,
// 8 MiB: restores ran 2.4 times faster than with Pebble's 4 MiB). Under an
// application's memory budget (kstreams.WithMemoryBudget, passed as
// store.BackendContext.MemoryBudget) the cache is half the budget's share
// for stores and the memtables share the other half (two per store
// instance, 1 MiB to 8 MiB each), unless WithCacheSize or WithMemTableSize
// are given;
// table files have Bloom filters (10 bits per key) so that a Get of a
// missing key, common in aggregations, rarely reads a data block. Each store
// runs one compaction at a time, two when its level 0 backs up: stores
// compact in parallel, and a 2-core machine has no room for more.
//
// # Checkpoints
//
// Backend implements store.Checkpointer: Checkpoint writes an openable copy
// of the store made of hard links to its immutable table files, which an
// object-storage uploader can send incrementally. RestoreCheckpoint and
// OpenCheckpoint turn such a copy back into a store.
package pebble
