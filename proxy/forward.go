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
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, c *call) {
	u := c.up
	c.uriBuf = u.prepareRequest(&c.ureq, ctx, c.bodyBuf, c.betaBuf, c.uriBuf)
	firstByte := g.cfg.FirstByteTimeout
	if !c.mreq.Stream {
		firstByte = g.cfg.FirstByteTimeoutNonStreaming
	}
	attemptStart := time.Now()
	err := u.roundTrip(&c.ureq, &c.uhdr, &c.ubody, attemptStart.Add(firstByte))
	attempt := ledger.Attempt{Upstream: u.name, DurationMs: time.Since(attemptStart).Milliseconds()}
	c.record.Upstream = u.name
	if err == nil {
		c.bodyOpen = true
		c.ubody.setDeadlines(g.cfg.IdleTimeout, c.start.Add(g.cfg.TotalTimeout))
		if id := c.uhdr.Peek(hdrRequestID); len(id) > 0 {
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
		if isTimeout(err) {
			status, typ, msg = fasthttp.StatusGatewayTimeout, errTimeout, "the upstream did not answer in time"
			outcome = ledger.OutcomeTimeout
		}
		attempt.ErrorType = typ
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
		g.passError(ctx, c, status)
		return
	}
	c.record.Status = status
	if bytes.HasPrefix(c.uhdr.ContentType(), []byte("text/event-stream")) {
		c.obs.Reset(g.cfg.MaxEventBytes)
		c.phase = phaseStream
		c.abortConn = c.ubody.c
		g.track(c)
		ctx.Response.SetBodyStream(c, -1)
		return
	}
	g.replyJSON(ctx, c)
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
// error on, except errors about the platform's own upstream account, which
// become 503 overloaded_error.
func (g *Gateway) passError(ctx *fasthttp.RequestCtx, c *call, status int) {
	body, _ := readBody(&c.ubody, c.bodyBuf[:0], 64<<10)
	c.bodyBuf = body
	c.record.Attempts[len(c.record.Attempts)-1].ErrorType = upstreamErrorType(body)
	if platformAccountError(status, body) {
		ctx.Response.Header.Del("retry-after")
		ctx.Response.Header.Del("retry-after-ms")
		ctx.Response.Header.Del("x-should-retry")
		c.record.Status = fasthttp.StatusServiceUnavailable
		writeError(ctx, fasthttp.StatusServiceUnavailable, errOverloaded, "upstream unavailable")
	} else {
		c.record.Status = status
		g.passUpstreamError(ctx, status, body)
	}
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
