package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bytedance/sonic"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// Response headers passed from the upstream to the client (CONTRACT §2).
var passedResponseHeaders = [...]string{"content-type", "cache-control", "retry-after", "retry-after-ms", "x-should-retry"}

// forward sends the held call upstream and answers the client: streams the
// reply through the metering reader, or buffers a JSON reply, or passes an
// upstream error on. The hold is synced in parallel with the upstream's own
// latency and waited for before the client sees a byte.
//
// The call's candidate upstreams (route.go) are tried in order while an
// attempt fails before doing work: a connection error, or an answer of 429,
// 5xx or 529, or an error about the platform's own account. Everything here
// happens before the client has seen a byte, so the customer is charged
// once, by the upstream that served; every attempt goes into the call
// record. A timeout does not move the call: the upstream may be working on it.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, c *call) {
	firstByte := g.cfg.FirstByteTimeout
	if !c.mreq.Stream {
		firstByte = g.cfg.FirstByteTimeoutNonStreaming
	}
	var (
		err     error
		attempt ledger.Attempt
		answer  upstreamAnswer
	)
	for i := range c.routeN {
		r := &c.routes[i]
		u := r.up
		c.up = u
		if i > 0 {
			c.ureq.Reset()
		}
		attemptStart := time.Now()
		err = g.prepareAttempt(ctx, c, r)
		if err == nil {
			err = u.roundTrip(&c.ureq, &c.uhdr, &c.ubody, attemptStart.Add(firstByte))
		}
		attempt = ledger.Attempt{Upstream: u.name, DurationMs: time.Since(attemptStart).Milliseconds()}
		answer = upstreamAnswer{}
		if err == nil && c.uhdr.StatusCode() != fasthttp.StatusOK {
			answer = g.readUpstreamError(c, u)
		}
		failure := err != nil || answer.failure()
		if !failure {
			u.succeeded()
			break
		}
		u.failed(time.Now(), g.cfg.UpstreamMaxFailures, g.cfg.UpstreamBackoff)
		if i == c.routeN-1 || isTimeout(err) {
			break
		}
		// Move on to the next upstream.
		if err != nil {
			attempt.ErrorType = attemptErrorType(err)
			g.logAttemptError(c, u, err)
		} else {
			attempt.Status, attempt.ErrorType = c.uhdr.StatusCode(), answer.upstreamType
			c.ubody.close()
		}
		c.record.Attempts = append(c.record.Attempts, attempt)
		failoversTotal.Inc()
	}
	u := c.up
	c.record.Upstream = u.name
	if err == nil {
		c.bodyOpen = true
		c.ubody.setDeadlines(g.cfg.IdleTimeout, c.start.Add(g.cfg.TotalTimeout))
		idHeader := hdrRequestID
		if u.bedrock != nil {
			idHeader = "x-amzn-requestid"
		}
		if id := c.uhdr.Peek(idHeader); len(id) > 0 {
			c.upReqIDBuf = append(c.upReqIDBuf[:0], id...)
		}
	}
	if holdErr := c.holdCommit.Wait(); holdErr != nil {
		// The WAL failed: nothing more can be recorded durably. Refuse; the
		// process stops serving and replays on restart.
		g.logger.Printf("request %s: the hold is not durable: %s", c.requestID, holdErr)
		c.held = false
		writeError(ctx, fasthttp.StatusServiceUnavailable, errAPI, "the gateway cannot record calls now")
		g.inflight.Done()
		g.releaseCall(c)
		return
	}
	if err != nil {
		status, typ, msg := fasthttp.StatusBadGateway, errAPI, "upstream unreachable"
		outcome := ledger.OutcomeUpstreamError
		var credErr *errBedrockCredentials
		switch {
		case isTimeout(err):
			status, typ, msg = fasthttp.StatusGatewayTimeout, errTimeout, "the upstream did not answer in time"
			outcome = ledger.OutcomeTimeout
		case errors.As(err, &credErr):
			status, typ, msg = fasthttp.StatusServiceUnavailable, errOverloaded, "upstream unavailable"
		}
		g.logAttemptError(c, u, err)
		attempt.ErrorType = attemptErrorType(err)
		c.record.Attempts = append(c.record.Attempts, attempt)
		writeError(ctx, status, typ, msg)
		c.record.Status = status
		c.void(outcome, "upstream_error")
		g.inflight.Done()
		g.releaseCall(c)
		return
	}
	status := c.uhdr.StatusCode()
	attempt.Status = status
	c.record.Attempts = append(c.record.Attempts, attempt)
	ctx.SetStatusCode(status)
	for _, h := range passedResponseHeaders {
		if v := c.uhdr.Peek(h); len(v) > 0 {
			ctx.Response.Header.SetBytesV(h, v)
		}
	}
	if status != fasthttp.StatusOK {
		g.passError(ctx, c, &answer)
		return
	}
	c.record.Status = status
	ct := c.uhdr.ContentType()
	switch {
	case bytes.HasPrefix(ct, []byte("text/event-stream")):
	case u.bedrock != nil && bytes.HasPrefix(ct, []byte("application/vnd.amazon.eventstream")):
		// Bedrock's event stream, turned into the SSE Anthropic's API sends.
		c.es.reset(&c.ubody, &c.obs)
		c.esOn = true
		ctx.Response.Header.SetContentType("text/event-stream; charset=utf-8")
		ctx.Response.Header.Set("cache-control", "no-cache")
	default:
		g.replyJSON(ctx, c)
		return
	}
	c.obs.Reset(g.cfg.MaxEventBytes)
	c.phase = phaseStream
	c.abortConn = c.ubody.c
	g.track(c)
	ctx.Response.SetBodyStream(c, -1)
}

// prepareAttempt fills c.ureq for sending the call to the upstream of r.
func (g *Gateway) prepareAttempt(ctx *fasthttp.RequestCtx, c *call, r *route) error {
	if r.up.bedrock != nil {
		return r.up.prepareBedrockRequest(c, r.modelID)
	}
	if r.modelID != c.mreq.Model {
		c.bodyBuf = meter.AppendRewriteModel(c.bodyBuf[:0], c.reqBuf, &c.mreq, r.modelID)
	} else {
		c.bodyBuf = append(c.bodyBuf[:0], c.reqBuf...)
	}
	c.uriBuf = r.up.prepareRequest(&c.ureq, ctx, c.bodyBuf, c.betaBuf, c.uriBuf)
	return nil
}

// upstreamAnswer is an upstream's error answer as the client is to get it.
type upstreamAnswer struct {
	// status, typ and msg are what the client receives, unless platform.
	status    int
	typ, msg  string
	hasTypMsg bool
	// platform is an error about the platform's own upstream account.
	platform bool
	// upstreamType is the upstream's own error type, for the call record.
	upstreamType string
	// body is the upstream's error body (in c.bodyBuf).
	body []byte
}

// failure reports whether the answer counts against the upstream and moves
// the call to the next one: 429, 5xx (529 included), the platform's account.
func (a *upstreamAnswer) failure() bool {
	return a.platform || a.status == fasthttp.StatusTooManyRequests || a.status >= 500
}

// readUpstreamError reads an error answer of u (a non-200 status) into
// c.bodyBuf and judges it.
func (g *Gateway) readUpstreamError(c *call, u *upstream) upstreamAnswer {
	status := c.uhdr.StatusCode()
	body, _ := readBody(&c.ubody, c.bodyBuf[:0], 64<<10)
	c.bodyBuf = body
	a := upstreamAnswer{status: status, body: body}
	if u.bedrock != nil {
		errType := c.uhdr.Peek("x-amzn-errortype")
		a.status, a.typ, a.msg, a.platform = bedrockError(status, errType, body)
		a.hasTypMsg = true
		if i := bytes.IndexByte(errType, ':'); i >= 0 {
			errType = errType[:i]
		}
		a.upstreamType = string(errType)
		if a.upstreamType == "" {
			a.upstreamType = upstreamErrorType(body)
		}
		return a
	}
	a.upstreamType = upstreamErrorType(body)
	a.platform = platformAccountError(status, body)
	return a
}

// attemptErrorType is the call record's error_type of an attempt that got
// no answer.
func attemptErrorType(err error) string {
	var credErr *errBedrockCredentials
	switch {
	case isTimeout(err):
		return errTimeout
	case errors.As(err, &credErr):
		return "credentials"
	}
	return errAPI
}

// logAttemptError logs what the operator must fix: the platform's upstream
// credentials. Connection errors and timeouts show in metrics and records.
func (g *Gateway) logAttemptError(c *call, u *upstream, err error) {
	var credErr *errBedrockCredentials
	if errors.As(err, &credErr) {
		g.logger.Printf("request %s: upstream %s: %s", c.requestID, u.name, err)
	}
}

// replyJSON reads a non-streaming reply, settles it from its usage and sends
// it; a body that is not a message (an error in a 200) voids the call.
func (g *Gateway) replyJSON(ctx *fasthttp.RequestCtx, c *call) {
	body, err := readBody(&c.ubody, c.bodyBuf[:0], g.cfg.MaxResponseBodyBytes)
	c.bodyBuf = body
	c.record.TTFBMs = max(1, time.Since(c.start).Milliseconds())
	if err != nil {
		outcome := ledger.OutcomeStreamError
		typ, msg := errAPI, "the upstream reply was cut off"
		if isTimeout(err) {
			outcome, typ, msg = ledger.OutcomeTimeout, errTimeout, "the upstream stopped sending"
		}
		c.record.Status = fasthttp.StatusBadGateway
		if outcome == ledger.OutcomeTimeout {
			c.record.Status = fasthttp.StatusGatewayTimeout
		}
		c.void(outcome, "upstream_error")
		writeError(ctx, c.record.Status, typ, msg)
		g.inflight.Done()
		g.releaseCall(c)
		return
	}
	u, err := meter.ParseMessageUsage(body)
	if err != nil {
		// Not a message: an error in a 200, or garbage. Nothing is charged;
		// the client gets the error with Tollgate's request ID.
		c.void(ledger.OutcomeUpstreamError, "upstream_error")
		g.passUpstreamError(ctx, fasthttp.StatusOK, body)
		g.inflight.Done()
		g.releaseCall(c)
		return
	}
	outcome := ledger.OutcomeOK
	if clientGone(ctx) {
		outcome = ledger.OutcomeClientDisconnected
	}
	c.settle(outcome, u, false)
	ctx.SetBody(body)
	g.inflight.Done()
	g.releaseCall(c)
}

// passError answers an upstream error status: voids the hold and passes the
// error on, except errors about the platform's own account, which become 503
// overloaded_error.
func (g *Gateway) passError(ctx *fasthttp.RequestCtx, c *call, a *upstreamAnswer) {
	if a.platform {
		ctx.Response.Header.Del("retry-after")
		ctx.Response.Header.Del("retry-after-ms")
		ctx.Response.Header.Del("x-should-retry")
		c.record.Status = fasthttp.StatusServiceUnavailable
		writeError(ctx, fasthttp.StatusServiceUnavailable, errOverloaded, "upstream unavailable")
	} else {
		c.record.Status = a.status
		if a.hasTypMsg {
			writeError(ctx, a.status, a.typ, a.msg)
		} else {
			g.passUpstreamError(ctx, a.status, a.body)
		}
	}
	c.record.Attempts[len(c.record.Attempts)-1].ErrorType = a.upstreamType
	c.void(ledger.OutcomeUpstreamError, "upstream_error")
	g.inflight.Done()
	g.releaseCall(c)
}

// passUpstreamError sends an upstream error on with the upstream's status
// and its error type and message, but in the contract's shape with Tollgate's
// request ID: the upstream's own ID goes only into the call record. A body
// that is not an Anthropic error becomes one of the type its status implies.
func (g *Gateway) passUpstreamError(ctx *fasthttp.RequestCtx, status int, body []byte) {
	typ, msg, ok := parseUpstreamError(body)
	if !ok {
		typ, msg = errorTypeOfStatus(status), fmt.Sprintf("the upstream answered with status %d", status)
	}
	writeError(ctx, status, typ, msg)
}

// parseUpstreamError reads error.type and error.message of an Anthropic error
// body.
func parseUpstreamError(body []byte) (typ, msg string, ok bool) {
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if sonic.Unmarshal(body, &e) != nil || e.Type != "error" || e.Error.Type == "" || len(e.Error.Type) > 64 {
		return "", "", false
	}
	return e.Error.Type, e.Error.Message, true
}

// errorTypeOfStatus is Anthropic's error type for an HTTP status.
func errorTypeOfStatus(status int) string {
	switch {
	case status == 401:
		return errAuthentication
	case status == 402:
		return errBilling
	case status == 403:
		return errPermission
	case status == 404:
		return errNotFound
	case status == 413:
		return errRequestTooLarge
	case status == 429:
		return errRateLimit
	case status == 504:
		return errTimeout
	case status == 529:
		return errOverloaded
	case status >= 400 && status < 500:
		return errInvalidRequest
	}
	return errAPI
}

// readBody reads an upstream body into dst, up to limit bytes.
func readBody(s io.Reader, dst []byte, limit int) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := s.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst[:limit], errBodyTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

var errBodyTooLarge = errors.New("proxy: upstream body exceeds the limit")

// platformAccountError reports an upstream error about the platform's own
// account with the provider (CONTRACT §2): 401, 402, 403, or a 400 or 429
// about credit, billing or spend limits.
func platformAccountError(status int, body []byte) bool {
	switch status {
	case 401, 402, 403:
		return true
	case 400, 429:
		lower := bytes.ToLower(body)
		for _, w := range [...]string{"credit balance", "billing", "spend limit", "enforced_spend_limit_reached", "spending limit"} {
			if bytes.Contains(lower, []byte(w)) {
				return true
			}
		}
	}
	return false
}

// upstreamErrorType extracts error.type from an Anthropic error body, or "".
func upstreamErrorType(body []byte) string {
	i := bytes.Index(body, []byte(`"error"`))
	if i < 0 {
		return ""
	}
	rest := body[i:]
	j := bytes.Index(rest, []byte(`"type"`))
	if j < 0 {
		return ""
	}
	rest = rest[j+len(`"type"`):]
	k := bytes.IndexByte(rest, '"')
	if k < 0 {
		return ""
	}
	rest = rest[k+1:]
	e := bytes.IndexByte(rest, '"')
	if e < 0 || e > 64 {
		return ""
	}
	return string(rest[:e])
}
