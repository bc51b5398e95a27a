package proxy

import (
	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// Error types of the contract (Anthropic's names).
const (
	errInvalidRequest  = "invalid_request_error"
	errAuthentication  = "authentication_error"
	errBilling         = "billing_error"
	errPermission      = "permission_error"
	errNotFound        = "not_found_error"
	errRequestTooLarge = "request_too_large"
	errRateLimit       = "rate_limit_error"
	errAPI             = "api_error"
	errTimeout         = "timeout_error"
	errOverloaded      = "overloaded_error"
	errConflict        = "conflict_error"
)

// appendErrorJSON appends the contract's error body:
// {"type":"error","error":{"type":T,"message":M},"request_id":ID}.
func appendErrorJSON(dst []byte, typ, message, requestID string) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = meter.AppendJSONString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = meter.AppendJSONString(dst, message)
	dst = append(dst, `},"request_id":`...)
	dst = meter.AppendJSONString(dst, requestID)
	return append(dst, '}')
}

// appendErrorEvent appends an SSE error event carrying the contract's error.
func appendErrorEvent(dst []byte, typ, message, requestID string) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = appendErrorJSON(dst, typ, message, requestID)
	return append(dst, "\n\n"...)
}

// writeError sends an error response in the contract's shape. The request-id
// header must already be set.
func writeError(ctx *fasthttp.RequestCtx, status int, typ, message string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	id := ctx.Response.Header.Peek(hdrRequestID)
	ctx.SetBody(appendErrorJSON(ctx.Response.Body()[:0], typ, message, b2s(id)))
}

const hexDigits = "0123456789abcdef"
