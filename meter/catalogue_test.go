package meter

import (
	"strings"
	"testing"
	"time"
)

func TestShippedCatalogue(t *testing.T) {
	c := shippedCatalogue(t)
	f := func(name, wantID string) {
		t.Helper()
		m, ok := c.Lookup(name)
		if !ok {
			t.Fatalf("unexpected lookup failure for %q", name)
		}
		if m.ID != wantID {
			t.Fatalf("unexpected model for %q; got %s; want %s", name, m.ID, wantID)
		}
		if mb, ok := c.LookupBytes([]byte(name)); !ok || mb != m {
			t.Fatalf("unexpected LookupBytes result for %q", name)
		}
	}
	// The models of the issue, by ID, alias, dated ID and Bedrock ID.
	f("claude-opus-4-8", "claude-opus-4-8")
	f("claude-opus-4-7", "claude-opus-4-7")
	f("claude-opus-4-6", "claude-opus-4-6")
	f("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6")
	f("claude-opus-4-5", "claude-opus-4-5-20251101")
	f("claude-opus-4-5-20251101", "claude-opus-4-5-20251101")
	f("claude-opus-4-1", "claude-opus-4-1-20250805")
	f("claude-sonnet-4-6", "claude-sonnet-4-6")
	f("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
	f("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929")
	f("claude-haiku-4-5", "claude-haiku-4-5-20251001")
	f("claude-3-haiku-20240307", "claude-3-haiku-20240307")
	f("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307")
	f("claude-opus-5", "claude-opus-5")
	f("claude-sonnet-5", "claude-sonnet-5")
	f("claude-fable-5", "claude-fable-5")
	f("claude-mythos-5", "claude-mythos-5")
	// Today's lineup, by ID and Bedrock profile; IDs match exactly.
	f("claude-opus-5-5", "claude-opus-5-5")
	f("us.anthropic.claude-opus-5-5", "claude-opus-5-5")
	f("claude-sonnet-5-5", "claude-sonnet-5-5")
	f("claude-haiku-5-5", "claude-haiku-5-5")
	f("claude-fable-5-2", "claude-fable-5-2")
	f("claude-mythos-5-2", "claude-mythos-5-2")
	f("claude-fable-5-1", "claude-fable-5-1")
	f("claude-mythos-5-1", "claude-mythos-5-1")
	for _, notModels := range []string{"claude-opus-5-1", "claude-sonnet-5-1", "claude-haiku-5", "claude-opus-5-6", "claude-sonnet-4-0"} {
		if _, ok := c.Lookup(notModels); ok {
			t.Fatalf("unexpected lookup success for %q, which is no model", notModels)
		}
	}
	if _, ok := c.Lookup("claude-2.1"); ok {
		t.Fatalf("unexpected lookup success for an unknown model")
	}
	for _, m := range c.Models() {
		if len(m.Prices) == 0 || m.Prices[0].Rates.Input <= 0 || m.Prices[0].Rates.Output <= m.Prices[0].Rates.Input {
			t.Fatalf("unexpected prices for %s: %+v", m.ID, m.Prices)
		}
		if m.Multiplier != MultiplierOne {
			t.Fatalf("unexpected multiplier for %s; got %s; want 1", m.ID, m.Multiplier)
		}
		// Cache writes 1.25x and 2x the input price; reads 0.1x, except the
		// models with cheaper reads (0.05x on Opus and Sonnet 5.5, 0.025x on
		// Fable and Mythos 5.1 and 5.2).
		readShare := map[string]int64{"claude-opus-5-5": 20, "claude-sonnet-5-5": 20, "claude-fable-5-1": 40,
			"claude-mythos-5-1": 40, "claude-fable-5-2": 40, "claude-mythos-5-2": 40}[m.ID]
		if readShare == 0 {
			readShare = 10
		}
		for _, v := range m.Prices {
			r := v.Rates
			if r.CacheWrite5m*4 != r.Input*5 || r.CacheWrite1h != 2*r.Input || r.CacheRead*readShare != r.Input {
				if m.ID != "claude-3-haiku-20240307" && !(m.ID == "claude-sonnet-5-5" && v.Effective.IsZero()) {
					t.Fatalf("unexpected cache rates for %s (from %s): %+v", m.ID, v.Effective, r)
				}
			}
		}
	}
	// Length-based bands: Sonnet 4.5's long-context premium above 200,000
	// and Haiku 5.5's higher card above 100,000; the others none.
	bands := map[string]LongContext{
		"claude-sonnet-4-5-20250929": {Threshold: 200000, Rates: Rates{Input: 6e9, Output: 22.5e9, CacheWrite5m: 7.5e9, CacheWrite1h: 12e9, CacheRead: 0.6e9}},
		"claude-haiku-5-5":           {Threshold: 100000, Rates: Rates{Input: 0.5e9, Output: 2.5e9, CacheWrite5m: 0.625e9, CacheWrite1h: 1e9, CacheRead: 0.05e9}},
	}
	for _, m := range c.Models() {
		lc := m.Prices[0].LongContext
		want, has := bands[m.ID]
		if (lc != nil) != has || (lc != nil && *lc != want) {
			t.Fatalf("unexpected price band for %s: %+v", m.ID, lc)
		}
	}
}

func TestRetirement(t *testing.T) {
	c := shippedCatalogue(t)
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatalf("cannot parse %q: %s", s, err)
		}
		return d
	}
	f := func(name, at string, wantRetired, wantAnthropic, wantBedrock bool) {
		t.Helper()
		m := mustModel(t, c, name)
		tm := day(at)
		if got := m.Retired(tm); got != wantRetired {
			t.Fatalf("unexpected Retired(%s) for %s; got %v; want %v", at, name, got, wantRetired)
		}
		if _, got := m.Upstream(UpstreamAnthropic, tm); got != wantAnthropic {
			t.Fatalf("unexpected anthropic upstream at %s for %s; got %v; want %v", at, name, got, wantAnthropic)
		}
		if _, got := m.Upstream(UpstreamBedrock, tm); got != wantBedrock {
			t.Fatalf("unexpected bedrock upstream at %s for %s; got %v; want %v", at, name, got, wantBedrock)
		}
	}
	f("claude-sonnet-4-5", "2026-11-29", false, true, true)
	f("claude-sonnet-4-5", "2026-11-30", false, false, true) // retires on the first-party API only
	f("claude-opus-4-1", "2026-08-04", false, true, true)
	f("claude-opus-4-1", "2026-08-05", false, false, true)
	f("claude-3-haiku-20240307", "2026-04-20", false, false, true)
	f("claude-opus-4-5", "2027-01-22", false, false, true)
	f("claude-mythos-5", "2030-01-01", false, true, false)

	// A model-level retirement date ends every upstream.
	mc, err := ParseCatalogue([]byte("models:\n  - id: x\n    retires: 2026-01-01\n    upstreams: {anthropic: {id: x}, bedrock: {id: y}}\n    prices: [{input: \"1\", output: \"1\", cache_write_5m: \"1\", cache_write_1h: \"1\", cache_read: \"1\"}]\n"))
	if err != nil {
		t.Fatalf("cannot parse catalogue: %s", err)
	}
	m := mustModel(t, mc, "x")
	if !m.Retired(day("2026-01-01")) || m.Retired(day("2025-12-31")) {
		t.Fatalf("unexpected model-level retirement")
	}
	if _, ok := m.Upstream(UpstreamBedrock, day("2026-01-01")); ok {
		t.Fatalf("unexpected upstream of a retired model")
	}
}

func TestParseCatalogueErrors(t *testing.T) {
	const prices = `    prices:
      - input: "3"
        output: "15"
        cache_write_5m: "3.75"
        cache_write_1h: "6"
        cache_read: "0.30"
`
	model := func(extra string) string {
		return "models:\n  - id: m1\n    upstreams:\n      anthropic: {id: m1}\n" + extra + prices
	}
	f := func(data, wantErr string) {
		t.Helper()
		_, err := ParseCatalogue([]byte(data))
		if err == nil {
			t.Fatalf("unexpected success for\n%s", data)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("unexpected error;\ngot  %s\nwant it to contain %q", err, wantErr)
		}
	}
	f("", "lists no models")
	f("models: []\n", "lists no models")
	f("model: []\n", "line 1: field model not found")
	f(model("    colour: red\n"), "line 5: field colour not found")
	f(model("")+"        cache_reads: \"1\"\n", "line 11: field cache_reads not found")
	f(strings.Replace(model(""), `input: "3"`, `input: "3.x"`, 1), `line 6: invalid decimal "3.x"`)
	f(strings.Replace(model(""), `input: "3"`, `input: "-3"`, 1), `line 6: invalid decimal "-3"`)
	f(strings.Replace(model(""), `input: "3"`, `input: 3e9`, 1), `line 6: invalid decimal "3e9"`)
	f(strings.Replace(model(""), `input: "3"`, `input: "0.0000000001"`, 1), `line 6: invalid decimal`)
	f(strings.Replace(model(""), `input: "3"`, `input: [3]`, 1), `line 6: want a decimal number`)
	f(strings.Replace(model(""), `input: "3"`, `input: "2000000"`, 1), "line 6: input is above the maximum")
	f(strings.Replace(model(""), "        cache_read: \"0.30\"\n", "", 1), "prices[0] at line 6: cache_read is required")
	f(model("    multiplier: \"1001\"\n"), "line 5: multiplier is above the maximum of 1000")
	f(model("    created: yesterday\n"), `line 5: invalid time "yesterday"`)
	f(model("    aliases: [m1x]\n")+"  - id: m2\n    aliases: [m1x]\n    upstreams: {anthropic: {id: m2}}\n"+prices,
		`line 12: model m2: name "m1x" is already used by model m1 at line 2`)
	f("models:\n  - id: m1\n    upstreams:\n      azure: {id: m1}\n"+prices, `line 2: model m1: unknown upstream kind "azure"`)
	f("models:\n  - id: m1\n"+prices, "line 2: model m1: no upstreams")
	f("models:\n  - id: m1\n    upstreams: {anthropic: {}}\n"+prices, "upstream anthropic has no id")
	f("models:\n  - upstreams: {anthropic: {id: x}}\n"+prices, "line 2: model without id")
	// Of several faulty upstreams, the first by kind is reported, every time.
	for range 20 {
		f("models:\n  - id: m1\n    upstreams: {bedrock: {}, anthropic: {}}\n"+prices, "upstream anthropic has no id")
	}
	f(model("    upstreams: {}\n"), "mapping key \"upstreams\" already defined")
	f("models:\n  - id: m1\n    upstreams: {anthropic: {id: m1}}\n", "model m1: no prices")
	f(strings.Replace(model(""), "      - input", "      - effective: 2026-01-01\n        input", 1),
		"prices[0] at line 6: the first price version is in force from the start")
	f(model("")+"      - input: \"1\"\n        output: \"1\"\n        cache_write_5m: \"1\"\n        cache_write_1h: \"1\"\n        cache_read: \"1\"\n",
		"prices[1] at line 11: effective is required")
	two := "      - effective: 2026-06-01\n        input: \"1\"\n        output: \"1\"\n        cache_write_5m: \"1\"\n        cache_write_1h: \"1\"\n        cache_read: \"1\"\n"
	f(model("")+two+strings.Replace(two, "06-01", "05-01", 1), "prices[2] at line 17: effective times must increase")
	f(model("")+"        long_context: {threshold: 0}\n", "long_context: threshold must be a positive")
	f(model("")+"        long_context: {threshold: 200000, input: \"6\"}\n", "long_context: output is required")
	f(model("")+"        modifiers: {speed_fast: \"0\"}\n", "line 11: modifiers: speed_fast is 0")
	f(model("")+"        modifiers: {speed_slow: \"2\"}\n", "line 11: field speed_slow not found")
	f(model("")+"        web_search_per_1000: ten\n", `line 11: invalid decimal "ten"`)
	f("models: {id: m1}\n", "cannot unmarshal")
}

func TestLoadCatalogueMissing(t *testing.T) {
	_, err := LoadCatalogue("testdata/no-such-file.yaml")
	if err == nil || !strings.Contains(err.Error(), "cannot read catalogue") {
		t.Fatalf("unexpected error for a missing file: %v", err)
	}
}
