package upstream

import (
	"strconv"
	"strings"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// An upstream's error answer reaches the customer only as far as it is about
// the customer's own request. Errors about the platform's own upstream
// account (credentials, billing, spend limits, model access) become 503
// overloaded_error "upstream unavailable" and count against the upstream;
// rate limits and server errors keep their status and type but get
// Tollgate's wording, since the provider's text can name the platform's
// organization, tier limits or cloud resources; the upstream's request ID
// never reaches the customer. A platform-account error is recognised by
// status, error type, error code and the provider's exact messages, never by
// searching a body that can echo what the customer sent.

// Error is an upstream error answer as the client is to get it: status,
// type and message already in Tollgate's words.
type Error struct {
	Status        int
	Type, Message string
	// Platform is an error about the platform's own upstream account.
	Platform bool
	// ModelAccess is a platform error that may be about one model (403
	// permission_error: a limited-access model the account may not use),
	// which says nothing of the upstream's health. It still moves the call
	// on to another upstream.
	ModelAccess bool
	// UpstreamType is the upstream's own error type, for the call record.
	UpstreamType string
}

// Failure reports whether the answer counts against the upstream and moves
// the call to the next one: 429, 5xx (529 included), the platform's account.
func (e *Error) Failure() bool {
	return e.Platform || e.Status == fasthttp.StatusTooManyRequests || e.Status >= 500
}

// anthropicErrorBody is Anthropic's error shape, with the error code its
// spend-limit errors carry.
type anthropicErrorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details struct {
			ErrorCode string `json:"error_code"`
		} `json:"details"`
	} `json:"error"`
}

// Known messages of errors about the platform's account that arrive as 400
// (Anthropic's API answers a low credit balance and a workspace spend limit
// so). Matched as prefixes of the whole message: a request-validation
// message starts with the field at fault, so customer text cannot put them
// at the start.
var platformMessages = [...]string{
	"Your credit balance is too low to access the Anthropic API",
	"You have reached your specified API usage limits",
	"You have reached your specified workspace API usage limits",
}

// Error codes of errors about the platform's account.
var platformErrorCodes = [...]string{"enforced_spend_limit_reached", "credit_balance_too_low"}

// JudgeAnthropic judges an Anthropic API error answer.
func JudgeAnthropic(status int, body []byte) Error {
	e := Error{Status: status}
	var b anthropicErrorBody
	parsed := sonic.Unmarshal(body, &b) == nil && b.Type == "error" && knownErrorType(b.Error.Type)
	if parsed {
		e.Type, e.Message, e.UpstreamType = b.Error.Type, b.Error.Message, b.Error.Type
	} else {
		e.Type, e.Message = errorTypeOfStatus(status), ""
	}
	switch {
	case status == 401 || status == 402:
		e.Platform = true
	case status == 403:
		e.Platform, e.ModelAccess = true, true
	case status == 400 || status == 429:
		e.Platform = parsed && isPlatformError(b.Error.Message, b.Error.Details.ErrorCode)
	}
	return e.withOwnWording()
}

func isPlatformError(msg, code string) bool {
	for _, c := range platformErrorCodes {
		if code == c {
			return true
		}
	}
	for _, m := range platformMessages {
		if strings.HasPrefix(msg, m) {
			return true
		}
	}
	return false
}

// withOwnWording replaces what the customer must not see: a platform-account
// error becomes 503 upstream unavailable; a rate limit or a server error
// keeps its status and type with Tollgate's message; a client error without
// a message of its own gets one from its status.
func (e Error) withOwnWording() Error {
	switch {
	case e.Platform:
		e.Status, e.Type, e.Message = fasthttp.StatusServiceUnavailable, views.OverloadedError, "upstream unavailable"
	case e.Status == fasthttp.StatusTooManyRequests || e.Status >= 500:
		e.Message = upstreamErrorMessage(e.Type)
	case e.Message == "":
		e.Message = "the upstream refused the request (status " + strconv.Itoa(e.Status) + ")"
	}
	return e
}

// upstreamErrorMessage is Tollgate's wording for an upstream error of type
// typ, in an error answer or a mid-stream error event.
func upstreamErrorMessage(typ string) string {
	switch typ {
	case views.RateLimitError:
		return "the upstream is rate limiting requests; retry later"
	case views.OverloadedError:
		return "the upstream is overloaded; retry later"
	case views.TimeoutError:
		return "the upstream did not answer in time"
	}
	return "the upstream failed to process the request"
}

// knownErrorType reports whether typ is one of Anthropic's error types: an
// unknown one is replaced by the type of the status.
func knownErrorType(typ string) bool {
	switch typ {
	case views.InvalidRequestError, views.AuthenticationError, views.BillingError, views.PermissionError, views.NotFoundError, views.RequestTooLarge,
		views.RateLimitError, views.APIError, views.TimeoutError, views.OverloadedError, views.ConflictError:
		return true
	}
	return false
}

// errorTypeOfStatus is Anthropic's error type for an HTTP status.
func errorTypeOfStatus(status int) string {
	switch {
	case status == 401:
		return views.AuthenticationError
	case status == 402:
		return views.BillingError
	case status == 403:
		return views.PermissionError
	case status == 404:
		return views.NotFoundError
	case status == 409:
		return views.ConflictError
	case status == 413:
		return views.RequestTooLarge
	case status == 429:
		return views.RateLimitError
	case status == 504:
		return views.TimeoutError
	case status == 529:
		return views.OverloadedError
	case status >= 400 && status < 500:
		return views.InvalidRequestError
	}
	return views.APIError
}

// AppendOwnErrorEvent appends the error event a stream ends with in place
// of the upstream's own: the upstream's error type (when known), Tollgate's
// wording and request ID.
func AppendOwnErrorEvent(dst []byte, upstreamType, requestID string) []byte {
	typ := upstreamType
	if !knownErrorType(typ) {
		typ = views.APIError
	}
	return views.AppendErrorEvent(dst, typ, upstreamErrorMessage(typ), requestID)
}
