package meter

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
)

// TestChargeGolden prices the golden streams of today's usage shapes with
// the shipped catalogue, against prices worked out by hand from its rates.
func TestChargeGolden(t *testing.T) {
	cat, err := LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f := func(file, requested string, wantServed string, wantPrice int64, wantRefused bool) {
		t.Helper()
		r := observeChunks(readStream(t, file))
		m, ok := cat.Lookup(requested)
		if !ok {
			t.Fatalf("%s: unknown model %s", file, requested)
		}
		ch, err := cat.Charge(m, r.Usage, &r, at, MultiplierOne)
		if err != nil {
			t.Fatalf("%s: unexpected error: %s", file, err)
		}
		if ch.Price != wantPrice || ch.Served.ID != wantServed || ch.Refused != wantRefused || ch.UnknownModels != 0 {
			t.Fatalf("%s: unexpected charge; got %d at %s (refused %v, unknown %d); want %d at %s (refused %v)",
				file, ch.Price, ch.Served.ID, ch.Refused, ch.UnknownModels, wantPrice, wantServed, wantRefused)
		}
	}
	const nano = 1 // prices below are in nano-credits: tokens × $/MTok × 1000
	// Sonnet 4.6 ($3/$15) for the top level (1000 in, 200 out), the advisor
	// at Opus 4.8 ($5/$25: 3000 in, 500 out), compaction at Sonnet 4.6
	// (8000 in, 400 out); the message iterations are in the top level.
	f("advisor_compaction.sse", "claude-sonnet-4-6", "claude-sonnet-4-6",
		(1000*3000+200*15000+3000*5000+500*25000+8000*3000+400*15000)*nano, false)
	// A fallback from Fable 5 ($10/$50) to Opus 4.8 ($5/$25): the declined
	// attempt at Fable 5's rates, the serving one at Opus 4.8's.
	f("fallback.sse", "claude-fable-5", "claude-opus-4-8", (31*10000+12*50000+31*5000+547*25000)*nano, false)
	// A refusal before any output is not billed.
	f("refusal_before_output.sse", "claude-fable-5", "claude-fable-5", 0, true)
	// A refusal after output is billed as reported (padded.sse: Fable 5,
	// 1200 in, 77 out, 800 cache reads at $1).
	f("padded.sse", "claude-fable-5", "claude-fable-5", (1200*10000+77*50000+800*1000)*nano, false)
}

// TestChargeUnknownServingModel: a reply naming a model the catalogue does
// not know is billed at the requested model, and counted.
func TestChargeUnknownServingModel(t *testing.T) {
	cat, err := LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Lookup("claude-haiku-4-5")
	r := StreamResult{Model: []byte("claude-unknown-9"), Usage: Usage{Counts: tokens.Counts{InputTokens: 10, OutputTokens: 10}}}
	ch, err := cat.Charge(m, r.Usage, &r, time.Now(), MultiplierOne)
	if err != nil || ch.Served != m || ch.UnknownModels != 1 || ch.Price != 10*1000+10*5000 {
		t.Fatalf("unexpected charge %+v, %v", ch, err)
	}
}

// TestSettledModifiers: the modifiers a request asked for are billed when
// the upstream does not report them (Bedrock never does); a report wins and
// a disagreement is flagged. A fast request was once held at the premium and
// settled at the standard price.
func TestSettledModifiers(t *testing.T) {
	start := func(usage string) StreamResult {
		return observeChunks([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":" + usage + "}}\n\n"))
	}
	fast := Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS}
	f := func(r StreamResult, asked, want Modifiers, wantDisagreed bool) {
		t.Helper()
		got, disagreed := SettledModifiers(asked, &r)
		if got != want || disagreed != wantDisagreed {
			t.Fatalf("unexpected modifiers; got %+v (disagreed %v); want %+v (%v)", got, disagreed, want, wantDisagreed)
		}
	}
	f(start(`{"input_tokens":1,"output_tokens":1}`), fast, fast, false)
	f(start(`{"input_tokens":1,"output_tokens":1,"speed":"fast","inference_geo":"us"}`), fast, fast, false)
	f(start(`{"input_tokens":1,"output_tokens":1,"speed":"standard","inference_geo":"global"}`), fast, Modifiers{}, true)
	f(start(`{"input_tokens":1,"output_tokens":1,"service_tier":"batch"}`), Modifiers{}, Modifiers{ServiceTier: TierBatch}, false)
}
