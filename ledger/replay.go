package ledger

import (
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// ErrReplay reports a record that cannot be applied to the state replay has
// built so far: the log contradicts itself. The wrapping error names the
// record.
var ErrReplay = errors.New("ledger: record does not apply")

// replay rebuilds the state from the latest checkpoint and the records after
// it.
func (l *Ledger) replay() error {
	seq, state, ok, err := l.log.LoadCheckpoint()
	if err != nil {
		return fmt.Errorf("cannot load checkpoint: %w", err)
	}
	if ok {
		if err := l.decodeState(state); err != nil {
			return fmt.Errorf("cannot decode checkpoint %d: %w", seq, err)
		}
		l.lastCheckpoint.Store(seq)
	}
	return l.log.Replay(seq, l.apply)
}

// apply applies one replayed record with the same code the live operation
// used, and checks the balance the record says the operation left.
func (l *Ledger) apply(v wal.RecordView) error {
	d := decoder{b: v.Body}
	now := v.TimeNanos
	accountID := string(v.Account)
	s := l.shardOf(accountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mu.accounts[accountID]
	if a == nil && v.Kind != kindAccountCreate && v.Kind != kindCall {
		return fmt.Errorf("%w: unknown account %q", ErrReplay, accountID)
	}
	var availableAfter int64
	checkAvailable := false
	switch v.Kind {
	case kindAccountCreate:
		if a != nil {
			return fmt.Errorf("%w: account %q created twice", ErrReplay, accountID)
		}
		a = &account{shard: s, id: accountID, createdAt: now}
		d.accountFields(a)
		s.mu.accounts[accountID] = a
	case kindAccountUpdate:
		d.accountFields(a)
	case kindFreeze, kindUnfreeze:
		_ = d.string() // actor
		a.frozen = v.Kind == kindFreeze
	case kindTopUp:
		e := Entry{ID: v.Seq, TimeNanos: now, Kind: EntryTopUp, Account: accountID}
		e.Amount = d.varint()
		e.OrderID = d.string()
		e.Credit = Credit(d.byte())
		e.ExpiresAtNanos = d.varint()
		bucketID := d.uvarint()
		e.Actor = d.string()
		e.AvailableAfter = d.varint()
		if err := d.done(); err != nil {
			return err
		}
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
		if err := l.topUpLocked(a, e.Amount, e.Credit, bucketID, e.ExpiresAtNanos, now); err != nil {
			return err
		}
		availableAfter, checkAvailable = e.AvailableAfter, true
	case kindHold:
		requestID := d.string()
		amount := d.varint()
		keyID := d.string()
		availableAfter, checkAvailable = d.varint(), true
		if err := d.done(); err != nil {
			return err
		}
		hs := l.holdShardOf(requestID)
		hs.mu.Lock()
		h, err := l.holdLocked(hs, a, requestID, keyID, amount, now)
		if err == nil {
			hs.mu.holds[requestID] = h
			a.reserve(h, l.spendLimitOf(keyID), now)
		}
		hs.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: hold %q: %w", ErrReplay, requestID, err)
		}
	case kindSettle, kindVoid:
		var he holdEnd
		d.holdEnd(v.Kind, &he)
		if err := d.done(); err != nil {
			return err
		}
		requestID, held, charged := he.requestID, he.held, he.charged
		availableAfter, checkAvailable = he.availableAfter, true
		hs := l.holdShardOf(requestID)
		hs.mu.Lock()
		h := hs.mu.holds[requestID]
		if h != nil && h.account == a && h.amount == held {
			delete(hs.mu.holds, requestID)
		} else {
			h = nil
		}
		hs.mu.Unlock()
		if h == nil {
			return fmt.Errorf("%w: no open hold of %d for request %q on account %q", ErrReplay, held, requestID, accountID)
		}
		if err := l.settleLocked(a, h, charged, now); err != nil {
			return err
		}
		releaseHold(h)
	case kindAdjust:
		e := Entry{ID: v.Seq, TimeNanos: now, Kind: EntryAdjust, Account: accountID}
		e.Amount = d.varint()
		e.Reason = d.string()
		e.RequestID = d.string()
		e.IdempotencyKey = d.string()
		e.Actor = d.string()
		e.AvailableAfter = d.varint()
		if err := d.done(); err != nil {
			return err
		}
		if e.IdempotencyKey != "" {
			l.idem.Lock()
			_, dup := l.idem.m[e.IdempotencyKey]
			l.idem.m[e.IdempotencyKey] = e
			l.idem.Unlock()
			if dup {
				return fmt.Errorf("%w: adjustment %q applied twice", ErrReplay, e.IdempotencyKey)
			}
		}
		if err := adjustLocked(a, e.Amount, now); err != nil {
			return err
		}
		availableAfter, checkAvailable = e.AvailableAfter, true
	case kindExpire:
		bucketID := d.uvarint()
		_ = d.byte()   // credit
		_ = d.varint() // expiresAt
		amount := d.varint()
		availableAfter, checkAvailable = d.varint(), true
		if err := d.done(); err != nil {
			return err
		}
		i := a.bucketIndex(bucketID)
		if i < 0 || a.buckets[i].expiresAt > now || a.buckets[i].free() != amount {
			return fmt.Errorf("%w: expiry of %d from bucket %d of %q", ErrReplay, amount, bucketID, accountID)
		}
		a.buckets[i].remaining -= amount
		a.expired += amount
		a.dropEmpty()
	case kindKeyCreate:
		k := &Key{AccountID: accountID, CreatedAtNanos: now}
		k.ID = d.string()
		copy(k.Hash[:], d.bytes())
		k.Name = d.string()
		k.Hint = d.string()
		d.keyFields(k)
		if err := d.done(); err != nil {
			return err
		}
		l.keys.Lock()
		l.keys.byID[k.ID] = k
		l.keys.byHash[k.Hash] = k
		l.keys.Unlock()
	case kindKeyUpdate, kindKeyRevoke:
		id := d.string()
		l.keys.Lock()
		cur := l.keys.byID[id]
		if cur == nil {
			l.keys.Unlock()
			return fmt.Errorf("%w: unknown key %q", ErrReplay, id)
		}
		k := *cur
		if v.Kind == kindKeyUpdate {
			k.Name = d.string()
			d.keyFields(&k)
		} else {
			k.Revoked = true
		}
		l.keys.byID[id] = &k
		l.keys.byHash[k.Hash] = &k
		l.keys.Unlock()
	case kindCall:
		var c CallRecord
		d.callRecord(&c)
	default:
		return fmt.Errorf("%w: unknown record kind %d", ErrReplay, v.Kind)
	}
	if err := d.done(); err != nil {
		return err
	}
	if checkAvailable && a.available() != availableAfter {
		return fmt.Errorf("%w: account %q available %d after replay, record says %d", ErrReplay, accountID, a.available(), availableAfter)
	}
	return nil
}

func (d *decoder) accountFields(a *account) {
	a.email = d.string()
	a.multiplier = d.varint()
	a.limits.RPM = d.varint()
	a.limits.TPM = d.varint()
	a.limits.Concurrency = d.varint()
}
