package meter

import (
	"slices"
	"time"
)

// What keeps a catalogue current: retirements coming or past, price changes
// coming, and the figures no official page confirms. CheckCatalogue
// gathers them for `tollgate catalogue check` and the start log.

// Notice periods the check looks ahead by.
const (
	// RetirementNotice is how far ahead a retirement is reported.
	RetirementNotice = 30 * 24 * time.Hour
	// PriceNotice is how far ahead a new price version is reported.
	PriceNotice = 14 * 24 * time.Hour
)

// CatalogueCheck is what needs an operator's attention in a catalogue at a
// time.
type CatalogueCheck struct {
	// Retiring are the upstream entries (or whole models) that retire within
	// RetirementNotice.
	Retiring []Retirement
	// Retired are the enabled models no upstream serves any more: listed but
	// past retirement everywhere.
	Retired []Retirement
	// Prices are the price versions taking effect within PriceNotice.
	Prices []ScheduledPrice
	// Unconfirmed are the models with figures no official page confirms.
	Unconfirmed []*Model
}

// Retirement is a model's (or one upstream entry's) retirement.
type Retirement struct {
	Model *Model
	// Kind is the upstream kind, or "" for the whole model.
	Kind string
	At   time.Time
}

// ScheduledPrice is a price version not yet in force.
type ScheduledPrice struct {
	Model   *Model
	Version *PriceVersion
}

// Failing reports whether the check must fail: a model listed as served is
// past retirement everywhere.
func (c *CatalogueCheck) Failing() bool { return len(c.Retired) > 0 }

// CheckCatalogue checks c at time at.
func CheckCatalogue(c *Catalogue, at time.Time) CatalogueCheck {
	var out CatalogueCheck
	soon := func(t time.Time, ahead time.Duration) bool {
		return !t.IsZero() && t.After(at) && !t.After(at.Add(ahead))
	}
	for _, m := range c.Models() {
		if m.Disabled {
			continue
		}
		if m.Retired(at) {
			out.Retired = append(out.Retired, Retirement{Model: m, At: lastRetirement(m)})
			continue
		}
		if soon(m.Retires, RetirementNotice) {
			out.Retiring = append(out.Retiring, Retirement{Model: m, At: m.Retires})
		}
		for _, u := range m.Upstreams {
			if soon(u.Retires, RetirementNotice) {
				out.Retiring = append(out.Retiring, Retirement{Model: m, Kind: u.Kind, At: u.Retires})
			}
		}
		for i := range m.Prices {
			if v := &m.Prices[i]; soon(v.Effective, PriceNotice) {
				out.Prices = append(out.Prices, ScheduledPrice{Model: m, Version: v})
			}
		}
		if len(m.Unconfirmed) > 0 {
			out.Unconfirmed = append(out.Unconfirmed, m)
		}
	}
	slices.SortStableFunc(out.Retiring, func(a, b Retirement) int { return a.At.Compare(b.At) })
	return out
}

// lastRetirement is when a model retired everywhere stopped being served.
func lastRetirement(m *Model) time.Time {
	if !m.Retires.IsZero() {
		return m.Retires
	}
	var last time.Time
	for _, u := range m.Upstreams {
		if u.Retires.After(last) {
			last = u.Retires
		}
	}
	return last
}
