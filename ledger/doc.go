// Package ledger holds Tollgate's money: accounts with expiring credit,
// pre-authorization holds, settlements, corrections and API keys, in memory,
// with every change recorded in a [wal.Log].
//
// # Money
//
// Amounts are int64 nano-credits (1 credit = 10^9 nano-credits = 1 USD of list
// price). Every addition that could overflow is checked.
//
// An account's credit sits in buckets kept in spend order: soonest expiry
// first. There is one live paid bucket, whose expiry moves to
// PaidCreditLifetime after each paid top-up; one bucket per distinct gift
// expiry; and one bucket of adjustment credit that never expires and is spent
// last. What the credit cannot cover is debt: available goes negative, new
// holds are refused, and any credit that becomes free repays it first.
//
// A hold (pre-authorization) earmarks credit in spend order and lowers the
// available balance; it ends exactly once, settled or voided. A settlement
// spends first from the hold's earmarks whose credit expired during the call,
// then from the soonest-expiring free credit (the hold's other earmarks
// among it, so credit other calls freed meanwhile is not left to expire),
// then adds debt; the rest of the hold is free again at once. A void releases the
// earmarks. Expiry takes only free credit; credit a hold earmarked expires
// when that hold ends if its expiry passed meanwhile. Expiry is applied
// lazily whenever an operation touches an account, and by [Ledger.Expire] for
// the others, so a hold never takes credit that is already due to expire.
//
// Conservation holds after every operation, per account and in total:
// top-ups + adjustments - expired = available + held + charged.
// [Ledger.Check] verifies it and the other invariants over the whole ledger;
// builds with the invariants tag (make test) also check the account after
// every operation and every replayed record (invariant.go).
//
// Idempotency keys (top-up order IDs, adjustment keys) are unique across the
// whole ledger: each is looked up and inserted under one lock, whatever
// shard its account is in, and replay refuses a key used twice.
//
// # Concurrency
//
// Accounts are spread over a power-of-two number of shards by a hash of their
// ID, each with its own mutex padded to a cache line; open holds over as many
// hold shards by a hash of their request ID. A hold or settlement takes one
// account shard and one hold shard: no global lock, no allocation in steady
// state. The log's append is the one serial step (a memcpy under the log's
// mutex); durability waits happen after every lock is released.
//
// # Recording and replay
//
// Each operation's file (accounts.go, topup.go, hold.go, adjust.go,
// expire.go, keys.go, calls.go) holds the operation, its record's encoding
// and its replay. Each operation is applied in memory and appended to the
// log under the same account-shard lock, so the log holds each account's records in the order in
// which they were applied. Records carry their inputs and time, and those
// that change a balance also the available balance they left. Replay applies
// them with the same code as the live operations and compares that balance: a
// record that does not apply, or leaves another balance, stops the replay
// with ErrReplay. Operations whose effect other calls may observe before they
// return (holds, settlements) hand back a [Commit] to wait on; the others
// (top-ups, adjustments, account and key changes) return only once synced.
//
// Alternatives rejected: recording effects (bucket deltas) instead of
// commands, which would make replay trivially deterministic but the records
// larger and the live and replay paths two pieces of code that can drift;
// TigerBeetle-style posting that refuses a settlement above its hold, since
// the contract charges the overrun; a single lock around all accounts, which
// serialises every call of every customer.
package ledger
