package proxy

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// Response headers passed from the upstream to the client: the content
// type and what the SDKs read to decide on retries.
var passedResponseHeaders = [...]string{"content-type", "cache-control", "retry-after", "retry-after-ms", "x-should-retry"}

// forward sends the held call upstream and answers the client: streams the
// reply through the metering reader, or buffers a JSON reply, or passes an
// upstream error on. The hold is synced in parallel with the upstream's own
// latency and waited for before the client sees a byte.
//
// The call's candidate upstreams (upstream.Routes) are tried in order while an
// attempt fails before doing work: a connection error, or an answer of 429,
// 5xx or 529, or an error about the platform's own account. Everything here
// happens before the client has seen a byte, so the customer is charged
// once, by the upstream that served; every attempt goes into the call
// record. A timeout does not move the call: the upstream may be working on it.
// It reports whether the reply streams: the stream then owns the call;
// otherwise the caller ends it.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, c *call) (streaming bool) {
	answer, err := g.tryUpstreams(ctx, c)
	g.dropRequestBody(c)
	u := c.up
	c.record.Upstream = u.Name()
	if err == nil {
		c.bodyOpen = true
		c.upstreamBody.SetDeadlines(g.cfg.IdleTimeout, c.start.Add(g.cfg.TotalTimeout))
		idHeader := hdrRequestID
		if u.IsBedrock() {
			idHeader = "x-amzn-requestid"
		}
		if id := c.upstreamHeader.Peek(idHeader); len(id) > 0 {
			c.bufs.upReqID = append(c.bufs.upReqID[:0], id...)
		}
	}
	if holdErr := c.holdCommit.Wait(); holdErr != nil {
		// The WAL failed: nothing more can be recorded durably. Refuse; the
		// process stops serving and replays on restart.
		g.logger.Printf("request %s: the hold is not durable: %s", c.requestID, holdErr)
		c.held = false
		writeError(ctx, fasthttp.StatusServiceUnavailable, views.APIError, "the gateway cannot record calls now")
		return false
	}
	if err != nil {
		g.answerUnreached(ctx, c, err)
		return false
	}
	status := c.upstreamHeader.StatusCode()
	ctx.SetStatusCode(status)
	for _, h := range passedResponseHeaders {
		if v := c.upstreamHeader.Peek(h); len(v) > 0 {
			ctx.Response.Header.SetBytesV(h, v)
		}
	}
	if status != fasthttp.StatusOK {
		g.passError(ctx, c, &answer)
		return false
	}
	c.record.Status = status
	ct := c.upstreamHeader.ContentType()
	switch {
	case bytes.HasPrefix(ct, []byte("text/event-stream")):
	case u.IsBedrock() && bytes.HasPrefix(ct, []byte("application/vnd.amazon.eventstream")):
		// Bedrock's event stream, turned into the SSE Anthropic's API sends.
		c.bedrock.Reset(&c.upstreamBody, &c.obs)
		c.bedrockStream = true
		ctx.Response.Header.SetContentType("text/event-stream; charset=utf-8")
		ctx.Response.Header.Set("cache-control", "no-cache")
	default:
		g.replyJSON(ctx, c)
		return false
	}
	c.obs.Reset(g.cfg.MaxEventBytes)
	c.phase = phaseStream
	c.clientConn, c.nothingWritten = ctx.Conn(), true
	ctx.Response.SetBodyStream(c.bodyStream(), -1)
	return true
}

// tryUpstreams sends the call to its candidate upstreams in order, each
// attempt recorded, until one answers without failing: it returns the judged
// error answer of the last attempt that answered with an error status (zero
// for 200), or the error of one that got no answer. A pool of our own that
// is full moves the call on without counting against the upstream; a
// timeout ends the tries, since the upstream may be working on the call.
func (g *Gateway) tryUpstreams(ctx *fasthttp.RequestCtx, c *call) (upstream.Error, error) {
	firstByte := g.cfg.FirstByteTimeout
	if !c.inspected.Stream {
		firstByte = g.cfg.FirstByteTimeoutNonStreaming
	}
	var err error
	var answer upstream.Error
	for i := range c.routeN {
		if c.cutOff() {
			return answer, upstream.ErrAborted
		}
		r := &c.routes[i]
		u := r.Up
		c.up = u
		if i > 0 {
			c.upstreamRequest.Reset()
		}
		start := time.Now()
		err = g.prepareAttempt(ctx, c, r)
		if err == nil {
			err = u.RoundTrip(&c.upstreamRequest, &c.upstreamHeader, &c.upstreamBody, start.Add(firstByte))
		}
		attempt := ledger.Attempt{Upstream: u.Name()}
		answer = upstream.Error{}
		switch {
		case err != nil:
			attempt.ErrorType = attemptErrorType(err)
			g.logAttemptError(c, u, err)
		case c.upstreamHeader.StatusCode() != fasthttp.StatusOK:
			answer = g.readUpstreamError(c, u)
			attempt.Status, attempt.ErrorType = c.upstreamHeader.StatusCode(), answer.UpstreamType
		default:
			attempt.Status = fasthttp.StatusOK
		}
		attempt.DurationMs = time.Since(start).Milliseconds()
		c.record.Attempts = append(c.record.Attempts, attempt)
		switch {
		case err == nil && !answer.Failure():
			u.Succeeded()
			return answer, nil
		case !errors.Is(err, upstream.ErrPoolFull) && !answer.ModelAccess:
			u.Failed(time.Now(), g.cfg.UpstreamMaxFailures, g.cfg.UpstreamBackoff)
		}
		if i == c.routeN-1 || upstream.IsTimeout(err) {
			return answer, err
		}
		if err == nil {
			c.upstreamBody.Close()
		}
		failoversTotal.Inc()
	}
	return answer, err
}

// answerUnreached answers a call that no upstream answered, and voids its
// hold: the gateway's own pool full (503, rejected), a timeout (504), the
// platform's credentials (503) or a connection error (502).
func (g *Gateway) answerUnreached(ctx *fasthttp.RequestCtx, c *call, err error) {
	if c.cutOff() {
		g.answerShutdown(ctx, c)
		return
	}
	status, typ, msg := fasthttp.StatusBadGateway, views.APIError, "upstream unreachable"
	outcome := ledger.OutcomeUpstreamError
	var credErr *upstream.CredentialsError
	switch {
	case errors.Is(err, upstream.ErrPoolFull):
		status, typ, msg = fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway's upstream connections are busy; try again shortly"
		outcome = ledger.OutcomeRejected
		ctx.Response.Header.Set("retry-after", "1")
		poolFullRefusals.Inc()
	case upstream.IsTimeout(err):
		status, typ, msg = fasthttp.StatusGatewayTimeout, views.TimeoutError, "the upstream did not answer in time"
		outcome = ledger.OutcomeTimeout
	case errors.As(err, &credErr):
		status, typ, msg = fasthttp.StatusServiceUnavailable, views.OverloadedError, "upstream unavailable"
	}
	writeError(ctx, status, typ, msg)
	c.record.Status = status
	c.void(outcome, "upstream_error")
}

// answerShutdown answers a call that shutdown cut off before its reply:
// 503, ended by the recovery policy.
func (g *Gateway) answerShutdown(ctx *fasthttp.RequestCtx, c *call) {
	ctx.Response.Header.Set("retry-after", "1")
	writeError(ctx, fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway is shutting down; try again")
	c.record.Status = fasthttp.StatusServiceUnavailable
	c.recover()
}

// dropRequestBody lets the request body go once it was sent upstream: its
// bytes leave the gateway-wide bound, and a large buffer is not kept for the
// rest of a long stream.
func (g *Gateway) dropRequestBody(c *call) {
	g.releaseBodySlot(c)
	c.upstreamRequest.SetBodyRaw(nil)
	if cap(c.bufs.request) > maxPooledBuffer {
		c.bufs.request = nil
	}
	if cap(c.bufs.body) > maxPooledBuffer {
		c.bufs.body = nil
	}
}

// prepareAttempt fills c.upstreamRequest for sending the call to the upstream of r.
func (g *Gateway) prepareAttempt(ctx *fasthttp.RequestCtx, c *call, r *upstream.Route) error {
	if r.Up.IsBedrock() {
		var err error
		c.bufs.body, c.bufs.uri, err = r.Up.PrepareBedrockRequest(&c.upstreamRequest, c.bufs.request, c.bufs.beta,
			c.inspected.Stream, r.ModelID, c.bufs.body, c.bufs.uri)
		return err
	}
	body := c.bufs.request // sent as it is, not copied
	if r.ModelID != c.inspected.Model {
		c.bufs.body = meter.AppendRewriteModel(c.bufs.body[:0], c.bufs.request, &c.inspected, r.ModelID)
		body = c.bufs.body
	}
	path := ctx.Path()
	if c.front == ledger.FrontOpenAI {
		path = messagesPath
	}
	c.bufs.uri = r.Up.PrepareRequest(&c.upstreamRequest, ctx, path, body, c.bufs.beta, c.bufs.uri)
	if c.front == ledger.FrontOpenAI {
		// OpenAI's clients send no anthropic-version; the translation is
		// written against this one.
		c.upstreamRequest.Header.Set("anthropic-version", chatAnthropicVersion)
		c.upstreamRequest.Header.SetContentType("application/json")
	}
	return nil
}

// readUpstreamError reads an error answer of u (a non-200 status) into
// c.bufs.body and judges it.
func (g *Gateway) readUpstreamError(c *call, u *upstream.Upstream) upstream.Error {
	status := c.upstreamHeader.StatusCode()
	body, _ := readBody(&c.upstreamBody, c.bufs.body[:0], 64<<10)
	c.bufs.body = body
	if u.IsBedrock() {
		return upstream.JudgeBedrock(status, c.upstreamHeader.Peek("x-amzn-errortype"), body)
	}
	return upstream.JudgeAnthropic(status, body)
}

// attemptErrorType is the call record's error_type of an attempt that got
// no answer.
func attemptErrorType(err error) string {
	var credErr *upstream.CredentialsError
	switch {
	case upstream.IsTimeout(err):
		return views.TimeoutError
	case errors.As(err, &credErr):
		return "credentials"
	}
	return views.APIError
}

// logAttemptError logs what the operator must fix: the platform's upstream
// credentials. Connection errors and timeouts show in metrics and records.
func (g *Gateway) logAttemptError(c *call, u *upstream.Upstream, err error) {
	var credErr *upstream.CredentialsError
	if errors.As(err, &credErr) {
		g.logger.Printf("request %s: upstream %s: %s", c.requestID, u.Name(), err)
	}
}

// replyJSON reads a non-streaming reply, settles it from its usage and sends
// it; a body that is not a message (an error in a 200) voids the call.
func (g *Gateway) replyJSON(ctx *fasthttp.RequestCtx, c *call) {
	body, err := readBody(&c.upstreamBody, c.bufs.body[:0], g.cfg.MaxResponseBodyBytes)
	c.bufs.body = body
	c.record.TTFBMs = max(1, time.Since(c.start).Milliseconds())
	if err != nil && c.cutOff() {
		g.answerShutdown(ctx, c)
		return
	}
	if err != nil {
		g.replyCutOff(ctx, c, err, len(body))
		return
	}
	c.obs.Reset(g.cfg.MaxEventBytes)
	if err := c.obs.ObserveMessage(body); err != nil {
		// Not a message: an error in a 200, or garbage. Nothing is charged;
		// the client gets the error with Tollgate's request ID.
		c.void(ledger.OutcomeUpstreamError, "upstream_error")
		e := upstream.JudgeAnthropic(fasthttp.StatusOK, body)
		writeUpstreamError(ctx, &e)
		return
	}
	outcome := ledger.OutcomeOK
	if c.probe.clientGone(ctx.Conn()) {
		outcome = ledger.OutcomeClientDisconnected
	}
	r := c.obs.Result()
	c.settle(outcome, &r, r.Usage, false)
	if c.front == ledger.FrontOpenAI {
		g.replyChat(ctx, c, body)
		return
	}
	ctx.SetBody(body)
}

// replyCutOff settles a non-streaming reply cut off after received bytes of
// its body: the upstream worked, so the call is charged the request's input
// estimate plus output estimated from the bytes received (one token per
// three, within max_tokens), usage_estimated, outcome timeout whether the
// upstream went silent (504) or went away (502); nothing when no byte came.
func (g *Gateway) replyCutOff(ctx *fasthttp.RequestCtx, c *call, err error, received int) {
	status, typ, msg := fasthttp.StatusBadGateway, views.APIError, "the upstream reply was cut off"
	if upstream.IsTimeout(err) {
		status, typ, msg = fasthttp.StatusGatewayTimeout, views.TimeoutError, "the upstream stopped sending"
	}
	c.record.Status = status
	writeError(ctx, status, typ, msg)
	if received == 0 {
		c.void(ledger.OutcomeTimeout, "upstream_error")
		return
	}
	u := meter.Usage{Counts: tokens.Counts{InputTokens: c.inputBound(), OutputTokens: min(int64(received+2)/3, c.inspected.MaxTokens)}}
	c.settle(ledger.OutcomeTimeout, &meter.StreamResult{}, u, true)
}

// passError answers an upstream error status: voids the hold and passes the
// error on as judged (upstreamerror.go).
func (g *Gateway) passError(ctx *fasthttp.RequestCtx, c *call, e *upstream.Error) {
	c.record.Status = e.Status
	writeUpstreamError(ctx, e)
	c.record.Attempts[len(c.record.Attempts)-1].ErrorType = e.UpstreamType
	c.void(ledger.OutcomeUpstreamError, "upstream_error")
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
