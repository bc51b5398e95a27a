package meter

import (
	"fmt"
	"reflect"
	"slices"
	"time"
)

// NoticePeriod is the least notice customers get of a price change and of
// a model's retirement (the platform's terms; CONTRACT §0).
const NoticePeriod = 14 * 24 * time.Hour

// NoticeViolations lists what next changes, compared with prev (the
// catalogue the gateway last accepted), sooner than NoticePeriod after
// now: a price in force at some time before now+NoticePeriod that differs
// (new, changed or removed price versions alike, price cuts included: an
// operator overrides those), a retirement date set or moved to less than
// NoticePeriod away, a new retirement without a successor, and a model
// that was served removed or disabled. Models new in next are free to come.
func NoticeViolations(prev, next *Catalogue, now time.Time) []string {
	var out []string
	until := now.Add(NoticePeriod)
	for _, old := range prev.models {
		m, ok := next.byName[old.ID]
		if !ok || m.ID != old.ID {
			if old.Available(now) {
				out = append(out, fmt.Sprintf("model %s: removed while served; set its retires date at least 14 days ahead first", old.ID))
			}
			continue
		}
		if old.Available(now) && m.Disabled {
			out = append(out, fmt.Sprintf("model %s: disabled while served; set its retires date at least 14 days ahead first", m.ID))
		}
		if at, ok := firstPriceChange(old, m, now, until); ok {
			out = append(out, fmt.Sprintf("model %s: prices in force on %s change with less than 14 days' notice", m.ID, at.UTC().Format(time.DateOnly)))
		}
		out = append(out, retirementViolations(m, m.ID, m.Retires, old.Retires, until)...)
		for _, u := range m.Upstreams {
			was := upstreamOf(old, u.Kind)
			if was.Kind == "" || !old.Available(now) {
				continue // an upstream new to the model retires when it likes
			}
			out = append(out, retirementViolations(m, m.ID+" on "+u.Kind, u.Retires, was.Retires, until)...)
		}
	}
	return out
}

// retirementViolations judges a retirement date set or moved from was to
// retires (of the model, or of one upstream's serving of it, named what).
func retirementViolations(m *Model, what string, retires, was, until time.Time) []string {
	if retires.IsZero() || retires.Equal(was) {
		return nil
	}
	var out []string
	if retires.Before(until) {
		out = append(out, fmt.Sprintf("model %s: retirement on %s is less than 14 days away", what, retires.UTC().Format(time.DateOnly)))
	}
	if m.Successor == "" {
		out = append(out, fmt.Sprintf("model %s: a retirement must name a successor the catalogue serves", what))
	}
	return out
}

// upstreamOf is m's serving on kind (zero when it has none).
func upstreamOf(m *Model, kind string) Upstream {
	for _, u := range m.Upstreams {
		if u.Kind == kind {
			return u
		}
	}
	return Upstream{}
}

// firstPriceChange is the first time in [now, until) at which old and m
// price calls differently: prices change only at versions' effective
// times, so those (and now) are the times to compare.
func firstPriceChange(old, m *Model, now, until time.Time) (time.Time, bool) {
	times := []time.Time{now}
	for _, v := range append(slices.Clone(old.Prices), m.Prices...) {
		if v.Effective.After(now) && v.Effective.Before(until) {
			times = append(times, v.Effective)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	for _, t := range times {
		if !reflect.DeepEqual(*old.PriceAt(t), *m.PriceAt(t)) || old.Multiplier != m.Multiplier {
			return t, true
		}
	}
	return time.Time{}, false
}

// CatalogueNotice is a change of a new catalogue that customers are told
// of: a price version that takes effect later, or a retirement date.
type CatalogueNotice struct {
	// Kind is "price.scheduled" or "model.retiring".
	Kind  string
	Model string
	// At is when the prices take effect or the model retires.
	At time.Time
	// Upstream is the upstream kind that stops serving the model ("" when
	// the whole catalogue does).
	Upstream string
	// Successor is a retiring model's successor.
	Successor string
	// Prices are the scheduled version's rates.
	Prices Rates
}

// Notices lists the changes of next that prev (nil for none) did not have
// and that lie after now: price versions to come and retirement dates.
func Notices(prev, next *Catalogue, now time.Time) []CatalogueNotice {
	var out []CatalogueNotice
	for _, m := range next.models {
		var old *Model
		if prev != nil {
			old = prev.byName[m.ID]
		}
		for _, v := range m.Prices {
			if v.Effective.After(now) && (old == nil || !hasVersion(old, v)) {
				out = append(out, CatalogueNotice{Kind: "price.scheduled", Model: m.ID, At: v.Effective, Prices: v.Rates})
			}
		}
		if m.Retires.After(now) && (old == nil || !old.Retires.Equal(m.Retires)) {
			out = append(out, CatalogueNotice{Kind: "model.retiring", Model: m.ID, At: m.Retires, Successor: m.Successor})
		}
		for _, u := range m.Upstreams {
			if u.Retires.After(now) && (old == nil || !upstreamOf(old, u.Kind).Retires.Equal(u.Retires)) {
				out = append(out, CatalogueNotice{Kind: "model.retiring", Model: m.ID, Upstream: u.Kind, At: u.Retires, Successor: m.Successor})
			}
		}
	}
	return out
}

func hasVersion(m *Model, v PriceVersion) bool {
	return slices.ContainsFunc(m.Prices, func(x PriceVersion) bool { return reflect.DeepEqual(x, v) })
}
