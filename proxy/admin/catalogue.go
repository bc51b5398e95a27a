package admin

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
)

// The operator's view of the catalogue: every model with its upstream IDs,
// its retirement dates and every price version, the one in force marked.

type ratesView struct {
	Input        views.Amount `json:"input"`
	Output       views.Amount `json:"output"`
	CacheWrite5m views.Amount `json:"cache_write_5m"`
	CacheWrite1h views.Amount `json:"cache_write_1h"`
	CacheRead    views.Amount `json:"cache_read"`
}

type priceVersionView struct {
	Effective        views.Time    `json:"effective"`
	Current          bool          `json:"current"`
	PerMillionTokens ratesView     `json:"per_million_tokens"`
	LongContext      *longView     `json:"long_context"`
	WebSearchPer1000 *views.Amount `json:"web_search_per_1000"`
	Modifiers        modsView      `json:"modifiers"`
}

type longView struct {
	Threshold        int64     `json:"threshold"`
	PerMillionTokens ratesView `json:"per_million_tokens"`
}

type modsView struct {
	SpeedFast           *views.Amount `json:"speed_fast"`
	InferenceGeoUS      *views.Amount `json:"inference_geo_us"`
	ServiceTierPriority *views.Amount `json:"service_tier_priority"`
	ServiceTierBatch    *views.Amount `json:"service_tier_batch"`
}

type upstreamModelView struct {
	Kind           string       `json:"kind"`
	ID             string       `json:"id"`
	Retires        views.Time   `json:"retires"`
	CostMultiplier views.Amount `json:"cost_multiplier"`
	// Modifiers are the price modifiers this upstream serves the model with.
	Modifiers []string `json:"modifiers"`
}

type modelView struct {
	ID          string              `json:"id"`
	Aliases     []string            `json:"aliases"`
	DisplayName string              `json:"display_name"`
	Enabled     bool                `json:"enabled"`
	Retires     views.Time          `json:"retires"`
	Retired     bool                `json:"retired"`
	Successor   *string             `json:"successor"`
	Multiplier  views.Amount        `json:"multiplier"`
	Upstreams   []upstreamModelView `json:"upstreams"`
	Prices      []priceVersionView  `json:"prices"`
	Sources     []string            `json:"sources"`
	Unconfirmed []string            `json:"unconfirmed"`
}

func newRatesView(r meter.Rates) ratesView {
	return ratesView{views.Amount(r.Input), views.Amount(r.Output), views.Amount(r.CacheWrite5m), views.Amount(r.CacheWrite1h), views.Amount(r.CacheRead)}
}

func optionalMultiplier(m meter.Multiplier) *views.Amount {
	if m == 0 {
		return nil
	}
	a := views.Amount(m)
	return &a
}

func newModelView(m *meter.Model, now time.Time) modelView {
	v := modelView{ID: m.ID, Aliases: views.OrEmpty(m.Aliases), DisplayName: m.DisplayName, Enabled: !m.Disabled,
		Retires: views.TimeOf(m.Retires), Retired: m.Retired(now), Multiplier: views.Amount(m.Multiplier),
		Sources: views.OrEmpty(m.Sources), Unconfirmed: views.OrEmpty(m.Unconfirmed)}
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
		v.Upstreams = append(v.Upstreams, upstreamModelView{Kind: u.Kind, ID: u.ModelID, Retires: views.TimeOf(u.Retires),
			CostMultiplier: views.Amount(u.CostMultiplier), Modifiers: mods})
	}
	current := m.PriceAt(now)
	for i := range m.Prices {
		p := &m.Prices[i]
		pv := priceVersionView{Effective: views.TimeOf(p.Effective), Current: p == current, PerMillionTokens: newRatesView(p.Rates),
			Modifiers: modsView{optionalMultiplier(p.Modifiers.SpeedFast), optionalMultiplier(p.Modifiers.InferenceGeoUS),
				optionalMultiplier(p.Modifiers.ServiceTierPriority), optionalMultiplier(p.Modifiers.ServiceTierBatch)}}
		if p.LongContext != nil {
			pv.LongContext = &longView{Threshold: p.LongContext.Threshold, PerMillionTokens: newRatesView(p.LongContext.Rates)}
		}
		if p.WebSearchPriced {
			a := views.Amount(p.WebSearchPer1000)
			pv.WebSearchPer1000 = &a
		}
		v.Prices = append(v.Prices, pv)
	}
	return v
}

// models is GET /admin/v1/models: the catalogue, with current and
// scheduled prices and retirement dates.
func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	models := s.cfg.Catalogue().Models()
	out := make([]modelView, 0, len(models))
	for _, m := range models {
		out = append(out, newModelView(m, now))
	}
	writeJSON(w, http.StatusOK, views.NewList(out, ""))
}
