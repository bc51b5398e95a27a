package proxy

import (
	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/ledger"
)

// Metrics: package-level, literal names, bounded labels (never an account
// or a key).
var (
	drainsStarted   = metrics.NewCounter(`tollgate_drains_started_total`)
	drainsRefused   = metrics.NewCounter(`tollgate_drains_refused_total`)
	chargedNanos    = metrics.NewCounter(`tollgate_charged_nanocredits_total`)
	limitRejections = metrics.NewCounter(`tollgate_limit_rejections_total`)

	callsByOutcome = func() [8]*metrics.Counter {
		var out [8]*metrics.Counter
		for o := ledger.OutcomeOK; o <= ledger.OutcomeRecovered; o++ {
			out[o] = metrics.NewCounter(`tollgate_calls_total{outcome="` + o.String() + `"}`)
		}
		return out
	}()
)

func callsTotal(o ledger.Outcome) *metrics.Counter {
	if int(o) < len(callsByOutcome) && callsByOutcome[o] != nil {
		return callsByOutcome[o]
	}
	return callsByOutcome[ledger.OutcomeOK]
}
