package simulator

import (
	"crypto/subtle"
	"time"

	"github.com/valyala/fasthttp"
)

// authorized applies Config.APIKey.
func (s *Simulator) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key := ctx.Request.Header.Peek("x-api-key")
	auth := ctx.Request.Header.Peek("authorization")
	if len(key) == 0 && len(auth) == 0 {
		return false
	}
	want := []byte(s.cfg.APIKey)
	if len(key) > 0 && subtle.ConstantTimeCompare(key, want) != 1 {
		return false
	}
	if len(auth) > 0 {
		const prefix = "Bearer "
		if len(auth) <= len(prefix) || string(auth[:len(prefix)]) != prefix ||
			subtle.ConstantTimeCompare(auth[len(prefix):], want) != 1 {
			return false
		}
	}
	return true
}

// writeError answers with Anthropic's error body.
func writeError(ctx *fasthttp.RequestCtx, reqID string, status int, errType, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendErrorJSON(nil, errType, msg, reqID))
}

// statusError returns the error type and message Anthropic pairs with
// status, as overridden by error_type= and message=.
func statusError(status int, d *directives) (errType, msg string) {
	switch status {
	case 400:
		errType, msg = "invalid_request_error", "Invalid request"
	case 401:
		errType, msg = "authentication_error", "invalid x-api-key"
	case 402:
		errType, msg = "billing_error", "Your credit balance is too low to access the Anthropic API."
	case 403:
		errType, msg = "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		errType, msg = "not_found_error", "Not found"
	case 409:
		errType, msg = "conflict_error", "Conflict"
	case 413:
		errType, msg = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		errType, msg = "rate_limit_error", "Number of requests has exceeded your rate limit."
	case 500:
		errType, msg = "api_error", "Internal server error"
	case 504:
		errType, msg = "timeout_error", "Request timed out"
	case 529:
		errType, msg = "overloaded_error", "Overloaded"
	default:
		if status < 500 {
			errType, msg = "invalid_request_error", "Invalid request"
		} else {
			errType, msg = "api_error", "Internal server error"
		}
	}
	return errorOverride(errType, msg, d)
}

// simOrganizationID is the anthropic-organization-id the simulator sends,
// like the API does (a gateway must not pass it on).
const simOrganizationID = "00000000-0000-4000-8000-00000000051a"

// commonHeaders returns the headers of every simulator response besides
// content-type: the request ID, the organization and a fixed rate-limit set.
func commonHeaders(reqID string) [][2]string {
	reset := time.Now().UTC().Add(time.Second).Format(time.RFC3339)
	return [][2]string{
		{"request-id", reqID},
		{"anthropic-organization-id", simOrganizationID},
		{"anthropic-ratelimit-requests-limit", "4000"},
		{"anthropic-ratelimit-requests-remaining", "3999"},
		{"anthropic-ratelimit-requests-reset", reset},
		{"anthropic-ratelimit-tokens-limit", "2000000"},
		{"anthropic-ratelimit-tokens-remaining", "2000000"},
		{"anthropic-ratelimit-tokens-reset", reset},
	}
}

func setCommonHeaders(h *fasthttp.ResponseHeader, reqID string) {
	for _, kv := range commonHeaders(reqID) {
		h.Set(kv[0], kv[1])
	}
}
