package proxy

import (
	"slices"
	"strconv"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// writeJSON sends v as a JSON response with status.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := sonic.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot encode the response")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// seqCursor parses a cursor that is a sequence number (0 when absent); ok is
// false after it wrote a 400.
func seqCursor(ctx *fasthttp.RequestCtx) (uint64, bool) {
	cur := ctx.QueryArgs().Peek("cursor")
	if len(cur) == 0 {
		return 0, true
	}
	v, err := strconv.ParseUint(string(cur), 10, 64)
	if err != nil || v == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, errInvalidRequest, "cursor: not a cursor this API returned")
		return 0, false
	}
	return v, true
}

// pageLimit parses limit (default def, 1 to max); ok is false after it wrote a 400.
func pageLimit(ctx *fasthttp.RequestCtx, def, max int) (int, bool) {
	s := ctx.QueryArgs().Peek("limit")
	if len(s) == 0 {
		return def, true
	}
	n, err := strconv.Atoi(string(s))
	if err != nil || n < 1 || n > max {
		writeError(ctx, fasthttp.StatusBadRequest, errInvalidRequest, "limit must be an integer from 1 to "+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}

// handleBalance is GET /v1/balance.
func (g *Gateway) handleBalance(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	a, err := g.ledger.Account(k.AccountID)
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, "account not found")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, balanceView{AccountID: a.ID, Available: amount(a.Available), Held: amount(a.Held), ExpiresAt: timestamp(a.ExpiresAtNanos)})
}

// handleCalls is GET /v1/calls: the key's account's call records, newest
// first, without the admin-only fields.
func (g *Gateway) handleCalls(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	limit, ok := pageLimit(ctx, 100, 1000)
	if !ok {
		return
	}
	before, ok := seqCursor(ctx)
	if !ok {
		return
	}
	calls, next, err := g.ledger.Calls(k.AccountID, ledger.CallFilter{}, before, limit)
	if err != nil {
		g.logger.Printf("cannot list calls: %s", err)
		writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot list calls")
		return
	}
	views := make([]callView, 0, len(calls))
	for _, c := range calls {
		views = append(views, newCallView(c))
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(ctx, fasthttp.StatusOK, newList(views, nextCursor))
}

// modelView is one model as GET /v1/models shows it, in one object for
// both SDKs: Anthropic's fields (type, id, display_name, created_at) and
// OpenAI's (object, created, owned_by).
type modelView struct {
	Type           string  `json:"type"`
	ID             string  `json:"id"`
	DisplayName    string  `json:"display_name"`
	CreatedAt      string  `json:"created_at"`
	Object         string  `json:"object"`
	Created        int64   `json:"created"`
	OwnedBy        string  `json:"owned_by"`
	MaxInputTokens *int64  `json:"max_input_tokens"`
	MaxTokens      *int64  `json:"max_tokens"`
	Capabilities   *string `json:"capabilities"`
}

func newModelView(m *meter.Model) modelView {
	v := modelView{Type: "model", ID: m.ID, DisplayName: m.DisplayName, CreatedAt: "1970-01-01T00:00:00Z",
		Object: "model", OwnedBy: "anthropic"}
	if !m.Created.IsZero() {
		v.CreatedAt, v.Created = m.Created.UTC().Format(time.RFC3339), m.Created.Unix()
	}
	if m.MaxInputTokens > 0 {
		v.MaxInputTokens = &m.MaxInputTokens
	}
	if m.MaxOutputTokens > 0 {
		v.MaxTokens = &m.MaxOutputTokens
	}
	return v
}

// servedModels lists the models a configured upstream serves at now, the
// newest first (the current lineup before the legacy models), catalogue
// order among equals.
func (g *Gateway) servedModels(now time.Time) []*meter.Model {
	var out []*meter.Model
	for _, m := range g.catalogue.Load().Models() {
		if g.serves(m, now) {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b *meter.Model) int { return b.Created.Compare(a.Created) })
	return out
}

// serves reports whether the gateway serves m at now: available, and on an
// upstream kind that is configured.
func (g *Gateway) serves(m *meter.Model, now time.Time) bool {
	if !m.Available(now) {
		return false
	}
	for _, u := range g.upstreams {
		if _, ok := m.Upstream(u.kind, now); ok {
			return true
		}
	}
	return false
}

// modelList is the list envelope of GET /v1/models, for both SDKs.
type modelList struct {
	Object  string      `json:"object"`
	Data    []modelView `json:"data"`
	HasMore bool        `json:"has_more"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
}

// handleModels is GET /v1/models. With an anthropic-version header (the
// Anthropic SDKs) it pages as Anthropic's API does (limit, default 20;
// before_id; after_id); without one (the OpenAI SDKs, which do not page)
// it lists every served model.
func (g *Gateway) handleModels(ctx *fasthttp.RequestCtx, _ *ledger.Key) {
	models := g.servedModels(time.Now())
	page := models
	hasMore := false
	if len(ctx.Request.Header.Peek("anthropic-version")) > 0 {
		var ok bool
		if page, hasMore, ok = pageModels(ctx, models); !ok {
			return
		}
	}
	out := modelList{Object: "list", Data: make([]modelView, 0, len(page)), HasMore: hasMore}
	for _, m := range page {
		out.Data = append(out.Data, newModelView(m))
	}
	if len(page) > 0 {
		out.FirstID, out.LastID = &page[0].ID, &page[len(page)-1].ID
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// pageModels applies Anthropic's pagination (limit, before_id, after_id)
// to models; ok is false after it wrote a 400.
func pageModels(ctx *fasthttp.RequestCtx, models []*meter.Model) (page []*meter.Model, hasMore, ok bool) {
	limit, ok := pageLimit(ctx, 20, 1000)
	if !ok {
		return nil, false, false
	}
	args := ctx.QueryArgs()
	index := func(name string) (int, bool) {
		id := args.Peek(name)
		i := slices.IndexFunc(models, func(m *meter.Model) bool { return m.ID == string(id) })
		if i < 0 {
			writeError(ctx, fasthttp.StatusBadRequest, errInvalidRequest, name+": unknown model")
		}
		return i, i >= 0
	}
	afterID, beforeID := len(args.Peek("after_id")) > 0, len(args.Peek("before_id")) > 0
	lo, hi := 0, len(models)
	if afterID {
		i, ok := index("after_id")
		if !ok {
			return nil, false, false
		}
		lo = i + 1
	}
	if beforeID {
		i, ok := index("before_id")
		if !ok {
			return nil, false, false
		}
		hi = i
		if !afterID {
			lo = max(0, hi-limit)
		}
	}
	page = models[lo:max(lo, hi)]
	hasMore = len(page) > limit
	if hasMore {
		page = page[:limit]
	}
	if beforeID && !afterID {
		hasMore = lo > 0
	}
	return page, hasMore, true
}

// handleModel is GET /v1/models/{model_id}.
func (g *Gateway) handleModel(ctx *fasthttp.RequestCtx, _ *ledger.Key) {
	id := ctx.Path()[len("/v1/models/"):]
	m, ok := g.catalogue.Load().LookupBytes(id)
	if !ok || !g.serves(m, time.Now()) {
		writeError(ctx, fasthttp.StatusNotFound, errNotFound, "model: "+string(id))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, newModelView(m))
}
