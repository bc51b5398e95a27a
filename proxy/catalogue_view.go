package proxy

import (
	"time"

	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// The admin view of the catalogue: every model with its upstream IDs, its
// retirement dates and every price version, the one in force marked.

type ratesView struct {
	Input        amount `json:"input"`
	Output       amount `json:"output"`
	CacheWrite5m amount `json:"cache_write_5m"`
	CacheWrite1h amount `json:"cache_write_1h"`
	CacheRead    amount `json:"cache_read"`
}

type priceVersionView struct {
	Effective        timestamp `json:"effective"`
	Current          bool      `json:"current"`
	PerMillionTokens ratesView `json:"per_million_tokens"`
	LongContext      *longView `json:"long_context"`
	WebSearchPer1000 *amount   `json:"web_search_per_1000"`
	Modifiers        modsView  `json:"modifiers"`
}

type longView struct {
	Threshold        int64     `json:"threshold"`
	PerMillionTokens ratesView `json:"per_million_tokens"`
}

type modsView struct {
	SpeedFast           *amount `json:"speed_fast"`
	InferenceGeoUS      *amount `json:"inference_geo_us"`
	ServiceTierPriority *amount `json:"service_tier_priority"`
	ServiceTierBatch    *amount `json:"service_tier_batch"`
}

type upstreamModelView struct {
	Kind           string    `json:"kind"`
	ID             string    `json:"id"`
	Retires        timestamp `json:"retires"`
	CostMultiplier amount    `json:"cost_multiplier"`
	// Modifiers are the price modifiers this upstream serves the model with.
	Modifiers []string `json:"modifiers"`
}

type adminModelView struct {
	ID          string              `json:"id"`
	Aliases     []string            `json:"aliases"`
	DisplayName string              `json:"display_name"`
	Enabled     bool                `json:"enabled"`
	Retires     timestamp           `json:"retires"`
	Retired     bool                `json:"retired"`
	Successor   *string             `json:"successor"`
	Multiplier  amount              `json:"multiplier"`
	Upstreams   []upstreamModelView `json:"upstreams"`
	Prices      []priceVersionView  `json:"prices"`
	Sources     []string            `json:"sources"`
	Unconfirmed []string            `json:"unconfirmed"`
}

func newRatesView(r meter.Rates) ratesView {
	return ratesView{amount(r.Input), amount(r.Output), amount(r.CacheWrite5m), amount(r.CacheWrite1h), amount(r.CacheRead)}
}

func optionalMultiplier(m meter.Multiplier) *amount {
	if m == 0 {
		return nil
	}
	a := amount(m)
	return &a
}

func newAdminModelView(m *meter.Model, now time.Time) adminModelView {
	v := adminModelView{ID: m.ID, Aliases: orEmpty(m.Aliases), DisplayName: m.DisplayName, Enabled: !m.Disabled,
		Retires: tsOf(m.Retires), Retired: m.Retired(now), Multiplier: amount(m.Multiplier),
		Sources: orEmpty(m.Sources), Unconfirmed: orEmpty(m.Unconfirmed)}
	if m.Successor != "" {
		v.Successor = &m.Successor
	}
	for _, u := range m.Upstreams {
		mods := []string{}
		if u.Offers&meter.OfferSpeedFast != 0 {
			mods = append(mods, "speed_fast")
		}
		if u.Offers&meter.OfferInferenceGeoUS != 0 {
			mods = append(mods, "inference_geo_us")
		}
		v.Upstreams = append(v.Upstreams, upstreamModelView{Kind: u.Kind, ID: u.ModelID, Retires: tsOf(u.Retires),
			CostMultiplier: amount(u.CostMultiplier), Modifiers: mods})
	}
	current := m.PriceAt(now)
	for i := range m.Prices {
		p := &m.Prices[i]
		pv := priceVersionView{Effective: tsOf(p.Effective), Current: p == current, PerMillionTokens: newRatesView(p.Rates),
			Modifiers: modsView{optionalMultiplier(p.Modifiers.SpeedFast), optionalMultiplier(p.Modifiers.InferenceGeoUS),
				optionalMultiplier(p.Modifiers.ServiceTierPriority), optionalMultiplier(p.Modifiers.ServiceTierBatch)}}
		if p.LongContext != nil {
			pv.LongContext = &longView{Threshold: p.LongContext.Threshold, PerMillionTokens: newRatesView(p.LongContext.Rates)}
		}
		if p.WebSearchPriced {
			a := amount(p.WebSearchPer1000)
			pv.WebSearchPer1000 = &a
		}
		v.Prices = append(v.Prices, pv)
	}
	return v
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func tsOf(t time.Time) timestamp {
	if t.IsZero() {
		return 0
	}
	return timestamp(t.UnixNano())
}

// adminModels is GET /admin/v1/models: the catalogue, with current and
// scheduled prices and retirement dates.
func (g *Gateway) adminModels(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	models := g.catalogue.Load().Models()
	out := make([]adminModelView, 0, len(models))
	for _, m := range models {
		out = append(out, newAdminModelView(m, now))
	}
	writeJSON(ctx, fasthttp.StatusOK, newList(out, ""))
}
