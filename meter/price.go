package meter

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
)

// Limits on catalogue values. They keep every intermediate of Price inside its
// 384-bit accumulator for any int64 token count, and reject typos such as a
// price per token written where a price per million was meant.
const (
	// MaxRateNanos is the largest price: 1,000,000 credits per million tokens
	// (or per thousand web searches).
	MaxRateNanos = 1_000_000 * money.NanosPerCredit
	// MaxMultiplier is the largest multiplier, 1000.
	MaxMultiplier Multiplier = 1000 * MultiplierOne
)

// ErrOverflow is returned when a price does not fit in int64 nano-credits
// (about 9.2 billion credits). Only absurd usage reaches it.
var ErrOverflow = errors.New("meter: price overflows int64 nano-credits")

// ErrNegative is returned when Price is given negative tokens or multipliers:
// the caller's bug, never something an upstream's usage can cause, since the
// parsers reject negative counts.
var ErrNegative = errors.New("meter: negative usage or multiplier")

// Multiplier is an exact decimal multiplier in parts per 1e9: "1" is
// MultiplierOne (1e9), "1.1" is 1.1e9. Multipliers are never floats, so a price
// times a multiplier is exact until the single rounding of a call's price.
type Multiplier int64

// MultiplierOne is the multiplier 1.
const MultiplierOne Multiplier = 1_000_000_000

// ParseMultiplier parses an exact decimal multiplier with at most 9 decimals,
// between 0 and 1000 inclusive, e.g. "1", "0.5", "1.1".
func ParseMultiplier(s string) (Multiplier, error) {
	v, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse multiplier %q: %w", s, err)
	}
	if v > int64(MaxMultiplier) {
		return 0, fmt.Errorf("cannot parse multiplier %q: above the maximum of 1000", s)
	}
	return Multiplier(v), nil
}

// String formats m in the shortest exact decimal form ("1", "0.5", "1.1").
func (m Multiplier) String() string { return money.Format(int64(m)) }

// parseDecimal parses a price or a multiplier: an exact non-negative decimal
// with at most 9 decimals, in units of 1e-9.
func parseDecimal(s string) (int64, error) {
	v, err := money.Parse(s)
	if err == nil && v < 0 {
		err = errors.New("want a non-negative decimal number such as 3, 0.30 or 18.75")
	}
	return v, err
}

// Rates are the prices of one price level, in nano-credits per million tokens.
type Rates struct {
	// Input is uncached input.
	Input int64
	// Output is output, thinking included.
	Output int64
	// CacheWrite5m and CacheWrite1h are 5-minute and 1-hour cache writes.
	CacheWrite5m, CacheWrite1h int64
	// CacheRead is cache reads (hits and refreshes).
	CacheRead int64
}

// LongContext holds the rates that apply to all of a call's tokens when its
// input (uncached + cache writes + cache reads) is strictly above Threshold.
type LongContext struct {
	// Threshold is in tokens of input; the rates apply strictly above it.
	Threshold int64
	// Rates replace the version's rates for every category of such a call.
	Rates Rates
}

// ModifierPrices are the multipliers of the price modifiers a price version
// offers, applied to every token category (not to web searches), stacking with
// each other and with long-context rates. Zero means the modifier is not
// offered: a request for it is refused (Model.Supports), and a response that
// reports it anyway is priced without it.
type ModifierPrices struct {
	// SpeedFast prices speed "fast" (catalogue key speed_fast).
	SpeedFast Multiplier
	// InferenceGeoUS prices inference_geo "us" (inference_geo_us).
	InferenceGeoUS Multiplier
	// ServiceTierPriority and ServiceTierBatch price the tiers a response
	// reports (service_tier_priority, service_tier_batch).
	ServiceTierPriority, ServiceTierBatch Multiplier
}

// PriceVersion is a model's prices from Effective on, until the next version's
// Effective. The first version of a model has a zero Effective.
type PriceVersion struct {
	// Effective is when the version takes effect; zero for the first.
	Effective time.Time
	// Rates are the token prices below any long-context threshold.
	Rates Rates
	// LongContext is nil for models without long-context rates.
	LongContext *LongContext
	// WebSearchPer1000 is the price of 1,000 web searches in nano-credits;
	// meaningful only when WebSearchPriced.
	WebSearchPer1000 int64
	// WebSearchPriced is false when the version has no web search price:
	// requests with a web search tool are refused.
	WebSearchPriced bool
	// Modifiers are the modifier multipliers the version offers.
	Modifiers ModifierPrices
}

// PriceAt returns the price version in force at t: the last whose Effective is
// not after t.
func (m *Model) PriceAt(t time.Time) *PriceVersion {
	for i := len(m.Prices) - 1; i > 0; i-- {
		if !t.Before(m.Prices[i].Effective) {
			return &m.Prices[i]
		}
	}
	return &m.Prices[0]
}

// Price returns the price of a call with usage u that started at at, for an
// account with multiplier accountMult, in integer nano-credits: each
// token category at its rate (long-context rates for all of them when the
// input is above the threshold; the cache-write split as Usage documents),
// times the modifiers u reports, plus web searches at the per-1,000 price
// (free on a version without one, which Supports refuses to meter), times the
// model's and the account's multipliers, rounded up once. The arithmetic is
// exact: no step rounds before the last.
//
// It fails only with ErrOverflow (a price beyond int64) or ErrNegative. It does
// not allocate and is safe for concurrent use.
func (m *Model) Price(u Usage, at time.Time, accountMult Multiplier) (int64, error) {
	return m.PriceAt(at).price(&u, m.Multiplier, accountMult)
}

func (v *PriceVersion) price(u *Usage, modelMult, accountMult Multiplier) (int64, error) {
	var b Bill
	b.addVersion(v, u, modelMult)
	return b.Total(accountMult)
}

// Bill adds up the parts of one call's price exactly and rounds once: a
// call can be priced at more than one model (an advisor's consultations, the
// attempts of a server-side fallback), each part at its own model's rates,
// multipliers and modifiers. The zero Bill is empty; it does not allocate.
type Bill struct {
	// acc is in nano-credits per million tokens, times every multiplier of
	// a part: its model's and billModifierSlots modifiers (1e9 each, the
	// multiplier 1, where a modifier does not apply), so that parts with
	// different modifiers add up without rounding.
	acc wide
	err error
}

// billModifierSlots is the number of modifier factors in every part.
const billModifierSlots = 3

// Add adds usage u at model m's prices in force at at.
func (b *Bill) Add(m *Model, u *Usage, at time.Time) {
	b.addVersion(m.PriceAt(at), u, m.Multiplier)
}

func (b *Bill) addVersion(v *PriceVersion, u *Usage, modelMult Multiplier) {
	if b.err != nil {
		return
	}
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheCreationInputTokens < 0 ||
		u.CacheCreation1hInputTokens < 0 || u.CacheReadInputTokens < 0 ||
		u.WebSearchRequests < 0 || modelMult < 0 {
		b.err = ErrNegative
		return
	}
	r := &v.Rates
	if lc := v.LongContext; lc != nil && sat(sat(u.InputTokens, u.CacheCreationInputTokens), u.CacheReadInputTokens) > lc.Threshold {
		r = &lc.Rates
	}
	h1 := min(u.CacheCreation1hInputTokens, u.CacheCreationInputTokens)
	m5 := u.CacheCreationInputTokens - h1
	var part wide
	part.addMul(uint64(u.InputTokens), uint64(r.Input))
	part.addMul(uint64(u.OutputTokens), uint64(r.Output))
	part.addMul(uint64(m5), uint64(r.CacheWrite5m))
	part.addMul(uint64(h1), uint64(r.CacheWrite1h))
	part.addMul(uint64(u.CacheReadInputTokens), uint64(r.CacheRead))
	for _, mm := range [billModifierSlots]Multiplier{
		v.Modifiers.forSpeed(u.Speed), v.Modifiers.forGeo(u.InferenceGeo), v.Modifiers.forTier(u.ServiceTier),
	} {
		if mm == 0 {
			mm = MultiplierOne
		}
		part.mul(uint64(mm))
	}
	if u.WebSearchRequests > 0 && v.WebSearchPriced {
		// Per 1,000 searches is 1,000 times the per-million-tokens scale;
		// modifiers do not apply to searches.
		var ws wide
		ws.addMul(uint64(u.WebSearchRequests), uint64(v.WebSearchPer1000)*1000)
		for range billModifierSlots {
			ws.mul(money.NanosPerCredit)
		}
		part.add(&ws)
	}
	part.mul(uint64(modelMult))
	b.acc.add(&part)
}

// Total returns the bill's price for an account with multiplier
// accountMult, rounded up once to a whole nano-credit.
func (b *Bill) Total(accountMult Multiplier) (int64, error) {
	if b.err != nil {
		return 0, b.err
	}
	if accountMult < 0 {
		return 0, ErrNegative
	}
	acc := b.acc
	acc.mul(uint64(accountMult))
	// ceil(ceil(x/a)/b) == ceil(x/(a*b)) for positive integers, so dividing in
	// steps still rounds once.
	acc.divCeil(1_000_000 * money.NanosPerCredit) // per million tokens, model multiplier
	acc.divCeil(money.NanosPerCredit)             // account multiplier
	for range billModifierSlots {
		acc.divCeil(money.NanosPerCredit)
	}
	n, ok := acc.int63()
	if !ok {
		return 0, ErrOverflow
	}
	return n, nil
}

func (p *ModifierPrices) forSpeed(s Speed) Multiplier {
	if s == SpeedFast {
		return p.SpeedFast
	}
	return 0
}

func (p *ModifierPrices) forGeo(g Geo) Multiplier {
	if g == GeoUS {
		return p.InferenceGeoUS
	}
	return 0
}

func (p *ModifierPrices) forTier(t Tier) Multiplier {
	switch t {
	case TierPriority:
		return p.ServiceTierPriority
	case TierBatch:
		return p.ServiceTierBatch
	}
	return 0
}

// Supports reports whether the model can meter request r at time at: a
// *RequestError (a 400 invalid_request_error: nothing is billed at a guess) when r asks
// for more output than the model allows, or for a price modifier or server tool
// the catalogue has no price for.
func (m *Model) Supports(r *Request, at time.Time) error {
	v := m.PriceAt(at)
	if m.MaxOutputTokens > 0 && r.MaxTokens > m.MaxOutputTokens {
		return requestErrorf("max_tokens: %d is greater than %d, the maximum for %s", r.MaxTokens, m.MaxOutputTokens, m.ID)
	}
	if r.UnpricedTool != "" {
		return requestErrorf("tools: server tool %q is not available through this gateway", r.UnpricedTool)
	}
	if r.HasWebSearch && !v.WebSearchPriced {
		return requestErrorf("tools: web search is not available for %s", m.ID)
	}
	switch r.Modifiers.Speed {
	case SpeedFast:
		if v.Modifiers.SpeedFast == 0 {
			return requestErrorf("speed: %q is not available for %s", r.Speed, m.ID)
		}
	case SpeedUnknown:
		return requestErrorf("speed: unknown value %q", r.Speed)
	}
	switch r.Modifiers.InferenceGeo {
	case GeoUS:
		if v.Modifiers.InferenceGeoUS == 0 {
			return requestErrorf("inference_geo: %q is not available for %s", r.InferenceGeo, m.ID)
		}
	case GeoUnknown:
		return requestErrorf("inference_geo: unknown value %q", r.InferenceGeo)
	}
	switch r.Modifiers.ServiceTier {
	case TierPriority, TierBatch:
		if v.Modifiers.forTier(r.Modifiers.ServiceTier) == 0 {
			return requestErrorf("service_tier: %q is not available for %s", r.ServiceTier, m.ID)
		}
	case TierUnknown:
		return requestErrorf("service_tier: unknown value %q", r.ServiceTier)
	}
	return nil
}

// Hold returns the hold for request r starting at at, an upper bound of its price: the
// estimated input (capped by the model's context window) at the highest
// input-side rate the request can trigger (the 1-hour or 5-minute cache-write
// rate when it asks for caching; long-context rates when the estimate is above
// the threshold), plus max_tokens, capped by maxOutputTokens when that is
// positive, at the output rate, plus every web-search use it allows
// (defaultWebSearchUses for a web-search tool without max_uses) at the search
// price, with the request's modifiers, times the multipliers, rounded up once.
//
// It returns Supports' error first, so a hold is never sized for a call that
// cannot be priced. Server-tool loops that grow the input beyond the request
// can still exceed the hold; settlement covers that overrun.
func (m *Model) Hold(r *Request, at time.Time, accountMult Multiplier, maxOutputTokens, defaultWebSearchUses int64) (int64, error) {
	if err := m.Supports(r, at); err != nil {
		return 0, err
	}
	v := m.PriceAt(at)
	in := max(r.EstimatedInputTokens, 0)
	if m.MaxInputTokens > 0 {
		in = min(in, m.MaxInputTokens)
	}
	rates := &v.Rates
	if lc := v.LongContext; lc != nil && in > lc.Threshold {
		rates = &lc.Rates
	}
	u := Usage{Counts: tokens.Counts{InputTokens: in}, Modifiers: r.Modifiers}
	best := rates.Input
	if r.CacheTTL >= Cache5m && rates.CacheWrite5m > best {
		best = rates.CacheWrite5m
		u = Usage{Counts: tokens.Counts{CacheCreationInputTokens: in, CacheCreation5mInputTokens: in}, Modifiers: r.Modifiers}
	}
	if r.CacheTTL == Cache1h && rates.CacheWrite1h > best {
		u = Usage{Counts: tokens.Counts{CacheCreationInputTokens: in, CacheCreation1hInputTokens: in}, Modifiers: r.Modifiers}
	}
	u.OutputTokens = max(r.MaxTokens, 0)
	if maxOutputTokens > 0 {
		u.OutputTokens = min(u.OutputTokens, maxOutputTokens)
	}
	if r.HasWebSearch {
		extra := int64(0)
		if r.WebSearchToolsWithoutMaxUses > 0 && defaultWebSearchUses > 0 {
			hi, lo := bits.Mul64(uint64(r.WebSearchToolsWithoutMaxUses), uint64(defaultWebSearchUses))
			extra = 1<<63 - 1
			if hi == 0 && lo < 1<<63 {
				extra = int64(lo)
			}
		}
		u.WebSearchRequests = sat(max(r.WebSearchMaxUses, 0), extra)
	}
	return v.price(&u, m.Multiplier, accountMult)
}

// Cost returns what the call costs the platform on the upstream of the given
// kind (a call record's upstream_cost): the list price times that upstream's cost
// multiplier, without the model's or the account's multipliers. A kind the
// model does not list costs list price.
func (m *Model) Cost(kind string, u Usage, at time.Time) (int64, error) {
	mult := MultiplierOne
	for i := range m.Upstreams {
		if m.Upstreams[i].Kind == kind {
			mult = m.Upstreams[i].CostMultiplier
		}
	}
	return m.PriceAt(at).price(&u, mult, MultiplierOne)
}

// wide is a 384-bit unsigned integer, little-endian words: wide enough for
// int64 tokens times the largest rate, summed, times five multipliers, and
// about thirty such parts added, so a Bill never loses a digit before its
// one rounding.
type wide [6]uint64

// addMul adds a*b.
func (w *wide) addMul(a, b uint64) {
	hi, lo := bits.Mul64(a, b)
	var c uint64
	w[0], c = bits.Add64(w[0], lo, 0)
	w[1], c = bits.Add64(w[1], hi, c)
	for i := 2; c != 0 && i < len(w); i++ {
		w[i], c = bits.Add64(w[i], 0, c)
	}
}

func (w *wide) add(x *wide) {
	var c uint64
	for i := range w {
		w[i], c = bits.Add64(w[i], x[i], c)
	}
}

// mul multiplies by m. The limits on catalogue values keep the product within
// 384 bits; an overflow would be a bug in those limits.
func (w *wide) mul(m uint64) {
	var carry uint64
	for i := range w {
		hi, lo := bits.Mul64(w[i], m)
		var c uint64
		w[i], c = bits.Add64(lo, carry, 0)
		carry = hi + c
	}
	if carry != 0 {
		panic(fmt.Sprintf("BUG: meter: 384-bit price accumulator overflowed multiplying by %d", m))
	}
}

// divCeil divides by d, rounding up.
func (w *wide) divCeil(d uint64) {
	var rem uint64
	for i := len(w) - 1; i >= 0; i-- {
		if rem == 0 && w[i] < d {
			rem, w[i] = w[i], 0
			continue
		}
		w[i], rem = bits.Div64(rem, w[i], d)
	}
	if rem != 0 {
		for i := range w {
			w[i]++
			if w[i] != 0 {
				break
			}
		}
	}
}

func (w *wide) int63() (int64, bool) {
	for _, x := range w[1:] {
		if x != 0 {
			return 0, false
		}
	}
	if w[0] >= 1<<63 {
		return 0, false
	}
	return int64(w[0]), true
}
