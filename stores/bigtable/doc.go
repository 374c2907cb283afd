// Package bigtable provides a kstreams state store kept in Google Cloud
// Bigtable (cloud.google.com/go/bigtable): remote, shared by many
// applications and tasks, and fast because it never pays a round trip per
// record. Writes are buffered per store instance and sent at each commit in
// one ApplyBulk (a few at once above 800 rows); reads go through a cache of
// clean rows. The Backend is a store.BatchGetter: a batch processor reads
// its keys with KeyValueStore.GetMany, in one ReadRows.
//
//	client, err := bigtable.NewClient(ctx, project, instance) // your credentials, your options
//	...
//	counts := store.KeyValue("counts", serde.String, serde.Int64, bigtablestore.Supplier(client, "kstreams"))
//
// The table and its column family must exist, without a garbage-collection
// policy: CreateTable makes them.
//
// # Row layout
//
// One column family ("v", see WithColumnFamily), one table for any number of
// applications. Each store instance (application × store × partition) owns
// one contiguous row range (see keys.go for the exact encoding):
//
//	escape(app) 00 01 escape(store) 00 01 partition(4 bytes) 'd' key   data row, column "v"
//	escape(app) 00 01 escape(store) 00 01 partition(4 bytes) 'm'       meta row
//
// escape doubles each 0x00 byte as 00 ff, which keeps the encoding
// order-preserving and prefix-free: Range(lo, hi) is the row range
// [prefix 'd' lo, prefix 'd' hi), and no instance's rows fall in another's.
// Store keys follow the prefix as they are (empty keys, 0x00 and 0xff bytes
// included), so Bigtable's row order is store.Backend's bytes.Compare order.
// InstanceRows returns an instance's range.
//
// A data cell's value is a tag byte (1: a value follows; 0: deleted) and the
// value; its timestamp is not a time but a version: (owner epoch << 28 |
// flush number) milliseconds. The meta row holds, in cells written at
// timestamp 0: epoch (the owner epoch, a 64-bit counter), committed (the
// version of the last committed flush), pending (the lowest version an
// uncommitted flush may have written), offset (the changelog offset the
// data covers, absent if none), inputs (the input offsets the data covers,
// store.InputOffsets' encoding, absent if none) and excluded (ranges of
// versions never to read). ReadInstanceState reads it.
//
// # Reads
//
// A cell counts if its version is at most the committed one and in no
// excluded range; a row's value is its newest cell that counts. Get reads
// the unflushed writes, then the cache, then one ReadRow; GetMany reads all
// its misses in one ReadRows; Range streams one ReadRows merged with the
// unflushed writes. The cache (WithCacheSize, 64 MiB per Supplier by
// default) keeps rows as committed; only the owner writes them, so cached
// rows stay true until its own flushes, which update them. An instance
// never flushed is known empty from its open, and one of at most
// WithPreload rows (10,000) is read whole by one ReadRows at its first
// miss: the cache then answers misses too, until it evicts one of the
// instance's rows.
//
// # Flushes and their guarantee
//
// Flush and FlushAt send every buffered write in four steps, all under a
// check of the owner epoch except the bulk write, which cannot be
// conditional:
//
//  1. mark: CheckAndMutateRow on the meta row: if the epoch is mine, set
//     pending to the lowest version this owner wrote since its last commit;
//  2. if ranges were deleted, one ReadRows lists their rows (keys only);
//  3. ApplyBulk writes each row's cell at the flush's new version, with the
//     removal of the cells an earlier commit made obsolete in the row; above
//     800 rows, in 2 to 4 calls at once, each row in one of them;
//  4. commit: CheckAndMutateRow on the meta row: if the epoch is mine, set
//     committed to the version and the offset, clear pending.
//
// Bigtable has no multi-row transactions; the versions make up for it.
// Readers ignore cells above the committed version, so a flush is seen
// whole or not at all, by this owner and every later one: a Batch is
// atomic, and so is everything between two commits. A crash (or an error)
// before step 4 leaves the previous committed version and offset: the
// offset never claims writes that are not there. The cells the interrupted
// flush wrote are never read: the next owner, when it opens, finds pending
// set and excludes, for good, the versions from pending to the end of the
// old owner's epoch. A failed flush keeps its writes buffered; the next
// attempt writes them at a new version, above the failed one.
//
// # Fencing
//
// Opening a store instance raises the owner epoch (ReadModifyWriteRow,
// Increment) and keeps the value. Each mark and commit checks it in the same
// atomic step (CheckAndMutateRow); once a newer owner opened, they fail with
// an error wrapping store.ErrFenced and the backend refuses all writes.
// A stale owner can still land its ApplyBulk calls if it passed its mark before
// the newer owner opened, but only at versions of its own epoch from the
// pending one on, which the newer owner excluded when it opened: its cells
// are never read, and being older versions they never hide the newer
// owner's. Its removals of obsolete cells only remove cells below its last
// commit that a newer cell of the row already hides.
//
// Rows do not pile up versions: a commit makes the older cells of the rows
// it wrote obsolete (and the rows it deleted), and their removal rides with
// the row's next write, so a row holds at most two cells. Rows not written
// again wait in memory until more than 100,000 wait (a flush removes them
// all) or Close. The excluded list grows by one 16-byte entry per flush
// interrupted by a change of owner.
//
// # Changelog
//
// The store is durable by itself and implements store.OffsetKeeper, so the
// runtime restores only the changelog after the stored offset: next to
// nothing at each open. It also implements store.InputOffsetKeeper: without
// a changelog, the runtime's FlushInputs stores the task's input offsets in
// the commit step of the flush, and the task resumes from them, so a crash
// between the flush and the commit of the offsets applies no record twice.
// A flush stores one kind of offset at most, the one its data matches:
// FlushInputs removes the changelog offset, FlushAt the input offsets, and
// Flush with writes the input offsets (it keeps the changelog offset: the
// changelog's tail replayed over newer data converges).
//
// The default keeps the changelog (store.KeyValue's default for every
// backend); we recommend store.WithoutChangelog for this store: Bigtable
// replicates and keeps what it acknowledged, so the changelog's remaining
// uses are rebuilding a table that was dropped (without one, the tasks then
// resume from their committed offsets over empty stores) and the runtime's
// roll back after aborted writes (FlushAt(-1); WithTransactions, whose
// transactions do not cover Bigtable's writes). A table restored from an
// older backup holds older data with the matching input offsets: the tasks
// resume from them and process that input again.
//
// A write that finds the buffer full (WithMaxBufferedBytes, 32 MiB) flushes
// it first, keeping the stored changelog offset and removing the input
// offsets; Close does not flush: the writes after the last commit belong to
// records that will be processed again.
//
// # Client, app profile, credentials
//
// The caller builds the client with its own options (credentials, endpoint,
// app profile); the store logs store names and epochs, never options. Owner
// epochs need single-row transactions (CheckAndMutateRow,
// ReadModifyWriteRow) and reads that see the last write: use an app profile
// with single-cluster routing that allows transactional writes (the default
// profile of a single-cluster instance does).
//
// Not implemented: store.Persistent (the runtime keeps no local checkpoint
// for this store) and store.Checkpointer.
package bigtable
