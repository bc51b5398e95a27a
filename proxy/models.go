package proxy

import (
	"slices"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

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
	// RetiresAt and Successor are Tollgate's: when the model stops being
	// served and what to move to (absent when no retirement is set).
	RetiresAt string `json:"retires_at,omitempty"`
	Successor string `json:"successor,omitempty"`
}

// modelView is m as the gateway serves it, with its retirement.
func (g *Gateway) modelView(m *meter.Model, now time.Time) modelView {
	v := newModelView(m)
	if retires := g.Retirement(m, now); !retires.IsZero() {
		v.RetiresAt, v.Successor = retires.UTC().Format(time.RFC3339), m.Successor
	}
	return v
}

// Retirement is when the gateway stops serving m (zero for never): when
// every configured upstream that serves it has a retirement date, the
// latest of them; or the model's own date, if earlier.
func (g *Gateway) Retirement(m *meter.Model, now time.Time) time.Time {
	var last time.Time
	for _, u := range g.upstreams {
		if mu, ok := m.Upstream(u.Kind(), now); ok {
			if mu.Retires.IsZero() {
				last = time.Time{}
				break
			}
			if mu.Retires.After(last) {
				last = mu.Retires
			}
		}
	}
	if last.IsZero() || !m.Retires.IsZero() && m.Retires.Before(last) {
		return m.Retires
	}
	return last
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

// ServedModels lists the models a configured upstream serves at now, the
// newest first (the current lineup before the legacy models), catalogue
// order among equals.
func (g *Gateway) ServedModels(now time.Time) []*meter.Model {
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
		if _, ok := m.Upstream(u.Kind(), now); ok {
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
	now := time.Now()
	models := g.ServedModels(now)
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
		out.Data = append(out.Data, g.modelView(m, now))
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
			writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, name+": unknown model")
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
		writeError(ctx, fasthttp.StatusNotFound, views.NotFoundError, "model: "+string(id))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, g.modelView(m, time.Now()))
}
