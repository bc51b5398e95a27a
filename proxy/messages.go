package proxy

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// serveClient routes the client API.
func (g *Gateway) serveClient(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case ctx.IsPost() && string(path) == "/v1/messages":
		g.handleCall(ctx, ledger.FrontAnthropic)
	case ctx.IsPost() && string(path) == chatCompletionsPath:
		g.handleCall(ctx, ledger.FrontOpenAI)
	case ctx.IsPost() && string(path) == "/v1/messages/count_tokens":
		g.handleCountTokens(ctx)
	case ctx.IsGet() && string(path) == "/v1/models":
		g.withKey(ctx, g.handleModels)
	case ctx.IsGet() && len(path) > len("/v1/models/") && string(path[:len("/v1/models/")]) == "/v1/models/":
		g.withKey(ctx, g.handleModel)
	case ctx.IsGet() && string(path) == "/v1/balance":
		g.withKey(ctx, g.readLimited(g.handleBalance))
	case ctx.IsGet() && string(path) == "/v1/calls":
		g.withKey(ctx, g.readLimited(g.handleCalls))
	case ctx.IsGet() && string(path) == "/v1/statement":
		g.withKey(ctx, g.readLimited(g.handleStatement))
	case ctx.IsPost() && string(path) == "/v1/disputes":
		g.withKey(ctx, g.readLimited(g.handleFileDispute))
	case ctx.IsGet() && string(path) == "/v1/disputes":
		g.withKey(ctx, g.readLimited(g.handleDisputes))
	case g.cfg.Console != nil && string(path) == "/console":
		ctx.Redirect("/console/", fasthttp.StatusMovedPermanently)
	case g.cfg.Console != nil && len(path) >= len("/console/") && string(path[:len("/console/")]) == "/console/":
		ctx.Request.Header.Set(views.ClientAddressHeader, clientIP(ctx, g.cfg.TrustedProxies).String())
		g.cfg.Console(ctx)
	default:
		ctx.Response.Header.SetBytesV(hdrRequestID, ids.AppendRequestID(nil))
		writeError(ctx, fasthttp.StatusNotFound, views.NotFoundError, "no such route: "+string(ctx.Method())+" "+string(path))
	}
}

// withKey authenticates a read-only route (frozen accounts may read). A
// panic in the route is logged with the request ID and answered 500.
func (g *Gateway) withKey(ctx *fasthttp.RequestCtx, h func(*fasthttp.RequestCtx, *ledger.Key)) {
	ctx.Response.Header.SetBytesV(hdrRequestID, ids.AppendRequestID(nil))
	defer func() {
		if p := recover(); p != nil {
			g.logPanic("a read route", string(ctx.Response.Header.Peek(hdrRequestID)), p)
			writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "internal error")
		}
	}()
	k, msg := g.authenticate(ctx)
	if k == nil {
		writeError(ctx, fasthttp.StatusUnauthorized, views.AuthenticationError, msg)
		return
	}
	testHook(stageRead)
	h(ctx, k)
}

// readLimited limits a read route by the key's read bucket (balance, calls
// and statement share it): reads cost the ledger and the log, so a key
// cannot loop on them without bound.
func (g *Gateway) readLimited(h func(*fasthttp.RequestCtx, *ledger.Key)) func(*fasthttp.RequestCtx, *ledger.Key) {
	return func(ctx *fasthttp.RequestCtx, k *ledger.Key) {
		now := time.Now().UnixNano()
		if ok, wait := g.keyLimits.get(k.ID).reads.take(max(g.cfg.ReadRPM, 0), 1, now); !ok {
			limitRejected["key read_rpm"].Inc()
			ctx.Response.Header.Set("retry-after", strconv.FormatInt(retryAfterSeconds(wait), 10))
			writeError(ctx, fasthttp.StatusTooManyRequests, views.RateLimitError, "rate limit exceeded: key "+limitNames["read_rpm"])
			return
		}
		h(ctx, k)
	}
}

// refusal is an answer that ends a call before it is forwarded; the zero
// refusal lets the call go on. param names the request parameter at fault
// when the OpenAI front's error shape has room for it.
type refusal struct {
	status          int
	typ, msg, param string
}

func refuse(status int, typ, msg string) refusal { return refusal{status: status, typ: typ, msg: msg} }

// handleCall is POST /v1/messages, and POST /v1/chat/completions for the
// OpenAI front: authenticate, admit, hold, forward, stream, settle. The
// handler owns the call until forward hands a streaming reply to fasthttp;
// a panic anywhere on its way is recovered here and the call's hold ended
// exactly once.
func (g *Gateway) handleCall(ctx *fasthttp.RequestCtx, front ledger.Front) {
	c := g.acquireCall()
	streaming := false
	defer func() {
		if p := recover(); p != nil {
			c.panicked(ctx, p)
			return
		}
		if !streaming {
			c.end()
		}
	}()
	c.start = time.Now()
	c.requestID = string(ids.AppendRequestID(c.bufs.body[:0]))
	ctx.Response.Header.Set(hdrRequestID, c.requestID)

	k, msg := g.authenticate(ctx)
	if k == nil {
		writeError(ctx, fasthttp.StatusUnauthorized, views.AuthenticationError, msg)
		return
	}
	c.key, c.front = k, front
	c.record.RequestID, c.record.AccountID, c.record.KeyID, c.record.Front = c.requestID, k.AccountID, k.ID, front
	c.record.TimeNanos = c.start.UnixNano()
	c.bufs.digest = g.appendIPDigest(c.bufs.digest[:0], ctx)
	c.record.SourceIPDigest = b2s(c.bufs.digest)

	if r := g.admit(ctx, c); r.status != 0 {
		g.reject(ctx, c, r)
		return
	}
	c.inflight, c.tracked = true, true
	g.inflight.Add(1)
	g.track(c)
	testHook(stageForward)
	streaming = g.forward(ctx, c)
}

// admit runs every check before the hold, in the contract's order, and
// takes the hold. Checks that need no body come first, so that a refused
// client costs no body read: 403 frozen, 413 by Content-Length, 429
// concurrency and requests per minute, 503 request-body bytes in flight, 402
// nothing available. Then the body: 413 as it streams in, 400, 404, 429
// tokens per minute, 402 a hold that does not fit.
func (g *Gateway) admit(ctx *fasthttp.RequestCtx, c *call) refusal {
	st, err := g.ledger.Settings(c.key.AccountID)
	if err != nil {
		return refuse(fasthttp.StatusUnauthorized, views.AuthenticationError, "the key's account does not exist")
	}
	c.settings = st
	if st.Frozen {
		return refuse(fasthttp.StatusForbidden, views.PermissionError, "account frozen")
	}
	if ctx.Request.Header.ContentLength() > g.cfg.MaxRequestBodyBytes {
		ctx.SetConnectionClose() // the body is not read
		return g.tooLarge()
	}
	now := c.start.UnixNano()
	c.limits = g.admissionOf(c.key, &st)
	if r := c.limits.admitCall(now); r != nil {
		return g.limitRefusal(ctx, c, r, now)
	}
	if !g.reserveBody(c, ctx.Request.Header.ContentLength()) {
		c.limits.refundRequest()
		return g.bodyBytesRefusal(ctx)
	}
	if st.Available <= 0 {
		if r := g.borrow(c, 1); r.status != 0 {
			return r
		}
	}
	if r := g.readAndInspect(ctx, c); r.status != 0 {
		return r
	}
	testHook(stageAdmit)
	if r := c.limits.admitTokens(c.inputBound()+c.inspected.MaxTokens, now); r != nil {
		c.limits.refundRequest() // the limits refuse a call all or nothing
		return g.limitRefusal(ctx, c, r, now)
	}
	c.bufs.header = c.limits.setHeaders(&ctx.Response.Header, now, c.bufs.header)
	return g.hold(c)
}

// readAndInspect reads the body and checks the request against the
// catalogue and the key: 413, 400 and 404.
func (g *Gateway) readAndInspect(ctx *fasthttp.RequestCtx, c *call) refusal {
	body, err := g.readRequestBody(ctx, c)
	c.bufs.request = body
	if err != nil {
		return g.bodyError(ctx, err)
	}
	// JSON must be UTF-8; the upstream would refuse it, after the hold.
	if !utf8.Valid(body) {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "the request body is not valid UTF-8")
	}
	if c.front == ledger.FrontOpenAI {
		if r := translateChatRequest(c); r.status != 0 {
			return r
		}
		body = c.bufs.request
	}
	err = meter.InspectRequest(body, &c.inspected)
	c.record.Model, c.record.ModelTruncated = c.inspected.Model, c.inspected.ModelTruncated
	if err != nil {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, requestErrorMessage(err))
	}
	var refused string
	c.bufs.beta, refused = appendBetas(c.bufs.beta[:0], &ctx.Request.Header, g.cfg.DeniedBetas)
	if refused != "" {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "anthropic-beta "+refused+" is not available on this gateway")
	}
	c.cat = g.catalogue.Load()
	m, ok := c.cat.Lookup(c.inspected.Model)
	if !ok || !m.Available(c.start) {
		return refuse(fasthttp.StatusNotFound, views.NotFoundError, "model: "+c.inspected.Model)
	}
	if err := m.Supports(&c.inspected, c.start); err != nil {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, requestErrorMessage(err))
	}
	if !keyAllows(c.key, m) {
		return refuse(fasthttp.StatusNotFound, views.NotFoundError, "model: "+c.inspected.Model)
	}
	c.model = m
	routeKey := c.requestID
	if g.cfg.StickyRouting {
		routeKey = c.key.AccountID
	}
	var withoutModifiers int
	c.routeN, withoutModifiers = upstream.Routes(g.upstreams, m, c.start, routeKey, c.inspected.Modifiers, &c.routes)
	switch {
	case c.routeN == 0 && withoutModifiers > 0:
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, modifierRefusal(&c.inspected, m))
	case c.routeN == 0:
		return refuse(fasthttp.StatusNotFound, views.NotFoundError, "model: "+c.inspected.Model+" has no upstream")
	}
	c.up = c.routes[0].Up
	return refusal{}
}

// hold takes the call's hold: 503 while the disk is low, 402 when the hold
// does not fit or the key's spend limit is reached.
func (g *Gateway) hold(c *call) refusal {
	m, st := c.model, &c.settings
	hold, err := m.Hold(&c.inspected, c.start, meter.Multiplier(st.Multiplier), g.cfg.HoldMaxOutputTokens, g.cfg.DefaultWebSearchUses)
	if err != nil {
		return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "the request's upper-bound price overflows")
	}
	c.holdNanos = hold
	if g.diskLow.Load() {
		c.limits.refundTokens()
		c.limits.refundRequest()
		return refuse(fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway is short of disk space; try again later")
	}
	spend := ledger.SpendLimit{Limit: c.key.SpendLimit, Period: c.key.SpendPeriod, Anchor: c.key.CreatedAtNanos}
	commit, err := g.ledger.HoldForKey(c.key.AccountID, c.requestID, c.key.ID, hold, spend)
	// Cluster mode: a lease for what does not fit; another call may take
	// a grant before this one does, so it asks up to three times.
	for try := 0; try < 3 && err != nil && g.cfg.Credit != nil && insufficient(err); try++ {
		if r := g.borrow(c, hold); r.status != 0 {
			c.limits.refundTokens()
			return r
		}
		commit, err = g.ledger.HoldForKey(c.key.AccountID, c.requestID, c.key.ID, hold, spend)
	}
	if err != nil {
		c.limits.refundTokens()
		return g.holdRefusal(c, err)
	}
	c.held = true
	c.record.Held = hold
	c.holdCommit = commit
	return refusal{}
}

// insufficient reports whether err is the ledger's 402 (a function of its
// own so that the error's target is allocated only on that path).
func insufficient(err error) bool {
	var ie *ledger.InsufficientError
	return errors.As(err, &ie)
}

// borrow asks the credit source (cluster mode) for need nano-credits of
// the call's account: 402 when the account has not that much, 503 when the
// source cannot be asked now. Without a source the ledger's balance is all
// there is: 402.
func (g *Gateway) borrow(c *call, need int64) refusal {
	if g.cfg.Credit == nil {
		return refuse(fasthttp.StatusPaymentRequired, views.BillingError, "insufficient balance: available "+money.Format(c.settings.Available)+" credits")
	}
	err := g.cfg.Credit.Ensure(c.key.AccountID, need)
	var ie *ledger.InsufficientError
	switch {
	case err == nil:
		return refusal{}
	case errors.As(err, &ie):
		return refuse(fasthttp.StatusPaymentRequired, views.BillingError, "insufficient balance: available "+money.Format(ie.Available)+" credits")
	}
	g.logger.Printf("request %s: cannot lease credit: %s", c.requestID, err)
	return refuse(fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway cannot reach its credit authority; try again shortly")
}

// holdRefusal answers a hold the ledger refused.
func (g *Gateway) holdRefusal(c *call, err error) refusal {
	var se *ledger.SpendLimitError
	var ie *ledger.InsufficientError
	switch {
	case errors.As(err, &se):
		return refuse(fasthttp.StatusPaymentRequired, views.BillingError, fmt.Sprintf("this key's spend limit of %s credits per %s is reached: %s spent or held, this call needs a hold of %s",
			money.Format(se.Limit), se.Period, money.Format(se.Spent), money.Format(se.Hold)))
	case errors.Is(err, ledger.ErrFrozen):
		return refuse(fasthttp.StatusForbidden, views.PermissionError, "account frozen")
	case errors.As(err, &ie):
		return refuse(fasthttp.StatusPaymentRequired, views.BillingError, fmt.Sprintf("insufficient balance: this call needs a hold of %s credits; available %s",
			money.Format(ie.Hold), money.Format(ie.Available)))
	}
	g.logger.Printf("request %s: cannot hold: %s", c.requestID, err)
	return refuse(fasthttp.StatusServiceUnavailable, views.APIError, "the gateway cannot take the hold now")
}

// limitRefusal answers a rate limit with its headers and retry-after.
func (g *Gateway) limitRefusal(ctx *fasthttp.RequestCtx, c *call, r *limitRefusal, now int64) refusal {
	limitRejected[r.scope+" "+r.kind].Inc()
	c.bufs.header = c.limits.setHeaders(&ctx.Response.Header, now, c.bufs.header)
	ctx.Response.Header.Set("retry-after", strconv.FormatInt(retryAfterSeconds(r.retryAfter), 10))
	return refuse(fasthttp.StatusTooManyRequests, views.RateLimitError, "rate limit exceeded: "+r.scope+" "+limitNames[r.kind])
}

// tooLarge is the 413 of a body over the limit.
func (g *Gateway) tooLarge() refusal {
	return refuse(fasthttp.StatusRequestEntityTooLarge, views.RequestTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", g.cfg.MaxRequestBodyBytes))
}

// modifierRefusal is the 400 of a call asking for a price modifier no
// configured upstream serves the model with (fast mode and data residency
// are first-party only).
func modifierRefusal(r *meter.Request, m *meter.Model) string {
	if r.Modifiers.Speed == meter.SpeedFast {
		return "speed: \"fast\" is not available for " + m.ID + " on this gateway's upstreams"
	}
	return "inference_geo: \"" + r.InferenceGeo + "\" is not available for " + m.ID + " on this gateway's upstreams"
}

// inputBound is the request's input estimate, within the model's context
// window (a document the gateway cannot see is estimated beyond any).
func (c *call) inputBound() int64 {
	if c.model != nil && c.model.MaxInputTokens > 0 {
		return min(c.inspected.EstimatedInputTokens, c.model.MaxInputTokens)
	}
	return c.inspected.EstimatedInputTokens
}

func requestErrorMessage(err error) string {
	var re *meter.RequestError
	if errors.As(err, &re) {
		return re.Message
	}
	return err.Error()
}

// keyAllows reports whether the key's model allow-list admits m.
func keyAllows(k *ledger.Key, m *meter.Model) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, name := range k.Models {
		if name == m.ID {
			return true
		}
		for _, a := range m.Aliases {
			if name == a {
				return true
			}
		}
	}
	return false
}

// errBodyOverLimit is a request body over the configured limit.
var errBodyOverLimit = errors.New("proxy: request body too large")

// readRequestBody reads the request body into c's buffer, refusing it when
// what arrives exceeds the limit, or outgrows what the call reserved of the
// gateway-wide body bound and cannot reserve more. The client server streams
// request bodies (StreamRequestBody), so that every check that needs no body
// answers before a large body is read.
func (g *Gateway) readRequestBody(ctx *fasthttp.RequestCtx, c *call) ([]byte, error) {
	dst := c.bufs.request[:0]
	s := ctx.RequestBodyStream()
	if s == nil {
		return append(dst, ctx.Request.Body()...), nil
	}
	limit, cl := g.cfg.MaxRequestBodyBytes, ctx.Request.Header.ContentLength()
	for {
		if len(dst) == cap(dst) {
			want := nextBodyCapacity(cap(dst), cl, limit)
			if !g.growBodySlot(c, int64(want)) {
				return dst, errBodyBytesInFlight
			}
			grown := make([]byte, len(dst), want)
			copy(grown, dst)
			dst = grown
		}
		n, err := s.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst[:limit], errBodyOverLimit
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// bodyError answers a request body that could not be read.
func (g *Gateway) bodyError(ctx *fasthttp.RequestCtx, err error) refusal {
	ctx.SetConnectionClose() // the rest of the body is not read
	switch {
	case errors.Is(err, errBodyOverLimit):
		return g.tooLarge()
	case errors.Is(err, errBodyBytesInFlight):
		return g.bodyBytesRefusal(ctx)
	case upstream.IsTimeout(err):
		return refuse(fasthttp.StatusRequestTimeout, views.InvalidRequestError, "request body not received in time")
	}
	return refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, "cannot read the request body")
}

// reject answers a refusal after authentication and records the call. A
// rejection moves no money, so its record rides with the next group commit
// instead of waiting for a sync of its own (a crash may lose the last few).
func (g *Gateway) reject(ctx *fasthttp.RequestCtx, c *call, r refusal) {
	writeErrorParam(ctx, r.status, r.typ, r.msg, r.param)
	c.record.Status = r.status
	c.record.Outcome = ledger.OutcomeRejected
	c.record.DurationMs = time.Since(c.start).Milliseconds()
	if _, err := g.ledger.RecordCall(&c.record); err != nil {
		g.logger.Printf("request %s: cannot record the rejected call: %s", c.requestID, err)
	}
	observeCall(modelLabel(c.model), ledger.OutcomeRejected, r.status, 0, 0)
}
