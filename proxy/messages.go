package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// serveClient routes the client API.
func (g *Gateway) serveClient(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case ctx.IsPost() && string(path) == "/v1/messages":
		g.handleMessages(ctx)
	case ctx.IsPost() && string(path) == "/v1/messages/count_tokens":
		g.handleCountTokens(ctx)
	case ctx.IsGet() && string(path) == "/v1/models":
		g.withKey(ctx, g.handleModels)
	case ctx.IsGet() && len(path) > len("/v1/models/") && string(path[:len("/v1/models/")]) == "/v1/models/":
		g.withKey(ctx, g.handleModel)
	case ctx.IsGet() && string(path) == "/v1/balance":
		g.withKey(ctx, g.handleBalance)
	case ctx.IsGet() && string(path) == "/v1/calls":
		g.withKey(ctx, g.handleCalls)
	case ctx.IsGet() && string(path) == "/v1/statement":
		g.withKey(ctx, func(ctx *fasthttp.RequestCtx, k *ledger.Key) { g.serveStatement(ctx, k.AccountID, false) })
	default:
		ctx.Response.Header.SetBytesV(hdrRequestID, appendRequestID(nil))
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, "no such route: "+string(ctx.Method())+" "+string(path))
	}
}

// withKey authenticates a read-only route (frozen accounts may read).
func (g *Gateway) withKey(ctx *fasthttp.RequestCtx, h func(*fasthttp.RequestCtx, *ledger.Key)) {
	ctx.Response.Header.SetBytesV(hdrRequestID, appendRequestID(nil))
	k, msg := g.authenticate(ctx)
	if k == nil {
		writeError(ctx, fasthttp.StatusUnauthorized, errAuthentication, msg)
		return
	}
	h(ctx, k)
}

// handleMessages is POST /v1/messages: authenticate, validate, hold,
// forward, stream, settle (CONTRACT §2, §4, §5).
func (g *Gateway) handleMessages(ctx *fasthttp.RequestCtx) {
	c := g.acquireCall()
	c.start = time.Now()
	c.requestID = string(appendRequestID(c.bodyBuf[:0]))
	ctx.Response.Header.Set(hdrRequestID, c.requestID)

	k, msg := g.authenticate(ctx)
	if k == nil {
		writeError(ctx, fasthttp.StatusUnauthorized, errAuthentication, msg)
		g.releaseCall(c)
		return
	}
	c.key = k
	c.record = ledger.CallRecord{
		RequestID: c.requestID, AccountID: k.AccountID, KeyID: k.ID, TimeNanos: c.start.UnixNano(),
		Attempts: c.record.Attempts[:0],
	}
	c.digestBuf = g.appendIPDigest(c.digestBuf[:0], ctx)
	c.record.SourceIPDigest = b2s(c.digestBuf)

	status, typ, msg := g.admit(ctx, c)
	if status != 0 {
		g.reject(ctx, c, status, typ, msg)
		return
	}
	g.inflight.Add(1)
	g.forward(ctx, c)
}

// admit runs every check before the hold, in the contract's precedence
// (403, 400, 404, 429, 402; 401 and 413 come earlier), and takes the hold.
// It returns a status and error for a refusal, or 0 with the hold taken.
func (g *Gateway) admit(ctx *fasthttp.RequestCtx, c *call) (int, string, string) {
	st, err := g.ledger.Settings(c.key.AccountID)
	if err != nil {
		return fasthttp.StatusUnauthorized, errAuthentication, "the key's account does not exist"
	}
	c.settings = st
	if st.Frozen {
		return fasthttp.StatusForbidden, errPermission, "account frozen"
	}
	body, err := g.readRequestBody(ctx, c.reqBuf[:0])
	c.reqBuf = body
	if err != nil {
		return g.bodyError(ctx, err)
	}
	// JSON must be UTF-8; the upstream would refuse it, after the hold.
	if !utf8.Valid(body) {
		return fasthttp.StatusBadRequest, errInvalidRequest, "the request body is not valid UTF-8"
	}
	if err := meter.InspectRequest(body, &c.mreq); err != nil {
		return fasthttp.StatusBadRequest, errInvalidRequest, requestErrorMessage(err)
	}
	c.record.Model = c.mreq.Model
	var refused string
	c.betaBuf, refused = appendBetas(c.betaBuf[:0], &ctx.Request.Header, g.cfg.DeniedBetas)
	if refused != "" {
		return fasthttp.StatusBadRequest, errInvalidRequest, "anthropic-beta " + refused + " is not available on this gateway"
	}
	m, ok := g.catalogue.Load().Lookup(c.mreq.Model)
	if !ok || m.Retired(c.start) {
		return fasthttp.StatusNotFound, errNotFound, "model: " + c.mreq.Model
	}
	if err := m.Supports(&c.mreq, c.start); err != nil {
		return fasthttp.StatusBadRequest, errInvalidRequest, requestErrorMessage(err)
	}
	if !keyAllows(c.key, m) {
		return fasthttp.StatusNotFound, errNotFound, "model: " + c.mreq.Model
	}
	c.model = m
	routeKey := c.requestID
	if g.cfg.StickyRouting {
		routeKey = c.key.AccountID
	}
	c.routeN = g.routes(m, c.start, routeKey, &c.routes)
	if c.routeN == 0 {
		return fasthttp.StatusNotFound, errNotFound, "model: " + c.mreq.Model + " has no upstream"
	}
	c.up = c.routes[0].up
	now := c.start.UnixNano()
	c.adm = admission{
		key: g.keyLimits.get(c.key.ID), account: g.accountLimits.get(c.key.AccountID),
		keyLimits:  Limits{RPM: effective(c.key.Limits.RPM, g.cfg.DefaultKeyLimits.RPM), TPM: effective(c.key.Limits.TPM, g.cfg.DefaultKeyLimits.TPM), Concurrency: effective(c.key.Limits.Concurrency, g.cfg.DefaultKeyLimits.Concurrency)},
		acctLimits: Limits{RPM: effective(st.Limits.RPM, g.cfg.DefaultAccountLimits.RPM), TPM: effective(st.Limits.TPM, g.cfg.DefaultAccountLimits.TPM), Concurrency: effective(st.Limits.Concurrency, g.cfg.DefaultAccountLimits.Concurrency)},
	}
	if r := c.adm.admit(c.mreq.EstimatedInputTokens+c.mreq.MaxTokens, now); r != nil {
		limitRejected[r.scope+" "+r.kind].Inc()
		c.hdrBuf = c.adm.setHeaders(&ctx.Response.Header, now, c.hdrBuf)
		ctx.Response.Header.Set("retry-after", strconv.FormatInt(retryAfterSeconds(r.retryAfter), 10))
		return fasthttp.StatusTooManyRequests, errRateLimit, "rate limit exceeded: " + r.scope + " " + limitNames[r.kind]
	}
	c.hdrBuf = c.adm.setHeaders(&ctx.Response.Header, now, c.hdrBuf)
	hold, err := m.Hold(&c.mreq, c.start, meter.Multiplier(st.Multiplier), g.cfg.HoldMaxOutputTokens, g.cfg.DefaultWebSearchUses)
	if err != nil {
		return fasthttp.StatusBadRequest, errInvalidRequest, "the request's upper-bound price overflows"
	}
	c.holdNanos = hold
	c.record.Held = hold
	if g.diskLow.Load() {
		return fasthttp.StatusServiceUnavailable, errOverloaded, "the gateway is short of disk space; try again later"
	}
	commit, err := g.ledger.HoldForKey(c.key.AccountID, c.requestID, c.key.ID, hold,
		ledger.SpendLimit{Limit: c.key.SpendLimit, Period: c.key.SpendPeriod, Anchor: c.key.CreatedAtNanos})
	switch {
	case err == nil:
	case errors.Is(err, ledger.ErrSpendLimit):
		var se *ledger.SpendLimitError
		if errors.As(err, &se) {
			return fasthttp.StatusPaymentRequired, errBilling, fmt.Sprintf("this key's spend limit of %s credits per %s is reached: %s spent or held, this call needs a hold of %s",
				ledger.FormatAmount(se.Limit), se.Period, ledger.FormatAmount(se.Spent), ledger.FormatAmount(se.Hold))
		}
		return fasthttp.StatusPaymentRequired, errBilling, "this key's spend limit is reached"
	case errors.Is(err, ledger.ErrFrozen):
		return fasthttp.StatusForbidden, errPermission, "account frozen"
	case errors.Is(err, ledger.ErrInsufficient):
		var ie *ledger.InsufficientError
		if errors.As(err, &ie) {
			return fasthttp.StatusPaymentRequired, errBilling, fmt.Sprintf("insufficient balance: this call needs a hold of %s credits; available %s",
				ledger.FormatAmount(ie.Hold), ledger.FormatAmount(ie.Available))
		}
		return fasthttp.StatusPaymentRequired, errBilling, "insufficient balance"
	default:
		g.logger.Printf("request %s: cannot hold: %s", c.requestID, err)
		return fasthttp.StatusServiceUnavailable, errAPI, "the gateway cannot take the hold now"
	}
	c.held = true
	c.holdCommit = commit
	return 0, "", ""
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

// readRequestBody reads the request body into dst, refusing it when its
// declared length, or what arrives, exceeds the limit: the client server
// streams request bodies (StreamRequestBody), so that authentication and the
// frozen check answer before a large body is read, and an oversized one is
// refused without reading it in full.
func (g *Gateway) readRequestBody(ctx *fasthttp.RequestCtx, dst []byte) ([]byte, error) {
	limit := g.cfg.MaxRequestBodyBytes
	if n := ctx.Request.Header.ContentLength(); n > limit {
		return dst, errBodyOverLimit
	}
	s := ctx.RequestBodyStream()
	if s == nil {
		return append(dst, ctx.Request.Body()...), nil
	}
	body, err := readBody(s, dst, limit)
	if err == errBodyTooLarge {
		return body, errBodyOverLimit
	}
	return body, err
}

// bodyError answers a request body that could not be read.
func (g *Gateway) bodyError(ctx *fasthttp.RequestCtx, err error) (int, string, string) {
	ctx.SetConnectionClose() // the rest of the body is not read
	if errors.Is(err, errBodyOverLimit) {
		return fasthttp.StatusRequestEntityTooLarge, errRequestTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", g.cfg.MaxRequestBodyBytes)
	}
	if isTimeout(err) {
		return fasthttp.StatusRequestTimeout, errInvalidRequest, "request body not received in time"
	}
	return fasthttp.StatusBadRequest, errInvalidRequest, "cannot read the request body"
}

// reject answers a refusal after authentication and records the call.
func (g *Gateway) reject(ctx *fasthttp.RequestCtx, c *call, status int, typ, msg string) {
	writeError(ctx, status, typ, msg)
	c.record.Status = status
	c.record.Outcome = ledger.OutcomeRejected
	c.record.DurationMs = time.Since(c.start).Milliseconds()
	if commit, err := g.ledger.RecordCall(&c.record); err != nil {
		g.logger.Printf("request %s: cannot record the rejected call: %s", c.requestID, err)
	} else if err := commit.Wait(); err != nil {
		g.logger.Printf("request %s: cannot record the rejected call: %s", c.requestID, err)
	}
	observeCall(c.mreq.Model, ledger.OutcomeRejected, status, 0, 0)
	g.releaseCall(c)
}
