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
	open := l.holdTotalsByAccount(&sum, bad)
	for i := range l.shards {
		for _, a := range l.shards[i].mu.accounts {
			a.violations(now, bad)
			open.check(a, bad)
			sum.add(a)
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

// add adds a's totals to s.
func (s *Summary) add(a *account) {
	s.Accounts++
	s.TopUps += a.toppedUp
	s.Adjusted += a.adjusted
	s.Expired += a.expired
	avail := a.available()
	s.Available += avail
	s.Held += a.held
	s.Charged += a.charged
	if avail < 0 {
		s.Debt -= avail
	}
}

// holdTotals is what the open holds say of each account: the amount held,
// how many holds, and how much each bucket has earmarked.
type holdTotals struct {
	amount map[*account]int64
	count  map[*account]int
	marks  map[*account]map[uint64]int64
}

// holdTotalsByAccount sums the open holds by account, reporting a hold
// stored under another request's ID or whose marks do not add up to it.
// REQUIRES: all locks held.
func (l *Ledger) holdTotalsByAccount(sum *Summary, bad func(string, ...any)) holdTotals {
	o := holdTotals{amount: map[*account]int64{}, count: map[*account]int{}, marks: map[*account]map[uint64]int64{}}
	for i := range l.holds {
		for id, h := range l.holds[i].mu.holds {
			sum.OpenHolds++
			if id != h.requestID {
				bad("hold stored as %q is for request %q", id, h.requestID)
			}
			o.amount[h.account] += h.amount
			o.count[h.account]++
			if o.marks[h.account] == nil {
				o.marks[h.account] = map[uint64]int64{}
			}
			var marked int64
			for _, m := range h.marks {
				marked += m.amount
				o.marks[h.account][m.bucket] += m.amount
			}
			if marked != h.amount {
				bad("hold %q of %d earmarks %d", id, h.amount, marked)
			}
		}
	}
	return o
}

// check reports where a disagrees with its open holds: its held total and
// count, and each bucket's earmark; and a bucket left empty.
func (o holdTotals) check(a *account, bad func(string, ...any)) {
	if a.held != o.amount[a] || a.openHolds != o.count[a] {
		bad("account %q: held %d in %d holds, but its open holds sum to %d in %d", a.id, a.held, a.openHolds, o.amount[a], o.count[a])
	}
	for _, b := range a.buckets {
		if b.remaining == 0 {
			bad("account %q bucket %d: empty but kept", a.id, b.id)
		}
		if b.earmarked != o.marks[a][b.id] {
			bad("account %q bucket %d: earmarked %d, but holds mark %d", a.id, b.id, b.earmarked, o.marks[a][b.id])
		}
	}
}
