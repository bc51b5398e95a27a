// Package cluster is Tollgate's cluster mode: several gateway nodes serving
// the same accounts, with PostgreSQL as the authority for the money and
// credit leases between them (docs/cluster.md has the setup, the overspend
// bound and its proof, and what each failure costs).
//
// # Parts
//
//   - [Authority] keeps accounts, keys, credit buckets, the journal and the
//     leases in PostgreSQL, with the ledger's methods and errors, so the
//     admin API serves both modes with one code (authority.go, money.go,
//     keys.go; the money rules of the ledger, computed in Go on rows locked
//     for the transaction: book.go).
//   - [Mirror] copies accounts and keys into a node's ledger, so that
//     authentication and admission stay in memory.
//   - [Node] keeps the node's leases: a grant when a hold does not fit,
//     renewals with the node's usage, returns, lapses (node.go; the
//     PostgreSQL side in lease.go).
//   - [Shipper] copies the node's settlements to PostgreSQL for statements
//     every node reads alike.
//   - [Outbox] is the notifications' source: a row per change, written in
//     the change's transaction and stamped in order when first read; with
//     [NotifyLock] and [States] the nodes' notifiers act as one, and [Lead]
//     has one node at a time deliver.
//   - [Claim] holds a node's identity while it runs (claim.go, with the
//     session locks Lead uses too).
//
// # Why leases
//
// The hot path stays the single-node one: holds and settlements in the
// node's memory and WAL. A node asks PostgreSQL for credit about once per
// two renewal intervals of an account's spend, not per call, and the
// credit it holds counts as held for every other node, so the cluster
// cannot grant the same credit twice.
//
// Alternatives rejected: a database write per call (new-api and one-api's
// quota row: the database becomes the bottleneck, and every call waits for
// it); per-node counters reconciled later (LiteLLM's drift: each node may
// spend the whole balance meanwhile); exact shared counters only when every
// call goes to the database (Kong); a consensus protocol of our own, where
// an existing engine with synchronous replication already gives durable,
// ordered commits and failover.
package cluster
