package openai

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

const hi = `"messages":[{"role":"user","content":"Hi"}]`

// hiTurn is hi translated.
const hiTurn = `"messages":[{"role":"user","content":"Hi"}]`

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("cannot decode %s: %s", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("cannot decode %s: %s", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// requestCases are OpenAI bodies and the Anthropic bodies they become.
var requestCases = []struct{ body, want string }{
	// The smallest request; the default max_tokens.
	{`{"model":"claude-sonnet-4-6",` + hi + `}`,
		`{"model":"claude-sonnet-4-6","max_tokens":1024,` + hiTurn + `}`},
	// An assistant message as openai-node's helpers return it (parsed,
	// annotations), sent back as it is.
	{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello","refusal":null,"parsed":null,"annotations":[]},{"role":"user","content":"Again"}]}`,
		`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"Again"}]}`},
	// max_tokens, max_completion_tokens, both when equal.
	{`{"model":"m","max_tokens":50,` + hi + `}`, `{"model":"m","max_tokens":50,` + hiTurn + `}`},
	{`{"model":"m","max_completion_tokens":60,` + hi + `}`, `{"model":"m","max_tokens":60,` + hiTurn + `}`},
	{`{"model":"m","max_tokens":70,"max_completion_tokens":70,` + hi + `}`, `{"model":"m","max_tokens":70,` + hiTurn + `}`},
	// Explicit nulls are "not given".
	{`{"model":"m","max_tokens":null,"temperature":null,"stop":null,"tools":null,"tool_choice":null,"seed":null,"n":null,"response_format":null,"user":null,` + hi + `}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	// System and developer messages join the system prompt in order, from
	// wherever they stand; the user messages around a system one merge.
	{`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"developer","content":[{"type":"text","text":"Answer in French."},{"type":"text","text":""}]},{"role":"user","content":"Bye"}]}`,
		`{"model":"m","max_tokens":1024,"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Answer in French."}],"messages":[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"Bye"}]}]}`},
	// Images: a data URL (image/jpg read as image/jpeg), an https URL.
	{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Compare."},{"type":"image_url","image_url":{"url":"data:image/jpg;base64,/9j/4AAQ","detail":"high"}},{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"auto"}},{"type":"image_url","image_url":{"url":"DATA:IMAGE/WEBP;BASE64,UklGR"}}]}]}`,
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"Compare."},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGR"}}]}]}`},
	// Multi-turn; consecutive messages of one role share a turn.
	{`{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"user","content":"Anyone?"},{"role":"assistant","content":"Hello."},{"role":"assistant","content":"How can I help?"},{"role":"user","content":"Tell a joke."}]}`,
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"Anyone?"}]},{"role":"assistant","content":[{"type":"text","text":"Hello."},{"type":"text","text":"How can I help?"}]},{"role":"user","content":"Tell a joke."}]}`},
	// A tool round trip: the assistant's calls (content "" and null both
	// nothing; arguments compacted; empty arguments {}), the tool results
	// and the next user message in one user turn.
	{`{"model":"m","messages":[{"role":"user","content":"Weather in Paris and Rome?"},{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{ \"city\": \"Paris\" }"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":""}}]},{"role":"tool","tool_call_id":"call_1","content":"18C, sunny"},{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"14:02"}]},{"role":"user","content":"Thanks. And tomorrow?"}]}`,
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":"Weather in Paris and Rome?"},{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"call_2","name":"get_time","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"18C, sunny"}]},{"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"14:02"}]},{"type":"text","text":"Thanks. And tomorrow?"}]}]}`},
	// A tool result with empty content; an assistant's text before its call.
	{`{"model":"m","messages":[{"role":"user","content":"Go"},{"role":"assistant","content":"Running it.","tool_calls":[{"id":"c","type":"function","function":{"name":"run","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":""}]}`,
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":"Go"},{"role":"assistant","content":[{"type":"text","text":"Running it."},{"type":"tool_use","id":"c","name":"run","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c"}]}]}`},
	// Refusals are text: the part and the field.
	{`{"model":"m","messages":[{"role":"user","content":"Do it."},{"role":"assistant","content":[{"type":"refusal","refusal":"I can't."}],"refusal":"Really."},{"role":"user","content":"OK."}]}`,
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":"Do it."},{"role":"assistant","content":[{"type":"text","text":"I can't."},{"type":"text","text":"Really."}]},{"role":"user","content":"OK."}]}`},
	// Tools: description, strict, no parameters, empty parameters, a schema
	// without a type; tool_choice required → any.
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"a","description":"Does a.","parameters":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]},"strict":true}},{"type":"function","function":{"name":"b"}},{"type":"function","function":{"name":"c","parameters":{},"strict":false}},{"type":"function","function":{"name":"d","parameters":{"properties":{}}}}],"tool_choice":"required"}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"a","description":"Does a.","input_schema":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]},"strict":true},{"name":"b","input_schema":{"type":"object"}},{"name":"c","input_schema":{"type":"object"}},{"name":"d","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"}}`},
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`},
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","parallel_tool_calls":true}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"}}`},
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}}`},
	// parallel_tool_calls false alone: auto; with none: none.
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`},
	{`{"model":"m",` + hi + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none","parallel_tool_calls":false}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`},
	// Without tools, none, auto and parallel_tool_calls say nothing.
	{`{"model":"m",` + hi + `,"tools":[],"tool_choice":"none","parallel_tool_calls":false}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	// stop, temperature, top_p.
	{`{"model":"m",` + hi + `,"stop":"END","temperature":0.2,"top_p":0.9}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"stop_sequences":["END"],"temperature":0.2,"top_p":0.9}`},
	{`{"model":"m",` + hi + `,"stop":["a","b","c","d"],"temperature":1,"top_p":0}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"stop_sequences":["a","b","c","d"],"temperature":1,"top_p":0}`},
	{`{"model":"m",` + hi + `,"stop":[],"temperature":0}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"temperature":0}`},
	// response_format.
	{`{"model":"m",` + hi + `,"response_format":{"type":"text"}}`, `{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	{`{"model":"m",` + hi + `,"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}}}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}}}`},
	// reasoning_effort.
	{`{"model":"m",` + hi + `,"reasoning_effort":"high"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"effort":"high"}}`},
	{`{"model":"m",` + hi + `,"reasoning_effort":"minimal"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"effort":"low"}}`},
	{`{"model":"m",` + hi + `,"reasoning_effort":"xhigh"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"effort":"xhigh"}}`},
	{`{"model":"m",` + hi + `,"reasoning_effort":"max"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"effort":"max"}}`},
	{`{"model":"m",` + hi + `,"reasoning_effort":"none"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	{`{"model":"m",` + hi + `,"reasoning_effort":"medium","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"output_config":{"effort":"medium","format":{"type":"json_schema","schema":{"type":"object"}}}}`},
	// user and safety_identifier.
	{`{"model":"m",` + hi + `,"user":"user-42"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"metadata":{"user_id":"user-42"}}`},
	{`{"model":"m",` + hi + `,"safety_identifier":"h1","user":"h1"}`, `{"model":"m","max_tokens":1024,` + hiTurn + `,"metadata":{"user_id":"h1"}}`},
	{`{"model":"m",` + hi + `,"user":""}`, `{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	// stream.
	{`{"model":"m",` + hi + `,"stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `,"stream":true}`},
	{`{"model":"m",` + hi + `,"stream":false,"stream_options":{"include_usage":true}}`, `{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	// Neutral values pass.
	{`{"model":"m",` + hi + `,"n":1,"frequency_penalty":0,"presence_penalty":0.0,"logprobs":false,"top_logprobs":0,"service_tier":"auto","store":false,"metadata":{},"logit_bias":{},"modalities":["text"],"verbosity":"medium","prompt_cache_key":"k","prompt_cache_retention":"24h","prompt_cache_options":{"mode":"implicit","ttl":"30m"}}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	{`{"model":"m",` + hi + `,"service_tier":"default","prompt_cache_retention":"in_memory","prompt_cache_options":{},"modalities":[]}`,
		`{"model":"m","max_tokens":1024,` + hiTurn + `}`},
	// One name per role is dropped; the reasoning_content and tool-call
	// index that clients resend are ignored.
	{`{"model":"m","messages":[{"role":"system","content":"S","name":"app"},{"role":"user","content":"Hi","name":"ann"},{"role":"assistant","content":"Yes?","name":"bot","reasoning_content":"thought","tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"ok"},{"role":"user","content":"Go on","name":"ann"}]}`,
		`{"model":"m","max_tokens":1024,"system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Yes?"},{"type":"tool_use","id":"c","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":[{"type":"text","text":"ok"}]},{"type":"text","text":"Go on"}]}]}`},
	// Text keeps every character; invalid UTF-8 becomes U+FFFD.
	{"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"<b>\\u00e9\\n\\\"q\\\" \xff\"}]}",
		`{"model":"m","max_tokens":1024,"messages":[{"role":"user","content":"<b>é\n\"q\" ` + "\uFFFD" + `"}]}`},
}

func TestTranslateRequest(t *testing.T) {
	for _, c := range requestCases {
		got, _, err := TranslateRequest(nil, []byte(c.body), 1024)
		if err != nil {
			t.Fatalf("unexpected error for %s: %s", c.body, err)
		}
		if !sameJSON(t, got, []byte(c.want)) {
			t.Fatalf("unexpected translation of %s;\ngot  %s\nwant %s", c.body, got, c.want)
		}
	}
}

// TestTranslateRequestAppends: the body is appended to dst.
func TestTranslateRequestAppends(t *testing.T) {
	dst := []byte("prefix:")
	got, _, err := TranslateRequest(dst, []byte(`{"model":"m",`+hi+`}`), 5)
	want := `prefix:{"model":"m","max_tokens":5,` + hiTurn + `}`
	if err != nil || string(got) != want {
		t.Fatalf("unexpected result; got %s, %v; want %s", got, err, want)
	}
	got, _, err = TranslateRequest(dst, []byte(`{"model":"m"}`), 5)
	if err == nil || string(got) != "prefix:" {
		t.Fatalf("unexpected result of a refusal; got %q, %v; want dst unchanged and an error", got, err)
	}
}

// TestTranslateRequestSDKShape: every translation decodes into the
// Anthropic SDK's MessageNewParams and encodes back the same, so each
// field name and shape is one the SDK knows. The SDK (API version
// 2026-10-21) has no stream, temperature or top_p: those are left out of
// the comparison.
func TestTranslateRequestSDKShape(t *testing.T) {
	for _, c := range requestCases {
		got, _, err := TranslateRequest(nil, []byte(c.body), 1024)
		if err != nil {
			t.Fatalf("unexpected error for %s: %s", c.body, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatalf("cannot decode %s: %s", got, err)
		}
		delete(m, "stream")
		delete(m, "temperature")
		delete(m, "top_p")
		m["messages"] = blocksForStrings(t, m["messages"])
		ours, _ := json.Marshal(m)
		var p anthropic.MessageNewParams
		if err := json.Unmarshal(ours, &p); err != nil {
			t.Fatalf("cannot decode %s into MessageNewParams: %s", ours, err)
		}
		back, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("cannot encode MessageNewParams of %s: %s", ours, err)
		}
		if !sameJSON(t, ours, back) {
			t.Fatalf("unexpected shape;\nours %s\nsdk  %s", ours, back)
		}
	}
}

// blocksForStrings rewrites string contents of messages as the one text
// block they stand for, the form the SDK encodes.
func blocksForStrings(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var msgs []map[string]any
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatalf("cannot decode messages %s: %s", raw, err)
	}
	for _, m := range msgs {
		if s, ok := m["content"].(string); ok {
			m["content"] = []any{map[string]any{"type": "text", "text": s}}
		}
	}
	out, _ := json.Marshal(msgs)
	return out
}

func TestTranslateRequestOptions(t *testing.T) {
	f := func(body string, want Options) {
		t.Helper()
		_, got, err := TranslateRequest(nil, []byte(body), 1024)
		if err != nil || got != want {
			t.Fatalf("unexpected options for %s; got %+v, %v; want %+v", body, got, err, want)
		}
	}
	f(`{"model":"claude-opus-4-6",`+hi+`}`, Options{Model: "claude-opus-4-6"})
	f(`{"model":"m",`+hi+`,"stream":true}`, Options{Model: "m", Stream: true})
	f(`{"model":"m",`+hi+`,"stream":true,"stream_options":{"include_usage":true}}`, Options{Model: "m", Stream: true, IncludeUsage: true})
	f(`{"model":"m",`+hi+`,"stream":true,"stream_options":{"include_usage":false}}`, Options{Model: "m", Stream: true})
	f(`{"model":"m",`+hi+`,"stream":true,"stream_options":{}}`, Options{Model: "m", Stream: true})
	f(`{"model":"m",`+hi+`,"stream_options":{"include_usage":true}}`, Options{Model: "m"})
}

// Pieces of the refused bodies: one tool; a user message to open with.
const (
	oneTool = `"tools":[{"type":"function","function":{"name":"f"}}]`
	ask     = `{"role":"user","content":"a"},`
)

// refused checks that body is refused naming param, with a message that
// contains message.
func refused(t *testing.T, body, param, message string) {
	t.Helper()
	_, _, err := TranslateRequest(nil, []byte(body), 1024)
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("unexpected error for %s; got %v; want a *RequestError", body, err)
	}
	if re.Param != param || !strings.Contains(re.Message, message) {
		t.Fatalf("unexpected refusal of %s; got %q: %q; want %q: …%s…", body, re.Param, re.Message, param, message)
	}
}

// TestRefuseBody: a body that is not a JSON object.
func TestRefuseBody(t *testing.T) {
	refused(t, ``, "", "is not a valid JSON object")
	refused(t, `[]`, "", "is not a valid JSON object")
	refused(t, `{"model":"m",`+hi, "", "is not a valid JSON object")
	refused(t, `{"model":"m",`+hi+`}x`, "", "is not a valid JSON object")
}

// TestRefuseUnknownKeys: keys the API does not define, at any depth; case matters.
func TestRefuseUnknownKeys(t *testing.T) {
	refused(t, `{"model":"m",`+hi+`,"top_k":5}`, "top_k", "is not a parameter")
	refused(t, `{"Model":"m",`+hi+`}`, "Model", "is not a parameter")
	refused(t, `{"model":"m","messages":[{"role":"user","content":"Hi","cache_control":{"type":"ephemeral"}}]}`, "messages[0].cache_control", "is not a parameter")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{}}]}]}`, "messages[0].content[0].cache_control", "is not a parameter")
	refused(t, `{"model":"m",`+hi+`,"tools":[{"type":"function","function":{"name":"f","examples":[]}}]}`, "tools[0].function.examples", "is not a parameter")
	refused(t, `{"model":"m",`+hi+`,"stream_options":{"include_usage":true,"x":1}}`, "stream_options.x", "is not a parameter")
}

// TestRefuseTypes: values of the wrong type, named by their path.
func TestRefuseTypes(t *testing.T) {
	refused(t, `{"model":5,`+hi+`}`, "model", "must be a string")
	refused(t, `{"model":"m",`+hi+`,"temperature":"hot"}`, "temperature", "must be a number")
	refused(t, `{"model":"m",`+hi+`,"max_tokens":1.5}`, "max_tokens", "must be an integer")
	refused(t, `{"model":"m",`+hi+`,"max_tokens":99999999999999999999999}`, "max_tokens", "must be an integer")
	refused(t, `{"model":"m",`+hi+`,"stream":"yes"}`, "stream", "must be a boolean")
	refused(t, `{"model":"m","messages":{}}`, "messages", "must be an array")
	refused(t, `{"model":"m","messages":["Hi"]}`, "messages[0]", "must be an object")
	refused(t, `{"model":"m","messages":[{"role":"user","content":7}]}`, "messages[0].content", "must be a string or an array")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`, "messages[0].content[0].text", "must be a string")
	refused(t, `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"image_url","image_url":{"url":1}}]}]}`, "messages[1].content[0].image_url.url", "must be a string")
	refused(t, `{"model":"m",`+hi+`,"stop":5}`, "stop", "must be a string or an array of strings")
	refused(t, `{"model":"m",`+hi+`,"stop":[1]}`, "stop", "must be a string or an array of strings")
	refused(t, `{"model":"m",`+hi+`,"tool_choice":5}`, "tool_choice", "must be a string or an object")
}

// TestRefuseRequired: what must be there, and messages left empty.
func TestRefuseRequired(t *testing.T) {
	refused(t, `{`+hi+`}`, "model", "is required")
	refused(t, `{"model":"",`+hi+`}`, "model", "is required")
	refused(t, `{"model":"m"}`, "messages", "at least one message")
	refused(t, `{"model":"m","messages":[]}`, "messages", "at least one message")
	refused(t, `{"model":"m","messages":[{"role":"system","content":"S"}]}`, "messages", "other than system and developer")
	refused(t, `{"model":"m","messages":[{"content":"Hi"}]}`, "messages[0].role", "is required")
	refused(t, `{"model":"m","messages":[{"role":"bot","content":"Hi"}]}`, "messages[0].role", "must be")
	refused(t, `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages[0].content", "must not be empty")
	refused(t, `{"model":"m","messages":[{"role":"user"}]}`, "messages[0].content", "must not be empty")
	refused(t, `{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null}]}`, "messages[1].content", "must not be empty")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages[0].content[0].text", "is required")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"text":"Hi"}]}]}`, "messages[0].content[0].type", "is required")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hi","image_url":{"url":"https://x"}}]}]}`, "messages[0].content[0].image_url", "does not belong")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"video","text":"Hi"}]}]}`, "messages[0].content[0].text", "does not belong")
}

// TestRefuseSampling: the sampling parameters Anthropic's models do not take.
func TestRefuseSampling(t *testing.T) {
	refused(t, `{"model":"m",`+hi+`,"n":2}`, "n", "greater than 1")
	refused(t, `{"model":"m",`+hi+`,"n":0}`, "n", "must be 1")
	refused(t, `{"model":"m",`+hi+`,"seed":42}`, "seed", "not supported")
	refused(t, `{"model":"m",`+hi+`,"logit_bias":{"50256":-100}}`, "logit_bias", "not supported")
	refused(t, `{"model":"m",`+hi+`,"logprobs":true}`, "logprobs", "not supported")
	refused(t, `{"model":"m",`+hi+`,"top_logprobs":3}`, "top_logprobs", "not supported")
	refused(t, `{"model":"m",`+hi+`,"frequency_penalty":0.5}`, "frequency_penalty", "not supported")
	refused(t, `{"model":"m",`+hi+`,"presence_penalty":-1}`, "presence_penalty", "not supported")
	refused(t, `{"model":"m",`+hi+`,"temperature":1.5}`, "temperature", "above 1")
	refused(t, `{"model":"m",`+hi+`,"temperature":2.5}`, "temperature", "between 0 and 2")
	refused(t, `{"model":"m",`+hi+`,"temperature":-0.1}`, "temperature", "between 0 and 2")
	refused(t, `{"model":"m",`+hi+`,"top_p":1.1}`, "top_p", "between 0 and 1")
	refused(t, `{"model":"m",`+hi+`,"max_tokens":0}`, "max_tokens", "between 1 and")
	refused(t, `{"model":"m",`+hi+`,"max_completion_tokens":2147483648}`, "max_completion_tokens", "between 1 and")
	refused(t, `{"model":"m",`+hi+`,"max_tokens":10,"max_completion_tokens":20}`, "max_completion_tokens", "differs from max_tokens")
	refused(t, `{"model":"m",`+hi+`,"stop":["a","b","c","d","e"]}`, "stop", "at most 4")
}

// TestRefuseFeatures: features Anthropic's API does not have.
func TestRefuseFeatures(t *testing.T) {
	refused(t, `{"model":"m",`+hi+`,"audio":{"voice":"alloy","format":"mp3"}}`, "audio", "not supported")
	refused(t, `{"model":"m",`+hi+`,"modalities":["text","audio"]}`, "modalities", `other than ["text"]`)
	refused(t, `{"model":"m",`+hi+`,"prediction":{"type":"content","content":"x"}}`, "prediction", "not supported")
	refused(t, `{"model":"m",`+hi+`,"web_search_options":{}}`, "web_search_options", "not supported")
	refused(t, `{"model":"m",`+hi+`,"moderation":{"model":"omni-moderation-latest"}}`, "moderation", "not supported")
	refused(t, `{"model":"m",`+hi+`,"service_tier":"flex"}`, "service_tier", "not supported")
	refused(t, `{"model":"m",`+hi+`,"store":true}`, "store", "not supported")
	refused(t, `{"model":"m",`+hi+`,"metadata":{"team":"a"}}`, "metadata", "not supported")
	refused(t, `{"model":"m",`+hi+`,"verbosity":"low"}`, "verbosity", "not supported")
	refused(t, `{"model":"m",`+hi+`,"prompt_cache_options":{"mode":"explicit"}}`, "prompt_cache_options", "not supported")
	refused(t, `{"model":"m",`+hi+`,"prompt_cache_retention":"forever"}`, "prompt_cache_retention", "must be")
	refused(t, `{"model":"m",`+hi+`,"reasoning_effort":"extreme"}`, "reasoning_effort", "must be one of")
	refused(t, `{"model":"m",`+hi+`,"response_format":{"type":"json_object"}}`, "response_format", "use {\"type\":\"json_schema\"}")
	refused(t, `{"model":"m",`+hi+`,"response_format":{"type":"yaml"}}`, "response_format.type", "must be")
	refused(t, `{"model":"m",`+hi+`,"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "is required")
	refused(t, `{"model":"m",`+hi+`,"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, "response_format.json_schema.schema", "must be a JSON Schema object")
	refused(t, `{"model":"m",`+hi+`,"response_format":{"type":"json_schema","json_schema":{"name":"x","description":"A person.","schema":{}}}}`, "response_format.json_schema.description", "not supported")
	refused(t, `{"model":"m",`+hi+`,"user":"a","safety_identifier":"b"}`, "safety_identifier", "differs from user")
}

// TestRefuseDeprecated: the deprecated function calling.
func TestRefuseDeprecated(t *testing.T) {
	refused(t, `{"model":"m",`+hi+`,"functions":[{"name":"f"}]}`, "functions", "deprecated")
	refused(t, `{"model":"m",`+hi+`,"function_call":"auto"}`, "function_call", "deprecated")
	refused(t, `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].role", "deprecated")
	refused(t, `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, "messages[1].function_call", "deprecated")
}

// TestRefuseTools: tools and tool_choice Anthropic cannot express.
func TestRefuseTools(t *testing.T) {
	refused(t, `{"model":"m",`+hi+`,"tools":[{"type":"custom","custom":{"name":"g"}}]}`, "tools[0]", `"custom" is not supported`)
	refused(t, `{"model":"m",`+hi+`,"tools":[{"function":{"name":"f"}}]}`, "tools[0].type", `must be "function"`)
	refused(t, `{"model":"m",`+hi+`,"tools":[{"type":"function"}]}`, "tools[0].function", "is required")
	refused(t, `{"model":"m",`+hi+`,"tools":[{"type":"function","function":{"description":"x"}}]}`, "tools[0].function.name", "is required")
	refused(t, `{"model":"m",`+hi+`,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]}`, "tools[0].function.parameters", "JSON Schema object")
	refused(t, `{"model":"m",`+hi+`,"tool_choice":"required"}`, "tool_choice", "requires tools")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":"any"}`, "tool_choice", "must be")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice.function.name", "names no function")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":{"type":"function"}}`, "tool_choice.function.name", "is required")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}}}`, "tool_choice", "allowed_tools")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":{"type":"custom","custom":{"name":"g"}}}`, "tool_choice", "custom")
	refused(t, `{"model":"m",`+hi+`,`+oneTool+`,"tool_choice":{"type":"function","function":{"name":"f","x":1}}}`, "tool_choice.function.x", "is not a parameter")
}

// TestRefuseToolCalls: malformed tool calls and results.
func TestRefuseToolCalls(t *testing.T) {
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{bad"}}]}]}`, "messages[1].tool_calls[0].function.arguments", "must be a JSON object")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments", "must be a JSON object")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].id", "is required")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].function.name", "is required")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"g","input":"x"}}]}]}`, "messages[1].tool_calls[0]", "custom")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"tool","content":"x"}]}`, "messages[1].tool_call_id", "is required")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"tool","tool_call_id":"c","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}`, "messages[1].content[0].type", `must be "text"`)
}

// TestRefuseRoleFields: fields a role does not have.
func TestRefuseRoleFields(t *testing.T) {
	refused(t, `{"model":"m","messages":[{"role":"user","content":"a","tool_call_id":"c"}]}`, "messages[0].tool_call_id", "is not a parameter of user messages")
	refused(t, `{"model":"m","messages":[{"role":"user","content":"a","tool_calls":[]}]}`, "messages[0].tool_calls", "is not a parameter of user messages")
	refused(t, `{"model":"m","messages":[{"role":"system","content":"a","refusal":"x"},`+ask[:len(ask)-1]+`]}`, "messages[0].refusal", "is not a parameter of system messages")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"tool","tool_call_id":"c","name":"f","content":"x"}]}`, "messages[1].name", "is not a parameter of tool messages")
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","content":"x","audio":{"id":"a1"}}]}`, "messages[1].audio", "not supported")
}

// TestRefuseContentParts: content parts Anthropic cannot take, or a role may not send.
func TestRefuseContentParts(t *testing.T) {
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]}]}`, "messages[0].content[0]", "no audio input")
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0]", "file parts")
	refused(t, `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]},`+ask[:len(ask)-1]+`]}`, "messages[0].content[0].type", `must be "text"`)
	refused(t, `{"model":"m","messages":[`+ask+`{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}`, "messages[1].content[0].type", `must be "text" or "refusal"`)
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"x"}]}]}`, "messages[0].content[0].type", `must be "text", "image_url"`)
	refused(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","prompt_cache_breakpoint":{"mode":"explicit"}}]}]}`, "messages[0].content[0].prompt_cache_breakpoint", "not supported")
}

// TestRefuseImages: images Anthropic cannot take.
func TestRefuseImages(t *testing.T) {
	const img = `{"model":"m","messages":[{"role":"user","content":"Look:"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":`
	refused(t, img+`{"url":"data:image/tiff;base64,AAAA"}}]}]}`, "messages[1].content[1].image_url", `"image/tiff"`)
	refused(t, img+`{"url":"data:image/png,AAAA"}}]}]}`, "messages[1].content[1].image_url", "base64 data URL")
	refused(t, img+`{"url":"data:image/png;base64"}}]}]}`, "messages[1].content[1].image_url", "base64 data URL")
	refused(t, img+`{"url":"data:image/png;base64,"}}]}]}`, "messages[1].content[1].image_url", "no image data")
	refused(t, img+`{"url":"ftp://example.com/a.png"}}]}]}`, "messages[1].content[1].image_url", "data URL or an http(s) URL")
	refused(t, img+`{"url":"https://x/a.png","detail":"low"}}]}]}`, "messages[1].content[1].image_url.detail", `"low" is not supported`)
	refused(t, img+`{"url":"https://x/a.png","detail":"original"}}]}]}`, "messages[1].content[1].image_url.detail", `"original" is not supported`)
	refused(t, img+`{"url":"https://x/a.png","detail":"ultra"}}]}]}`, "messages[1].content[1].image_url.detail", "must be")
}

// TestRefuseNames: names that tell participants apart.
func TestRefuseNames(t *testing.T) {
	refused(t, `{"model":"m","messages":[{"role":"user","content":"a","name":"ann"},{"role":"user","content":"b","name":"bob"}]}`, "messages[1].name", "differs from an earlier user message's name")
}

func TestRequestErrorMessage(t *testing.T) {
	f := func(e *RequestError, param, message string) {
		t.Helper()
		if e.Param != param || e.Message != message || e.Error() != message {
			t.Fatalf("unexpected error; got %q: %q (%q); want %q: %q", e.Param, e.Message, e.Error(), param, message)
		}
	}
	f(badParam("n", "must be 1"), "n", "n must be 1")
	f(badParam("", "the request body must be a JSON object"), "", "the request body must be a JSON object")
	_, _, err := TranslateRequest(nil, []byte(`{"model":"m",`+hi+`,"n":3}`), 1)
	f(err.(*RequestError), "n", "n greater than 1 is not supported: each request returns one choice; send one request per choice")
}

// TestTranslateRequestPanicsOnBadDefault: a default below 1 is the
// caller's bug.
func TestTranslateRequestPanicsOnBadDefault(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "BUG: ") {
			t.Fatalf("unexpected recover value %v; want a BUG: panic", r)
		}
	}()
	_, _, _ = TranslateRequest(nil, []byte(`{"model":"m",`+hi+`}`), 0)
}
