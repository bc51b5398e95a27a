package simulator

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCountWords(t *testing.T) {
	f := func(s string, want int64) {
		t.Helper()
		if got := countWords(s); got != want {
			t.Fatalf("unexpected countWords(%q); got %d; want %d", s, got, want)
		}
		if got := int64(len(strings.Fields(s))); got != want {
			t.Fatalf("BUG in test: strings.Fields(%q) has %d words; want %d", s, got, want)
		}
	}
	f("", 0)
	f("   ", 0)
	f("one", 1)
	f(" one  two\tthree\nfour ", 4)
	f("héllo wörld", 2)
	f("a\u00a0b\u2003c", 3)
	f("日本語 テキスト", 2)
}

// userBody returns a Messages request body with one user message.
func userBody(text string, maxTokens int) []byte {
	b, err := json.Marshal(map[string]any{
		"model":      "claude-haiku-4-5",
		"max_tokens": maxTokens,
		"messages":   []any{map[string]any{"role": "user", "content": text}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func TestExpectedUsage(t *testing.T) {
	f := func(body []byte, want Usage) {
		t.Helper()
		got, err := ExpectedUsage(body)
		if err != nil {
			t.Fatalf("unexpected error for %s: %s", body, err)
		}
		if want.ServiceTier == "" {
			want.ServiceTier = "standard"
		}
		if want.InferenceGeo == "" {
			want.InferenceGeo = "not_available"
		}
		if got != want {
			t.Fatalf("unexpected usage for %s;\ngot  %+v\nwant %+v", body, got, want)
		}
	}
	// "user" plus three words in, the three words echoed.
	f(userBody("Say hello twice", 100), Usage{InputTokens: 4, OutputTokens: 3})
	// The directive counts as one input word and is not echoed.
	f(userBody("Say hello [[sim:words=10]]", 100), Usage{InputTokens: 4, OutputTokens: 10})
	f(userBody("[[sim:words=10]]", 5), Usage{InputTokens: 2, OutputTokens: 5})
	// No words: the fallback reply has 6 words.
	f(userBody("[[sim:padded]]", 100), Usage{InputTokens: 2, OutputTokens: 6})
	f(userBody("a [[sim:input=250000,words=2]]", 100), Usage{InputTokens: 250000, OutputTokens: 2})
	f(userBody("a [[sim:cache_write=1000,cache_read=500]]", 100), Usage{InputTokens: 3, OutputTokens: 1,
		CacheCreationInputTokens: 1000, CacheReadInputTokens: 500, CacheCreation: CacheCreation{Ephemeral5mInputTokens: 1000}})
	f(userBody("a [[sim:cache=1h,cache_write=1000]]", 100), Usage{InputTokens: 3, OutputTokens: 1,
		CacheCreationInputTokens: 1000, CacheCreation: CacheCreation{Ephemeral1hInputTokens: 1000}})
	// thinking 8 + text 2.
	f(userBody("one two [[sim:thinking]]", 100), Usage{InputTokens: 4, OutputTokens: 10})
	f(userBody("one two [[sim:redacted_thinking=5]]", 100), Usage{InputTokens: 4, OutputTokens: 7})
	// text 4 + tool query 3.
	f(userBody("one two three four [[sim:tool_use]]", 100), Usage{InputTokens: 6, OutputTokens: 7})
	// 2 searches × 3 query words + text 4; input + 2×1000.
	f(userBody("one two three four [[sim:web_search=2]]", 100), Usage{InputTokens: 2006, OutputTokens: 10,
		ServerToolUse: ServerToolUse{WebSearchRequests: 2}})
	// Cut after 4 words: the first search's query (3) fits, its result too (a
	// word of the next one still fits), then the second query is cut.
	f(userBody("one two three four [[sim:web_search=2]]", 4), Usage{InputTokens: 1006, OutputTokens: 4,
		ServerToolUse: ServerToolUse{WebSearchRequests: 1}})
	// Cut exactly after the first query: no result, no search.
	f(userBody("one two three four [[sim:web_search=2]]", 3), Usage{InputTokens: 6, OutputTokens: 3})
	f(userBody("[[sim:old_usage,web_search=1,words=1]]", 100), Usage{InputTokens: 1002, OutputTokens: 4,
		ServerToolUse: ServerToolUse{WebSearchRequests: 1}})
	// Directive values with geo, system, tools and blocks.
	f([]byte(`{"model":"m","max_tokens":50,"inference_geo":"us",
		"system":[{"type":"text","text":"Be brief. [[sim:words=2]]"}],
		"tools":[{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
		"messages":[{"role":"user","content":[{"type":"text","text":"What is up?"}]},
			{"role":"assistant","content":"Not much."},
			{"role":"user","content":[{"type":"text","text":"Tell me"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}`),
		// system: "text" + 3 words; tools: name 1 + description 3 + "object" 1 + "string" 1;
		// messages: "user" + "text" + 3, "assistant" + 2, "user" + "text" + 2 + "image" + "base64" + "image/png" + "AAAA".
		Usage{InputTokens: 4 + 6 + 5 + 3 + 8, OutputTokens: 2, InferenceGeo: "us"})
}

func TestExpectedStartUsage(t *testing.T) {
	f := func(body []byte, want Usage) {
		t.Helper()
		got, err := ExpectedStartUsage(body)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		want.ServiceTier, want.InferenceGeo = "standard", "not_available"
		if got != want {
			t.Fatalf("unexpected start usage for %s;\ngot  %+v\nwant %+v", body, got, want)
		}
	}
	f(userBody("Say hello twice", 100), Usage{InputTokens: 4, OutputTokens: 1})
	f(userBody("one two three four [[sim:web_search=2]]", 100), Usage{InputTokens: 6, OutputTokens: 1})
	f(userBody("one two three four [[sim:web_search=2,old_usage]]", 100), Usage{InputTokens: 2006, OutputTokens: 1,
		ServerToolUse: ServerToolUse{WebSearchRequests: 2}})
}

func TestParseRequestError(t *testing.T) {
	f := func(body string, countTokens bool, wantSubstr string) {
		t.Helper()
		_, err := parseRequest([]byte(body), countTokens)
		if err == nil {
			t.Fatalf("expecting an error for %s", body)
		}
		if !strings.Contains(err.Error(), wantSubstr) {
			t.Fatalf("unexpected error for %s; got %q; want it to contain %q", body, err, wantSubstr)
		}
	}
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	f(``, false, "not valid JSON")
	f(`{`, false, "not valid JSON")
	f(`[1]`, false, "not valid JSON")
	f(`null`, false, "not valid JSON")
	f(`{"max_tokens":5,`+msgs+`}`, false, "model: Field required")
	f(`{"model":null,"max_tokens":5,`+msgs+`}`, false, "model: Field required")
	f(`{"model":5,"max_tokens":5,`+msgs+`}`, false, "model: Input should be a valid string")
	f(`{"model":"","max_tokens":5,`+msgs+`}`, false, "at least 1 character")
	f(`{"model":"m",`+msgs+`}`, false, "max_tokens: Field required")
	f(`{"model":"m","max_tokens":"5",`+msgs+`}`, false, "max_tokens: Input should be a valid integer")
	f(`{"model":"m","max_tokens":1.5,`+msgs+`}`, false, "max_tokens: Input should be a valid integer")
	f(`{"model":"m","max_tokens":0,`+msgs+`}`, false, "greater than or equal to 1")
	f(`{"model":"m","max_tokens":-3,`+msgs+`}`, false, "greater than or equal to 1")
	f(`{"model":"m","max_tokens":5,"stream":"yes",`+msgs+`}`, false, "stream: Input should be a valid boolean")
	f(`{"model":"m","max_tokens":5}`, false, "messages: Field required")
	f(`{"model":"m","max_tokens":5,"messages":{}}`, false, "messages: Input should be a valid list")
	f(`{"model":"m","max_tokens":5,"messages":[]}`, false, "at least one message")
	f(`{"model":"m","max_tokens":5,"messages":["hi"]}`, false, "messages.0: Input should be a valid dictionary")
	f(`{"model":"m","max_tokens":5,"messages":[{"role":"bot","content":"hi"}]}`, false, "messages.0.role")
	f(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]}`, false, "messages.0.content")
	f(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[5]}]}`, false, "messages.0.content.0")
	f(`{"model":"m","max_tokens":5,"system":5,`+msgs+`}`, false, "system:")
	f(`{"model":"m","max_tokens":5,"tools":{},`+msgs+`}`, false, "tools:")
	f(`{"model":"m","max_tokens":5,"inference_geo":1,`+msgs+`}`, false, "inference_geo")
	f(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"[[sim:nope]]"}]}`, false, `unknown key "nope"`)
	f(`{"model":"m","max_tokens":5,"system":"[[sim:nope]]",`+msgs+`}`, false, `unknown key "nope"`)
	f(`{"model":"m"}`, true, "messages: Field required")
	f(`{`+msgs+`}`, true, "model: Field required")
}

func TestParseRequestLastUser(t *testing.T) {
	// Only the last user message's directives apply; an earlier one's are plain text.
	body := `{"model":"m","max_tokens":50,"messages":[
		{"role":"user","content":"[[sim:words=9]] first"},
		{"role":"assistant","content":"ok"},
		{"role":"user","content":"second [[sim:words=2]]"},
		{"role":"assistant","content":"prefill"}]}`
	r, err := parseRequest([]byte(body), false)
	if err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	if r.userText != "second [[sim:words=2]]" {
		t.Fatalf("unexpected userText; got %q", r.userText)
	}
	if r.dir.words != 2 {
		t.Fatalf("unexpected words; got %d; want 2", r.dir.words)
	}
	// count_tokens needs no max_tokens.
	if _, err := parseRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), true); err != nil {
		t.Fatalf("unexpected count_tokens error: %s", err)
	}
}

func TestAppendJSONStringContent(t *testing.T) {
	f := func(s string) {
		t.Helper()
		b := append(appendJSONStringContent([]byte(`"`), s), '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON %s for %q: %s", b, s, err)
		}
		if strings.ToValidUTF8(s, "\ufffd") != got {
			t.Fatalf("unexpected round trip of %q; got %q", s, got)
		}
	}
	f("")
	f("plain")
	f(`quote " backslash \ slash /`)
	f("ctl \x00\x01\x1f\n\r\t end")
	f("<a & b>")
	f("héllo 日本 \u2028")
	f("bad \xff utf8")
	if got := string(appendJSONStringContent([]byte("x"), `<&>"`)); got != `x<&>\"` {
		t.Fatalf("unexpected escaping; got %s", got)
	}
}

func TestReplyEventsDeterministic(t *testing.T) {
	body := userBody("alpha beta gamma delta [[sim:thinking=2,web_search=1,tool_use]]", 100)
	req, err := parseRequest(body, false)
	if err != nil {
		t.Fatal(err)
	}
	a, b := buildReply(req, "m", "msg_x"), buildReply(req, "m", "msg_x")
	collect := func(r *reply) string {
		var sb strings.Builder
		n := 0
		r.events(func(name string, data []byte) bool {
			sb.WriteString(name + " " + string(data) + "\n")
			n++
			return true
		})
		if n != r.eventCount() {
			t.Fatalf("unexpected eventCount; got %d; want %d", r.eventCount(), n)
		}
		return sb.String()
	}
	if ea, eb := collect(a), collect(b); ea != eb {
		t.Fatalf("events differ between two builds:\n%s\n%s", ea, eb)
	}
	if string(a.appendMessage(nil)) != string(b.appendMessage(nil)) {
		t.Fatalf("messages differ between two builds")
	}
	// Stopping early stops.
	n := 0
	if a.events(func(string, []byte) bool { n++; return n < 3 }) {
		t.Fatalf("events returned true after yield returned false")
	}
	if n != 3 {
		t.Fatalf("unexpected events after stop; got %d; want 3", n)
	}
}
