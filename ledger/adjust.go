package ledger

import (
	"errors"
	"fmt"
	"math"
)

// AdjustRequest is a billing correction.
type AdjustRequest struct {
	Account string
	// Amount is signed: positive credit never expires and is spent last; a
	// negative amount takes free credit and may leave the account owing.
	Amount int64
	Reason string
	// RequestID names the disputed call, if any.
	RequestID string
	// IdempotencyKey makes the adjustment idempotent when set.
	IdempotencyKey string
	Actor          string
}

// Adjust applies a billing correction and returns its entry once synced.
// created is false when the idempotency key was already used for the same
// correction; another correction under the same key is ErrIdempotencyConflict.
//
// Idempotency keys are unique across the whole ledger, and a retry returns
// the first result, as TopUp's order IDs do.
func (l *Ledger) Adjust(r AdjustRequest) (e Entry, created bool, err error) {
	if r.IdempotencyKey != "" {
		if err := ValidID("idempotency_key", r.IdempotencyKey); err != nil {
			return e, false, err
		}
	}
	s := l.shardOf(r.Account)
	s.mu.Lock()
	l.idem.Lock()
	unlock := func() {
		l.idem.Unlock()
		s.mu.Unlock()
	}
	if r.IdempotencyKey != "" {
		if prev, ok := l.idem.m[r.IdempotencyKey]; ok {
			unlock()
			if !prev.SameAdjustment(&r) {
				return e, false, fmt.Errorf("%w: %q", ErrIdempotencyConflict, r.IdempotencyKey)
			}
			return prev, false, l.waitSynced(prev.ID)
		}
	}
	if err := r.Check(); err != nil {
		unlock()
		return e, false, err
	}
	now := l.now()
	a := s.mu.accounts[r.Account]
	if a == nil {
		unlock()
		return e, false, fmt.Errorf("%w: %q", ErrUnknownAccount, r.Account)
	}
	l.expireDueLocked(s, a, now)
	e, err = l.adjustRecordedLocked(s, a, &r, now)
	if err != nil {
		unlock()
		return e, false, err
	}
	if r.IdempotencyKey != "" {
		l.idem.m[r.IdempotencyKey] = e
	}
	unlock()
	return e, true, l.waitSynced(e.ID)
}

// adjustRecordedLocked applies r to a and appends its record.
func (l *Ledger) adjustRecordedLocked(s *shard, a *account, r *AdjustRequest, now int64) (Entry, error) {
	if err := adjustLocked(a, r.Amount, now); err != nil {
		return Entry{}, err
	}
	e := Entry{TimeNanos: now, Kind: EntryAdjust, Account: a.id, Amount: r.Amount, AvailableAfter: a.available(),
		RequestID: r.RequestID, Reason: r.Reason, Actor: r.Actor, IdempotencyKey: r.IdempotencyKey}
	body := appendAdjust(s.mu.scratch[:0], &e)
	s.mu.scratch = body
	e.ID = l.appendLocked(kindAdjust, a.id, now, body)
	opsAdjust.Inc()
	return e, nil
}

// Withdraw takes an account's whole available balance, when positive, by a
// negative adjustment with reason, in one step with respect to holds (no
// hold can take the credit between reading and taking it), and returns the
// amount taken once synced. Cluster mode returns a lease's unused credit
// with it.
func (l *Ledger) Withdraw(account, reason string) (int64, error) {
	s := l.shardOf(account)
	s.mu.Lock()
	a := s.mu.accounts[account]
	if a == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %q", ErrUnknownAccount, account)
	}
	now := l.now()
	l.expireDueLocked(s, a, now)
	amount := a.available()
	if amount <= 0 {
		s.mu.Unlock()
		return 0, nil
	}
	e, err := l.adjustRecordedLocked(s, a, &AdjustRequest{Account: account, Amount: -amount, Reason: reason}, now)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return amount, l.waitSynced(e.ID)
}

// Adjustment returns the adjustment made under an idempotency key, if any:
// callers that check more than the ledger does (the dispute window) look a
// retry up first, so that it gets the first result.
func (l *Ledger) Adjustment(idempotencyKey string) (Entry, bool) {
	l.idem.Lock()
	defer l.idem.Unlock()
	e, ok := l.idem.m[idempotencyKey]
	return e, ok
}

// SameAdjustment reports whether r asks for the adjustment e is (the same
// account, amount, reason and request).
func (e *Entry) SameAdjustment(r *AdjustRequest) bool {
	return e.Account == r.Account && e.Amount == r.Amount && e.Reason == r.Reason && e.RequestID == r.RequestID
}

// Check checks a new adjustment's amount, reason and request ID (the
// idempotency key is checked before a retry is looked up).
func (r *AdjustRequest) Check() error {
	if r.Amount == 0 {
		return fmt.Errorf("%w: amount must not be zero", ErrInvalid)
	}
	if r.Reason == "" {
		return fmt.Errorf("%w: reason is required", ErrInvalid)
	}
	if err := errors.Join(ValidText("reason", r.Reason), ValidText("actor", r.Actor)); err != nil {
		return err
	}
	if r.RequestID != "" {
		return ValidID("request_id", r.RequestID)
	}
	return nil
}

func adjustLocked(a *account, amount, now int64) error {
	total, err := addChecked(a.adjusted, amount)
	if err != nil {
		return err
	}
	if err := a.checkCreditIn(amount); err != nil {
		return err
	}
	if amount > 0 {
		if err := a.addCredit(CreditAdjust, adjustBucketID, neverExpires, amount, now, 0); err != nil {
			return err
		}
	} else {
		if amount == math.MinInt64 {
			return ErrOverflow
		}
		debt, err := addChecked(a.debt, a.spendFree(-amount, now))
		if err != nil {
			return err
		}
		a.debt = debt
		a.dropEmpty()
	}
	a.adjusted = total
	return nil
}

// appendAdjust encodes an adjustment record: v amount, s reason, s
// requestID, s idempotencyKey, s actor, v availableAfter.
func appendAdjust(dst []byte, e *Entry) []byte {
	dst = appendVarint(dst, e.Amount)
	dst = appendString(dst, e.Reason)
	dst = appendString(dst, e.RequestID)
	dst = appendString(dst, e.IdempotencyKey)
	dst = appendString(dst, e.Actor)
	return appendVarint(dst, e.AvailableAfter)
}

func (d *decoder) adjust(e *Entry) {
	e.Amount = d.varint()
	e.Reason = d.string()
	e.RequestID = d.string()
	e.IdempotencyKey = d.string()
	e.Actor = d.string()
	e.AvailableAfter = d.varint()
}

// adjust replays an adjustment, refusing an idempotency key used twice.
func (r *replayed) adjust() error {
	e := Entry{ID: r.v.Seq, TimeNanos: r.v.TimeNanos, Kind: EntryAdjust, Account: r.a.id}
	r.d.adjust(&e)
	if err := r.d.done(); err != nil {
		return err
	}
	if e.IdempotencyKey != "" {
		l := r.l
		l.idem.Lock()
		_, dup := l.idem.m[e.IdempotencyKey]
		l.idem.m[e.IdempotencyKey] = e
		l.idem.Unlock()
		if dup {
			return fmt.Errorf("%w: adjustment %q applied twice", ErrReplay, e.IdempotencyKey)
		}
	}
	r.availableAfter(e.AvailableAfter)
	return adjustLocked(r.a, e.Amount, r.v.TimeNanos)
}
