package meter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
)

func shippedCatalogue(t testing.TB) *Catalogue {
	t.Helper()
	c, err := LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatalf("cannot load the shipped catalogue: %s", err)
	}
	return c
}

func mustModel(t testing.TB, c *Catalogue, name string) *Model {
	t.Helper()
	m, ok := c.Lookup(name)
	if !ok {
		t.Fatalf("unexpected lookup failure for %q", name)
	}
	return m
}

// testCatalogue is a catalogue with round prices for multiplier, rounding and
// schedule tests.
const testCatalogue = `
models:
  - id: test-model
    multiplier: "1.5"
    upstreams:
      anthropic: {id: test-model}
      bedrock: {id: anthropic.test-model, cost_multiplier: "1.1"}
    prices:
      - input: "3"
        output: "15"
        cache_write_5m: "3.75"
        cache_write_1h: "6"
        cache_read: "0.30"
        web_search_per_1000: "10"
      - effective: 2026-09-01T00:00:00Z
        input: "4"
        output: "20"
        cache_write_5m: "5"
        cache_write_1h: "8"
        cache_read: "0.40"
  - id: tiny-model
    upstreams:
      anthropic: {id: tiny-model}
    prices:
      - input: "0.0000005"
        output: "0.0000005"
        cache_write_5m: "0.000000001"
        cache_write_1h: "0.000000001"
        cache_read: "0.000000001"
  - id: max-model
    multiplier: "1000"
    upstreams:
      anthropic: {id: max-model}
    prices:
      - input: "1000000"
        output: "1000000"
        cache_write_5m: "1000000"
        cache_write_1h: "1000000"
        cache_read: "1000000"
        web_search_per_1000: "1000000"
        modifiers: {speed_fast: "1000", inference_geo_us: "1000", service_tier_batch: "1000"}
`

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestPriceShippedRows prices one usage touching every category against each
// row of the shipped catalogue, figured by hand from Anthropic's published list prices: 1,000 input,
// 500 output, 2,400 cache writes of which 400 are 1-hour, 10,000 cache reads
// and 3 web searches.
func TestPriceShippedRows(t *testing.T) {
	c := shippedCatalogue(t)
	u := Usage{Counts: tokens.Counts{InputTokens: 1000, OutputTokens: 500, CacheCreationInputTokens: 2400,
		CacheCreation5mInputTokens: 2000, CacheCreation1hInputTokens: 400,
		CacheReadInputTokens: 10000, WebSearchRequests: 3}}
	f := func(model string, want int64) {
		t.Helper()
		got, err := mustModel(t, c, model).Price(u, t0, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected error pricing %s: %s", model, err)
		}
		if got != want {
			t.Fatalf("unexpected price for %s; got %d; want %d", model, got, want)
		}
	}
	// $5/$25/$6.25/$10/$0.50: 0.005 + 0.0125 + 0.0125 + 0.004 + 0.005, + 3 searches at $0.01.
	for _, m := range []string{"claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5", "claude-opus-5"} {
		f(m, 39_000_000+30_000_000)
	}
	// $15/$75/$18.75/$30/$1.50: 0.015 + 0.0375 + 0.0375 + 0.012 + 0.015.
	f("claude-opus-4-1", 117_000_000+30_000_000)
	// $3/$15/$3.75/$6/$0.30: 0.003 + 0.0075 + 0.0075 + 0.0024 + 0.003.
	for _, m := range []string{"claude-sonnet-4-6", "claude-sonnet-4-5"} {
		f(m, 23_400_000+30_000_000)
	}
	// $1/$5/$1.25/$2/$0.10: 0.001 + 0.0025 + 0.0025 + 0.0008 + 0.001.
	f("claude-haiku-4-5", 7_800_000+30_000_000)
	// $0.25/$1.25/$0.30/$0.50/$0.03: 0.00025 + 0.000625 + 0.0006 + 0.0002 + 0.0003;
	// no web search price, so searches (which Supports refuses) cost nothing.
	f("claude-3-haiku-20240307", 1_975_000)
	// $2/$10/$2.50/$4/$0.20: 0.002 + 0.005 + 0.005 + 0.0016 + 0.002.
	f("claude-sonnet-5", 15_600_000+30_000_000)
	// $10/$50/$12.50/$20/$1: 0.01 + 0.025 + 0.025 + 0.008 + 0.01.
	f("claude-fable-5", 78_000_000+30_000_000)
	f("claude-mythos-5", 78_000_000+30_000_000)
}

func TestPriceCategories(t *testing.T) {
	c := shippedCatalogue(t)
	f := func(model string, u Usage, want int64) {
		t.Helper()
		got, err := mustModel(t, c, model).Price(u, t0, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got != want {
			t.Fatalf("unexpected price of %+v on %s; got %d; want %d", u, model, got, want)
		}
	}
	f("claude-sonnet-4-5", Usage{}, 0)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 1}}, 3000)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{OutputTokens: 1}}, 15000)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{CacheCreationInputTokens: 1}}, 3750) // no split: 5-minute
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{CacheCreationInputTokens: 1, CacheCreation5mInputTokens: 1}}, 3750)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{CacheCreationInputTokens: 1, CacheCreation1hInputTokens: 1}}, 6000)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{CacheReadInputTokens: 1}}, 300)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{WebSearchRequests: 1}}, 10_000_000)
	f("claude-sonnet-4-5", Usage{WebFetchRequests: 9}, 0) // tokens only
	// The 1h share never exceeds the total.
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{CacheCreationInputTokens: 2, CacheCreation1hInputTokens: 5}}, 12000)
	f("claude-3-haiku-20240307", Usage{Counts: tokens.Counts{CacheReadInputTokens: 7}}, 210)
	f("claude-opus-4-1", Usage{Counts: tokens.Counts{OutputTokens: 1_000_000}}, 75_000_000_000)

	// Long context on Sonnet 4.5: all tokens at the premium rates once the
	// input is strictly above 200,000 (the two golden streams).
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 150000, CacheReadInputTokens: 60000, OutputTokens: 2000}},
		150000*6000+60000*600+2000*22500) // $0.981
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 120000, CacheCreationInputTokens: 80000, OutputTokens: 1500}},
		120000*3000+80000*3750+1500*15000) // exactly 200,000: standard rates
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 200001}},
		200001*6000)
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 1, CacheCreationInputTokens: 200000, CacheCreation1hInputTokens: 200000}},
		6000+200000*12000)
	// Sonnet 4.6 has the 1M window at standard prices.
	f("claude-sonnet-4-6", Usage{Counts: tokens.Counts{InputTokens: 300000}}, 300000*3000)

	// Modifiers: fast (2x) and US residency (1.1x) stack on tokens, not on
	// searches; Opus 4.6 serves fast requests at the standard price.
	f("claude-opus-5-5", Usage{Counts: tokens.Counts{InputTokens: 1000}, Modifiers: Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS}}, 8_800_000)
	f("claude-opus-5-5", Usage{Counts: tokens.Counts{WebSearchRequests: 1}, Modifiers: Modifiers{Speed: SpeedFast}}, 10_000_000)
	f("claude-opus-4-6", Usage{Counts: tokens.Counts{InputTokens: 1000}, Modifiers: Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS}}, 5_500_000)
	f("claude-opus-4-6", Usage{Counts: tokens.Counts{OutputTokens: 500}, Modifiers: Modifiers{ServiceTier: TierBatch}}, 6_250_000)
	// Batch stacks with long-context rates.
	f("claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 150000, CacheReadInputTokens: 60000, OutputTokens: 2000}, Modifiers: Modifiers{ServiceTier: TierBatch}}, 490_500_000)
	// A reported modifier the catalogue does not offer is priced without it.
	f("claude-opus-4-5", Usage{Counts: tokens.Counts{InputTokens: 1000}, Modifiers: Modifiers{Speed: SpeedFast, ServiceTier: TierPriority}}, 5_000_000)
}

func TestPriceMultipliersAndRounding(t *testing.T) {
	c, err := ParseCatalogue([]byte(testCatalogue))
	if err != nil {
		t.Fatalf("cannot parse the test catalogue: %s", err)
	}
	shipped := shippedCatalogue(t)
	f := func(c *Catalogue, model string, u Usage, account string, want int64) {
		t.Helper()
		am, err := ParseMultiplier(account)
		if err != nil {
			t.Fatalf("cannot parse multiplier: %s", err)
		}
		// Before the test model's scheduled price change.
		got, err := mustModel(t, c, model).Price(u, t0.AddDate(-1, 0, 0), am)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got != want {
			t.Fatalf("unexpected price of %+v on %s with account multiplier %s; got %d; want %d", u, model, account, got, want)
		}
	}
	f(shipped, "claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 1}}, "1.1", 3300)
	f(shipped, "claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 1}}, "0", 0)
	// 3000 x 0.333333333 = 999.999999, rounded up once.
	f(shipped, "claude-sonnet-4-5", Usage{Counts: tokens.Counts{InputTokens: 1}}, "0.333333333", 1000)
	f(shipped, "claude-3-haiku-20240307", Usage{Counts: tokens.Counts{CacheReadInputTokens: 1}}, "0.000000001", 1)
	// Model multiplier 1.5 (test catalogue, before its price change) and account 2.
	f(c, "test-model", Usage{Counts: tokens.Counts{InputTokens: 1}}, "2", 9000)
	f(c, "test-model", Usage{Counts: tokens.Counts{WebSearchRequests: 1}}, "1", 15_000_000)
	// One rounding per call: 1 input + 1 output at 0.0005 nano-credits each
	// is 0.001, rounded up to 1 (rounding per category would give 2).
	f(c, "tiny-model", Usage{Counts: tokens.Counts{InputTokens: 1, OutputTokens: 1}}, "1", 1)
	f(c, "tiny-model", Usage{Counts: tokens.Counts{InputTokens: 2000, OutputTokens: 1999}}, "1", 2)
	f(c, "tiny-model", Usage{Counts: tokens.Counts{InputTokens: 2000, OutputTokens: 2000}}, "1", 2)
	f(c, "tiny-model", Usage{Counts: tokens.Counts{CacheReadInputTokens: 1_000_000}}, "1", 1)
	f(c, "tiny-model", Usage{Counts: tokens.Counts{CacheReadInputTokens: 1_000_001}}, "1", 2)
}

func TestPriceScheduledChange(t *testing.T) {
	c, err := ParseCatalogue([]byte(testCatalogue))
	if err != nil {
		t.Fatalf("cannot parse the test catalogue: %s", err)
	}
	m := mustModel(t, c, "test-model")
	eff := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	f := func(at time.Time, want int64) {
		t.Helper()
		got, err := m.Price(Usage{Counts: tokens.Counts{InputTokens: 1000, OutputTokens: 100, WebSearchRequests: 1}}, at, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got != want {
			t.Fatalf("unexpected price at %s; got %d; want %d", at, got, want)
		}
	}
	// Old: (1000 x 3000 + 100 x 15000 + 10,000,000) x 1.5. New: (1000 x 4000 +
	// 100 x 20000) x 1.5, and the new version has no web search price.
	f(time.Time{}, 21_750_000)
	f(eff.Add(-time.Nanosecond), 21_750_000)
	f(eff, 9_000_000)
	f(eff.Add(time.Hour), 9_000_000)
	// A call pays the version in force at its start, whenever it settles.
	if v := m.PriceAt(eff.Add(-time.Second)); v.Rates.Input != 3*money.NanosPerCredit {
		t.Fatalf("unexpected version before the change; got input %d; want %d", v.Rates.Input, 3*money.NanosPerCredit)
	}
}

func TestPriceOverflow(t *testing.T) {
	c, err := ParseCatalogue([]byte(testCatalogue))
	if err != nil {
		t.Fatalf("cannot parse the test catalogue: %s", err)
	}
	shipped := shippedCatalogue(t)
	const big = 1<<63 - 1
	f := func(m *Model, u Usage, account Multiplier, want int64, wantErr error) {
		t.Helper()
		got, err := m.Price(u, t0, account)
		if !errors.Is(err, wantErr) {
			t.Fatalf("unexpected error for %+v; got %v; want %v", u, err, wantErr)
		}
		if got != want {
			t.Fatalf("unexpected price for %+v; got %d; want %d", u, got, want)
		}
	}
	all := func(n int64) Usage {
		return Usage{Counts: tokens.Counts{InputTokens: n, OutputTokens: n, CacheCreationInputTokens: 2 * n, CacheCreation1hInputTokens: n,
			CacheReadInputTokens: n}}
	}
	// 10^7 tokens in every category at the highest shipped price (Opus 4.1):
	// (15 + 75 + 18.75 + 30 + 1.5) x 10 credits.
	f(mustModel(t, shipped, "claude-opus-4-1"), all(10_000_000), MultiplierOne, 1_402_500_000_000, nil)
	// 10^7 tokens in every category at the largest price the catalogue
	// accepts (10^6 credits per million), with the largest multipliers:
	// 5 x 10^7 tokens x 1 credit each x 1000 x 1000 = 5 x 10^13 credits
	// overflows int64 nano-credits; a few tokens fit exactly.
	mx := mustModel(t, c, "max-model")
	f(mx, all(10_000_000), 1000*MultiplierOne, 0, ErrOverflow)
	f(mx, Usage{Counts: tokens.Counts{InputTokens: 9}}, MultiplierOne, 9*1000*money.NanosPerCredit, nil)
	f(mx, Usage{Counts: tokens.Counts{InputTokens: big}}, MultiplierOne, 0, ErrOverflow)
	f(mx, Usage{Counts: tokens.Counts{InputTokens: big, OutputTokens: big, CacheCreationInputTokens: big, CacheReadInputTokens: big,
		WebSearchRequests: big}, Modifiers: Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS, ServiceTier: TierBatch}},
		big, 0, ErrOverflow)
	// Intermediates far beyond 64 bits that end within int64 are exact:
	// 9 x 10^18 tokens at 0.0000005 credits (500 nano-credits) per million,
	// then times 1.5.
	tiny := mustModel(t, c, "tiny-model")
	f(tiny, Usage{Counts: tokens.Counts{InputTokens: 9_000_000_000_000_000_000}}, MultiplierOne, 4_500_000_000_000_000, nil)
	f(tiny, Usage{Counts: tokens.Counts{InputTokens: 9_000_000_000_000_000_001}}, 3*MultiplierOne/2, 6_750_000_000_000_001, nil)
	// Negative inputs are the caller's bug.
	f(tiny, Usage{Counts: tokens.Counts{InputTokens: -1}}, MultiplierOne, 0, ErrNegative)
	f(tiny, Usage{}, -1, 0, ErrNegative)
}

func TestCost(t *testing.T) {
	c, err := ParseCatalogue([]byte(testCatalogue))
	if err != nil {
		t.Fatalf("cannot parse the test catalogue: %s", err)
	}
	m := mustModel(t, c, "test-model")
	f := func(kind string, want int64) {
		t.Helper()
		got, err := m.Cost(kind, Usage{Counts: tokens.Counts{InputTokens: 1000}}, t0.AddDate(-1, 0, 0))
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got != want {
			t.Fatalf("unexpected cost on %s; got %d; want %d", kind, got, want)
		}
	}
	// List price, without the model multiplier, times the upstream's.
	f(UpstreamAnthropic, 3_000_000)
	f(UpstreamBedrock, 3_300_000)
	f("other", 3_000_000)
}

func TestMultiplier(t *testing.T) {
	f := func(s string, want Multiplier, wantString string) {
		t.Helper()
		got, err := ParseMultiplier(s)
		if err != nil {
			t.Fatalf("unexpected error for %q: %s", s, err)
		}
		if got != want {
			t.Fatalf("unexpected multiplier for %q; got %d; want %d", s, got, want)
		}
		if got.String() != wantString {
			t.Fatalf("unexpected string for %q; got %q; want %q", s, got.String(), wantString)
		}
	}
	f("1", MultiplierOne, "1")
	f("1.1", 1_100_000_000, "1.1")
	f("0.5", 500_000_000, "0.5")
	f("0", 0, "0")
	f("0.000000001", 1, "0.000000001")
	f("1000", 1000*MultiplierOne, "1000")
	f("2.500000000", 2_500_000_000, "2.5")

	bad := func(s string) {
		t.Helper()
		if m, err := ParseMultiplier(s); err == nil {
			t.Fatalf("unexpected success for %q: %d", s, m)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1.", ".5", "01", "1e3", "1.0000000001", "1000.000000001", "abc", "1,5", " 1", "999999999999"} {
		bad(s)
	}
}

func TestSupports(t *testing.T) {
	c := shippedCatalogue(t)
	f := func(model string, r Request, wantErr string) {
		t.Helper()
		if r.MaxTokens == 0 {
			r.MaxTokens = 1024
		}
		err := mustModel(t, c, model).Supports(&r, t0)
		got := ""
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("unexpected error type %T", err)
			}
			got = re.Message
		}
		if !strings.Contains(got, wantErr) || (wantErr == "") != (got == "") {
			t.Fatalf("unexpected Supports result for %s; got %q; want %q", model, got, wantErr)
		}
	}
	f("claude-opus-4-6", Request{}, "")
	f("claude-opus-4-6", Request{Speed: "fast", Modifiers: Modifiers{Speed: SpeedFast}}, "")
	f("claude-opus-4-8", Request{Speed: "fast", Modifiers: Modifiers{Speed: SpeedFast}}, `speed: "fast" is not available for claude-opus-4-8`)
	f("claude-opus-4-6", Request{Speed: "turbo", Modifiers: Modifiers{Speed: SpeedUnknown}}, `speed: unknown value "turbo"`)
	f("claude-opus-4-6", Request{InferenceGeo: "us", Modifiers: Modifiers{InferenceGeo: GeoUS}}, "")
	f("claude-opus-4-5", Request{InferenceGeo: "us", Modifiers: Modifiers{InferenceGeo: GeoUS}}, `inference_geo: "us" is not available`)
	f("claude-opus-4-6", Request{InferenceGeo: "eu", Modifiers: Modifiers{InferenceGeo: GeoUnknown}}, `inference_geo: unknown value "eu"`)
	f("claude-opus-4-6", Request{ServiceTier: "priority", Modifiers: Modifiers{ServiceTier: TierPriority}}, `service_tier: "priority" is not available`)
	f("claude-opus-4-6", Request{ServiceTier: "whatever", Modifiers: Modifiers{ServiceTier: TierUnknown}}, `service_tier: unknown value`)
	f("claude-3-haiku-20240307", Request{HasWebSearch: true}, "tools: web search is not available for claude-3-haiku-20240307")
	f("claude-haiku-4-5", Request{HasWebSearch: true}, "")
	f("claude-haiku-4-5", Request{UnpricedTool: "code_execution_20250825"}, `tools: server tool "code_execution_20250825"`)
	f("claude-haiku-4-5", Request{MaxTokens: 64000}, "")
	f("claude-haiku-4-5", Request{MaxTokens: 64001}, "max_tokens: 64001 is greater than 64000, the maximum for claude-haiku-4-5-20251001")
}

func TestHold(t *testing.T) {
	c := shippedCatalogue(t)
	f := func(model string, r Request, account Multiplier, maxOut, defaultUses, want int64) {
		t.Helper()
		got, err := mustModel(t, c, model).Hold(&r, t0, account, maxOut, defaultUses)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got != want {
			t.Fatalf("unexpected hold for %+v on %s; got %d; want %d", r, model, got, want)
		}
	}
	base := Request{EstimatedInputTokens: 1000, MaxTokens: 4096}
	f("claude-sonnet-4-5", base, MultiplierOne, 0, 0, 1000*3000+4096*15000)
	f("claude-sonnet-4-5", base, 2*MultiplierOne, 0, 0, 2*(1000*3000+4096*15000))
	// Caching: the highest write rate asked for.
	r := base
	r.CacheTTL = Cache5m
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 0, 1000*3750+4096*15000)
	r.CacheTTL = Cache1h
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 0, 1000*6000+4096*15000)
	// Long context once the estimate passes the threshold: input and output
	// at the premium rates.
	r = base
	r.EstimatedInputTokens = 250000
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 0, 250000*6000+4096*22500)
	r.EstimatedInputTokens = 200000
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 0, 200000*3000+4096*15000)
	r.EstimatedInputTokens, r.CacheTTL = 250000, Cache1h
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 0, 250000*12000+4096*22500)
	// The estimate is capped by the context window.
	r = base
	r.EstimatedInputTokens = 5_000_000
	f("claude-haiku-4-5", r, MultiplierOne, 0, 0, 200000*1000+4096*5000)
	// Output capped by hold_max_output_tokens.
	f("claude-sonnet-4-5", base, MultiplierOne, 1000, 0, 1000*3000+1000*15000)
	f("claude-sonnet-4-5", base, MultiplierOne, 8192, 0, 1000*3000+4096*15000)
	// Web search: max_uses, plus the default for tools without it.
	r = base
	r.HasWebSearch, r.WebSearchMaxUses, r.WebSearchToolsWithoutMaxUses = true, 5, 1
	f("claude-sonnet-4-5", r, MultiplierOne, 0, 3, 1000*3000+4096*15000+8*10_000_000)
	// Modifiers the request asks for.
	r = base
	r.Speed, r.Modifiers.Speed = "fast", SpeedFast
	f("claude-opus-5-5", r, MultiplierOne, 0, 0, 2*(1000*4000+4096*20000))
	f("claude-opus-4-6", r, MultiplierOne, 0, 0, 1000*5000+4096*25000)

	// Refusals come first.
	r = base
	r.Speed, r.Modifiers.Speed = "fast", SpeedFast
	if _, err := mustModel(t, c, "claude-opus-4-8").Hold(&r, t0, MultiplierOne, 0, 0); err == nil {
		t.Fatalf("unexpected hold for an unpriced modifier")
	}
}
