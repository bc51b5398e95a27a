package views

import (
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
)

// Call is a call record as its customer sees it.
type Call struct {
	RequestID string `json:"request_id"`
	AccountID string `json:"account_id"`
	KeyID     string `json:"key_id"`
	Time      Time   `json:"time"`
	Model     string `json:"model"`
	// ModelTruncated is set when the client's model string was not a valid
	// model name: Model is then its sanitised first bytes.
	ModelTruncated bool   `json:"model_truncated,omitempty"`
	Status         int    `json:"status"`
	Outcome        string `json:"outcome"`
	tokens.Counts
	Held           Amount `json:"held"`
	Charged        Amount `json:"charged"`
	UsageEstimated bool   `json:"usage_estimated"`
	SourceIPDigest string `json:"source_ip_digest"`
	DurationMs     int64  `json:"duration_ms"`
	TTFBMs         int64  `json:"ttfb_ms"`
	// Front is the client API the call came in on: "anthropic" or "openai".
	Front string `json:"front"`
}

// NewCall is c as its customer sees it.
func NewCall(c *ledger.CallRecord) Call {
	return Call{
		RequestID: c.RequestID, AccountID: c.AccountID, KeyID: c.KeyID, Time: Time(c.TimeNanos),
		Model: c.Model, ModelTruncated: c.ModelTruncated, Status: c.Status, Outcome: c.Outcome.String(),
		Counts: c.Counts, Held: Amount(c.Held), Charged: Amount(c.Charged),
		UsageEstimated: c.UsageEstimated, SourceIPDigest: c.SourceIPDigest, DurationMs: c.DurationMs, TTFBMs: c.TTFBMs,
		Front: c.Front.String(),
	}
}

// AdminCall is a call record as an operator sees it: with the upstream
// that served it, what it cost there, and every attempt.
type AdminCall struct {
	Call
	Upstream          string    `json:"upstream"`
	UpstreamRequestID string    `json:"upstream_request_id"`
	UpstreamCost      Amount    `json:"upstream_cost"`
	Attempts          []Attempt `json:"attempts"`
}

// Attempt is one try of a call at one upstream.
type Attempt struct {
	Upstream   string `json:"upstream"`
	Status     int    `json:"status"`
	ErrorType  string `json:"error_type"`
	DurationMs int64  `json:"duration_ms"`
}

// NewAdminCall is c as an operator sees it.
func NewAdminCall(c *ledger.CallRecord) AdminCall {
	v := AdminCall{Call: NewCall(c), Upstream: c.Upstream, UpstreamRequestID: c.UpstreamRequestID,
		UpstreamCost: Amount(c.UpstreamCost), Attempts: []Attempt{}}
	for _, a := range c.Attempts {
		v.Attempts = append(v.Attempts, Attempt(a))
	}
	return v
}

// Balance is GET /v1/balance.
type Balance struct {
	AccountID string `json:"account_id"`
	Available Amount `json:"available"`
	Held      Amount `json:"held"`
	ExpiresAt Time   `json:"expires_at"`
}

// NewBalance is a's balance.
func NewBalance(a ledger.AccountInfo) Balance {
	return Balance{AccountID: a.ID, Available: Amount(a.Available), Held: Amount(a.Held), ExpiresAt: Time(a.ExpiresAtNanos)}
}

// Account is an account with its settings and balance. A limit of null
// means the configured default, 0 unlimited.
type Account struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Multiplier  Amount `json:"multiplier"`
	RPM         *int64 `json:"rpm"`
	TPM         *int64 `json:"tpm"`
	Concurrency *int64 `json:"concurrency"`
	Available   Amount `json:"available"`
	Held        Amount `json:"held"`
	Frozen      bool   `json:"frozen"`
	ExpiresAt   Time   `json:"expires_at"`
	CreatedAt   Time   `json:"created_at"`
	// ClosedAt is when the account was closed (null while open).
	ClosedAt Time `json:"closed_at"`
}

// NewAccount is a as an Account.
func NewAccount(a ledger.AccountInfo) Account {
	return Account{
		ID: a.ID, Email: a.Email, Multiplier: Amount(a.Multiplier),
		RPM: limitOrDefault(a.Limits.RPM), TPM: limitOrDefault(a.Limits.TPM), Concurrency: limitOrDefault(a.Limits.Concurrency),
		Available: Amount(a.Available), Held: Amount(a.Held), Frozen: a.Frozen,
		ExpiresAt: Time(a.ExpiresAtNanos), CreatedAt: Time(a.CreatedAtNanos), ClosedAt: Time(a.ClosedAtNanos),
	}
}

// Entry is one entry of an account's history: a top-up, a hold's
// settlement, an adjustment, an expiry.
type Entry struct {
	ID             string  `json:"id"`
	Time           Time    `json:"time"`
	Kind           string  `json:"kind"`
	Account        string  `json:"account_id"`
	Amount         Amount  `json:"amount"`
	AvailableAfter Amount  `json:"available_after"`
	RequestID      string  `json:"request_id,omitempty"`
	OrderID        string  `json:"order_id,omitempty"`
	Reason         string  `json:"reason,omitempty"`
	Actor          string  `json:"actor,omitempty"`
	IdempotencyKey string  `json:"idempotency_key,omitempty"`
	Held           *Amount `json:"held,omitempty"`
	Charged        *Amount `json:"charged,omitempty"`
	Credit         string  `json:"credit,omitempty"`
	ExpiresAt      Time    `json:"expires_at,omitempty"`
}

// NewEntry is e as an Entry: settlements show what was held and charged,
// top-ups and expiries the credit bucket they touched.
func NewEntry(e ledger.Entry) Entry {
	v := Entry{
		ID: strconv.FormatUint(e.ID, 10), Time: Time(e.TimeNanos), Kind: e.Kind.String(), Account: e.Account,
		Amount: Amount(e.Amount), AvailableAfter: Amount(e.AvailableAfter), RequestID: e.RequestID, OrderID: e.OrderID,
		Reason: e.Reason, Actor: e.Actor, IdempotencyKey: e.IdempotencyKey,
	}
	if e.Kind == ledger.EntrySettle {
		h, c := Amount(e.Held), Amount(e.Charged)
		v.Held, v.Charged = &h, &c
	}
	if e.Kind == ledger.EntryTopUp || e.Kind == ledger.EntryExpire {
		v.Credit = e.Credit.String()
		v.ExpiresAt = Time(e.ExpiresAtNanos)
	}
	return v
}

// Key is a platform key's settings; Key (the secret) is set only in the
// answer that created it.
type Key struct {
	ID          string   `json:"id"`
	Key         string   `json:"key,omitempty"`
	AccountID   string   `json:"account_id"`
	Name        string   `json:"name"`
	Hint        string   `json:"hint"`
	RPM         *int64   `json:"rpm"`
	TPM         *int64   `json:"tpm"`
	Concurrency *int64   `json:"concurrency"`
	SpendLimit  *Amount  `json:"spend_limit"`
	SpendPeriod *string  `json:"spend_period"`
	ExpiresAt   Time     `json:"expires_at"`
	Models      []string `json:"models"`
	Revoked     bool     `json:"revoked"`
	CreatedAt   Time     `json:"created_at"`
}

// NewKey is k as a Key, without its secret.
func NewKey(k *ledger.Key) Key {
	v := Key{
		ID: k.ID, AccountID: k.AccountID, Name: k.Name, Hint: k.Hint,
		RPM: limitOrDefault(k.Limits.RPM), TPM: limitOrDefault(k.Limits.TPM), Concurrency: limitOrDefault(k.Limits.Concurrency),
		ExpiresAt: Time(k.ExpiresAtNanos), Models: OrEmpty(k.Models), Revoked: k.Revoked, CreatedAt: Time(k.CreatedAtNanos),
	}
	if k.SpendLimit > 0 {
		a := Amount(k.SpendLimit)
		v.SpendLimit = &a
		p := k.SpendPeriod.String()
		v.SpendPeriod = &p
	}
	return v
}

// Dispute is a customer's contest of a call's charge and its outcome.
type Dispute struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	RequestID string `json:"request_id"`
	Reason    string `json:"reason"`
	State     string `json:"state"` // open, accepted or rejected
	FiledAt   Time   `json:"filed_at"`
	// Resolution is the operator's reason for a rejection, or note on an
	// acceptance; Refund what an acceptance credited.
	Resolution string  `json:"resolution,omitempty"`
	ResolvedBy string  `json:"resolved_by,omitempty"`
	ResolvedAt Time    `json:"resolved_at"`
	Refund     *Amount `json:"refund,omitempty"`
	// AdjustmentID is the entry an acceptance posted.
	AdjustmentID string `json:"adjustment_id,omitempty"`
}

// NewDispute is d as a Dispute.
func NewDispute(d ledger.Dispute) Dispute {
	v := Dispute{ID: d.ID, AccountID: d.AccountID, RequestID: d.RequestID, Reason: d.Reason, State: d.State.String(),
		FiledAt: Time(d.FiledAt), Resolution: d.Resolution, ResolvedBy: d.ResolvedBy, ResolvedAt: Time(d.ResolvedAt)}
	if d.State == ledger.DisputeAccepted {
		r := Amount(d.Refund)
		v.Refund, v.AdjustmentID = &r, strconv.FormatUint(d.AdjustmentID, 10)
	}
	return v
}

// CallFinder finds a call's record by its request ID: the ledger, or in
// cluster mode PostgreSQL's authority.
type CallFinder interface {
	CallByRequestID(requestID string) (*ledger.CallRecord, error)
}

// DisputeProblem says why account cannot dispute the call of requestID at
// now ("" when it can): no call of the account has that ID (notFound), or
// the call is older than window (the contract checks it when filed).
func DisputeProblem(l CallFinder, account, requestID string, window time.Duration, now time.Time) (problem string, notFound bool) {
	c, err := l.CallByRequestID(requestID)
	switch {
	case err != nil || c == nil || c.AccountID != account:
		return "request_id: no call of this account with that ID", true
	case now.Sub(time.Unix(0, c.TimeNanos)) > window:
		return "request_id: the call is older than the dispute window (" + window.String() + ")", false
	}
	return "", false
}
