package ledger

import (
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/money"
)

// SpendLimit bounds what one key may spend per period: the settled charges of
// the period's calls plus the holds of its calls still running. Periods are
// fixed windows counted from Anchor (the key's creation).
type SpendLimit struct {
	// Limit in nano-credits; 0 means none.
	Limit  int64
	Period time.Duration
	Anchor int64
}

// SpendLimitError is the error of a hold that would take a key over its
// spend limit; it matches ErrSpendLimit.
type SpendLimitError struct {
	Limit, Spent, Hold int64
	Period             time.Duration
}

// ErrSpendLimit: the key's spend limit for the period is reached (402).
var ErrSpendLimit = fmt.Errorf("ledger: key spend limit reached")

func (e *SpendLimitError) Error() string {
	return fmt.Sprintf("ledger: the key's spend limit of %s credits per %s is reached: %s spent or held, this call needs a hold of %s",
		money.Format(e.Limit), e.Period, money.Format(e.Spent), money.Format(e.Hold))
}

// Is makes errors.Is(err, ErrSpendLimit) true.
func (e *SpendLimitError) Is(target error) bool { return target == ErrSpendLimit }

// keySpend is one key's spending in its current window. Guarded by the
// account's shard lock (a key belongs to one account).
type keySpend struct {
	windowStart int64
	spent       int64
	reserved    int64
}

// roll moves ks to the window of now.
func (ks *keySpend) roll(sl SpendLimit, now int64) {
	if sl.Period <= 0 {
		return
	}
	p := int64(sl.Period)
	start := sl.Anchor + (now-sl.Anchor)/p*p
	if start != ks.windowStart {
		ks.windowStart, ks.spent = start, 0
	}
}

// spendOf returns the key's spending record, creating it.
func (a *account) spendOf(keyID string) *keySpend {
	if a.keySpend == nil {
		a.keySpend = map[string]*keySpend{}
	}
	ks := a.keySpend[keyID]
	if ks == nil {
		ks = &keySpend{}
		a.keySpend[keyID] = ks
	}
	return ks
}

// checkSpend refuses a hold that would take the key over its limit.
func (a *account) checkSpend(keyID string, sl SpendLimit, amount, now int64) error {
	if sl.Limit <= 0 || sl.Period <= 0 {
		return nil
	}
	ks := a.spendOf(keyID)
	ks.roll(sl, now)
	if used := ks.spent + ks.reserved; used+amount > sl.Limit {
		return &SpendLimitError{Limit: sl.Limit, Spent: used, Hold: amount, Period: sl.Period}
	}
	return nil
}

// reserve and release track a hold of a key with a spend limit.
func (a *account) reserve(h *hold, sl SpendLimit, now int64) {
	if sl.Limit <= 0 || sl.Period <= 0 || h.keyID == "" {
		return
	}
	ks := a.spendOf(h.keyID)
	ks.roll(sl, now)
	ks.reserved += h.amount
	h.spendTracked = true
}

func (a *account) releaseSpend(h *hold, charged int64, sl SpendLimit, now int64) {
	ks := a.spendOf(h.keyID)
	ks.reserved -= h.amount
	ks.roll(sl, now)
	ks.spent += charged
}

// spendLimitOf is the spend limit the key has now (none for an unknown key).
// Settlements and replay read it from the key table; live holds get it from
// the caller, who already has the key.
func (l *Ledger) spendLimitOf(keyID string) SpendLimit {
	if keyID == "" {
		return SpendLimit{}
	}
	l.keys.RLock()
	k := l.keys.byID[keyID]
	l.keys.RUnlock()
	if k == nil {
		return SpendLimit{}
	}
	return SpendLimit{Limit: k.SpendLimit, Period: k.SpendPeriod, Anchor: k.CreatedAtNanos}
}
