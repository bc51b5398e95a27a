package ledger

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// InsufficientError is the error of a hold that does not fit; it matches
// ErrInsufficient with errors.Is and carries the figures for the message.
type InsufficientError struct {
	Hold, Available int64
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("ledger: insufficient balance: the call needs a hold of %s credits, available %s",
		FormatAmount(e.Hold), FormatAmount(e.Available))
}

// Is makes errors.Is(err, ErrInsufficient) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficient }

// AccountSpec describes a new account.
type AccountSpec struct {
	ID    string
	Email string
	// Multiplier is the account's price multiplier in parts per 1e9 (1e9 is
	// 1x); 0 means 1x.
	Multiplier int64
	Limits     Limits
}

// AccountInfo is a snapshot of an account.
type AccountInfo struct {
	ID         string
	Email      string
	Multiplier int64
	Limits     Limits
	Frozen     bool
	// Available is what new holds can take; negative while the account owes.
	Available int64
	Held      int64
	Charged   int64
	// ExpiresAtNanos is the soonest expiry among credits with a positive
	// remainder, 0 if none.
	ExpiresAtNanos int64
	CreatedAtNanos int64
	TopUps         int64
	Adjusted       int64
	Expired        int64
	OpenHolds      int
	// Credits lists the account's credit buckets in spend order.
	Credits []CreditInfo
}

// CreditInfo is one credit bucket of an account.
type CreditInfo struct {
	Credit         Credit
	ExpiresAtNanos int64 // 0 for credit that never expires
	Remaining      int64
	Earmarked      int64
}

func (a *account) info() AccountInfo {
	ai := AccountInfo{
		ID: a.id, Email: a.email, Multiplier: a.multiplier, Limits: a.limits, Frozen: a.frozen,
		Available: a.available(), Held: a.held, Charged: a.charged, ExpiresAtNanos: a.expiresAt(),
		CreatedAtNanos: a.createdAt, TopUps: a.toppedUp, Adjusted: a.adjusted, Expired: a.expired,
		OpenHolds: a.openHolds,
	}
	for _, b := range a.buckets {
		exp := b.expiresAt
		if exp == neverExpires {
			exp = 0
		}
		ai.Credits = append(ai.Credits, CreditInfo{Credit: b.credit, ExpiresAtNanos: exp, Remaining: b.remaining, Earmarked: b.earmarked})
	}
	return ai
}

func validLimits(l Limits) error {
	if l.RPM < -1 || l.TPM < -1 || l.Concurrency < -1 {
		return fmt.Errorf("%w: limits must be -1 (default), 0 (unlimited) or positive", ErrInvalid)
	}
	return nil
}

func validMultiplier(m int64) error {
	if m < 0 || m > 1000*NanosPerCredit {
		return fmt.Errorf("%w: multiplier must be between 0 and 1000", ErrInvalid)
	}
	return nil
}

// CreateAccount creates an account and returns once its record is synced.
func (l *Ledger) CreateAccount(spec AccountSpec) (AccountInfo, error) {
	if err := validID("account ID", spec.ID); err != nil {
		return AccountInfo{}, err
	}
	if err := validText("email", spec.Email); err != nil {
		return AccountInfo{}, err
	}
	if spec.Multiplier == 0 {
		spec.Multiplier = NanosPerCredit
	}
	if err := validMultiplier(spec.Multiplier); err != nil {
		return AccountInfo{}, err
	}
	if err := validLimits(spec.Limits); err != nil {
		return AccountInfo{}, err
	}
	now := l.now()
	s := l.shardOf(spec.ID)
	s.mu.Lock()
	if s.mu.accounts[spec.ID] != nil {
		s.mu.Unlock()
		return AccountInfo{}, fmt.Errorf("%w: %q", ErrAccountExists, spec.ID)
	}
	a := &account{shard: s, id: spec.ID, createdAt: now}
	applyAccountFields(a, spec.Email, spec.Multiplier, spec.Limits)
	s.mu.accounts[spec.ID] = a
	body := appendAccountFields(s.mu.scratch[:0], a)
	s.mu.scratch = body
	seq := l.appendLocked(kindAccountCreate, false, a.id, now, body)
	info := a.info()
	s.mu.Unlock()
	return info, l.waitSynced(seq)
}

func applyAccountFields(a *account, email string, multiplier int64, limits Limits) {
	a.email, a.multiplier, a.limits = email, multiplier, limits
}

func appendAccountFields(dst []byte, a *account) []byte {
	dst = appendString(dst, a.email)
	dst = appendVarint(dst, a.multiplier)
	dst = appendVarint(dst, a.limits.RPM)
	dst = appendVarint(dst, a.limits.TPM)
	return appendVarint(dst, a.limits.Concurrency)
}

// AccountPatch changes an account's settings; nil fields stay as they are.
type AccountPatch struct {
	Email      *string
	Multiplier *int64
	Limits     *Limits
}

// UpdateAccount applies p and returns once its record is synced.
func (l *Ledger) UpdateAccount(id string, p AccountPatch) (AccountInfo, error) {
	s := l.shardOf(id)
	s.mu.Lock()
	a := s.mu.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return AccountInfo{}, fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	email, mult, limits := a.email, a.multiplier, a.limits
	if p.Email != nil {
		email = *p.Email
	}
	if p.Multiplier != nil {
		mult = *p.Multiplier
	}
	if p.Limits != nil {
		limits = *p.Limits
	}
	err := errors.Join(validText("email", email), validMultiplier(mult), validLimits(limits))
	if err != nil {
		s.mu.Unlock()
		return AccountInfo{}, err
	}
	applyAccountFields(a, email, mult, limits)
	body := appendAccountFields(s.mu.scratch[:0], a)
	s.mu.scratch = body
	seq := l.appendLocked(kindAccountUpdate, false, a.id, l.now(), body)
	info := a.info()
	s.mu.Unlock()
	return info, l.waitSynced(seq)
}

// SetFrozen freezes or unfreezes an account and returns once the change is
// synced. A frozen account can hold nothing new; running calls still settle.
func (l *Ledger) SetFrozen(id string, frozen bool, actor string) error {
	if err := validText("actor", actor); err != nil {
		return err
	}
	s := l.shardOf(id)
	s.mu.Lock()
	a := s.mu.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	a.frozen = frozen
	kind := kindUnfreeze
	if frozen {
		kind = kindFreeze
	}
	body := appendString(s.mu.scratch[:0], actor)
	s.mu.scratch = body
	seq := l.appendLocked(kind, false, id, l.now(), body)
	s.mu.Unlock()
	return l.waitSynced(seq)
}

// Account returns a snapshot of the account.
func (l *Ledger) Account(id string) (AccountInfo, error) {
	s := l.shardOf(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mu.accounts[id]
	if a == nil {
		return AccountInfo{}, fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	return a.info(), nil
}

// Accounts calls fn with a snapshot of every account, shard by shard. fn
// runs under the shard's lock: it must be quick and must not call the ledger.
func (l *Ledger) Accounts(fn func(AccountInfo)) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, a := range s.mu.accounts {
			fn(a.info())
		}
		s.mu.Unlock()
	}
}

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
	if err := errors.Join(validID("order_id", r.OrderID), validText("actor", r.Actor)); err != nil {
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
	if err := l.validTopUp(&r, now); err != nil {
		unlock()
		return e, false, err
	}
	a := s.mu.accounts[r.Account]
	if a == nil {
		unlock()
		return e, false, fmt.Errorf("%w: %q", ErrUnknownAccount, r.Account)
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
	body := appendVarint(s.mu.scratch[:0], r.Amount)
	body = appendString(body, r.OrderID)
	body = append(body, byte(r.Credit))
	body = appendVarint(body, expiresAt)
	body = appendUvarint(body, bucketID)
	body = appendString(body, r.Actor)
	body = appendVarint(body, e.AvailableAfter)
	s.mu.scratch = body
	e.ID = l.appendLocked(kindTopUp, true, a.id, now, body)
	opsTopUp.Inc()
	l.orders.m[r.OrderID] = e
	unlock()
	return e, true, l.waitSynced(e.ID)
}

// validTopUp checks a new top-up's amount, credit kind and expiry.
func (l *Ledger) validTopUp(r *TopUpRequest, now int64) error {
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
			return fmt.Errorf("%w: paid credit expires %s after the latest paid top-up; expires_at is not accepted", ErrInvalid, l.cfg.PaidCreditLifetime)
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

// Hold reserves amount on the account for the call requestID, atomically
// against the available balance. It fails with ErrFrozen, ErrAlreadyHeld or
// an *InsufficientError (ErrInsufficient) and changes nothing then. The
// returned Commit's Wait tells when the hold is durable: the caller may start
// the upstream request meanwhile, but must wait before the client sees any of
// the reply. Zero allocations in steady state.
func (l *Ledger) Hold(accountID, requestID, keyID string, amount int64) (Commit, error) {
	return l.HoldForKey(accountID, requestID, keyID, amount, SpendLimit{})
}

// HoldForKey is Hold for a call of a key with a spend limit: the hold is also
// refused (a *SpendLimitError, ErrSpendLimit) when the key's settled charges
// of the period plus its open holds plus amount would exceed the limit.
func (l *Ledger) HoldForKey(accountID, requestID, keyID string, amount int64, sl SpendLimit) (Commit, error) {
	if amount < 0 || len(requestID) == 0 || len(requestID) > MaxIDBytes || len(keyID) > MaxIDBytes {
		return Commit{}, fmt.Errorf("%w: hold of %d for request %q", ErrInvalid, amount, requestID)
	}
	now := l.now()
	s := l.shardOf(accountID)
	sampled := s.lock()
	a := s.mu.accounts[accountID]
	if a == nil {
		s.mu.Unlock()
		return Commit{}, ErrUnknownAccount
	}
	if a.frozen {
		s.mu.Unlock()
		return Commit{}, ErrFrozen
	}
	l.expireDueLocked(s, a, now)
	hs := l.holdShardOf(requestID)
	hs.mu.Lock()
	h, err := l.holdLocked(hs, a, requestID, keyID, amount, now)
	if err == nil {
		if err = a.checkSpend(keyID, sl, amount, now); err != nil {
			l.unholdLocked(a, h)
		}
	}
	if err != nil {
		hs.mu.Unlock()
		s.mu.Unlock()
		opsRefused.Inc()
		return Commit{}, err
	}
	a.reserve(h, sl, now)
	var body []byte
	if l.recording() {
		body = appendString(s.mu.scratch[:0], requestID)
		body = appendVarint(body, amount)
		body = appendString(body, keyID)
		body = appendVarint(body, a.available())
		s.mu.scratch = body
	}
	seq := l.appendLocked(kindHold, true, a.id, now, body)
	hs.mu.holds[h.requestID] = h
	opsHold.Inc()
	hs.mu.Unlock()
	s.mu.Unlock()
	if !sampled.IsZero() {
		holdLatency.UpdateDuration(sampled)
	}
	return Commit{log: l.log, seq: seq}, nil
}

// holdLocked checks and applies a hold; it does not insert it into the hold
// shard. REQUIRES: the account's shard and hs locked.
func (l *Ledger) holdLocked(hs *holdShard, a *account, requestID, keyID string, amount, now int64) (*hold, error) {
	if a.frozen {
		return nil, ErrFrozen
	}
	if _, ok := hs.mu.holds[requestID]; ok {
		return nil, ErrAlreadyHeld
	}
	if avail := a.available(); avail < amount {
		return nil, &InsufficientError{Hold: amount, Available: avail}
	}
	h := acquireHold()
	h.requestID, h.account, h.amount, h.keyID, h.startedAt = requestID, a, amount, keyID, now
	h.marks = a.earmark(h.marks[:0], amount, now)
	a.held += amount
	a.openHolds++
	openHolds.Inc()
	return h, nil
}

// unholdLocked undoes holdLocked before anything was recorded.
func (l *Ledger) unholdLocked(a *account, h *hold) {
	a.spendHeld(h.marks, 0, h.startedAt)
	a.held -= h.amount
	a.openHolds--
	openHolds.Dec()
	releaseHold(h)
}

// takeHold finds the open hold of requestID, locks its account's shard and
// removes the hold from its hold shard. On success the caller owns h and
// holds s.mu; it must unlock it.
func (l *Ledger) takeHold(requestID string) (h *hold, s *shard, sampled time.Time, err error) {
	hs := l.holdShardOf(requestID)
	hs.mu.Lock()
	h = hs.mu.holds[requestID]
	hs.mu.Unlock()
	if h == nil {
		return nil, nil, sampled, ErrNoOpenHold
	}
	a := h.account
	s = a.shard
	sampled = s.lock()
	hs.mu.Lock()
	// Another settle or void may have taken it, and the pool may have reused
	// it for another request, between the two locks.
	if cur := hs.mu.holds[requestID]; cur != h || h.account != a {
		hs.mu.Unlock()
		s.mu.Unlock()
		return nil, nil, sampled, ErrNoOpenHold
	}
	delete(hs.mu.holds, requestID)
	hs.mu.Unlock()
	return h, s, sampled, nil
}

// Settle ends the hold of requestID at the actual price: the rest of the hold
// is available again at once, an overrun is charged beyond it (from free
// credit, then as debt). It fills call.Held and call.Charged and stores call
// with the settlement (call may be nil). Settling an unknown or ended hold is
// ErrNoOpenHold. Zero allocations in steady state.
func (l *Ledger) Settle(requestID string, actual int64, call *CallRecord) (Commit, error) {
	if actual < 0 {
		return Commit{}, fmt.Errorf("%w: negative charge %d", ErrInvalid, actual)
	}
	return l.endHold(requestID, actual, "", call)
}

// Void ends the hold of requestID without charging anything, for reason
// (required). It stores call with the void (call may be nil).
func (l *Ledger) Void(requestID, reason string, call *CallRecord) (Commit, error) {
	if reason == "" {
		return Commit{}, fmt.Errorf("%w: a void needs a reason", ErrInvalid)
	}
	if err := validText("reason", reason); err != nil {
		return Commit{}, err
	}
	return l.endHold(requestID, 0, reason, call)
}

// endHold settles the hold of requestID at actual, or voids it when reason
// is set (actual is then 0): a void is a settlement at zero recorded with
// its reason.
func (l *Ledger) endHold(requestID string, actual int64, reason string, call *CallRecord) (Commit, error) {
	h, s, sampled, err := l.takeHold(requestID)
	if err != nil {
		return Commit{}, err
	}
	a := h.account
	now := l.now()
	if err := l.settleLocked(a, h, actual, now); err != nil {
		// Put the hold back: nothing changed.
		hs := l.holdShardOf(requestID)
		hs.mu.Lock()
		hs.mu.holds[requestID] = h
		hs.mu.Unlock()
		s.mu.Unlock()
		return Commit{}, err
	}
	if call != nil {
		call.Held, call.Charged = h.amount, actual
	}
	kind, ops := kindSettle, opsSettle
	if reason != "" {
		kind, ops = kindVoid, opsVoid
	}
	var body []byte
	if l.recording() {
		e := holdEnd{requestID: requestID, held: h.amount, charged: actual, reason: reason, availableAfter: a.available()}
		if call != nil {
			e.modelID, e.tokens = call.ModelID, call.Counts
		}
		body = appendHoldEnd(s.mu.scratch[:0], kind, &e)
		s.mu.scratch = body
	}
	seq := l.appendLocked(kind, true, a.id, now, body)
	if call != nil {
		// The call record is a record of its own, so that pruning it leaves
		// nothing of the client behind in the entry.
		if l.recording() {
			body = appendCallRecord(s.mu.scratch[:0], call)
			s.mu.scratch = body
		}
		seq = l.appendCallLocked(kindCall, false, a.id, now, body, call.RequestID)
	}
	ops.Inc()
	if last := l.expireDueLocked(s, a, now); last != 0 {
		seq = last
	}
	s.mu.Unlock()
	releaseHold(h)
	if !sampled.IsZero() {
		settleLatency.UpdateDuration(sampled)
	}
	return Commit{log: l.log, seq: seq}, nil
}

// settleLocked applies a settlement (a void is one at zero). It checks for
// overflow before changing anything. REQUIRES: the account's shard locked, h
// taken.
func (l *Ledger) settleLocked(a *account, h *hold, actual, now int64) error {
	charged, err := addChecked(a.charged, actual)
	if err != nil {
		return err
	}
	if actual > h.amount {
		if _, err := addChecked(a.debt, actual-h.amount); err != nil {
			return err
		}
	}
	if h.spendTracked {
		a.releaseSpend(h, actual, l.spendLimitOf(h.keyID), now)
	}
	a.debt += a.spendHeld(h.marks, actual, now)
	a.held -= h.amount
	a.charged = charged
	a.openHolds--
	openHolds.Dec()
	a.repayDebt(now)
	a.dropEmpty()
	return nil
}

// RecordCall stores the record of a call that ended without a hold (rejected
// after authentication). The account must exist.
func (l *Ledger) RecordCall(call *CallRecord) (Commit, error) {
	if err := validID("request ID", call.RequestID); err != nil {
		return Commit{}, err
	}
	s := l.shardOf(call.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.accounts[call.AccountID] == nil {
		return Commit{}, fmt.Errorf("%w: %q", ErrUnknownAccount, call.AccountID)
	}
	var body []byte
	if l.recording() {
		body = appendCallRecord(s.mu.scratch[:0], call)
		s.mu.scratch = body
	}
	seq := l.appendCallLocked(kindCall, false, call.AccountID, l.now(), body, call.RequestID)
	return Commit{log: l.log, seq: seq}, nil
}

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
		if err := validID("idempotency_key", r.IdempotencyKey); err != nil {
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
	if err := validAdjustment(&r); err != nil {
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
	if err := adjustLocked(a, r.Amount, now); err != nil {
		unlock()
		return e, false, err
	}
	e = Entry{TimeNanos: now, Kind: EntryAdjust, Account: a.id, Amount: r.Amount, AvailableAfter: a.available(),
		RequestID: r.RequestID, Reason: r.Reason, Actor: r.Actor, IdempotencyKey: r.IdempotencyKey}
	body := appendVarint(s.mu.scratch[:0], r.Amount)
	body = appendString(body, r.Reason)
	body = appendString(body, r.RequestID)
	body = appendString(body, r.IdempotencyKey)
	body = appendString(body, r.Actor)
	body = appendVarint(body, e.AvailableAfter)
	s.mu.scratch = body
	e.ID = l.appendLocked(kindAdjust, true, a.id, now, body)
	opsAdjust.Inc()
	if r.IdempotencyKey != "" {
		l.idem.m[r.IdempotencyKey] = e
	}
	unlock()
	return e, true, l.waitSynced(e.ID)
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

// validAdjustment checks a new adjustment's amount, reason and IDs.
func validAdjustment(r *AdjustRequest) error {
	if r.Amount == 0 {
		return fmt.Errorf("%w: amount must not be zero", ErrInvalid)
	}
	if r.Reason == "" {
		return fmt.Errorf("%w: reason is required", ErrInvalid)
	}
	if err := errors.Join(validText("reason", r.Reason), validText("actor", r.Actor)); err != nil {
		return err
	}
	if r.RequestID != "" {
		return validID("request_id", r.RequestID)
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
		if err := a.addCredit(creditAdjust, adjustBucketID, neverExpires, amount, now, 0); err != nil {
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

// expireDueLocked expires the free credit of every bucket of a whose expiry
// is at or before now, one expire entry per bucket, and returns the last
// entry's sequence number (0 if nothing expired). Credit earmarked by a hold
// stays until the hold ends. REQUIRES: s.mu held.
func (l *Ledger) expireDueLocked(s *shard, a *account, now int64) uint64 {
	if !a.freeCreditDue(now) {
		return 0
	}
	var seq uint64
	for i := range a.buckets {
		b := &a.buckets[i]
		if b.expiresAt > now || b.free() <= 0 {
			continue
		}
		amount := b.free()
		b.remaining -= amount
		a.expired += amount
		body := appendUvarint(s.mu.scratch[:0], b.id)
		body = append(body, byte(b.credit))
		body = appendVarint(body, b.expiresAt)
		body = appendVarint(body, amount)
		body = appendVarint(body, a.available())
		s.mu.scratch = body
		seq = l.appendLocked(kindExpire, true, a.id, now, body)
		opsExpire.Inc()
	}
	a.dropEmpty()
	return seq
}

// Expire applies every expiry due at now, in every account, and waits for the
// resulting entries per the log's mode. It returns how many entries it made.
func (l *Ledger) Expire(now int64) (int, error) {
	n := 0
	var last uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, a := range s.mu.accounts {
			before := a.expired
			if seq := l.expireDueLocked(s, a, now); seq != 0 {
				last = max(last, seq)
				if a.expired != before {
					n++
				}
			}
		}
		s.mu.Unlock()
	}
	if last == 0 {
		return n, nil
	}
	return n, Commit{log: l.log, seq: last}.Wait()
}

// HoldInfo describes an open hold.
type HoldInfo struct {
	RequestID      string
	Account        string
	KeyID          string
	Amount         int64
	StartedAtNanos int64
}

// OpenHolds lists the open holds.
func (l *Ledger) OpenHolds() []HoldInfo {
	var out []HoldInfo
	for i := range l.holds {
		hs := &l.holds[i]
		hs.mu.Lock()
		for _, h := range hs.mu.holds {
			out = append(out, HoldInfo{RequestID: h.requestID, Account: h.account.id, KeyID: h.keyID, Amount: h.amount, StartedAtNanos: h.startedAt})
		}
		hs.mu.Unlock()
	}
	return out
}

// SweepHolds voids every hold older than the hold timeout at now whose call
// live does not report running (nil: none is), with reason
// ReasonHoldTimeout, and returns how many it voided. A running call's hold
// is left to its settlement whatever its age: voiding it would give its
// output away.
func (l *Ledger) SweepHolds(now int64, live func(requestID string) bool) (int, error) {
	cutoff := now - int64(l.cfg.HoldTimeout)
	n := 0
	for _, h := range l.OpenHolds() {
		if h.StartedAtNanos > cutoff || (live != nil && live(h.RequestID)) {
			continue
		}
		c, err := l.Void(h.RequestID, ReasonHoldTimeout, nil)
		if errors.Is(err, ErrNoOpenHold) {
			continue // ended meanwhile
		}
		if err != nil {
			return n, err
		}
		if err := c.Wait(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// AccountSettings is what the gateway needs of an account on every call.
type AccountSettings struct {
	Frozen     bool
	Multiplier int64
	Limits     Limits
	// Available is the available balance at the read: a hint for refusing
	// an empty account early; the hold decides.
	Available int64
}

// Settings returns the account's settings without copying its credits: the
// cheap read of the request path.
func (l *Ledger) Settings(id string) (AccountSettings, error) {
	s := l.shardOf(id)
	s.mu.Lock()
	a := s.mu.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return AccountSettings{}, ErrUnknownAccount
	}
	st := AccountSettings{Frozen: a.frozen, Multiplier: a.multiplier, Limits: a.limits, Available: a.available()}
	s.mu.Unlock()
	return st, nil
}
