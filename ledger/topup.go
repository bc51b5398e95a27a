package ledger

import (
	"errors"
	"fmt"
	"time"
)

// TopUpRequest is a top-up.
type TopUpRequest struct {
	Account string
	Amount  int64
	// OrderID makes the top-up idempotent: the same order again returns the
	// first entry and credits nothing.
	OrderID string
	Credit  Credit
	// ExpiresAtNanos is required for gift credit and refused for paid credit,
	// which expires PaidCreditLifetime after the account's latest paid top-up.
	ExpiresAtNanos int64
	// Actor names who made the top-up (the admin token's name).
	Actor string
}

// TopUp credits an account once per order ID and returns the entry once it
// is synced. created is false when the order was already credited: the entry
// is then the first one. The same order ID with another account, amount,
// credit kind or expiry is ErrOrderConflict.
//
// Order IDs are unique across the whole ledger: the orders lock is held from
// the lookup to the insert, so two top-ups with one order ID for accounts in
// different shards cannot both credit. A retry is looked up before anything
// is validated, so that it returns the first result whatever has changed
// since (a gift's expires_at now in the past, say).
func (l *Ledger) TopUp(r TopUpRequest) (e Entry, created bool, err error) {
	if err := errors.Join(ValidID("order_id", r.OrderID), ValidText("actor", r.Actor)); err != nil {
		return e, false, err
	}
	s := l.shardOf(r.Account)
	s.mu.Lock()
	l.orders.Lock()
	unlock := func() {
		l.orders.Unlock()
		s.mu.Unlock()
	}
	if prev, ok := l.orders.m[r.OrderID]; ok {
		unlock()
		if prev.Account != r.Account || prev.Amount != r.Amount || prev.Credit != r.Credit ||
			(r.Credit == CreditGift && prev.ExpiresAtNanos != r.ExpiresAtNanos) {
			return e, false, fmt.Errorf("%w: order %q", ErrOrderConflict, r.OrderID)
		}
		return prev, false, l.waitSynced(prev.ID)
	}
	now := l.now()
	if err := r.Check(now, l.cfg.PaidCreditLifetime); err != nil {
		unlock()
		return e, false, err
	}
	a := s.mu.accounts[r.Account]
	if a == nil {
		unlock()
		return e, false, fmt.Errorf("%w: %q", ErrUnknownAccount, r.Account)
	}
	if a.closedAt != 0 {
		unlock()
		return e, false, fmt.Errorf("%w: %q takes no top-ups", ErrAccountClosed, r.Account)
	}
	l.expireDueLocked(s, a, now)
	expiresAt := r.ExpiresAtNanos
	if r.Credit == CreditPaid {
		expiresAt = now + int64(l.cfg.PaidCreditLifetime)
	}
	bucketID := a.nextBucketID()
	if err := l.topUpLocked(a, r.Amount, r.Credit, bucketID, expiresAt, now); err != nil {
		unlock()
		return e, false, err
	}
	e = Entry{TimeNanos: now, Kind: EntryTopUp, Account: a.id, Amount: r.Amount, AvailableAfter: a.available(),
		OrderID: r.OrderID, Actor: r.Actor, Credit: r.Credit, ExpiresAtNanos: expiresAt}
	body := appendTopUp(s.mu.scratch[:0], &e, bucketID)
	s.mu.scratch = body
	e.ID = l.appendLocked(kindTopUp, a.id, now, body)
	opsTopUp.Inc()
	l.orders.m[r.OrderID] = e
	unlock()
	return e, true, l.waitSynced(e.ID)
}

// Check checks a new top-up's amount, credit kind and expiry at now;
// paidLifetime is how long paid credit lasts (for the error's text).
func (r *TopUpRequest) Check(now int64, paidLifetime time.Duration) error {
	if r.Amount <= 0 {
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	switch r.Credit {
	case CreditGift:
		if r.ExpiresAtNanos <= now {
			return fmt.Errorf("%w: gift credit needs expires_at in the future", ErrInvalid)
		}
	case CreditPaid:
		if r.ExpiresAtNanos != 0 {
			return fmt.Errorf("%w: paid credit expires %s after the latest paid top-up; expires_at is not accepted", ErrInvalid, paidLifetime)
		}
	default:
		return fmt.Errorf("%w: credit kind %d", ErrInvalid, r.Credit)
	}
	return nil
}

// checkCreditIn refuses credit that would take the account's total credit
// (top-ups plus adjustments) out of the int64 range: every balance of the
// account is bounded by it, so no later sum can overflow either.
func (a *account) checkCreditIn(amount int64) error {
	in, err := addChecked(a.toppedUp, a.adjusted)
	if err == nil {
		_, err = addChecked(in, amount)
	}
	return err
}

// nextBucketID numbers the account's buckets; replay numbers them the same
// way because it applies the account's records in the same order.
func (a *account) nextBucketID() uint64 { return a.lastBucketID + 1 }

func (l *Ledger) topUpLocked(a *account, amount int64, c Credit, bucketID uint64, expiresAt, now int64) error {
	total, err := addChecked(a.toppedUp, amount)
	if err != nil {
		return err
	}
	if err := a.checkCreditIn(amount); err != nil {
		return err
	}
	if err := a.addCredit(c, bucketID, expiresAt, amount, now, l.cfg.MaxGiftBuckets); err != nil {
		return err
	}
	a.lastBucketID = max(a.lastBucketID, bucketID)
	a.toppedUp = total
	return nil
}

// appendTopUp encodes a top-up record: v amount, s orderID, b credit, v
// expiresAt, u bucketID, s actor, v availableAfter.
func appendTopUp(dst []byte, e *Entry, bucketID uint64) []byte {
	dst = appendVarint(dst, e.Amount)
	dst = appendString(dst, e.OrderID)
	dst = append(dst, byte(e.Credit))
	dst = appendVarint(dst, e.ExpiresAtNanos)
	dst = appendUvarint(dst, bucketID)
	dst = appendString(dst, e.Actor)
	return appendVarint(dst, e.AvailableAfter)
}

// topUp decodes a top-up record into e and returns its bucket.
func (d *decoder) topUp(e *Entry) (bucketID uint64) {
	e.Amount = d.varint()
	e.OrderID = d.string()
	e.Credit = Credit(d.byte())
	e.ExpiresAtNanos = d.varint()
	bucketID = d.uvarint()
	e.Actor = d.string()
	e.AvailableAfter = d.varint()
	return bucketID
}

// topUp replays a top-up, refusing an order ID credited twice.
func (r *replayed) topUp() error {
	e := Entry{ID: r.v.Seq, TimeNanos: r.v.TimeNanos, Kind: EntryTopUp, Account: r.a.id}
	bucketID := r.d.topUp(&e)
	if err := r.d.done(); err != nil {
		return err
	}
	l := r.l
	l.orders.Lock()
	_, dup := l.orders.m[e.OrderID]
	l.orders.m[e.OrderID] = e
	l.orders.Unlock()
	if dup {
		return fmt.Errorf("%w: order %q credited twice", ErrReplay, e.OrderID)
	}
	if e.Credit != CreditPaid && e.Credit != CreditGift {
		return fmt.Errorf("%w: credit kind %d", ErrReplay, e.Credit)
	}
	r.availableAfter(e.AvailableAfter)
	return l.topUpLocked(r.a, e.Amount, e.Credit, bucketID, e.ExpiresAtNanos, r.v.TimeNanos)
}
