package views

import (
	"errors"
	"net/http"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
)

// Error types, as Anthropic's API names them (conflict_error is
// Tollgate's own, for an admin write that contradicts an earlier one).
const (
	InvalidRequestError = "invalid_request_error"
	AuthenticationError = "authentication_error"
	BillingError        = "billing_error"
	PermissionError     = "permission_error"
	NotFoundError       = "not_found_error"
	RequestTooLarge     = "request_too_large"
	RateLimitError      = "rate_limit_error"
	APIError            = "api_error"
	TimeoutError        = "timeout_error"
	OverloadedError     = "overloaded_error"
	ConflictError       = "conflict_error"
)

// AppendError appends the error body both APIs answer with:
// {"type":"error","error":{"type":T,"message":M},"request_id":ID}.
func AppendError(dst []byte, typ, message, requestID string) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = meter.AppendJSONString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = meter.AppendJSONString(dst, message)
	dst = append(dst, `},"request_id":`...)
	dst = meter.AppendJSONString(dst, requestID)
	return append(dst, '}')
}

// AppendErrorEvent appends a server-sent event carrying the error body,
// as a stream that fails after its start ends.
func AppendErrorEvent(dst []byte, typ, message, requestID string) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = AppendError(dst, typ, message, requestID)
	return append(dst, "\n\n"...)
}

// LedgerError is the status and error type that answer err from the
// ledger: unknown accounts and keys are 404, writes contradicting earlier
// ones 409, invalid values 400, anything else a 500 whose message says
// only that the change was not recorded.
func LedgerError(err error) (status int, typ, message string) {
	switch {
	case errors.Is(err, ledger.ErrUnknownAccount), errors.Is(err, ledger.ErrUnknownKey), errors.Is(err, ledger.ErrUnknownDispute):
		return http.StatusNotFound, NotFoundError, err.Error()
	case errors.Is(err, ledger.ErrAccountExists), errors.Is(err, ledger.ErrKeyExists), errors.Is(err, ledger.ErrKeyQuota), errors.Is(err, ledger.ErrOrderConflict),
		errors.Is(err, ledger.ErrIdempotencyConflict), errors.Is(err, ledger.ErrTooManyBuckets),
		errors.Is(err, ledger.ErrAccountClosed), errors.Is(err, ledger.ErrDisputeExists), errors.Is(err, ledger.ErrDisputeResolved):
		return http.StatusConflict, ConflictError, err.Error()
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrOverflow), errors.Is(err, money.ErrRange):
		return http.StatusBadRequest, InvalidRequestError, err.Error()
	default:
		return http.StatusInternalServerError, APIError, "cannot record the change"
	}
}
