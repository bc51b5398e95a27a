package meter

import (
	"errors"
	"testing"

	"github.com/tollgate/tollgate/internal/tokens"
)

// parseMessage observes a whole reply with a fresh Observer.
func parseMessage(body []byte) (Usage, string, error) {
	var o Observer
	o.Reset(0)
	if err := o.ObserveMessage(body); err != nil {
		return Usage{}, "", err
	}
	r := o.Result()
	return r.Usage, string(r.Model), nil
}

func TestObserveMessage(t *testing.T) {
	f := func(body string, want Usage, wantModel string) {
		t.Helper()
		u, model, err := parseMessage([]byte(body))
		if err != nil {
			t.Fatalf("unexpected error for %s: %s", body, err)
		}
		if u != want {
			t.Fatalf("unexpected usage for %s;\ngot  %+v\nwant %+v", body, u, want)
		}
		if model != wantModel {
			t.Fatalf("unexpected model; got %q; want %q", model, wantModel)
		}
	}
	// A non-streaming reply of Anthropic's API, verbatim.
	f(`{"id":"msg_014aLUQSouuj3wj2qP3ThkWw","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219","content":[{"type":"text","text":"Hello"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":22,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}`,
		Usage{Counts: tokens.Counts{InputTokens: 22, OutputTokens: 1}}, "claude-3-7-sonnet-20250219")
	f(`{"model":"claude-opus-4-5-20251101","usage":{"input_tokens":3,"cache_creation_input_tokens":22175,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":22175,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}`,
		Usage{Counts: tokens.Counts{InputTokens: 3, OutputTokens: 1, CacheCreationInputTokens: 22175, CacheCreation5mInputTokens: 22175}}, "claude-opus-4-5-20251101")
	f(`{"usage":{"input_tokens":100,"output_tokens":50,"server_tool_use":{"web_search_requests":1,"web_fetch_requests":1}}}`,
		Usage{Counts: tokens.Counts{InputTokens: 100, OutputTokens: 50, WebSearchRequests: 1}, WebFetchRequests: 1}, "")
	// A 1h split, usage before content, usage-shaped content, padding and an escaped model.
	f(` { "usage" : { "input_tokens" : 7 , "cache_creation_input_tokens" : 30 , "cache_creation" : { "ephemeral_1h_input_tokens" : 20 , "ephemeral_5m_input_tokens" : 10 } , "output_tokens" : 9 , "speed" : "fast" } , `+
		`"content" : [ { "type" : "text" , "text" : "\"usage\":{\"output_tokens\":999}" } ] , "model" : "claude\u002dopus-4-6" }   `,
		Usage{Counts: tokens.Counts{InputTokens: 7, OutputTokens: 9, CacheCreationInputTokens: 30, CacheCreation5mInputTokens: 10, CacheCreation1hInputTokens: 20}, Modifiers: Modifiers{Speed: SpeedFast}}, "claude-opus-4-6")

	// Duplicate keys: the last wins, as in JSON, whole objects included.
	f(`{"usage":{"input_tokens":5,"input_tokens":null,"speed":"fast","speed":null}}`, Usage{}, "")
	f(`{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":5},"cache_creation":{"ephemeral_5m_input_tokens":2}}}`,
		Usage{Counts: tokens.Counts{CacheCreationInputTokens: 2, CacheCreation5mInputTokens: 2}}, "")
	f(`{"usage":{"output_tokens":1},"model":"a","usage":{"input_tokens":2},"model":null}`, Usage{Counts: tokens.Counts{InputTokens: 2}}, "")

	bad := func(body string, wantErr error) {
		t.Helper()
		_, _, err := parseMessage([]byte(body))
		if !errors.Is(err, wantErr) {
			t.Fatalf("unexpected error for %s; got %v; want %v", body, err, wantErr)
		}
	}
	bad(``, ErrMalformedMessage)
	bad(`{"usage":{"input_tokens":1}`, ErrMalformedMessage)
	bad(`{"usage":{"input_tokens":-1}}`, ErrMalformedMessage)
	bad(`{"usage":{"input_tokens":"1"}}`, ErrMalformedMessage)
	bad(`{"usage":[]}`, ErrMalformedMessage)
	bad(`{"usage":{}} {}`, ErrMalformedMessage)
	bad(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, ErrNoUsage)
	bad(`{"content":[{"usage":{"input_tokens":1}}]}`, ErrNoUsage)
}
