// Package wal is Tollgate's durable record log: every ledger operation is a
// record in a Pebble store, written by group commit and read back on start.
//
// # Design
//
// Records are ordinary Pebble keys, not Pebble LogData: Pebble skips LogData on
// replay and deletes it with old WAL files, so it cannot be the only copy of a
// ledger operation. Each record is stored under its sequence number (see
// keys.go for the full key layout) and, when it is an account entry, a second
// time under its account so that an account's entries can be listed newest
// first even after the sequence-ordered copies are compacted away.
//
// Appending and syncing are split. [Log.Append] copies an encoded record into
// the pending group and gives it the next sequence number; callers append while
// they hold the lock under which they applied the operation, so the order of
// records in the log is the order in which the ledger applied them. A single
// committer goroutine takes the whole pending group, writes it as one Pebble
// batch and commits it; every caller waiting in [Log.Wait] for a record of that
// group is released by the same fsync. While the committer syncs one group the
// next one fills, so the batch size adapts to the load: one caller pays one
// fsync per record, 256 callers share one fsync among about 256 records.
//
// Alternatives rejected: one Pebble Commit(Sync) per operation from each caller
// (Pebble's own commit pipeline also groups syncs, but the order in which
// concurrent callers reach Pebble would not match the order in which they
// applied their operations in memory, so a replay could meet a hold before the
// top-up that funded it); Pebble's ApplyNoSyncWait (marked experimental);
// per-shard logs (the ordering and durability bookkeeping get much harder for a
// saving that the fsync dwarfs: the append critical section is a memcpy).
//
// # Durability
//
// [ModeSync] acknowledges a record only after the batch holding it was
// committed with pebble.Sync. [ModeInterval] commits with pebble.Sync every
// [Config.Interval] and acknowledges at once: a crash loses the records of the
// last interval that were not yet synced (at most Interval of operations).
// [ModeNone] commits with pebble.NoSync and is for benchmarks only: a crash can
// lose anything Pebble had not written out. [Log.WaitSynced] forces a synced
// commit whatever the mode; the ledger uses it for operations that must always
// be durable when acknowledged (top-ups, adjustments, account and key changes).
//
// A failed commit is fatal: Pebble's WAL errors are sticky, so every later
// commit would fail too. The log records the error, every waiter receives it,
// [Log.Failed] is closed, and the process is expected to stop serving, exit and
// replay on the next start.
//
// # Checkpoints
//
// [Log.WriteCheckpoint] stores an opaque snapshot of the ledger's state taken
// at a sequence number, in chunks, together with a manifest, and deletes the
// sequence-ordered records it covers in the same synced batch. On start the
// ledger loads the latest checkpoint ([Log.LoadCheckpoint]) and applies the
// records after it ([Log.Replay]).
package wal
