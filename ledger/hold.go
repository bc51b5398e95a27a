package ledger

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
)

// holdShard holds the open holds whose request ID hashes to it.
type holdShard struct {
	mu struct {
		sync.Mutex
		holds map[string]*hold
	}
	_ [cacheLinePad]byte
}

// hold is an open pre-authorization.
type hold struct {
	requestID string
	account   *account
	amount    int64
	keyID     string
	startedAt int64
	marks     []mark
	// spendTracked is set when the hold counts against its key's spend limit.
	spendTracked bool
}

var holdPool = sync.Pool{New: func() any { return new(hold) }}

func acquireHold() *hold { return holdPool.Get().(*hold) }

// releaseHold resets h and returns it to the pool; h must not be used after.
func releaseHold(h *hold) {
	marks := h.marks[:0]
	*h = hold{marks: marks}
	holdPool.Put(h)
}

// InsufficientError is the error of a hold that does not fit; it matches
// ErrInsufficient with errors.Is and carries the figures for the message.
type InsufficientError struct {
	Hold, Available int64
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("ledger: insufficient balance: the call needs a hold of %s credits, available %s",
		money.Format(e.Hold), money.Format(e.Available))
}

// Is makes errors.Is(err, ErrInsufficient) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficient }

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
		body = appendHoldRecord(s.mu.scratch[:0], &holdRecord{requestID: requestID, amount: amount, keyID: keyID, availableAfter: a.available()})
		s.mu.scratch = body
	}
	seq := l.appendLocked(kindHold, a.id, now, body)
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
	if err := ValidText("reason", reason); err != nil {
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
	seq := l.appendLocked(kind, a.id, now, body)
	if call != nil {
		// The call record is a record of its own, so that pruning it leaves
		// nothing of the client behind in the entry.
		if l.recording() {
			body = appendCallRecord(s.mu.scratch[:0], call)
			s.mu.scratch = body
		}
		seq = l.appendCallLocked(kindCall, a.id, now, body, call.RequestID)
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

// holdEnd is the body of a settle or void record: how the hold ended and
// what a statement needs of the call (its catalogue model and token
// counts). Nothing the client sent is in it: the call record, with the
// client's strings, is a record of its own that retention prunes.
type holdEnd struct {
	requestID      string
	held, charged  int64
	reason         string // of a void
	availableAfter int64
	// modelID and tokens summarise the call; a legacy record may instead
	// carry its whole call record, decoded into call.
	modelID string
	tokens  tokens.Counts
	call    *CallRecord
}

// Formats of a hold end's usage part.
const (
	holdEndNoUsage    = 0
	holdEndCallRecord = 1 // legacy: the whole call record
	holdEndUsage      = 2
)

func appendHoldEnd(dst []byte, kind recordKind, e *holdEnd) []byte {
	dst = appendString(dst, e.requestID)
	dst = appendVarint(dst, e.held)
	if kind == kindVoid {
		dst = appendString(dst, e.reason)
	} else {
		dst = appendVarint(dst, e.charged)
	}
	dst = appendVarint(dst, e.availableAfter)
	dst = append(dst, holdEndUsage)
	dst = appendString(dst, e.modelID)
	return appendTokens(dst, &e.tokens)
}

func (d *decoder) holdEnd(kind recordKind, e *holdEnd) {
	e.requestID = d.string()
	e.held = d.varint()
	if kind == kindVoid {
		e.reason = d.string()
	} else {
		e.charged = d.varint()
	}
	e.availableAfter = d.varint()
	switch f := d.byte(); f {
	case holdEndNoUsage:
	case holdEndCallRecord:
		e.call = new(CallRecord)
		d.callRecord(e.call)
		e.modelID, e.tokens = e.call.Model, e.call.Counts
	case holdEndUsage:
		e.modelID = d.string()
		d.tokens(&e.tokens)
	default:
		d.fail(fmt.Errorf("ledger: unknown hold end format %d", f))
	}
}

// holdRecord is the body of a hold record: s requestID, v amount, s keyID,
// v availableAfter.
type holdRecord struct {
	requestID, keyID       string
	amount, availableAfter int64
}

func appendHoldRecord(dst []byte, h *holdRecord) []byte {
	dst = appendString(dst, h.requestID)
	dst = appendVarint(dst, h.amount)
	dst = appendString(dst, h.keyID)
	return appendVarint(dst, h.availableAfter)
}

func (d *decoder) holdRecord(h *holdRecord) {
	h.requestID = d.string()
	h.amount = d.varint()
	h.keyID = d.string()
	h.availableAfter = d.varint()
}

// hold replays a hold with the live operation's checks.
func (r *replayed) hold() error {
	var hr holdRecord
	r.d.holdRecord(&hr)
	if err := r.d.done(); err != nil {
		return err
	}
	l, a := r.l, r.a
	hs := l.holdShardOf(hr.requestID)
	hs.mu.Lock()
	h, err := l.holdLocked(hs, a, hr.requestID, hr.keyID, hr.amount, r.v.TimeNanos)
	if err == nil {
		hs.mu.holds[hr.requestID] = h
		a.reserve(h, l.spendLimitOf(hr.keyID), r.v.TimeNanos)
	}
	hs.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: hold %q: %w", ErrReplay, hr.requestID, err)
	}
	r.availableAfter(hr.availableAfter)
	return nil
}

// endHold replays a settlement or a void: the hold must be open, on this
// account, for the amount the record says.
func (r *replayed) endHold() error {
	var he holdEnd
	r.d.holdEnd(recordKind(r.v.Kind), &he)
	if err := r.d.done(); err != nil {
		return err
	}
	l, a := r.l, r.a
	hs := l.holdShardOf(he.requestID)
	hs.mu.Lock()
	h := hs.mu.holds[he.requestID]
	if h != nil && h.account == a && h.amount == he.held {
		delete(hs.mu.holds, he.requestID)
	} else {
		h = nil
	}
	hs.mu.Unlock()
	if h == nil {
		return fmt.Errorf("%w: no open hold of %d for request %q on account %q", ErrReplay, he.held, he.requestID, a.id)
	}
	if err := l.settleLocked(a, h, he.charged, r.v.TimeNanos); err != nil {
		return err
	}
	releaseHold(h)
	r.availableAfter(he.availableAfter)
	return nil
}
