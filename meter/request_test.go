package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestInspectRequestErrors(t *testing.T) {
	f := func(body, wantErr string) {
		t.Helper()
		var r Request
		err := InspectRequest([]byte(body), &r)
		var re *RequestError
		if !errors.As(err, &re) {
			t.Fatalf("unexpected error for %s; got %v; want a *RequestError", body, err)
		}
		if re.Message != wantErr {
			t.Fatalf("unexpected error for %s; got %q; want %q", body, re.Message, wantErr)
		}
	}
	const msgs = `"messages":[{"role":"user","content":"Hi"}]`
	invalid := "invalid JSON: the body is not well-formed JSON"
	f(``, "invalid JSON: the body must be a JSON object")
	f(`[]`, "invalid JSON: the body must be a JSON object")
	f(`{`, invalid)
	f(`{"model":"m","max_tokens":1,`+msgs+`}x`, invalid)
	f(`{"model":"m","max_tokens":1,`+msgs+`,}`, invalid)
	f(`{"model":"m","max_tokens":1,`+msgs+`,"metadata":{"a":tru}}`, invalid)
	f(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Hi\u00zz"}]}`, invalid)
	f(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"bad`+"\x01"+`"}]}`, invalid)
	f(`{"max_tokens":1,`+msgs+`}`, "model: field required")
	f(`{"model":null,"max_tokens":1,`+msgs+`}`, "model: must be a string")
	f(`{"model":7,"max_tokens":1,`+msgs+`}`, "model: must be a string")
	f(`{"model":"","max_tokens":1,`+msgs+`}`, "model: must not be empty")
	f(`{"model":"m",`+msgs+`}`, "max_tokens: field required")
	f(`{"model":"m","max_tokens":null,`+msgs+`}`, "max_tokens: must be an integer")
	f(`{"model":"m","max_tokens":"100",`+msgs+`}`, "max_tokens: must be an integer")
	f(`{"model":"m","max_tokens":1.5,`+msgs+`}`, "max_tokens: must be an integer")
	f(`{"model":"m","max_tokens":0,`+msgs+`}`, "max_tokens: 0 is out of range (1 to 2147483647)")
	f(`{"model":"m","max_tokens":-5,`+msgs+`}`, "max_tokens: -5 is out of range (1 to 2147483647)")
	f(`{"model":"m","max_tokens":2147483648,`+msgs+`}`, "max_tokens: 2147483648 is out of range (1 to 2147483647)")
	f(`{"model":"m","max_tokens":99999999999999999999999,`+msgs+`}`, "max_tokens: 99999999999999999999999 is out of range (1 to 2147483647)")
	f(`{"model":"m","max_tokens":1}`, "messages: field required")
	f(`{"model":"m","max_tokens":1,"messages":{}}`, "messages: must be an array")
	f(`{"model":"m","max_tokens":1,"messages":["hi"]}`, "messages.0: must be an object")
	f(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":7}]}`, "messages.content: must be a string or an array")
	f(`{"model":"m","max_tokens":1,"stream":"yes",`+msgs+`}`, "stream: must be a boolean")
	f(`{"model":"m","max_tokens":1,"stream":1,`+msgs+`}`, "stream: must be a boolean")
	f(`{"model":"m","max_tokens":1,"system":{},`+msgs+`}`, "system: must be a string or an array")
	f(`{"model":"m","max_tokens":1,"tools":{},`+msgs+`}`, "tools: must be an array")
	f(`{"model":"m","max_tokens":1,"tools":[1],`+msgs+`}`, "tools.0: must be an object")
	f(`{"model":"m","max_tokens":1,"tools":[{"type":5}],`+msgs+`}`, "tools.0.type: must be a string")
	f(`{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","max_uses":-1}],`+msgs+`}`, "tools.0.max_uses: must be a non-negative integer")
	f(`{"model":"m","max_tokens":1,"speed":1,`+msgs+`}`, "speed: must be a string")
	f(`{"model":"m","max_tokens":1,"service_tier":[],`+msgs+`}`, "service_tier: must be a string")
	f(`{"model":"m","max_tokens":1,"inference_geo":true,`+msgs+`}`, "inference_geo: must be a string")
	f(`{"model":"m","max_tokens":1,"cache_control":"yes",`+msgs+`}`, "cache_control: must be an object")
	f(`{"model":"m","max_tokens":1,"mcp_servers":{},`+msgs+`}`, "mcp_servers: must be an array")
	// Duplicates of the keys the gateway reads: the upstream could read the other one.
	f(`{"model":"cheap","max_tokens":1,`+msgs+`,"model":"dear"}`, "model: duplicate key")
	f(`{"model":"m","max_tokens":1,"max_tokens":1000,`+msgs+`}`, "max_tokens: duplicate key")
	f(`{"model":"m","max_tokens":1,"mod\u0065l":"x",`+msgs+`}`, "model: duplicate key")
	f(`{"model":"m","max_tokens":1,`+msgs+`,`+msgs+`}`, "messages: duplicate key")
	// Deep nesting is refused rather than recursed into.
	f(`{"model":"m","max_tokens":1,`+msgs+`,"metadata":`+strings.Repeat("[", 600)+strings.Repeat("]", 600)+`}`, invalid)
	f(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":`+strings.Repeat("[", 600)+strings.Repeat("]", 600)+`}]}]}`, invalid)
}

func TestInspectRequest(t *testing.T) {
	f := func(body string, want Request) {
		t.Helper()
		var r Request
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected error for %s: %s", body, err)
		}
		if r != want {
			t.Fatalf("unexpected request for %s;\ngot  %+v\nwant %+v", body, r, want)
		}
	}
	// A real request captured from Anthropic's API (27 input tokens upstream): 16 + (4 + 4 +
	// 7 + 65 bytes) / 2.
	f(`{"model":"claude-haiku-4-5","max_tokens":60,"stream":true,"messages":[{"role":"user","content":"Dame 3 palabras separadas por coma y nada más. Sin explicación."}]}`,
		Request{Model: "claude-haiku-4-5", ModelStart: 9, ModelEnd: 27, MaxTokens: 60, Stream: true,
			EstimatedInputTokens: 56, Messages: 1})
	// Escapes count as what they decode to: \u00e9 is 2 bytes, \n one; the
	// model is decoded.
	f(`{"model":"claude\u002dx", "max_tokens": 5, "stream": false, "messages":[{"role":"user","content":"\u00e9\n"}]}`,
		Request{Model: "claude-x", ModelStart: 9, ModelEnd: 24, MaxTokens: 5, EstimatedInputTokens: 16 + 9, Messages: 1})
	// Null optional fields are absent; unknown fields are not counted.
	f(`{"model":"m","max_tokens":1,"stream":null,"system":null,"tools":null,"speed":null,"metadata":{"user_id":"0123456789"},"temperature":0.5,"messages":[]}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, EstimatedInputTokens: 16})
	// System text, blocks, cache_control anywhere (the longest TTL wins),
	// thinking and tool_use blocks counted as text with their keys.
	f(`{"model":"m","max_tokens":1,"system":[{"type":"text","text":"abcd","cache_control":{"type":"ephemeral"}}],`+
		`"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"k":12}}]},`+
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, CacheTTL: Cache1h, Messages: 2,
			// system: type text text abcd = 4+4+4+4; messages: role assistant content (4+9+7), type tool_use id t
			// name n input k 12 (4+8+2+1+4+1+5+1+2); role user content (4+4+7), type tool_result
			// tool_use_id t content ok (4+11+11+1+7+2): 16+20+28+15+36 = 115 bytes.
			EstimatedInputTokens: 16 + 58})
	f(`{"model":"m","max_tokens":1,"cache_control":{"type":"ephemeral"},"messages":[]}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, CacheTTL: Cache5m, EstimatedInputTokens: 16})
	// Images at a fixed cost whatever their size; base64 PDFs by their pages
	// (none visible here: the page limit); URL and file documents beyond any
	// window; text documents as text.
	f(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[`+
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"`+strings.Repeat("A", 4000)+`"}},`+
		`{"source":{"type":"url","url":"https://example.com/a.png"},"type":"image"},`+
		`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"`+strings.Repeat("B", 4000)+`"}},`+
		`{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}},`+
		`{"type":"document","source":{"type":"text","media_type":"text/plain","data":"abcdefgh"},"title":"T"}]}]}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, Messages: 1, Images: 2, Documents: 3,
			// 2 images, a PDF without visible pages, a URL document; text:
			// role user content (15), type image twice (18), type document
			// three times (36), data abcdefgh (8), title T (6): 83 bytes.
			EstimatedInputTokens: 16 + 2*ImageTokens + MaxPDFPages*PDFPageTokens + UnboundedDocumentTokens + 42})
	// Tools: custom tools cost their text plus the tool-use prompt; web search
	// counts uses; code execution cannot be metered; MCP servers cost a fixed amount.
	f(`{"model":"m","max_tokens":1,"messages":[],"tools":[`+
		`{"name":"get_weather","description":"d","input_schema":{"type":"object"}},`+
		`{"type":"web_search_20250305","name":"web_search","max_uses":5},`+
		`{"type":"web_search_20260209","name":"web_search2"},`+
		`{"type":"code_execution_20250825","name":"code_execution"},`+
		`{"type":"custom","name":"c"}],"mcp_servers":[{"type":"url","url":"https://x"}]}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, HasWebSearch: true, WebSearchMaxUses: 5,
			WebSearchToolsWithoutMaxUses: 1, UnpricedTool: "code_execution_20250825",
			// text: name get_weather description d input_schema type object (4+11+11+1+12+4+6=49);
			// type web_search_20250305 name web_search max_uses 5 (4+19+4+10+8+1=46);
			// type web_search_20260209 name web_search2 (4+19+4+11=38); type code_execution_20250825
			// name code_execution (4+23+4+14=45); type custom name c (4+6+4+1=15): 193 bytes.
			EstimatedInputTokens: 16 + ToolsOverheadTokens + 3*ServerToolTokens + MCPServerTokens + 97})
	// Modifiers: known values interned and mapped, unknown ones kept for the message.
	f(`{"model":"m","max_tokens":1,"messages":[],"speed":"fast","service_tier":"auto","inference_geo":"us"}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, EstimatedInputTokens: 16,
			Speed: "fast", ServiceTier: "auto", InferenceGeo: "us", Modifiers: Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS}})
	f(`{"model":"m","max_tokens":1,"messages":[],"speed":"warp","service_tier":"priority","inference_geo":"mars"}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, EstimatedInputTokens: 16,
			Speed: "warp", ServiceTier: "priority", InferenceGeo: "mars",
			Modifiers: Modifiers{Speed: SpeedUnknown, InferenceGeo: GeoUnknown, ServiceTier: TierPriority}})
	f(`{"model":"m","max_tokens":1,"messages":[],"speed":"standard","service_tier":"standard_only","inference_geo":"global"}`,
		Request{Model: "m", ModelStart: 9, ModelEnd: 12, MaxTokens: 1, EstimatedInputTokens: 16,
			Speed: "standard", ServiceTier: "standard_only", InferenceGeo: "global"})
}

// TestInspectRequestTextRule checks the one-token-per-two-bytes rule against
// English, code and CJK text of known size.
func TestInspectRequestTextRule(t *testing.T) {
	f := func(text string, wantTokens int64) {
		t.Helper()
		var r Request
		body := `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"` + text + `"}]}`
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got := r.EstimatedInputTokens - 16 - 8; got != wantTokens { // 8: role user content
			t.Fatalf("unexpected estimate for %q; got %d; want %d", text, got, wantTokens)
		}
	}
	f("", 0)
	f("a", 0) // 15 + 1 bytes: 8 tokens in all
	f("ab", 1)
	f("The quick brown fox jumps over the lazy dog.", 22)
	f(`func main() {\n\tfmt.Println(\"hi\")\n}`, 17) // 34 bytes decoded
	f("日本語のテキスト", 12)                                // 8 characters, 24 bytes
	f(`\u65e5\u672c`, 3)                             // 6 bytes however escaped
	f("😀", 2)
}

func TestInspectRequestReuse(t *testing.T) {
	var r Request
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`)
	if err := InspectRequest(body, &r); err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	first := r.Model
	if err := InspectRequest(body, &r); err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	if r.Model != "claude-sonnet-4-5" || r.Model != first {
		t.Fatalf("unexpected model after reuse: %q", r.Model)
	}
	if err := InspectRequest([]byte(`{"model":"other","max_tokens":10,"messages":[]}`), &r); err != nil || r.Model != "other" {
		t.Fatalf("unexpected model after a different body: %q, %v", r.Model, err)
	}
}

func TestAppendRewriteModel(t *testing.T) {
	f := func(body, model, want string) {
		t.Helper()
		var r Request
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if got := string(AppendRewriteModel(nil, []byte(body), &r, model)); got != want {
			t.Fatalf("unexpected rewrite;\ngot  %s\nwant %s", got, want)
		}
	}
	f(`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`, "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
		`{"model":"global.anthropic.claude-sonnet-4-5-20250929-v1:0","max_tokens":10,"messages":[]}`)
	f(`{ "max_tokens" : 10 , "model" : "a\u002db" , "messages" : [ ] }`, "x\"y\\z\n",
		`{ "max_tokens" : 10 , "model" : "x\"y\\z\n" , "messages" : [ ] }`)
}

// TestInspectRequestDeepContent refuses content nested beyond the depth limit
// through tool results, rather than recursing without bound.
func TestInspectRequestDeepContent(t *testing.T) {
	f := func(levels int, wantErr bool) {
		t.Helper()
		inner := strings.Repeat(`[{"type":"tool_result","tool_use_id":"t","content":`, levels) + `"x"` + strings.Repeat(`}]`, levels)
		body := `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":` + inner + `}]}`
		var r Request
		err := InspectRequest([]byte(body), &r)
		if (err != nil) != wantErr {
			t.Fatalf("unexpected result for %d levels; got %v; want error %v", levels, err, wantErr)
		}
	}
	f(10, false)
	f(200, false)
	f(300, true)
	f(100000, true)
}

// TestInspectRequestModelName holds the model name to printable ASCII of at
// most MaxModelBytes: a newline in a model once reached a metric label and
// killed the process, and a 1 MiB name overflowed a WAL record.
func TestInspectRequestModelName(t *testing.T) {
	f := func(modelJSON string, wantOK bool, wantRecorded string) {
		t.Helper()
		var r Request
		body := `{"model":` + modelJSON + `,"max_tokens":1,"messages":[]}`
		err := InspectRequest([]byte(body), &r)
		if (err == nil) != wantOK {
			t.Fatalf("unexpected result for %s; got %v; want ok %v", modelJSON, err, wantOK)
		}
		if !wantOK && !strings.HasPrefix(err.Error(), "model: ") {
			t.Fatalf("unexpected error for %s; got %q; want it to name model", modelJSON, err)
		}
		if r.Model != wantRecorded || r.ModelTruncated == wantOK {
			t.Fatalf("unexpected recorded model for %s; got %q (truncated %v); want %q", modelJSON, r.Model, r.ModelTruncated, wantRecorded)
		}
	}
	f(`"claude-opus-5-5"`, true, "claude-opus-5-5")
	f(`"us.anthropic.claude-opus-4-6-v1:0"`, true, "us.anthropic.claude-opus-4-6-v1:0")
	f(`"a\u002db"`, true, "a-b")
	f(`"`+strings.Repeat("m", MaxModelBytes)+`"`, true, strings.Repeat("m", MaxModelBytes))
	f(`"`+strings.Repeat("m", MaxModelBytes+1)+`"`, false, strings.Repeat("m", TruncatedModelBytes))
	f(`"x\"}\ny"`, false, `x??}?ny`)
	f(`"x\u000ay"`, false, `x?u000ay`)
	f(`"é"`, false, "??")
	f(`"a\\b"`, false, "a??b")
	f(`"`+strings.Repeat(`\u0041`, MaxModelBytes+1)+`"`, false, strings.Repeat(`?u0041`, 10)+"?u00")
}

// nesting returns the deepest nesting of objects and arrays in the JSON b,
// the outermost counting 1.
func nesting(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// TestInspectRequestDepth: wherever the deepest value sits (a field the meter
// skips, a message, nested content blocks, a cache_control, a media source, a
// tool), a body nested maxJSONDepth deep is accepted and one level more is
// refused as invalid JSON, so every walk of an accepted body stays within
// the bound: the Bedrock rewrite of each accepted one succeeds.
func TestInspectRequestDepth(t *testing.T) {
	arrays := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	// toolResults nests a block k tool results deep.
	toolResults := func(k int, block string) string {
		return strings.Repeat(`{"type":"tool_result","tool_use_id":"t","content":[`, k) + block + strings.Repeat("]}", k)
	}
	const head = `{"model":"m","max_tokens":1,`
	f := func(name string, build func(n int) string) {
		t.Helper()
		seen := 0
		for n := 1; n < 2*maxJSONDepth; n++ {
			body := build(n)
			d := nesting([]byte(body))
			if d < maxJSONDepth-2 {
				continue
			}
			if d > maxJSONDepth+2 {
				break
			}
			seen++
			var r Request
			err := InspectRequest([]byte(body), &r)
			if d <= maxJSONDepth && err != nil || d > maxJSONDepth && err != errInvalidJSON {
				t.Fatalf("%s: unexpected result at depth %d; got %v; want an error only above %d", name, d, err, maxJSONDepth)
			}
			if err == nil {
				checkBedrockBody(t, []byte(body), nil)
			}
		}
		if seen < 2 {
			t.Fatalf("%s: the bodies never came near the depth bound", name)
		}
	}
	f("skipped field", func(n int) string { return head + `"messages":[],"metadata":` + arrays(n) + `}` })
	f("system", func(n int) string {
		return head + `"messages":[],"system":[{"type":"text","text":"x","extra":` + arrays(n) + `}]}`
	})
	f("message", func(n int) string {
		return head + `"messages":[{"role":"user","content":"x","extra":` + arrays(n) + `}]}`
	})
	f("block", func(n int) string {
		return head + `"messages":[{"role":"user","content":[{"type":"text","text":"x","extra":` + arrays(n) + `}]}]}`
	})
	f("nested blocks", func(n int) string {
		return head + `"messages":[{"role":"user","content":[` + toolResults(n, `{"type":"text","text":"x"}`) + `]}]}`
	})
	f("nested strings", func(n int) string {
		return head + `"messages":[{"role":"user","content":[` + toolResults(n, `"x"`) + `]}]}`
	})
	for _, k := range []int{0, 100} {
		f("cache_control", func(n int) string {
			return head + `"messages":[{"role":"user","content":[` +
				toolResults(k, `{"type":"text","text":"x","cache_control":{"type":"ephemeral","extra":`+arrays(n)+`}}`) + `]}]}`
		})
		f("document source", func(n int) string {
			return head + `"messages":[{"role":"user","content":[` +
				toolResults(k, `{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x","extra":`+arrays(n)+`}}`) + `]}]}`
		})
		f("image source", func(n int) string {
			return head + `"messages":[{"role":"user","content":[` +
				toolResults(k, `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA","extra":`+arrays(n)+`}}`) + `]}]}`
		})
		f("media blocks", func(n int) string {
			return head + `"messages":[{"role":"user","content":[` + toolResults(k+n, `{"type":"image","source":{"type":"url","url":"u"}}`) + `]}]}`
		})
	}
	f("top-level cache_control", func(n int) string {
		return head + `"messages":[],"cache_control":{"type":"ephemeral","extra":` + arrays(n) + `}}`
	})
	f("tool", func(n int) string {
		return head + `"messages":[],"tools":[{"name":"t","input_schema":` + arrays(n) + `}]}`
	})
	f("mcp server", func(n int) string { return head + `"messages":[],"mcp_servers":[{"extra":` + arrays(n) + `}]}` })
}

// TestAppendBedrockBody: the request rewrite of the official SDKs.
func TestAppendBedrockBody(t *testing.T) {
	f := func(body, betas, want string) {
		t.Helper()
		got := AppendBedrockBody([]byte("x"), []byte(body), []byte(betas))
		if string(got) != "x"+want {
			t.Fatalf("unexpected rewrite of %s with betas %q;\ngot  %s\nwant %s", body, betas, got[1:], want)
		}
	}
	f(`{"model":"claude-x","max_tokens":5,"stream":true,"messages":[]}`, "",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`)
	f(`{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"a \"model\": {x}"}],"stream":false}`, "a, b ,, c",
		`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a","b","c"],"max_tokens":5,"messages":[{"role":"user","content":"a \"model\": {x}"}]}`)
	f(` { "model":"m", "max_tokens" : 5 , "anthropic_version":"x","anthropic_beta":["evil"],"messages":[],"metadata":{"model":"y","stream":[1,{"a":"]"}]} } `, " ",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens" : 5,"messages":[],"metadata":{"model":"y","stream":[1,{"a":"]"}]}}`)
	f(`{}`, "b1", `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b1"]}`)
	f(`{"model":"m","max_tokens":1,"messages":[]}`, " , ", `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":[],"max_tokens":1,"messages":[]}`)
	// Keys match decoded, as InspectRequest reads them.
	f(`{"mod\u0065l":"m","max_tokens":1,"str\u0065am":true,"anthropic\u005fbeta":[],"messages":[],"x\u0041":1}`, "",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[],"x\u0041":1}`)
	// Beta names are escaped.
	f(`{"model":"m","max_tokens":1,"messages":[]}`, `q"b\`+"\x01",
		`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["q\"b\\\u0001"],"max_tokens":1,"messages":[]}`)

	// A body InspectRequest refuses as malformed is a bug of the caller.
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1,}`, `{"a":"x}`, `{"a":1} x`, `{"a" 1}`, `{"a":[1}`, `{"a":tru}`, `{"a":01}`} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), "BUG: ") {
					t.Fatalf("unexpected result for %q; got %v; want a BUG panic", bad, p)
				}
			}()
			AppendBedrockBody(nil, []byte(bad), nil)
		}()
	}
}

// checkBedrockBody checks the Bedrock rewrite of body against encoding/json:
// the members of body (the last of each key) without model and stream, and
// the version and betas in place of the body's own.
func checkBedrockBody(t *testing.T, body, betas []byte) {
	t.Helper()
	out := AppendBedrockBody(nil, body, betas)
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid rewrite %q of %q: %s", out, body, err)
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("cannot decode %q: %s", body, err)
	}
	delete(want, "model")
	delete(want, "stream")
	delete(want, "anthropic_beta")
	want["anthropic_version"] = BedrockVersion
	if len(bytes.TrimSpace(betas)) > 0 {
		names := []any{}
		for _, b := range strings.Split(string(betas), ",") {
			if b = strings.TrimSpace(b); b != "" {
				names = append(names, invalidBytesReplaced(b))
			}
		}
		want["anthropic_beta"] = names
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unexpected rewrite of %q with betas %q;\ngot  %v\nwant %v", body, betas, got, want)
	}
}
