// Package notify tells customers and the platform's systems about their
// money before it matters: a durable outbox of events (top-ups, credit
// about to expire and expired, a low balance, scheduled prices and
// retirements, freezes and closures, disputes, keys) delivered at least
// once, in order per destination, by signed webhooks (Standard Webhooks)
// and by email (SMTP, with templates per event and language).
//
// The outbox of money events is the ledger's own WAL: events are derived
// from its records after a cursor that is written in one Pebble batch with
// the events, and the WAL keeps its records until that cursor has passed
// them. So an event exists exactly when the change that causes it was
// committed: nothing is lost in a crash, nothing is sent for a change that
// did not happen, and the hot path writes nothing more. Reminders of
// expiring credit (a clock, not a change) and catalogue notices are
// recorded when found, with markers that make each one once.
//
// In cluster mode the changes come from PostgreSQL's outbox (a row written
// in each change's transaction, ledger/cluster), the state is kept in
// PostgreSQL's shared states, and a Lock makes the nodes' notifiers one:
// every change to the state happens under it, after what another node
// wrote is read again (coordinated).
//
// Rejected alternatives: writing each event in the ledger's record (a
// second encoding of every change, and bytes on the hot path for events
// most platforms never read); an in-memory queue (a crash loses notices);
// delivering from the ledger's operations directly (a slow receiver would
// hold money operations).
package notify
