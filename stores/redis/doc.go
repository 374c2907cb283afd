// Package redis provides a kstreams state store kept in Redis
// (github.com/redis/go-redis/v9): state that lives outside the application's
// instances, shared by many applications and tasks on one server or
// cluster, and that is fast because a task does not go to the network once
// per record.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "redis:6379"}) // TLS, auth: go-redis options
//	counts := store.KeyValue("counts", serde.String, serde.Int64, redis.Supplier(client))
//
// # Round trips
//
// Writes (Set, Delete, DeleteRange, Write) are buffered in memory per store
// instance, and reads see them (read-your-writes). Flush and FlushAt, which
// the runtime calls before each commit, send every buffered write and the
// changelog offset in one Lua script: one round trip per commit and store
// instance, whatever the number of writes. Reads of keys not buffered go
// through a bounded cache of values known to match Redis; a store instance
// small enough for the cache is read whole at its first miss (WithPreload),
// after which misses cost nothing. Range reads pages of entries (one round
// trip per WithRangePageSize entries) merged with the buffered writes.
//
// # Key layout
//
// A store instance (application id, store, partition) has three keys, all
// under one hash tag, so that they live in one Redis Cluster slot and one
// script can touch them all:
//
//	{ks:<app>:<store>:<partition>}:meta   hash: epoch, owner, layout, offset, inputs
//	{ks:<app>:<store>:<partition>}:data   hash: key → value
//	{ks:<app>:<store>:<partition>}:index  sorted set: every key, score 0
//
// ':', '{', '}', '%', spaces and bytes outside printable ASCII in the
// application id and store name are written %XX. Keys and values are binary;
// the index orders keys by bytes (ZRANGEBYLEX), as store.Backend requires.
// Keys names them (see docs/stores-redis.md for the reasons of this layout).
//
// # Atomicity and fencing
//
// Open claims the store instance: one script raises its owner epoch and
// records the new owner (the epoch and a random token). Every flush script
// first checks that the recorded owner is still this one, then that the keys
// have the expected types, and only then writes: all the buffered writes
// and the offset, or, if any check fails, nothing. A flush refused because
// a newer owner opened the instance fails with an error wrapping
// store.ErrFenced, and the backend refuses every write after it.
//
// The backend implements store.OffsetKeeper: FlushAt stores the changelog
// offset with the data in the same script, and the runtime restores only
// the changelog after it. It implements store.InputOffsetKeeper for stores
// without changelog: FlushInputs stores the task's input offsets with the
// data in the same script, and the runtime resumes the task from them. A
// flush stores one kind of offset at most, the one its data matches: FlushAt
// drops the input offsets, FlushInputs the changelog offset, Flush both. It does not implement store.Persistent (no local
// files). Close drops unflushed writes: the runtime flushes before every
// commit, and the records after the last commit are processed again. An
// offset is only stored with the data it matches: Flush, and the early
// flush of a write that finds the buffer full (see WithMaxBufferedWrites),
// drop it until the next FlushAt.
//
// # Changelog
//
// The default keeps the changelog (store.KeyValue's default for every
// backend). Redis acknowledges a script once it ran in memory; whether it
// survives a Redis crash or failover depends on the server's persistence
// (RDB snapshots, AOF fsync policy) and replication, which are asynchronous
// by default. Since data and offsets are written by one script, a Redis that
// lost recent writes comes back with older offsets consistent with its
// data, or none: with a changelog the runtime replays its tail from there,
// without one it resumes the input from the stored input offsets. Either
// way nothing is lost. Only a store instance lost whole (a Redis without
// persistence restarting, FLUSHALL, eviction) tells them apart: the
// changelog restores it, while without one the task resumes from its
// committed offsets over an empty store.
//
// store.WithoutChangelog() is the better choice when Redis persists its data
// and never evicts it (maxmemory-policy noeviction): no changelog topic, no
// produce per write, and exact state across crashes (a crash between the
// flush and the commit of the offsets applies no record twice), where the
// changelog gives at-least-once state. See docs/stores-redis.md.
package redis
