package ledger

import "github.com/VictoriaMetrics/metrics"

// Operation counters: package-level, literal names, one label with a fixed
// set of values.
var (
	opsHold    = metrics.NewCounter(`tollgate_ledger_operations_total{op="hold"}`)
	opsSettle  = metrics.NewCounter(`tollgate_ledger_operations_total{op="settle"}`)
	opsVoid    = metrics.NewCounter(`tollgate_ledger_operations_total{op="void"}`)
	opsTopUp   = metrics.NewCounter(`tollgate_ledger_operations_total{op="topup"}`)
	opsAdjust  = metrics.NewCounter(`tollgate_ledger_operations_total{op="adjust"}`)
	opsExpire  = metrics.NewCounter(`tollgate_ledger_operations_total{op="expire"}`)
	opsRefused = metrics.NewCounter(`tollgate_ledger_holds_refused_total`)
	openHolds  = metrics.NewCounter(`tollgate_ledger_open_holds`)

	// Sampled (one operation in 64 per shard): timing each would cost two
	// clock reads per operation.
	shardLockWait = metrics.NewHistogram(`tollgate_ledger_shard_lock_wait_seconds`)
	holdLatency   = metrics.NewHistogram(`tollgate_ledger_operation_duration_seconds{op="hold"}`)
	settleLatency = metrics.NewHistogram(`tollgate_ledger_operation_duration_seconds{op="settle"}`)
)
