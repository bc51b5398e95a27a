package ledger

import (
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/internal/money"
)

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
	// ClosedAtNanos is when the account was closed, 0 while it is open.
	ClosedAtNanos int64
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
		OpenHolds: a.openHolds, ClosedAtNanos: a.closedAt,
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
	if m < 0 || m > 1000*money.NanosPerCredit {
		return fmt.Errorf("%w: multiplier must be between 0 and 1000", ErrInvalid)
	}
	return nil
}

// Prepare checks spec as CreateAccount does and fills in the default
// multiplier (1x for 0).
func (spec *AccountSpec) Prepare() error {
	if spec.Multiplier == 0 {
		spec.Multiplier = money.NanosPerCredit
	}
	return errors.Join(ValidID("account ID", spec.ID), CheckAccountSettings(spec.Email, spec.Multiplier, spec.Limits))
}

// CheckAccountSettings checks an account's email, multiplier and limits.
func CheckAccountSettings(email string, multiplier int64, limits Limits) error {
	return errors.Join(ValidText("email", email), validMultiplier(multiplier), validLimits(limits))
}

// CreateAccount creates an account and returns once its record is synced.
func (l *Ledger) CreateAccount(spec AccountSpec) (AccountInfo, error) {
	if err := spec.Prepare(); err != nil {
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
	seq := l.appendLocked(kindAccountCreate, a.id, now, body)
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
	err := CheckAccountSettings(email, mult, limits)
	if err != nil {
		s.mu.Unlock()
		return AccountInfo{}, err
	}
	applyAccountFields(a, email, mult, limits)
	body := appendAccountFields(s.mu.scratch[:0], a)
	s.mu.scratch = body
	seq := l.appendLocked(kindAccountUpdate, a.id, l.now(), body)
	info := a.info()
	s.mu.Unlock()
	return info, l.waitSynced(seq)
}

// SetFrozen freezes or unfreezes an account and returns once the change is
// synced. A frozen account can hold nothing new; running calls still settle.
func (l *Ledger) SetFrozen(id string, frozen bool, actor string) error {
	if err := ValidText("actor", actor); err != nil {
		return err
	}
	s := l.shardOf(id)
	s.mu.Lock()
	a := s.mu.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	if a.closedAt != 0 && !frozen {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q cannot be unfrozen", ErrAccountClosed, id)
	}
	a.frozen = frozen
	kind := kindUnfreeze
	if frozen {
		kind = kindFreeze
	}
	body := appendString(s.mu.scratch[:0], actor)
	s.mu.scratch = body
	seq := l.appendLocked(kind, id, l.now(), body)
	s.mu.Unlock()
	return l.waitSynced(seq)
}

// CloseAccount closes an account for good and returns it once the change
// is synced: it is frozen (calls in flight settle as usual, nothing new is
// held), every key of it is revoked, and top-ups, new keys and unfreezing
// are refused from then on (ErrAccountClosed); adjustments stay allowed.
// closed is false when the account was closed already (the call changes
// nothing). What becomes of its credit is the caller's policy.
func (l *Ledger) CloseAccount(id, actor string) (info AccountInfo, closed bool, err error) {
	if err := ValidText("actor", actor); err != nil {
		return info, false, err
	}
	s := l.shardOf(id)
	s.mu.Lock()
	a := s.mu.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return info, false, fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	if a.closedAt != 0 {
		info = a.info()
		s.mu.Unlock()
		return info, false, nil
	}
	now := l.now()
	l.keys.Lock()
	l.closeLocked(a, now)
	body := appendString(s.mu.scratch[:0], actor)
	s.mu.scratch = body
	seq := l.appendLocked(kindAccountClose, id, now, body)
	l.keys.Unlock()
	info = a.info()
	s.mu.Unlock()
	return info, true, l.waitSynced(seq)
}

// closeLocked marks a closed at now and revokes its keys.
// REQUIRES: a's shard and l.keys locked.
func (l *Ledger) closeLocked(a *account, now int64) {
	a.closedAt, a.frozen = now, true
	for id, k := range l.keys.byID {
		if k.AccountID == a.id && !k.Revoked {
			revoked := *k
			revoked.Revoked = true
			l.keys.byID[id] = &revoked
			l.keys.byHash[revoked.Hash] = &revoked
		}
	}
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
func (l *Ledger) Accounts(fn func(AccountInfo)) error {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, a := range s.mu.accounts {
			fn(a.info())
		}
		s.mu.Unlock()
	}
	return nil // in memory: no error, the signature cluster mode's books share
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

func (d *decoder) accountFields(a *account) {
	a.email = d.string()
	a.multiplier = d.varint()
	a.limits.RPM = d.varint()
	a.limits.TPM = d.varint()
	a.limits.Concurrency = d.varint()
}

func (r *replayed) accountCreate() error {
	if r.a != nil {
		return fmt.Errorf("%w: account %q created twice", ErrReplay, r.a.id)
	}
	r.a = &account{shard: r.s, id: string(r.v.Account), createdAt: r.v.TimeNanos}
	r.d.accountFields(r.a)
	r.s.mu.accounts[r.a.id] = r.a
	return nil
}

func (r *replayed) accountUpdate() error {
	r.d.accountFields(r.a)
	return nil
}

func (r *replayed) accountClose() error {
	_ = r.d.string() // actor
	r.l.keys.Lock()
	r.l.closeLocked(r.a, r.v.TimeNanos)
	r.l.keys.Unlock()
	return nil
}

func (r *replayed) freeze() error {
	_ = r.d.string() // actor
	r.a.frozen = recordKind(r.v.Kind) == kindFreeze
	return nil
}
