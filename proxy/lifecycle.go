package proxy

import (
	"time"

	"github.com/tollgate/tollgate/ledger"
)

// Ledger returns the gateway's ledger.
func (g *Gateway) Ledger() *ledger.Ledger { return g.ledger }

// SetDiskLow tells the gateway whether the data directory is short of free
// space; while it is, new holds get 503 instead of risking a full disk.
func (g *Gateway) SetDiskLow(low bool) { g.diskLow.Store(low) }

// DiskLow reports what SetDiskLow set.
func (g *Gateway) DiskLow() bool { return g.diskLow.Load() }

// RecoverOpenHolds ends every hold found open at start (after a crash) by
// the recovery policy, with a call record of outcome recovered, and returns
// how many it ended.
func (g *Gateway) RecoverOpenHolds() (int, error) {
	n := 0
	for _, h := range g.ledger.OpenHolds() {
		rec := &ledger.CallRecord{RequestID: h.RequestID, AccountID: h.Account, KeyID: h.KeyID,
			TimeNanos: h.StartedAtNanos, Outcome: ledger.OutcomeRecovered, Held: h.Amount,
			DurationMs: time.Since(time.Unix(0, h.StartedAtNanos)).Milliseconds()}
		var c ledger.Commit
		var err error
		if g.cfg.RecoveryPolicy == PolicyChargeHold {
			c, err = g.ledger.Settle(h.RequestID, h.Amount, rec)
		} else {
			c, err = g.ledger.Void(h.RequestID, ledger.ReasonRecovered, rec)
		}
		if err == nil {
			err = c.Wait()
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
