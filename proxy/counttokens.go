package proxy

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// handleCountTokens is POST /v1/messages/count_tokens: never charged, but
// admitted like a call, in the same order of checks: it takes a concurrency
// slot of the key and the account, a request of the key's own count_tokens
// bucket, room for its body, and an upstream connection of the small share
// count_tokens may use, so that counting cannot starve calls. The body is
// read with the meter's scanner, like a call's.
func (g *Gateway) handleCountTokens(ctx *fasthttp.RequestCtx) {
	c := g.acquireCall()
	defer func() {
		if p := recover(); p != nil {
			g.logPanic("the count_tokens handler", c.requestID, p)
			c.poisoned = true
			writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "internal error")
		}
		c.end()
	}()
	c.start = time.Now()
	c.requestID = string(ids.AppendRequestID(c.bufs.body[:0]))
	ctx.Response.Header.Set(hdrRequestID, c.requestID)
	k, msg := g.authenticate(ctx)
	if k == nil {
		writeError(ctx, fasthttp.StatusUnauthorized, views.AuthenticationError, msg)
		return
	}
	c.key = k
	if r := g.admitCount(ctx, c); r.status != 0 {
		if c.bodySlot > 0 && len(c.bufs.request) == 0 {
			ctx.SetConnectionClose()
		}
		writeError(ctx, r.status, r.typ, r.msg)
		return
	}
	c.inflight = true
	g.inflight.Add(1)
	g.forwardCount(ctx, c)
}

// admitCount runs the checks of a count_tokens request and routes it.
func (g *Gateway) admitCount(ctx *fasthttp.RequestCtx, c *call) refusal {
	st, err := g.ledger.Settings(c.key.AccountID)
	switch {
	case err != nil:
		return refuse(fasthttp.StatusUnauthorized, views.AuthenticationError, "the key's account does not exist")
	case st.Frozen:
		return refuse(fasthttp.StatusForbidden, views.PermissionError, "account frozen")
	case ctx.Request.Header.ContentLength() > g.cfg.MaxRequestBodyBytes:
		ctx.SetConnectionClose()
		return g.tooLarge()
	}
	now := c.start.UnixNano()
	c.limits = g.admissionOf(c.key, &st)
	if r := c.limits.takeSlots(); r != nil {
		return g.limitRefusal(ctx, c, r, now)
	}
	rpm := minLimit(c.limits.keyLimits.RPM, g.cfg.CountTokensRPM)
	if ok, wait := c.limits.key.countTokens.take(rpm, 1, now); !ok {
		return g.limitRefusal(ctx, c, &limitRefusal{scope: "key", kind: "count_tokens_rpm", retryAfter: wait}, now)
	}
	if !g.reserveBody(c, ctx.Request.Header.ContentLength()) {
		return g.bodyBytesRefusal(ctx)
	}
	body, err := g.readRequestBody(ctx, c)
	c.bufs.request = body
	if err != nil {
		return g.bodyError(ctx, err)
	}
	if !utf8.Valid(body) {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "the request body is not valid UTF-8")
	}
	if err := meter.InspectCountTokensRequest(body, &c.inspected); err != nil {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, requestErrorMessage(err))
	}
	var refused string
	c.bufs.beta, refused = appendBetas(c.bufs.beta[:0], &ctx.Request.Header, g.cfg.DeniedBetas)
	if refused != "" {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "anthropic-beta "+refused+" is not available on this gateway")
	}
	m, ok := g.catalogue.Load().Lookup(c.inspected.Model)
	if !ok || !m.Available(c.start) || !keyAllows(c.key, m) {
		return refuse(fasthttp.StatusNotFound, views.NotFoundError, "model: "+c.inspected.Model)
	}
	c.model = m
	up, modelID := upstream.ForCounting(g.upstreams, m, c.start)
	if up == nil {
		return refuse(fasthttp.StatusNotFound, views.NotFoundError, "model: "+c.inspected.Model+" has no upstream that counts tokens")
	}
	c.up, c.routes[0] = up, upstream.Route{Up: up, ModelID: modelID}
	return refusal{}
}

// forwardCount sends an admitted count_tokens request and passes the answer
// on: the count, or the upstream's error as judged for any call. A full
// connection share answers 503 and never counts against the upstream.
func (g *Gateway) forwardCount(ctx *fasthttp.RequestCtx, c *call) {
	u, modelID := c.up, c.routes[0].ModelID
	if !u.TakeCountSlot() {
		ctx.Response.Header.Set("retry-after", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway's upstream connections are busy; try again shortly")
		return
	}
	defer u.ReleaseCountSlot()
	body := c.bufs.request
	if modelID != c.inspected.Model {
		c.bufs.body = meter.AppendRewriteModel(c.bufs.body[:0], body, &c.inspected, modelID)
		body = c.bufs.body
	}
	c.bufs.uri = u.PrepareRequest(&c.upstreamRequest, ctx, ctx.Path(), body, c.bufs.beta, c.bufs.uri)
	c.tracked = true
	g.track(c)
	err := u.RoundTrip(&c.upstreamRequest, &c.upstreamHeader, &c.upstreamBody, c.start.Add(g.cfg.FirstByteTimeout))
	g.releaseBodySlot(c)
	if err != nil && c.cutOff() {
		ctx.Response.Header.Set("retry-after", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway is shutting down; try again")
		return
	}
	if err != nil {
		g.answerNoUpstream(ctx, err)
		return
	}
	c.upstreamBody.SetDeadlines(g.cfg.IdleTimeout, c.start.Add(g.cfg.FirstByteTimeout))
	out, err := readBody(&c.upstreamBody, c.bufs.body[:0], 1<<20)
	c.bufs.body = out
	c.upstreamBody.Close()
	if err != nil {
		writeError(ctx, fasthttp.StatusBadGateway, views.APIError, "the upstream reply was cut off")
		return
	}
	for _, h := range passedResponseHeaders {
		if v := c.upstreamHeader.Peek(h); len(v) > 0 {
			ctx.Response.Header.SetBytesV(h, v)
		}
	}
	if status := c.upstreamHeader.StatusCode(); status != fasthttp.StatusOK {
		e := upstream.JudgeAnthropic(status, out)
		writeUpstreamError(ctx, &e)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(out)
}

// answerNoUpstream answers a request that got no upstream answer: its own
// pool full (503), a timeout (504) or a connection error (502).
func (g *Gateway) answerNoUpstream(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, upstream.ErrPoolFull):
		ctx.Response.Header.Set("retry-after", strconv.Itoa(1))
		writeError(ctx, fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway's upstream connections are busy; try again shortly")
	case upstream.IsTimeout(err):
		writeError(ctx, fasthttp.StatusGatewayTimeout, views.TimeoutError, "the upstream did not answer in time")
	default:
		writeError(ctx, fasthttp.StatusBadGateway, views.APIError, "upstream unreachable")
	}
}

// minLimit is the smaller of two limits where 0 (or less) means none.
func minLimit(a, b int64) int64 {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}
