package ledger

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Disputes: a customer contests the charge of one of its calls; an operator
// accepts (which posts an adjustment refunding it, keyed by the dispute's
// ID) or rejects it with a reason. The ledger keeps the dispute and its
// outcome durable; whether a call may still be disputed (the dispute
// window, the call being the account's) is the caller's to check when it is
// filed.

// DisputeState is where a dispute stands.
type DisputeState uint8

const (
	DisputeOpen DisputeState = iota
	DisputeAccepted
	DisputeRejected
)

// String is the state's name in the APIs.
func (s DisputeState) String() string {
	switch s {
	case DisputeAccepted:
		return "accepted"
	case DisputeRejected:
		return "rejected"
	}
	return "open"
}

// Dispute is a customer's contest of one call's charge.
type Dispute struct {
	ID        string
	AccountID string
	RequestID string
	Reason    string
	FiledAt   int64 // Unix nanoseconds
	State     DisputeState
	// Resolution is the operator's reason (a rejection) or note (an
	// acceptance); ResolvedBy the actor, ResolvedAt when (0 while open).
	Resolution string
	ResolvedBy string
	ResolvedAt int64
	// Refund is what an acceptance credited, AdjustmentID its entry.
	Refund       int64
	AdjustmentID uint64
}

// Dispute errors.
var (
	// ErrUnknownDispute: no dispute with that ID (404).
	ErrUnknownDispute = errors.New("ledger: unknown dispute")
	// ErrDisputeExists: the call is disputed already, or the dispute ID was
	// used for another dispute (409).
	ErrDisputeExists = errors.New("ledger: dispute exists")
	// ErrDisputeResolved: the dispute was resolved otherwise (409).
	ErrDisputeResolved = errors.New("ledger: dispute already resolved")
)

// disputes holds every dispute by ID and by the request it contests.
type disputes struct {
	byID      map[string]*Dispute
	byRequest map[string]*Dispute
}

// FileDispute records d (ID, AccountID, RequestID, Reason) as an open
// dispute filed now, and returns it once synced. A repeat of the same
// dispute returns the first (created false); a second dispute of one call,
// or another dispute under a used ID, is ErrDisputeExists.
func (l *Ledger) FileDispute(d Dispute) (Dispute, bool, error) {
	if err := errors.Join(ValidID("dispute ID", d.ID), ValidID("request_id", d.RequestID), ValidText("reason", d.Reason)); err != nil {
		return d, false, err
	}
	if d.Reason == "" {
		return d, false, fmt.Errorf("%w: reason is required", ErrInvalid)
	}
	s := l.shardOf(d.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.accounts[d.AccountID] == nil {
		return d, false, fmt.Errorf("%w: %q", ErrUnknownAccount, d.AccountID)
	}
	l.disputesMu.Lock()
	if prev := l.disputes.byID[d.ID]; prev != nil {
		l.disputesMu.Unlock()
		if prev.AccountID != d.AccountID || prev.RequestID != d.RequestID || prev.Reason != d.Reason {
			return d, false, fmt.Errorf("%w: ID %q", ErrDisputeExists, d.ID)
		}
		return *prev, false, nil
	}
	if prev := l.disputes.byRequest[d.RequestID]; prev != nil {
		l.disputesMu.Unlock()
		return d, false, fmt.Errorf("%w: call %q is disputed already (%s)", ErrDisputeExists, d.RequestID, prev.ID)
	}
	d.FiledAt, d.State = l.now(), DisputeOpen
	l.disputes.add(&d)
	body := appendString(appendString(appendString(s.mu.scratch[:0], d.ID), d.RequestID), d.Reason)
	s.mu.scratch = body
	seq := l.appendLocked(kindDisputeFile, d.AccountID, d.FiledAt, body)
	l.disputesMu.Unlock()
	return d, true, l.waitSyncedUnlocking(s, seq)
}

func (ds *disputes) add(d *Dispute) {
	ds.byID[d.ID] = d
	ds.byRequest[d.RequestID] = d
}

// AcceptDispute credits refund (positive) to the disputed account by an
// adjustment whose idempotency key is the dispute's ID (no age check: the
// window was checked when the dispute was filed) and marks the dispute
// accepted. A retry returns the dispute as accepted; accepting a rejected
// dispute is ErrDisputeResolved.
func (l *Ledger) AcceptDispute(id string, refund int64, note, actor string) (Dispute, error) {
	d, err := l.openDispute(id, DisputeAccepted)
	if err != nil || d.State == DisputeAccepted {
		return d, err
	}
	if refund <= 0 {
		return d, fmt.Errorf("%w: the refund must be positive", ErrInvalid)
	}
	e, _, err := l.Adjust(AdjustRequest{Account: d.AccountID, Amount: refund, Reason: "dispute " + id + " accepted",
		RequestID: d.RequestID, IdempotencyKey: id, Actor: actor})
	if err != nil {
		return d, err
	}
	return l.resolveDispute(id, DisputeAccepted, note, actor, e.Amount, e.ID)
}

// RejectDispute marks the dispute rejected for reason (required). A retry
// returns it; rejecting an accepted dispute is ErrDisputeResolved.
func (l *Ledger) RejectDispute(id, reason, actor string) (Dispute, error) {
	if reason == "" {
		return Dispute{}, fmt.Errorf("%w: a rejection needs a reason", ErrInvalid)
	}
	d, err := l.openDispute(id, DisputeRejected)
	if err != nil || d.State == DisputeRejected {
		return d, err
	}
	return l.resolveDispute(id, DisputeRejected, reason, actor, 0, 0)
}

// openDispute returns dispute id if it is open or already in state want
// (a retry), and ErrDisputeResolved if it was resolved otherwise.
func (l *Ledger) openDispute(id string, want DisputeState) (Dispute, error) {
	d, ok := l.Dispute(id)
	switch {
	case !ok:
		return d, fmt.Errorf("%w: %q", ErrUnknownDispute, id)
	case d.State != DisputeOpen && d.State != want:
		return d, fmt.Errorf("%w: %q was %s", ErrDisputeResolved, id, d.State)
	}
	return d, nil
}

// resolveDispute records the outcome of an open dispute, once: a second
// resolution racing the first finds it resolved.
func (l *Ledger) resolveDispute(id string, state DisputeState, resolution, actor string, refund int64, entry uint64) (Dispute, error) {
	if err := errors.Join(ValidText("resolution", resolution), ValidText("actor", actor)); err != nil {
		return Dispute{}, err
	}
	d, _ := l.Dispute(id)
	s := l.shardOf(d.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	l.disputesMu.Lock()
	cur := l.disputes.byID[id]
	if cur.State != DisputeOpen {
		l.disputesMu.Unlock()
		if cur.State == state {
			return *cur, nil
		}
		return *cur, fmt.Errorf("%w: %q was %s", ErrDisputeResolved, id, cur.State)
	}
	now := l.now()
	cur.State, cur.Resolution, cur.ResolvedBy, cur.ResolvedAt, cur.Refund, cur.AdjustmentID = state, resolution, actor, now, refund, entry
	body := appendResolution(s.mu.scratch[:0], cur)
	s.mu.scratch = body
	seq := l.appendLocked(kindDisputeResolve, cur.AccountID, now, body)
	out := *cur
	l.disputesMu.Unlock()
	return out, l.waitSyncedUnlocking(s, seq)
}

func appendResolution(dst []byte, d *Dispute) []byte {
	dst = appendString(dst, d.ID)
	dst = append(dst, byte(d.State))
	dst = appendString(dst, d.Resolution)
	dst = appendString(dst, d.ResolvedBy)
	dst = appendVarint(dst, d.Refund)
	return appendUvarint(dst, d.AdjustmentID)
}

// Dispute returns dispute id.
func (l *Ledger) Dispute(id string) (Dispute, bool) {
	l.disputesMu.Lock()
	defer l.disputesMu.Unlock()
	if d := l.disputes.byID[id]; d != nil {
		return *d, true
	}
	return Dispute{}, false
}

// Disputes returns the disputes of account ("" for every account) in state
// (nil for every state), oldest first.
func (l *Ledger) Disputes(account string, state *DisputeState) []Dispute {
	l.disputesMu.Lock()
	var out []Dispute
	for _, d := range l.disputes.byID {
		if (account == "" || d.AccountID == account) && (state == nil || d.State == *state) {
			out = append(out, *d)
		}
	}
	l.disputesMu.Unlock()
	slices.SortFunc(out, func(a, b Dispute) int { return cmp.Or(cmp.Compare(a.FiledAt, b.FiledAt), cmp.Compare(a.ID, b.ID)) })
	return out
}

func (r *replayed) disputeFile() error {
	d := &Dispute{AccountID: r.a.id, FiledAt: r.v.TimeNanos, ID: r.d.string(), RequestID: r.d.string(), Reason: r.d.string()}
	if err := r.d.done(); err != nil {
		return err
	}
	r.l.disputesMu.Lock()
	defer r.l.disputesMu.Unlock()
	if r.l.disputes.byID[d.ID] != nil || r.l.disputes.byRequest[d.RequestID] != nil {
		return fmt.Errorf("%w: dispute %q filed twice", ErrReplay, d.ID)
	}
	r.l.disputes.add(d)
	return nil
}

func (r *replayed) disputeResolve() error {
	var got Dispute
	r.d.resolution(&got)
	if err := r.d.done(); err != nil {
		return err
	}
	r.l.disputesMu.Lock()
	defer r.l.disputesMu.Unlock()
	d := r.l.disputes.byID[got.ID]
	if d == nil || d.State != DisputeOpen || d.AccountID != r.a.id {
		return fmt.Errorf("%w: resolution of dispute %q that is not open", ErrReplay, got.ID)
	}
	d.State, d.Resolution, d.ResolvedBy, d.Refund, d.AdjustmentID = got.State, got.Resolution, got.ResolvedBy, got.Refund, got.AdjustmentID
	d.ResolvedAt = r.v.TimeNanos
	return nil
}

// resolution reads what appendResolution wrote.
func (d *decoder) resolution(out *Dispute) {
	out.ID = d.string()
	out.State = DisputeState(d.byte())
	out.Resolution = d.string()
	out.ResolvedBy = d.string()
	out.Refund = d.varint()
	out.AdjustmentID = d.uvarint()
}
