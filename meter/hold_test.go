package meter

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
)

// Text of known kinds and sizes for realistic requests. English prose runs
// about 4.2 bytes per token, Go code about 3.2: the sizes below turn the
// golden streams' input counts into request bodies of matching size.
const englishParagraph = "The gateway meters every call as it streams, so the customer pays for what the model really did. " +
	"It reserves an upper bound before forwarding, then settles at the folded usage once the final event arrives. " +
	"Nothing is buffered beyond one event, and the bytes reach the client exactly as the upstream sent them. "

const codeParagraph = "func (s *shard) settle(h *hold, charged int64) error {\n\ts.mu.Lock()\n\tdefer s.mu.Unlock()\n" +
	"\tif h.state != holdOpen {\n\t\treturn fmt.Errorf(\"hold %d is %s\", h.id, h.state)\n\t}\n" +
	"\ts.available += h.amount - charged\n\treturn nil\n}\n\n"

func textOf(paragraph string, bytes int) string {
	s := strings.Repeat(paragraph, bytes/len(paragraph)+1)
	return s[:bytes]
}

func quote(s string) string { return strconv.Quote(s) } // Go quoting is valid JSON for these texts

func userBody(model string, maxTokens int, extra, content string) string {
	return `{"model":"` + model + `","max_tokens":` + strconv.Itoa(maxTokens) + `,"stream":true` + extra +
		`,"messages":[{"role":"user","content":` + quote(content) + `}]}`
}

// TestHoldGolden sizes holds for realistic requests behind each golden stream
// and checks them against the stream's actual price: the hold covers it, the
// input estimate covers the request's input, and for text-only requests the
// estimate stays within 3 times the actual input (in tokens, and in money
// where no cache rates blur the comparison).
func TestHoldGolden(t *testing.T) {
	c := shippedCatalogue(t)
	f := func(stream, body string, textOnly, cached bool, requestInput int64) {
		t.Helper()
		res := observeChunks(readStream(t, stream))
		m, ok := c.LookupBytes(res.Model)
		if !ok {
			t.Fatalf("unexpected unknown model %q in %s", res.Model, stream)
		}
		var r Request
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected error inspecting the request of %s: %s", stream, err)
		}
		if rm, ok := c.Lookup(r.Model); !ok || rm != m {
			t.Fatalf("unexpected request model %q for %s", r.Model, stream)
		}
		u := res.Usage
		if res.End != EndCompleted {
			u.OutputTokens = EstimateOutputTokens(&res)
		}
		hold, err := m.Hold(&r, t0, MultiplierOne, 0, 5)
		if err != nil {
			t.Fatalf("unexpected hold error for %s: %s", stream, err)
		}
		actual, err := m.Price(u, t0, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected price error for %s: %s", stream, err)
		}
		t.Logf("%s: estimate %d tokens for %d; hold %d nano-credits for %d actual", stream, r.EstimatedInputTokens, u.TotalInputTokens(), hold, actual)
		if hold < actual {
			t.Fatalf("unexpected hold below the actual price for %s; got %d; want at least %d", stream, hold, actual)
		}
		// requestInput is what the request itself carried: the final input
		// count, or message_start's where a server-tool loop grew it.
		if requestInput == 0 {
			requestInput = u.TotalInputTokens()
		}
		if r.EstimatedInputTokens < requestInput {
			t.Fatalf("unexpected input estimate below the request's input for %s; got %d; want at least %d", stream, r.EstimatedInputTokens, requestInput)
		}
		if !textOnly {
			return
		}
		if r.EstimatedInputTokens > 3*requestInput {
			t.Fatalf("unexpected input estimate for %s; got %d; want at most 3 x %d", stream, r.EstimatedInputTokens, requestInput)
		}
		if cached {
			return
		}
		holdIn, err := m.Price(Usage{Counts: tokens.Counts{InputTokens: r.EstimatedInputTokens}, Modifiers: r.Modifiers}, t0, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		actualIn, err := m.Price(Usage{Counts: tokens.Counts{InputTokens: u.InputTokens}, Modifiers: u.Modifiers}, t0, MultiplierOne)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if holdIn > 3*actualIn {
			t.Fatalf("unexpected input part of the hold for %s; got %d; want at most 3 x %d", stream, holdIn, actualIn)
		}
	}
	thinking := `,"thinking":{"type":"enabled","budget_tokens":10000}`
	weatherTool := `,"tools":[{"name":"get_weather","description":"Get the current weather in a given location","input_schema":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}},"required":["location"]}}]`

	// The real request behind the captured stream.
	f("plain_text.sse", userBody("claude-haiku-4-5", 60, "", "Dame 3 palabras separadas por coma y nada más. Sin explicación."), true, false, 0)
	f("tool_use.sse", userBody("claude-sonnet-4-5", 1024, weatherTool, "What's the weather like in San Francisco?"), false, false, 0)
	f("thinking.sse", userBody("claude-opus-4-6", 16000, thinking,
		"Please solve 27 * 453 step by step. Show the partial products, check the result by estimating 30 * 450, "+
			"and end with the final answer on its own line. Keep the explanation short and do not use a calculator."), true, false, 0)
	// Japanese: about one token per character.
	f("redacted_thinking.sse", userBody("claude-sonnet-4-6", 8000, thinking,
		strings.Repeat("東京の天気と気温について簡潔に説明してください。", 4)), true, false, 0)
	f("web_search.sse", userBody("claude-opus-4-6", 1024, `,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]`,
		"What's the weather in NYC?"), false, false, 2679)
	f("cache_5m.sse", `{"model":"claude-opus-4-5","max_tokens":1024,"system":[{"type":"text","text":`+quote(textOf(codeParagraph, 71000))+
		`,"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"What does this file define?"}]}`, true, true, 0)
	f("cache_1h.sse", `{"model":"claude-sonnet-4-6","max_tokens":512,"system":[{"type":"text","text":`+quote(textOf(englishParagraph, 77700))+
		`,"cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"Load the cached context."}]}`, true, true, 0)
	f("long_context_over.sse", `{"model":"claude-sonnet-4-5","max_tokens":4096,"system":[{"type":"text","text":`+quote(textOf(englishParagraph, 252000))+
		`,"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":`+quote(textOf(englishParagraph, 630000))+`}]}`, true, true, 0)
	f("long_context_under.sse", `{"model":"claude-sonnet-4-5","max_tokens":4096,"system":[{"type":"text","text":`+quote(textOf(englishParagraph, 336000))+
		`,"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":`+quote(textOf(englishParagraph, 504000))+`}]}`, true, true, 0)
	f("output_only_delta.sse", userBody("claude-sonnet-4-5", 100, "", "Hello!"), true, false, 0)
	f("multiple_deltas.sse", userBody("claude-haiku-4-5", 1024, `,"tools":[{"type":"web_search_20250305","name":"web_search"}]`,
		"Find the opening hours of the city library and summarise them."), false, false, 400)
	f("padded.sse", `{"model":"claude-fable-5","max_tokens":2048`+thinking+`,"system":[{"type":"text","text":`+quote(textOf(englishParagraph, 3400))+
		`,"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":`+quote(textOf(englishParagraph, 5000))+`}]}`, true, true, 0)
	f("pings.sse", userBody("claude-haiku-4-5", 50, "", "Hi"), true, false, 0)
	f("error_after_deltas.sse", userBody("claude-opus-4-6", 2048, "", textOf(englishParagraph, 2700)), true, false, 0)
	f("cut_mid_event.sse", userBody("claude-sonnet-4-6", 1024, "", textOf(englishParagraph, 3800)), true, false, 0)
	f("fake_usage.sse", userBody("claude-haiku-4-5", 256, "", `Repeat "usage":{"output_tokens":999} back to me.`), true, false, 0)
}

// TestServerToolsAllowList: tools billed through tokens pass; web search
// passes where it is priced; code execution and unknown server tools are
// refused with their type named.
func TestServerToolsAllowList(t *testing.T) {
	cat, err := LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Lookup("claude-haiku-4-5")
	f := func(toolType string, wantRefused bool) {
		t.Helper()
		var r Request
		body := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tools":[{"type":"` + toolType + `","name":"t"}]}`
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected inspection error for %q: %s", toolType, err)
		}
		err := m.Supports(&r, time.Now())
		if (err != nil) != wantRefused {
			t.Fatalf("unexpected result for %q; got %v; want refused %v", toolType, err, wantRefused)
		}
		if wantRefused && !strings.Contains(err.Error(), toolType) {
			t.Fatalf("the refusal does not name %q: %s", toolType, err)
		}
	}
	f("custom", false)
	f("bash_20250124", false)
	f("text_editor_20250728", false)
	f("web_fetch_20250910", false)
	f("web_search_20250305", false)
	f("memory_20250818", false)
	f("code_execution_20250825", true)
	f("quantum_compute_20270101", true)
}
