package proxy

import (
	"strconv"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
)

// Metrics: literal names with unit suffixes and bounded labels (models come
// from the catalogue, outcomes and statuses from fixed sets; never an account
// or a key). Per-model series are created once and cached, so the request
// path only increments.
var (
	drainsStarted  = metrics.NewCounter(`tollgate_drains_started_total`)
	drainsFinished = metrics.NewCounter(`tollgate_drains_finished_total`)
	drainsRefused  = metrics.NewCounter(`tollgate_drains_refused_total`)

	upstreamTTFB = metrics.NewHistogram(`tollgate_upstream_ttfb_seconds`)
	callDuration = metrics.NewHistogram(`tollgate_call_duration_seconds`)

	limitRejected = map[string]*metrics.Counter{}

	// modifierDisagreements counts settlements where the upstream reported
	// another speed or residency than the request asked for (the report is
	// billed).
	modifierDisagreements = metrics.NewCounter(`tollgate_modifier_disagreements_total`)
	// unknownServingModels counts parts of replies (a fallback's or an
	// advisor's model) the catalogue does not know, billed at the call's
	// model.
	unknownServingModels = metrics.NewCounter(`tollgate_unknown_serving_models_total`)
	// lateSettlements counts settlements whose hold was already gone,
	// recorded as adjustments.
	lateSettlements = metrics.NewCounter(`tollgate_late_settlements_total`)
	// refusalsUnbilled counts refusals before any output, which cost nothing.
	refusalsUnbilled = metrics.NewCounter(`tollgate_refusals_unbilled_total`)
)

func init() {
	for _, scope := range []string{"key", "account"} {
		for _, kind := range []string{"concurrency", "rpm", "tpm", "count_tokens_rpm", "read_rpm"} {
			limitRejected[scope+" "+kind] = metrics.NewCounter(`tollgate_limit_rejections_total{scope="` + scope + `",kind="` + kind + `"}`)
		}
	}
}

// callSeries are the series of one (model, outcome, status).
type callSeries struct {
	requests *metrics.Counter
}

// moneySeries are the money series of one model.
type moneySeries struct {
	held, charged, refunded *metrics.Counter
}

type seriesKey struct {
	model   string
	outcome ledger.Outcome
	status  int
}

var series struct {
	mu    sync.RWMutex
	calls map[seriesKey]*callSeries
	money map[string]*moneySeries
}

func init() {
	series.calls = map[seriesKey]*callSeries{}
	series.money = map[string]*moneySeries{}
}

// maxModelSeries bounds the distinct model label values; past it, models
// are counted under "other" (the catalogue is far smaller).
const maxModelSeries = 256

func callSeriesOf(model string, outcome ledger.Outcome, status int) *callSeries {
	k := seriesKey{model, outcome, status}
	series.mu.RLock()
	s := series.calls[k]
	series.mu.RUnlock()
	if s != nil {
		return s
	}
	series.mu.Lock()
	defer series.mu.Unlock()
	if s = series.calls[k]; s == nil {
		if len(series.calls) >= maxModelSeries*8 {
			k.model = "other"
		}
		s = &callSeries{requests: metrics.GetOrCreateCounter(`tollgate_requests_total{model="` + k.model +
			`",outcome="` + outcome.String() + `",status="` + strconv.Itoa(status) + `"}`)}
		series.calls[k] = s
	}
	return s
}

func moneySeriesOf(model string) *moneySeries {
	series.mu.RLock()
	s := series.money[model]
	series.mu.RUnlock()
	if s != nil {
		return s
	}
	series.mu.Lock()
	defer series.mu.Unlock()
	if s = series.money[model]; s == nil {
		label := model
		if len(series.money) >= maxModelSeries {
			label = "other"
		}
		s = &moneySeries{
			held:     metrics.GetOrCreateCounter(`tollgate_held_nanocredits_total{model="` + label + `"}`),
			charged:  metrics.GetOrCreateCounter(`tollgate_charged_nanocredits_total{model="` + label + `"}`),
			refunded: metrics.GetOrCreateCounter(`tollgate_refunded_nanocredits_total{model="` + label + `"}`),
		}
		series.money[model] = s
	}
	return s
}

// modelLabel is the metric label of a call's model: the catalogue's ID, or
// "unknown" before the request named a model the catalogue knows. A
// client's own string never becomes a label.
func modelLabel(m *meter.Model) string {
	if m == nil {
		return "unknown"
	}
	return m.ID
}

// observeCall counts an ended call.
func observeCall(model string, outcome ledger.Outcome, status int, held, charged int64) {
	callSeriesOf(model, outcome, status).requests.Inc()
	if held > 0 || charged > 0 {
		m := moneySeriesOf(model)
		m.held.Add(int(held))
		m.charged.Add(int(charged))
		if held > charged {
			m.refunded.Add(int(held - charged))
		}
	}
}

var (
	// failoversTotal counts calls moved to another upstream after a failed
	// attempt.
	failoversTotal = metrics.NewCounter(`tollgate_upstream_failovers_total`)
	// poolFullRefusals counts calls refused because the gateway's own
	// upstream connections were all busy.
	poolFullRefusals = metrics.NewCounter(`tollgate_upstream_pool_full_total`)
)
