//go:build !race

package meter

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
)

// Allocation tests: the hot path does not allocate in steady state. They are
// off under the race detector, which allocates by itself.

func TestAllocationObserver(t *testing.T) {
	data := stream200()
	var o Observer
	o.Reset(0)
	o.Write(data) // grow the event buffer once
	var r StreamResult
	f := func(name string, run func()) {
		t.Helper()
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Fatalf("unexpected allocations in %s; got %v; want 0", name, n)
		}
	}
	f("a whole stream", func() {
		o.Reset(0)
		o.Write(data)
		r = o.Result()
	})
	f("a stream in 7-byte chunks", func() {
		o.Reset(0)
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 7)
			o.Write(rest[:n])
			rest = rest[n:]
		}
		r = o.Result()
	})
	for _, name := range []string{"web_search.sse", "thinking.sse", "padded.sse", "error_after_deltas.sse", "fake_usage.sse", "output_only_delta.sse"} {
		golden := readStream(t, name)
		crlf := bytes.ReplaceAll(golden, []byte("\n"), []byte("\r\n"))
		f(name, func() {
			o.Reset(0)
			o.Write(golden)
			o.Write(crlf)
			r = o.Result()
		})
	}
	events := [][]byte{
		[]byte(`{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":10,"output_tokens":1}}}`),
		[]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`),
		[]byte(`{"type":"message_delta","usage":{"output_tokens":15}}`),
		[]byte(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15}}`),
	}
	f("WriteEvent", func() {
		o.Reset(0)
		for _, ev := range events {
			o.WriteEvent(ev)
		}
		r = o.Result()
	})
	f("EstimateOutputTokens", func() { _ = EstimateOutputTokens(&r) })
	if r.Usage.OutputTokens != 15 {
		t.Fatalf("unexpected output tokens; got %d; want 15", r.Usage.OutputTokens)
	}
}

func TestAllocationPrice(t *testing.T) {
	c := shippedCatalogue(t)
	m := mustModel(t, c, "claude-sonnet-4-5")
	u := Usage{Counts: tokens.Counts{InputTokens: 150000, OutputTokens: 2000, CacheReadInputTokens: 60000, CacheCreationInputTokens: 300,
		CacheCreation1hInputTokens: 100, WebSearchRequests: 2}, Modifiers: Modifiers{ServiceTier: TierBatch}}
	r := Request{Model: "claude-sonnet-4-5", MaxTokens: 4096, EstimatedInputTokens: 250000, CacheTTL: Cache1h,
		HasWebSearch: true, WebSearchMaxUses: 3, WebSearchToolsWithoutMaxUses: 1}
	model := []byte("claude-sonnet-4-5-20250929")
	var sink int64
	f := func(name string, run func()) {
		t.Helper()
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Fatalf("unexpected allocations in %s; got %v; want 0", name, n)
		}
	}
	f("Price", func() { sink, _ = m.Price(u, t0, 1_100_000_000) })
	f("Hold", func() { sink, _ = m.Hold(&r, t0, MultiplierOne, 8192, 5) })
	f("Cost", func() { sink, _ = m.Cost(UpstreamBedrock, u, t0) })
	f("Supports", func() {
		if m.Supports(&r, t0) != nil {
			sink++
		}
	})
	f("LookupBytes", func() {
		if mm, ok := c.LookupBytes(model); ok && mm == m {
			sink++
		}
	})
	if sink == 0 {
		t.Fatalf("unexpected zero sink")
	}
}

func TestAllocationBodies(t *testing.T) {
	body := []byte(`{"id":"msg_01","type":"message","role":"assistant","model":"claude-opus-4-5-20251101","content":[{"type":"text","text":"Hello \"usage\" world"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":22175,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":22175,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}`)
	var o Observer
	var res StreamResult
	if n := testing.AllocsPerRun(100, func() {
		o.Reset(0)
		_ = o.ObserveMessage(body)
		res = o.Result()
	}); n != 0 {
		t.Fatalf("unexpected allocations in ObserveMessage; got %v; want 0", n)
	}
	u, dst := res.Usage, res.Model
	if u.CacheCreation5mInputTokens != 22175 || string(dst) != "claude-opus-4-5-20251101" {
		t.Fatalf("unexpected parse: %+v %q", u, dst)
	}

	// A reused Request inspects a realistic body without allocating.
	req := []byte(`{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,"service_tier":"auto","speed":"standard","inference_geo":"global",` +
		`"system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
		`"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}},{"type":"web_search_20250305","name":"web_search","max_uses":3}],` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"Caf\u00e9?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"}]}]}`)
	var r Request
	if err := InspectRequest(req, &r); err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = InspectRequest(req, &r) }); n != 0 {
		t.Fatalf("unexpected allocations in InspectRequest; got %v; want 0", n)
	}
	if r.Model != "claude-sonnet-4-5" || r.CacheTTL != Cache1h || r.WebSearchMaxUses != 3 || r.Images != 1 || r.Messages != 3 {
		t.Fatalf("unexpected request: %+v", r)
	}
}

func TestAllocationCharge(t *testing.T) {
	cat, err := LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Lookup("claude-sonnet-4-6")
	r := observeChunks(readStream(t, "advisor_compaction.sse"))
	at := time.Now()
	if n := testing.AllocsPerRun(100, func() { _, _ = cat.Charge(m, r.Usage, &r, at, MultiplierOne) }); n != 0 {
		t.Fatalf("unexpected allocations in Charge; got %v; want 0", n)
	}
}

// TestAllocationWireJSON: the JSON the proxy writes and the Bedrock forms it
// reads go through caller buffers without allocating once they have grown.
func TestAllocationWireJSON(t *testing.T) {
	f := func(name string, fn func(dst []byte) []byte) {
		t.Helper()
		dst := fn(nil) // grow once
		if n := testing.AllocsPerRun(100, func() { dst = fn(dst[:0]) }); n != 0 {
			t.Fatalf("unexpected allocations in %s; got %v; want 0", name, n)
		}
	}
	f("AppendJSONString", func(dst []byte) []byte { return AppendJSONString(dst, "caf\u00e9 \"q\"\n\xff") })
	f("appendJSONString of bytes", func(dst []byte) []byte { return appendJSONString(dst, []byte("caf\u00e9 \"q\"\n\xff")) })

	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	var r Request
	if err := InspectRequest(body, &r); err != nil {
		t.Fatal(err)
	}
	f("AppendBedrockBody", func(dst []byte) []byte { return AppendBedrockBody(dst, body, []byte("b1, b2")) })

	event := []byte(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15}}`)
	b64 := base64.StdEncoding.EncodeToString(event)
	for _, payload := range [][]byte{
		[]byte(`{"bytes":"` + b64 + `","p":"abcdefghij"}`),
		[]byte(`{"bytes":"\/+\/+` + b64 + `","p":"abcdefghij"}`), // escaped
	} {
		f("AppendBedrockChunk", func(dst []byte) []byte {
			dst, ok := AppendBedrockChunk(dst, payload)
			if !ok {
				t.Fatalf("unexpected refusal of %s", payload)
			}
			return dst
		})
	}
	f("BedrockEventType", func(dst []byte) []byte {
		if typ, metrics, ok := BedrockEventType(event); !ok || !metrics || string(typ) != "message_stop" {
			t.Fatalf("unexpected reading: %q %v %v", typ, metrics, ok)
		}
		return dst
	})
	f("AppendWithoutInvocationMetrics", func(dst []byte) []byte { return AppendWithoutInvocationMetrics(dst, event) })
}
