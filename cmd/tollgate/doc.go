// Command tollgate runs Tollgate. `tollgate serve` is the gateway: it reads
// flags and the configuration (configs/tollgate.yaml, or the embedded
// default), opens the WAL and replays it into the ledger, ends the holds a
// crash left open by the recovery policy, starts the client and admin servers
// and the background jobs (hold sweeper, credit expiry, checkpoints,
// call-record pruning, free-disk check), then waits: SIGHUP reloads the
// catalogue, SIGTERM stops accepting, lets running calls finish within the
// grace period, writes a checkpoint and exits 0, and a failed WAL write stops
// the process at once so that the next start replays. `tollgate simulator`
// runs the upstream simulator alone; `tollgate verify` checks a stopped
// gateway's data directory offline.
package main
