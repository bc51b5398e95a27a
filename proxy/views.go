package proxy

import (
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
)

// JSON views of ledger values, shaped as the contract names them. Amounts
// are exact decimal strings, times RFC 3339 in UTC.

// amount is an amount of nano-credits that marshals as a decimal string.
type amount int64

func (a amount) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 24), '"')
	b = money.Append(b, int64(a))
	return append(b, '"'), nil
}

// timestamp marshals Unix nanoseconds as RFC 3339 in UTC, or null for 0.
type timestamp int64

func (t timestamp) MarshalJSON() ([]byte, error) {
	if t == 0 {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Unix(0, int64(t)).UTC().Format(time.RFC3339Nano) + `"`), nil
}

type listView[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](data []T, next string) listView[T] {
	if data == nil {
		data = []T{}
	}
	l := listView[T]{Data: data}
	if next != "" {
		l.HasMore, l.NextCursor = true, &next
	}
	return l
}

type callView struct {
	RequestID string    `json:"request_id"`
	AccountID string    `json:"account_id"`
	KeyID     string    `json:"key_id"`
	Time      timestamp `json:"time"`
	Model     string    `json:"model"`
	// ModelTruncated is set when the client's model string was not a valid
	// model name: Model is then its sanitised first bytes.
	ModelTruncated bool   `json:"model_truncated,omitempty"`
	Status         int    `json:"status"`
	Outcome        string `json:"outcome"`
	tokens.Counts
	Held           amount `json:"held"`
	Charged        amount `json:"charged"`
	UsageEstimated bool   `json:"usage_estimated"`
	SourceIPDigest string `json:"source_ip_digest"`
	DurationMs     int64  `json:"duration_ms"`
	TTFBMs         int64  `json:"ttfb_ms"`
}

type adminCallView struct {
	callView
	Upstream          string        `json:"upstream"`
	UpstreamRequestID string        `json:"upstream_request_id"`
	UpstreamCost      amount        `json:"upstream_cost"`
	Attempts          []attemptView `json:"attempts"`
}

type attemptView struct {
	Upstream   string `json:"upstream"`
	Status     int    `json:"status"`
	ErrorType  string `json:"error_type"`
	DurationMs int64  `json:"duration_ms"`
}

func newCallView(c *ledger.CallRecord) callView {
	return callView{
		RequestID: c.RequestID, AccountID: c.AccountID, KeyID: c.KeyID, Time: timestamp(c.TimeNanos),
		Model: c.Model, ModelTruncated: c.ModelTruncated, Status: c.Status, Outcome: c.Outcome.String(),
		Counts: c.Counts, Held: amount(c.Held), Charged: amount(c.Charged),
		UsageEstimated: c.UsageEstimated, SourceIPDigest: c.SourceIPDigest, DurationMs: c.DurationMs, TTFBMs: c.TTFBMs,
	}
}

func newAdminCallView(c *ledger.CallRecord) adminCallView {
	v := adminCallView{callView: newCallView(c), Upstream: c.Upstream, UpstreamRequestID: c.UpstreamRequestID,
		UpstreamCost: amount(c.UpstreamCost), Attempts: []attemptView{}}
	for _, a := range c.Attempts {
		v.Attempts = append(v.Attempts, attemptView(a))
	}
	return v
}

type balanceView struct {
	AccountID string    `json:"account_id"`
	Available amount    `json:"available"`
	Held      amount    `json:"held"`
	ExpiresAt timestamp `json:"expires_at"`
}
