package openai

import (
	"encoding/json"
	"testing"
)

const created = 1767225600 // 2026-01-01T00:00:00Z

// noUsageDetails is the usage details of a reply with no cache and no
// thinking.
const noUsageDetails = `"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}`

func TestAppendCompletion(t *testing.T) {
	f := func(message, want string) {
		t.Helper()
		got, err := AppendCompletion(nil, []byte(message), created)
		if err != nil {
			t.Fatalf("unexpected error for %s: %s", message, err)
		}
		if string(got) != want {
			t.Fatalf("unexpected completion of %s;\ngot  %s\nwant %s", message, got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("unexpected invalid JSON %s", got)
		}
	}
	// A real reply (WIRE §2), cut by max_tokens.
	f(`{"id":"msg_014aLUQSouuj3wj2qP3ThkWw","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219","content":[{"type":"text","text":"Hello"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":22,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}`,
		`{"id":"chatcmpl-msg_014aLUQSouuj3wj2qP3ThkWw","object":"chat.completion","created":1767225600,"model":"claude-3-7-sonnet-20250219","choices":[{"index":0,"message":{"role":"assistant","content":"Hello","refusal":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":22,"completion_tokens":1,"total_tokens":23,`+noUsageDetails+`}}`)
	// Thinking, redacted thinking, two text blocks joined, two tool calls
	// (input compacted, key order kept), cache reads and writes.
	f(`{"id":"msg_01Tools","type":"message","role":"assistant","model":"claude-opus-4-6","content":[{"type":"thinking","thinking":"The user wants two cities.","signature":"EqQB"},{"type":"redacted_thinking","data":"EmwK"},{"type":"text","text":"Checking "},{"type":"text","text":"both.\n"},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{ "city": "Paris", "unit": "c" }},{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{"unit":"c","city":"Rome"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":1200,"cache_read_input_tokens":22175,"output_tokens":310,"output_tokens_details":{"thinking_tokens":120},"service_tier":"standard","inference_geo":"global"}}`,
		`{"id":"chatcmpl-msg_01Tools","object":"chat.completion","created":1767225600,"model":"claude-opus-4-6","choices":[{"index":0,"message":{"role":"assistant","content":"Checking both.\n","refusal":null,"reasoning_content":"The user wants two cities.","tool_calls":[{"id":"toolu_01A","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"c\"}"}},{"id":"toolu_01B","type":"function","function":{"name":"get_weather","arguments":"{\"unit\":\"c\",\"city\":\"Rome\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":23378,"completion_tokens":310,"total_tokens":23688,"prompt_tokens_details":{"cached_tokens":22175,"cache_write_tokens":1200,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":120,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`)
	// A tool call alone: content null; an input with nothing in it is {}.
	f(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"tool_use","id":"toolu_1","name":"now","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":5}}`,
		`{"id":"chatcmpl-msg_1","object":"chat.completion","created":1767225600,"model":"claude-haiku-4-5","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"now","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,`+noUsageDetails+`}}`)
	// A refusal with no content.
	f(`{"id":"msg_ref","type":"message","role":"assistant","model":"claude-fable-5","content":[],"stop_reason":"refusal","stop_sequence":null,"stop_details":{"type":"refusal","category":null,"explanation":null},"usage":{"input_tokens":28,"output_tokens":106,"output_tokens_details":{"thinking_tokens":67}}}`,
		`{"id":"chatcmpl-msg_ref","object":"chat.completion","created":1767225600,"model":"claude-fable-5","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null},"logprobs":null,"finish_reason":"content_filter"}],"usage":{"prompt_tokens":28,"completion_tokens":106,"total_tokens":134,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":67,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`)
	// Server tools and their results have no OpenAI form; the text around
	// them is the content. Padded JSON, escapes and null counts.
	f(`{ "id" : "msg_01G", "type" : "message", "role":"assistant","model":"claude-opus-4-6","content":[{"type":"text","text":"I'll search. "},{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"weather NYC"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"https://x","title":"X","encrypted_content":"E"}]},{"type":"text","text":"It is \"sunny\" <b>& 21°C</b>.","citations":[{"type":"web_search_result_location","url":"https://x","title":"X","encrypted_index":"I","cited_text":"sunny"}]}],"stop_reason":"end_turn","usage":{"input_tokens":10682,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"output_tokens":510,"server_tool_use":{"web_search_requests":1}}    }`,
		`{"id":"chatcmpl-msg_01G","object":"chat.completion","created":1767225600,"model":"claude-opus-4-6","choices":[{"index":0,"message":{"role":"assistant","content":"I'll search. It is \"sunny\" <b>& 21°C</b>.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":10682,"completion_tokens":510,"total_tokens":11192,`+noUsageDetails+`}}`)
	// An ID that needs escaping stays valid JSON.
	f(`{"id":"msg_\"x\"","type":"message","model":"m","content":[{"type":"text","text":""}],"stop_reason":"stop_sequence","usage":{"input_tokens":1,"output_tokens":0}}`,
		`{"id":"chatcmpl-msg_\"x\"","object":"chat.completion","created":1767225600,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1,`+noUsageDetails+`}}`)
}

func TestAppendCompletionErrors(t *testing.T) {
	f := func(message string) {
		t.Helper()
		dst := []byte("prefix")
		got, err := AppendCompletion(dst, []byte(message), created)
		if err == nil || string(got) != "prefix" {
			t.Fatalf("unexpected result for %s; got %q, %v; want dst unchanged and an error", message, got, err)
		}
	}
	f(``)
	f(`{"id":"msg_1","type":"message"`)
	f(`{"type":"error","error":{"type":"api_error","message":"boom"}}`)
	f(`{"id":"msg_1","type":"message","content":"text"}`)
	f(`{"id":"msg_1","type":"message","usage":{"input_tokens":"many"}}`)
}

func TestFinishReason(t *testing.T) {
	f := func(stopReason, want string) {
		t.Helper()
		if got := finishReason(stopReason); got != want {
			t.Fatalf("unexpected finish reason for %q; got %q; want %q", stopReason, got, want)
		}
	}
	f("end_turn", "stop")
	f("stop_sequence", "stop")
	f("pause_turn", "stop")
	f("max_tokens", "length")
	f("model_context_window_exceeded", "length")
	f("tool_use", "tool_calls")
	f("refusal", "content_filter")
	f("a_reason_added_later", "stop")
}

// TestUsageSaturates: hostile counts neither overflow nor go negative.
func TestUsageSaturates(t *testing.T) {
	got, err := AppendCompletion(nil, []byte(`{"id":"m","type":"message","model":"m","content":[],"stop_reason":"end_turn","usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":5,"output_tokens":-3}}`), created)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
			Total      int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(got, &c); err != nil {
		t.Fatal(err)
	}
	const maxInt64 = 1<<63 - 1
	if c.Usage.Prompt != maxInt64 || c.Usage.Completion != 0 || c.Usage.Total != maxInt64 {
		t.Fatalf("unexpected usage %+v; want saturated prompt and total, completion 0", c.Usage)
	}
}

func TestAppendError(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Fatalf("unexpected error body;\ngot  %s\nwant %s", got, want)
		}
	}
	f(AppendError(nil, "invalid_request_error", "n must be 1", "n"),
		`{"error":{"message":"n must be 1","type":"invalid_request_error","param":"n","code":null}}`)
	f(AppendError([]byte("x"), "billing_error", `balance "low"`, ""),
		`x{"error":{"message":"balance \"low\"","type":"billing_error","param":null,"code":null}}`)
	f(AppendErrorCode(nil, "not_found_error", "no such model", "model", "model_not_found"),
		`{"error":{"message":"no such model","type":"not_found_error","param":"model","code":"model_not_found"}}`)
}
