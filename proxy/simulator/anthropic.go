package simulator

import (
	"crypto/subtle"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// acceptAnthropic runs Anthropic mode's checks on a request, in the
// package comment's order, and answers the requests they refuse (401, 404,
// 413, 400). It returns the parsed request and the model its reply names.
func (s *Simulator) acceptAnthropic(ctx *fasthttp.RequestCtx, reqID string) (req *request, model string, ok bool) {
	if !s.authorized(ctx) {
		s.rejected.Add(1)
		writeError(ctx, reqID, fasthttp.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return nil, "", false
	}
	path := string(ctx.Path())
	countTokens := path == "/v1/messages/count_tokens"
	if !ctx.IsPost() || path != "/v1/messages" && !countTokens {
		s.notFound.Add(1)
		writeError(ctx, reqID, fasthttp.StatusNotFound, "not_found_error",
			"Not Found: "+string(ctx.Method())+" "+path)
		return nil, "", false
	}
	if countTokens {
		s.countTokens.Add(1)
	} else {
		s.messages.Add(1)
	}
	if len(ctx.PostBody()) > s.cfg.MaxBodySize {
		s.rejected.Add(1)
		s.proto.writeTooLarge(ctx, reqID)
		return nil, "", false
	}
	if s.cfg.RequireVersion && len(ctx.Request.Header.Peek("anthropic-version")) == 0 {
		s.rejected.Add(1)
		writeError(ctx, reqID, fasthttp.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return nil, "", false
	}
	req, err := parseRequest(ctx.PostBody(), countTokens)
	if err == nil {
		err = s.checkWaits(&req.dir)
	}
	if err != nil {
		s.rejected.Add(1)
		writeError(ctx, reqID, fasthttp.StatusBadRequest, "invalid_request_error", err.Error())
		return nil, "", false
	}
	return req, s.resolveModel(req.model), true
}

// serveCountTokens answers count_tokens: {"input_tokens":N}, N the input
// words or input=N.
func (s *Simulator) serveCountTokens(ctx *fasthttp.RequestCtx, req *request) {
	n := req.inputWords
	if req.dir.hasInput {
		n = req.dir.input
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(appendInt(append([]byte(nil), `{"input_tokens":`...), n))
	ctx.Response.AppendBodyString("}")
	s.completed.Add(1)
}

// anthropicProtocol is the wire form of Anthropic's Messages API.
type anthropicProtocol struct{}

func (anthropicProtocol) newRequestID() string { return newRandomID("req_sim_") }

func (anthropicProtocol) headers(reqID string) [][2]string { return commonHeaders(reqID) }

func (anthropicProtocol) messageHeaders(*reply) [][2]string { return nil }

func (anthropicProtocol) newMessageID() string { return newRandomID("msg_sim_") }

func (anthropicProtocol) newFramer(_ *reply, d *directives) framer {
	return &sseFramer{padded: d.padded}
}

// streamHeaders are an SSE stream's, as the API sends them.
func (anthropicProtocol) streamHeaders() [][2]string {
	return [][2]string{
		{"Content-Type", "text/event-stream; charset=utf-8"},
		{"Cache-Control", "no-cache"},
	}
}

// writeStatus answers with the error type Anthropic pairs with the status
// (see statusError), and retry-after when retry_after=N asks for it.
func (anthropicProtocol) writeStatus(ctx *fasthttp.RequestCtx, reqID string, d *directives) {
	errType, msg := statusError(d.status, d)
	if d.hasRetryAfter {
		ctx.Response.Header.Set("retry-after", strconv.Itoa(d.retryAfter))
	}
	writeError(ctx, reqID, d.status, errType, msg)
}

func (anthropicProtocol) writeTooLarge(ctx *fasthttp.RequestCtx, reqID string) {
	writeError(ctx, reqID, fasthttp.StatusRequestEntityTooLarge, "request_too_large",
		"Request exceeds the maximum allowed number of bytes.")
}

func (anthropicProtocol) writeMalformed(ctx *fasthttp.RequestCtx, reqID string) {
	writeError(ctx, reqID, fasthttp.StatusBadRequest, "invalid_request_error", "Error when parsing request")
}

func (anthropicProtocol) writeUnavailable(ctx *fasthttp.RequestCtx, reqID string) {
	writeError(ctx, reqID, fasthttp.StatusServiceUnavailable, "overloaded_error", "the simulator is shutting down")
}

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

// commonHeaders returns the headers of every Anthropic-mode response besides
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
