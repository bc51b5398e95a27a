//go:build !race

package upstream

import (
	"encoding/base64"
	"testing"

	"github.com/tollgate/tollgate/meter"
)

// TestAllocationBedrockChunk: turning a chunk frame's payload into the
// client's SSE (decoding the base64, reading the event, dropping the metrics,
// feeding the observer) allocates nothing once the stream's buffers have
// grown. The AWS SDK's frame decoder, which runs before, is not counted.
func TestAllocationBedrockChunk(t *testing.T) {
	var payloads [][]byte
	for _, e := range bedrockEvents {
		payloads = append(payloads, []byte(`{"bytes":"`+base64.StdEncoding.EncodeToString([]byte(e))+`","p":"abcdefghij"}`))
	}
	var obs meter.Observer
	var s BedrockStream
	stream := func() {
		obs.Reset(0)
		s.Reset(nil, &obs)
		for _, p := range payloads {
			s.out = s.out[:0]
			if err := s.chunk(p); err != nil {
				t.Fatalf("unexpected error for %s: %s", p, err)
			}
		}
	}
	stream() // grow the buffers
	if n := testing.AllocsPerRun(100, stream); n != 0 {
		t.Fatalf("unexpected allocations per stream of %d chunks; got %v; want 0", len(payloads), n)
	}
	if r := obs.Result(); r.End != meter.EndCompleted || !r.InvocationMetrics || r.Usage.OutputTokens != 15 {
		t.Fatalf("unexpected observer result %+v", r)
	}
}
