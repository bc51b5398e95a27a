package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/invariants"
)

// checkAccount panics when the account breaks a money invariant
// (violations). It runs after every operation and every replayed record in
// builds with the invariants tag (make test), where it costs a walk of the
// account's buckets (appendCallLocked and apply call it: every operation
// records itself); Check verifies the whole ledger at once.
// REQUIRES: the account's shard locked.
func (a *account) checkAccount(now int64) {
	if !invariants.Enabled {
		return
	}
	a.violations(now, func(format string, args ...any) { panic("BUG: " + fmt.Sprintf(format, args...)) })
}

// violations reports each money invariant a breaks at now: its
// conservation (top-ups + adjustments - expired = available + held +
// charged), its buckets (none negative, none earmarking more than it
// holds, their earmarks summing to what is held), its debt (never beside
// free unexpired credit).
// REQUIRES: the account's shard locked.
func (a *account) violations(now int64, bad func(format string, args ...any)) {
	if in, out := a.toppedUp+a.adjusted-a.expired, a.available()+a.held+a.charged; in != out {
		bad("account %q: top-ups %d + adjustments %d - expired %d = %d, but available %d + held %d + charged %d = %d",
			a.id, a.toppedUp, a.adjusted, a.expired, in, a.available(), a.held, a.charged, out)
	}
	var earmarked, freeLive int64
	for _, b := range a.buckets {
		if b.remaining < 0 || b.earmarked < 0 || b.earmarked > b.remaining {
			bad("account %q bucket %d: remaining %d, earmarked %d", a.id, b.id, b.remaining, b.earmarked)
		}
		earmarked += b.earmarked
		if b.expiresAt > now {
			freeLive += b.free()
		}
	}
	if earmarked != a.held {
		bad("account %q: held %d, but its buckets earmark %d", a.id, a.held, earmarked)
	}
	if a.debt < 0 || (a.debt > 0 && freeLive > 0) {
		bad("account %q: debt %d while %d of unexpired credit is free", a.id, a.debt, freeLive)
	}
}
