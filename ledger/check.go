package ledger

import (
	"errors"
	"fmt"
)

// ErrViolation reports a broken invariant found by Check.
var ErrViolation = errors.New("ledger: invariant violated")

// Summary is the ledger's totals, as Check computed them.
type Summary struct {
	Accounts  int
	Keys      int
	OpenHolds int
	TopUps    int64
	Adjusted  int64
	Expired   int64
	Available int64
	Held      int64
	Charged   int64
	// Debt is the sum of negative available balances.
	Debt int64
	// LastSeq is the sequence number of the last record.
	LastSeq uint64
}

// maxViolations bounds the violations Check lists.
const maxViolations = 20

// Check verifies every invariant of the money rules (contract section 5) under
// all locks and returns the totals. The error, if any, wraps ErrViolation and
// lists up to maxViolations violations:
//
//   - conservation per account: top-ups + adjustments - expired =
//     available + held + charged, and the same summed over all accounts;
//   - no bucket negative, none earmarking more than it holds, no debt while
//     unexpired free credit is left;
//   - each account's held total equals the sum of its open holds and of its
//     buckets' earmarks, and each open hold's marks sum to its amount.
//
// That every hold ends exactly once is checked by replay, which refuses a
// settlement or void of a hold that is not open.
func (l *Ledger) Check() (Summary, error) {
	now := l.now()
	l.lockAll()
	defer l.unlockAll()
	var sum Summary
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < maxViolations {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	holdsOf := map[*account]int64{}
	marksOf := map[*account]map[uint64]int64{}
	countOf := map[*account]int{}
	for i := range l.holds {
		for id, h := range l.holds[i].mu.holds {
			sum.OpenHolds++
			if id != h.requestID {
				bad("hold stored as %q is for request %q", id, h.requestID)
			}
			holdsOf[h.account] += h.amount
			countOf[h.account]++
			var marked int64
			for _, m := range h.marks {
				marked += m.amount
				if marksOf[h.account] == nil {
					marksOf[h.account] = map[uint64]int64{}
				}
				marksOf[h.account][m.bucket] += m.amount
			}
			if marked != h.amount {
				bad("hold %q of %d earmarks %d", id, h.amount, marked)
			}
		}
	}
	for i := range l.shards {
		for _, a := range l.shards[i].mu.accounts {
			sum.Accounts++
			avail := a.available()
			in := a.toppedUp + a.adjusted - a.expired
			out := avail + a.held + a.charged
			if in != out {
				bad("account %q: top-ups %d + adjustments %d - expired %d = %d, but available %d + held %d + charged %d = %d",
					a.id, a.toppedUp, a.adjusted, a.expired, in, avail, a.held, a.charged, out)
			}
			if a.held != holdsOf[a] || a.openHolds != countOf[a] {
				bad("account %q: held %d in %d holds, but its open holds sum to %d in %d", a.id, a.held, a.openHolds, holdsOf[a], countOf[a])
			}
			var earmarked, freeLive int64
			for _, b := range a.buckets {
				if b.remaining <= 0 || b.earmarked < 0 || b.earmarked > b.remaining {
					bad("account %q bucket %d: remaining %d, earmarked %d", a.id, b.id, b.remaining, b.earmarked)
				}
				if b.earmarked != marksOf[a][b.id] {
					bad("account %q bucket %d: earmarked %d, but holds mark %d", a.id, b.id, b.earmarked, marksOf[a][b.id])
				}
				earmarked += b.earmarked
				if b.expiresAt > now {
					freeLive += b.free()
				}
			}
			if earmarked != a.held {
				bad("account %q: held %d, but buckets earmark %d", a.id, a.held, earmarked)
			}
			if a.debt < 0 || (a.debt > 0 && freeLive > 0) {
				bad("account %q: debt %d while %d of unexpired credit is free", a.id, a.debt, freeLive)
			}
			sum.TopUps += a.toppedUp
			sum.Adjusted += a.adjusted
			sum.Expired += a.expired
			sum.Available += avail
			sum.Held += a.held
			sum.Charged += a.charged
			if avail < 0 {
				sum.Debt -= avail
			}
		}
	}
	if in, out := sum.TopUps+sum.Adjusted-sum.Expired, sum.Available+sum.Held+sum.Charged; in != out {
		bad("global: top-ups + adjustments - expired = %d, but available + held + charged = %d", in, out)
	}
	sum.Keys = len(l.keys.byID)
	if l.log != nil {
		sum.LastSeq = l.log.LastSeq()
	} else {
		sum.LastSeq = l.memSeq.Load()
	}
	if len(errs) > 0 {
		return sum, fmt.Errorf("%w: %w", ErrViolation, errors.Join(errs...))
	}
	return sum, nil
}
