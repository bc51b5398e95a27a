package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// adminActor names the admin token in the entries it makes.
const adminActor = "admin"

type accountView struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Multiplier  amount    `json:"multiplier"`
	RPM         *int64    `json:"rpm"`
	TPM         *int64    `json:"tpm"`
	Concurrency *int64    `json:"concurrency"`
	Available   amount    `json:"available"`
	Held        amount    `json:"held"`
	Frozen      bool      `json:"frozen"`
	ExpiresAt   timestamp `json:"expires_at"`
	CreatedAt   timestamp `json:"created_at"`
}

// limitView is nil (JSON null) for "the configured default".
func limitView(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

func newAccountView(a ledger.AccountInfo) accountView {
	return accountView{
		ID: a.ID, Email: a.Email, Multiplier: amount(a.Multiplier),
		RPM: limitView(a.Limits.RPM), TPM: limitView(a.Limits.TPM), Concurrency: limitView(a.Limits.Concurrency),
		Available: amount(a.Available), Held: amount(a.Held), Frozen: a.Frozen,
		ExpiresAt: timestamp(a.ExpiresAtNanos), CreatedAt: timestamp(a.CreatedAtNanos),
	}
}

type entryView struct {
	ID             string    `json:"id"`
	Time           timestamp `json:"time"`
	Kind           string    `json:"kind"`
	Account        string    `json:"account_id"`
	Amount         amount    `json:"amount"`
	AvailableAfter amount    `json:"available_after"`
	RequestID      string    `json:"request_id,omitempty"`
	OrderID        string    `json:"order_id,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Held           *amount   `json:"held,omitempty"`
	Charged        *amount   `json:"charged,omitempty"`
	Credit         string    `json:"credit,omitempty"`
	ExpiresAt      timestamp `json:"expires_at,omitempty"`
}

func newEntryView(e ledger.Entry) entryView {
	v := entryView{
		ID: strconv.FormatUint(e.ID, 10), Time: timestamp(e.TimeNanos), Kind: e.Kind.String(), Account: e.Account,
		Amount: amount(e.Amount), AvailableAfter: amount(e.AvailableAfter), RequestID: e.RequestID, OrderID: e.OrderID,
		Reason: e.Reason, Actor: e.Actor, IdempotencyKey: e.IdempotencyKey,
	}
	if e.Kind == ledger.EntrySettle {
		h, c := amount(e.Held), amount(e.Charged)
		v.Held, v.Charged = &h, &c
	}
	if e.Kind == ledger.EntryTopUp || e.Kind == ledger.EntryExpire {
		v.Credit = e.Credit.String()
		v.ExpiresAt = timestamp(e.ExpiresAtNanos)
	}
	return v
}

type keyView struct {
	ID          string    `json:"id"`
	Key         string    `json:"key,omitempty"`
	AccountID   string    `json:"account_id"`
	Name        string    `json:"name"`
	Hint        string    `json:"hint"`
	RPM         *int64    `json:"rpm"`
	TPM         *int64    `json:"tpm"`
	Concurrency *int64    `json:"concurrency"`
	SpendLimit  *amount   `json:"spend_limit"`
	SpendPeriod *string   `json:"spend_period"`
	ExpiresAt   timestamp `json:"expires_at"`
	Models      []string  `json:"models"`
	Revoked     bool      `json:"revoked"`
	CreatedAt   timestamp `json:"created_at"`
}

func newKeyView(k *ledger.Key) keyView {
	v := keyView{
		ID: k.ID, AccountID: k.AccountID, Name: k.Name, Hint: k.Hint,
		RPM: limitView(k.Limits.RPM), TPM: limitView(k.Limits.TPM), Concurrency: limitView(k.Limits.Concurrency),
		ExpiresAt: timestamp(k.ExpiresAtNanos), Models: k.Models, Revoked: k.Revoked, CreatedAt: timestamp(k.CreatedAtNanos),
	}
	if v.Models == nil {
		v.Models = []string{}
	}
	if k.SpendLimit > 0 {
		a := amount(k.SpendLimit)
		v.SpendLimit = &a
		p := k.SpendPeriod.String()
		v.SpendPeriod = &p
	}
	return v
}

// adminAuth says which token an admin route needs.
type adminAuth uint8

const (
	authNone adminAuth = iota
	authAdmin
	authMetrics // the admin token or the metrics token
)

// adminRoute is one route of the admin API. pattern is written as OpenAPI
// writes paths: {name} segments match any one segment and are passed to
// handle in order. docs/openapi.yaml describes every route of this table;
// a test checks that the two agree.
type adminRoute struct {
	method  string
	pattern string
	auth    adminAuth
	handle  func(g *Gateway, ctx *fasthttp.RequestCtx, params []string)
}

var adminRoutes = []adminRoute{
	{"GET", "/healthz", authNone, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { ctx.SetBodyString("ok\n") }},
	{"GET", "/readyz", authNone, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.readyz(ctx) }},
	{"GET", "/metrics", authMetrics, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) {
		ctx.SetContentType("text/plain; version=0.0.4")
		metrics.WritePrometheus(ctx, true)
	}},
	{"POST", "/admin/v1/accounts", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminCreateAccount(ctx) }},
	{"GET", "/admin/v1/accounts/{id}", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminGetAccount(ctx, p[0]) }},
	{"PATCH", "/admin/v1/accounts/{id}", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminPatchAccount(ctx, p[0]) }},
	{"POST", "/admin/v1/accounts/{id}/topups", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminTopUp(ctx, p[0]) }},
	{"POST", "/admin/v1/accounts/{id}/keys", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminCreateKey(ctx, p[0]) }},
	{"GET", "/admin/v1/accounts/{id}/keys", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminListKeys(ctx, p[0]) }},
	{"POST", "/admin/v1/accounts/{id}/freeze", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminFreeze(ctx, p[0], true) }},
	{"POST", "/admin/v1/accounts/{id}/unfreeze", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminFreeze(ctx, p[0], false) }},
	{"GET", "/admin/v1/accounts/{id}/entries", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminEntries(ctx, p[0]) }},
	{"GET", "/admin/v1/accounts/{id}/statement", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.serveStatement(ctx, p[0], true) }},
	{"PATCH", "/admin/v1/keys/{key_id}", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminPatchKey(ctx, p[0]) }},
	{"DELETE", "/admin/v1/keys/{key_id}", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, p []string) { g.adminRevokeKey(ctx, p[0]) }},
	{"GET", "/admin/v1/calls", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminCalls(ctx) }},
	{"POST", "/admin/v1/adjustments", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminAdjust(ctx) }},
	{"GET", "/admin/v1/expiring", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminExpiring(ctx) }},
	{"GET", "/admin/v1/models", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminModels(ctx) }},
	{"POST", "/admin/v1/backup", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { g.adminBackup(ctx) }},
	// Go's profiles (pprof), for profiling a gateway under load (tollbench).
	{"GET", "/debug/pprof/{profile}", authAdmin, func(g *Gateway, ctx *fasthttp.RequestCtx, _ []string) { pprofhandler.PprofHandler(ctx) }},
}

// maxAdminSegments bounds the path segments the admin router looks at.
const maxAdminSegments = 8

// matchRoute matches path against pattern and returns the {param} values.
func matchRoute(pattern, path string, params []string) ([]string, bool) {
	for pattern != "" || path != "" {
		var ps, qs string
		ps, pattern, _ = strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
		qs, path, _ = strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if pattern != "" {
			pattern = "/" + pattern
		}
		if path != "" {
			path = "/" + path
		}
		switch {
		case strings.HasPrefix(ps, "{"):
			if qs == "" {
				return nil, false
			}
			params = append(params, qs)
		case ps != qs:
			return nil, false
		}
		if (pattern == "") != (path == "") {
			return nil, false
		}
	}
	return params, true
}

// serveAdmin routes the admin API by adminRoutes. Every route but /healthz
// and /readyz needs the admin token (or, for /metrics, the metrics token).
func (g *Gateway) serveAdmin(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetBytesV(hdrRequestID, appendRequestID(nil))
	path, method := string(ctx.Path()), string(ctx.Method())
	if strings.Count(path, "/") > maxAdminSegments {
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, "no such route")
		return
	}
	var params [4]string
	pathKnown := false
	for _, r := range adminRoutes {
		p, ok := matchRoute(r.pattern, path, params[:0])
		if !ok {
			continue
		}
		pathKnown = true
		if r.method != method {
			continue
		}
		if r.auth != authNone && !g.adminAuthorized(ctx, r.auth == authMetrics) {
			return
		}
		r.handle(g, ctx, p)
		return
	}
	if pathKnown && g.adminAuthorized(ctx, false) {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, errInvalidRequest, "method "+method+" not allowed on "+path)
		return
	}
	if !pathKnown {
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, "no such route: "+method+" "+path)
	}
}

// adminAuthorized checks the bearer token in constant time (comparing
// SHA-256 digests, so the length of the token does not leak either).
func (g *Gateway) adminAuthorized(ctx *fasthttp.RequestCtx, metricsRoute bool) bool {
	auth := ctx.Request.Header.Peek("Authorization")
	var token []byte
	if len(auth) > 7 && bytes.EqualFold(auth[:7], []byte("bearer ")) {
		token = bytes.TrimSpace(auth[7:])
	}
	given := sha256.Sum256(token)
	admin := sha256.Sum256([]byte(g.cfg.AdminToken))
	ok := len(token) > 0 && subtle.ConstantTimeCompare(given[:], admin[:]) == 1
	if !ok && metricsRoute && g.cfg.MetricsToken != "" {
		m := sha256.Sum256([]byte(g.cfg.MetricsToken))
		ok = len(token) > 0 && subtle.ConstantTimeCompare(given[:], m[:]) == 1
	}
	if !ok {
		writeError(ctx, fasthttp.StatusUnauthorized, errAuthentication, "missing or invalid admin token")
	}
	return ok
}

// ledgerError answers an error from the ledger with its contract status.
func ledgerError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, ledger.ErrUnknownAccount), errors.Is(err, ledger.ErrUnknownKey):
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, err.Error())
	case errors.Is(err, ledger.ErrAccountExists), errors.Is(err, ledger.ErrKeyExists), errors.Is(err, ledger.ErrOrderConflict),
		errors.Is(err, ledger.ErrIdempotencyConflict), errors.Is(err, ledger.ErrTooManyBuckets):
		writeError(ctx, fasthttp.StatusConflict, errConflict, err.Error())
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrOverflow), errors.Is(err, money.ErrRange):
		writeError(ctx, fasthttp.StatusBadRequest, errInvalidRequest, err.Error())
	default:
		writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot record the change")
	}
}

func badRequest(ctx *fasthttp.RequestCtx, err error) {
	writeError(ctx, fasthttp.StatusBadRequest, errInvalidRequest, err.Error())
}

func (g *Gateway) adminCreateAccount(ctx *fasthttp.RequestCtx) {
	f, err := parseFields(ctx.PostBody(), "id", "email", "multiplier", "rpm", "tpm", "concurrency")
	if err != nil {
		badRequest(ctx, err)
		return
	}
	spec := ledger.AccountSpec{Limits: ledger.DefaultLimits}
	if err := errors.Join(f.string("id", &spec.ID), f.string("email", &spec.Email), f.multiplier("multiplier", &spec.Multiplier), f.limits(&spec.Limits)); err != nil {
		badRequest(ctx, err)
		return
	}
	if spec.ID == "" {
		spec.ID = "acct_" + randomBase62(20)
	}
	a, err := g.ledger.CreateAccount(spec)
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, newAccountView(a))
}

func (g *Gateway) adminGetAccount(ctx *fasthttp.RequestCtx, id string) {
	a, err := g.ledger.Account(id)
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, newAccountView(a))
}

func (g *Gateway) adminPatchAccount(ctx *fasthttp.RequestCtx, id string) {
	f, err := parseFields(ctx.PostBody(), "email", "multiplier", "rpm", "tpm", "concurrency")
	if err != nil {
		badRequest(ctx, err)
		return
	}
	cur, err := g.ledger.Account(id)
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	var p ledger.AccountPatch
	email, mult, limits := cur.Email, cur.Multiplier, cur.Limits
	if err := errors.Join(f.string("email", &email), f.multiplier("multiplier", &mult), f.limits(&limits)); err != nil {
		badRequest(ctx, err)
		return
	}
	p.Email, p.Multiplier, p.Limits = &email, &mult, &limits
	a, err := g.ledger.UpdateAccount(id, p)
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, newAccountView(a))
}

func (g *Gateway) adminTopUp(ctx *fasthttp.RequestCtx, account string) {
	f, err := parseFields(ctx.PostBody(), "amount", "order_id", "kind", "expires_at")
	if err != nil {
		badRequest(ctx, err)
		return
	}
	r := ledger.TopUpRequest{Account: account, Actor: adminActor}
	var kind string
	if err := errors.Join(f.amount("amount", &r.Amount), f.string("order_id", &r.OrderID), f.string("kind", &kind), f.time("expires_at", &r.ExpiresAtNanos)); err != nil {
		badRequest(ctx, err)
		return
	}
	switch {
	case !f.has("amount"):
		badRequest(ctx, fmt.Errorf("amount: required"))
		return
	case r.Amount <= 0:
		badRequest(ctx, fmt.Errorf("amount: must be positive"))
		return
	case r.OrderID == "":
		badRequest(ctx, fmt.Errorf("order_id: required"))
		return
	}
	if r.Credit, err = ledger.ParseCredit(kind); err != nil {
		badRequest(ctx, fmt.Errorf("kind: must be \"paid\" or \"gift\""))
		return
	}
	if r.Credit == ledger.CreditPaid && f.has("expires_at") {
		badRequest(ctx, fmt.Errorf("expires_at: paid credit expires 365 days after the latest paid top-up; it takes no expires_at"))
		return
	}
	if r.Credit == ledger.CreditGift && !f.has("expires_at") {
		badRequest(ctx, fmt.Errorf("expires_at: required for gift credit"))
		return
	}
	e, created, err := g.ledger.TopUp(r)
	writeEntry(ctx, e, created, err)
}

func (g *Gateway) adminCreateKey(ctx *fasthttp.RequestCtx, account string) {
	k := ledger.Key{AccountID: account, Limits: ledger.DefaultLimits}
	if err := readKeySettings(ctx.PostBody(), &k); err != nil {
		badRequest(ctx, err)
		return
	}
	secret, created, err := g.NewKey(k)
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	v := newKeyView(created)
	v.Key = secret
	writeJSON(ctx, fasthttp.StatusCreated, v)
}

// readKeySettings applies a key body (name, limits, spend limit and period,
// expiry, model allow-list) to k: absent fields leave k as it is.
func readKeySettings(body []byte, k *ledger.Key) error {
	f, err := parseFields(body, "name", "rpm", "tpm", "concurrency", "spend_limit", "spend_period", "expires_at", "models")
	if err != nil {
		return err
	}
	period := ""
	if err := errors.Join(f.string("name", &k.Name), f.limits(&k.Limits), f.amount("spend_limit", &k.SpendLimit),
		f.string("spend_period", &period), f.time("expires_at", &k.ExpiresAtNanos), f.strings("models", &k.Models)); err != nil {
		return err
	}
	if period != "" {
		if k.SpendPeriod, err = time.ParseDuration(period); err != nil || k.SpendPeriod <= 0 {
			return fmt.Errorf("spend_period: %q is not a positive duration such as \"720h\"", period)
		}
	}
	return nil
}

func (g *Gateway) adminListKeys(ctx *fasthttp.RequestCtx, account string) {
	if _, err := g.ledger.Settings(account); err != nil {
		ledgerError(ctx, err)
		return
	}
	keys := g.ledger.Keys(account)
	views := make([]keyView, 0, len(keys))
	for _, k := range keys {
		views = append(views, newKeyView(k))
	}
	writeJSON(ctx, fasthttp.StatusOK, newList(views, ""))
}

func (g *Gateway) adminPatchKey(ctx *fasthttp.RequestCtx, id string) {
	cur := g.ledger.Key(id)
	if cur == nil {
		ledgerError(ctx, ledger.ErrUnknownKey)
		return
	}
	k := *cur
	if err := readKeySettings(ctx.PostBody(), &k); err != nil {
		badRequest(ctx, err)
		return
	}
	updated, err := g.ledger.UpdateKey(id, ledger.KeyPatch{Name: &k.Name, Limits: &k.Limits, SpendLimit: &k.SpendLimit,
		SpendPeriod: &k.SpendPeriod, ExpiresAtNanos: &k.ExpiresAtNanos, Models: &k.Models})
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, newKeyView(updated))
}

func (g *Gateway) adminRevokeKey(ctx *fasthttp.RequestCtx, id string) {
	if err := g.ledger.RevokeKey(id); err != nil {
		ledgerError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (g *Gateway) adminFreeze(ctx *fasthttp.RequestCtx, id string, frozen bool) {
	if err := g.ledger.SetFrozen(id, frozen, adminActor); err != nil {
		ledgerError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (g *Gateway) adminEntries(ctx *fasthttp.RequestCtx, account string) {
	limit, ok := pageLimit(ctx, 100, 1000)
	if !ok {
		return
	}
	if _, err := g.ledger.Settings(account); err != nil {
		ledgerError(ctx, err)
		return
	}
	before, ok := seqCursor(ctx)
	if !ok {
		return
	}
	entries, more, err := g.ledger.Entries(account, before, limit)
	if err != nil {
		g.logger.Printf("cannot list entries: %s", err)
		writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot list entries")
		return
	}
	views := make([]entryView, 0, len(entries))
	for _, e := range entries {
		views = append(views, newEntryView(e))
	}
	next := ""
	if more && len(entries) > 0 {
		next = strconv.FormatUint(entries[len(entries)-1].ID, 10)
	}
	writeJSON(ctx, fasthttp.StatusOK, newList(views, next))
}

func (g *Gateway) adminCalls(ctx *fasthttp.RequestCtx) {
	limit, ok := pageLimit(ctx, 100, 1000)
	if !ok {
		return
	}
	args := ctx.QueryArgs()
	if id := args.Peek("request_id"); len(id) > 0 {
		c, err := g.ledger.CallByRequestID(string(id))
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot read calls")
			return
		}
		views := []adminCallView{}
		if c != nil {
			views = append(views, newAdminCallView(c))
		}
		writeJSON(ctx, fasthttp.StatusOK, newList(views, ""))
		return
	}
	var f ledger.CallFilter
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"since", &f.SinceNanos}, {"until", &f.UntilNanos}} {
		if s := args.Peek(p.name); len(s) > 0 {
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				badRequest(ctx, fmt.Errorf("%s: %q is not an RFC 3339 time", p.name, s))
				return
			}
			*p.dst = t.UnixNano()
		}
	}
	cursor := string(args.Peek("cursor"))
	var views []adminCallView
	next := ""
	if account := string(args.Peek("account")); account != "" {
		before, ok := seqCursor(ctx)
		if !ok {
			return
		}
		calls, n, err := g.ledger.Calls(account, f, before, limit)
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot read calls")
			return
		}
		for _, c := range calls {
			views = append(views, newAdminCallView(c))
		}
		if n != 0 {
			next = strconv.FormatUint(n, 10)
		}
	} else {
		var cur ledger.CallCursor
		if cursor != "" {
			t, s, found := strings.Cut(cursor, "-")
			tv, err1 := strconv.ParseInt(t, 10, 64)
			sv, err2 := strconv.ParseUint(s, 10, 64)
			if !found || err1 != nil || err2 != nil {
				badRequest(ctx, fmt.Errorf("cursor: not a cursor this API returned"))
				return
			}
			cur = ledger.CallCursor{TimeNanos: tv, Seq: sv}
		}
		until := f.UntilNanos
		if until == 0 {
			until = 1<<63 - 1
		}
		// Calls are indexed by the time they ended; a call ends after it
		// starts, so the index bounds are widened on the late side only.
		calls, n, more, err := g.ledger.CallsByTime(f.SinceNanos, until, cur, limit)
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot read calls")
			return
		}
		for _, c := range calls {
			views = append(views, newAdminCallView(c))
		}
		if more {
			next = strconv.FormatInt(n.TimeNanos, 10) + "-" + strconv.FormatUint(n.Seq, 10)
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, newList(views, next))
}

func (g *Gateway) adminAdjust(ctx *fasthttp.RequestCtx) {
	f, err := parseFields(ctx.PostBody(), "account", "amount", "reason", "request_id", "idempotency_key")
	if err != nil {
		badRequest(ctx, err)
		return
	}
	r := ledger.AdjustRequest{Actor: adminActor}
	if err := errors.Join(f.string("account", &r.Account), f.amount("amount", &r.Amount), f.string("reason", &r.Reason),
		f.string("request_id", &r.RequestID), f.string("idempotency_key", &r.IdempotencyKey)); err != nil {
		badRequest(ctx, err)
		return
	}
	switch {
	case r.Account == "":
		badRequest(ctx, fmt.Errorf("account: required"))
		return
	case r.Amount == 0:
		badRequest(ctx, fmt.Errorf("amount: required and not zero"))
		return
	case r.Reason == "":
		badRequest(ctx, fmt.Errorf("reason: required"))
		return
	}
	// A retry gets the first result (or its conflict) whatever has changed
	// since, the dispute window included.
	_, retry := g.ledger.Adjustment(r.IdempotencyKey)
	if r.RequestID != "" && !retry {
		c, err := g.ledger.CallByRequestID(r.RequestID)
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot read calls")
			return
		}
		if c == nil || c.AccountID != r.Account {
			writeError(ctx, fasthttp.StatusNotFound, errNotFound, "request_id: no call of this account with that ID")
			return
		}
		if time.Since(time.Unix(0, c.TimeNanos)) > g.cfg.DisputeWindow {
			writeError(ctx, fasthttp.StatusConflict, errConflict, "request_id: the call is older than the dispute window")
			return
		}
	}
	e, created, err := g.ledger.Adjust(r)
	writeEntry(ctx, e, created, err)
}

// writeEntry answers an idempotent ledger write: 201 with the new entry, or
// 200 with the first one when the request was a repeat.
func writeEntry(ctx *fasthttp.RequestCtx, e ledger.Entry, created bool, err error) {
	if err != nil {
		ledgerError(ctx, err)
		return
	}
	status := fasthttp.StatusOK
	if created {
		status = fasthttp.StatusCreated
	}
	writeJSON(ctx, status, newEntryView(e))
}

// adminBackup is POST /admin/v1/backup {"dir", "include_ip_digest_key"?}:
// the IP digest key stays out unless asked for, so that a backup alone
// cannot be used to test guesses of client addresses against the digests.
func (g *Gateway) adminBackup(ctx *fasthttp.RequestCtx) {
	f, err := parseFields(ctx.PostBody(), "dir", "include_ip_digest_key")
	if err != nil {
		badRequest(ctx, err)
		return
	}
	var dir string
	var withKey bool
	if err := errors.Join(f.string("dir", &dir), f.bool("include_ip_digest_key", &withKey)); err != nil {
		badRequest(ctx, err)
		return
	}
	if dir == "" || len(dir) > 4096 || strings.ContainsRune(dir, 0) {
		badRequest(ctx, fmt.Errorf("dir: required, a path of at most 4096 bytes"))
		return
	}
	if g.cfg.Backup == nil {
		writeError(ctx, fasthttp.StatusNotImplemented, errAPI, "backups are not configured")
		return
	}
	if err := g.cfg.Backup(dir, withKey); err != nil {
		writeError(ctx, fasthttp.StatusConflict, errConflict, err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"dir": dir, "include_ip_digest_key": withKey})
}

// readyz is GET /readyz: 200 while the gateway can take holds, 503 with the
// reason while the disk is short of space or the operator's check (the WAL
// failed, a sync has stalled) says it cannot.
func (g *Gateway) readyz(ctx *fasthttp.RequestCtx) {
	reason := ""
	switch {
	case g.diskLow.Load():
		reason = "the data directory is short of free space"
	case g.cfg.Ready != nil:
		if err := g.cfg.Ready(); err != nil {
			reason = err.Error()
		}
	}
	if reason != "" {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: " + reason + "\n")
		return
	}
	ctx.SetBodyString("ready\n")
}
