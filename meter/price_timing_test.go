package meter

import (
	"testing"

	"github.com/tollgate/tollgate/internal/tokens"
)

func BenchmarkPrice(b *testing.B) {
	c := shippedCatalogue(b)
	m := mustModel(b, c, "claude-sonnet-4-5")
	f := func(name string, u Usage) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var sink int64
			for b.Loop() {
				p, err := m.Price(u, t0, 1_100_000_000)
				if err != nil {
					b.Fatalf("unexpected error: %s", err)
				}
				sink += p
			}
			if sink == 0 {
				b.Fatalf("unexpected zero price")
			}
		})
	}
	f("typical", Usage{Counts: tokens.Counts{InputTokens: 2095, OutputTokens: 612, CacheReadInputTokens: 1800}})
	f("every-category", Usage{Counts: tokens.Counts{InputTokens: 150000, OutputTokens: 2000, CacheReadInputTokens: 60000, CacheCreationInputTokens: 300,
		CacheCreation1hInputTokens: 100, WebSearchRequests: 2}, Modifiers: Modifiers{ServiceTier: TierBatch}})
}

func BenchmarkHold(b *testing.B) {
	c := shippedCatalogue(b)
	m := mustModel(b, c, "claude-sonnet-4-5")
	r := Request{Model: "claude-sonnet-4-5", MaxTokens: 4096, EstimatedInputTokens: 25000, CacheTTL: Cache5m,
		HasWebSearch: true, WebSearchMaxUses: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Hold(&r, t0, MultiplierOne, 0, 5); err != nil {
			b.Fatalf("unexpected error: %s", err)
		}
	}
}

func BenchmarkLookupBytes(b *testing.B) {
	c := shippedCatalogue(b)
	name := []byte("claude-sonnet-4-5-20250929")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.LookupBytes(name); !ok {
			b.Fatalf("unexpected lookup failure")
		}
	}
}
