package proxy_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/simulator"
)

// sdkClient is the official Go SDK pointed at the gateway with key.
func (h *harness) sdkClient(key string, opts ...option.RequestOption) anthropic.Client {
	h.t.Helper()
	// Keep the environment's Anthropic settings out of the SDK.
	for _, k := range []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_PROFILE"} {
		h.t.Setenv(k, "")
	}
	base := []option.RequestOption{
		option.WithBaseURL(h.clientURL),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(h.client),
	}
	return anthropic.NewClient(append(base, opts...)...)
}

// holdFor is the hold the catalogue's pricing gives body at multiplier 1,
// with the gateway's default web-search uses (10) and no output cap.
func holdFor(t *testing.T, body []byte) int64 {
	t.Helper()
	cat, err := meter.LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatalf("cannot load the catalogue: %s", err)
	}
	var r meter.Request
	if err := meter.InspectRequest(body, &r); err != nil {
		t.Fatalf("cannot inspect %s: %s", body, err)
	}
	m, ok := cat.Lookup(r.Model)
	if !ok {
		t.Fatalf("no model %q in the catalogue", r.Model)
	}
	hold, err := m.Hold(&r, time.Now(), meter.MultiplierOne, 0, 10)
	if err != nil {
		t.Fatalf("cannot compute the hold of %s: %s", body, err)
	}
	return hold
}

// loopbackDigest is the source IP digest of 127.0.0.1 under the harness's
// IP-digest key.
var loopbackDigest = func() string {
	m := hmac.New(sha256.New, testIPDigestKey)
	m.Write([]byte("127.0.0.1"))
	return hex.EncodeToString(m.Sum(nil))
}()

// rawWithoutID decodes a message's wire JSON and drops its id.
func rawWithoutID(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("cannot decode %s: %s", raw, err)
	}
	delete(m, "id")
	return m
}

func sdkUsage(u anthropic.Usage) simulator.Usage {
	return simulator.Usage{
		InputTokens:              u.InputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens,
		CacheReadInputTokens:     u.CacheReadInputTokens,
		CacheCreation: simulator.CacheCreation{
			Ephemeral5mInputTokens: u.CacheCreation.Ephemeral5mInputTokens,
			Ephemeral1hInputTokens: u.CacheCreation.Ephemeral1hInputTokens,
		},
		OutputTokens:  u.OutputTokens,
		ServerToolUse: simulator.ServerToolUse{WebSearchRequests: u.ServerToolUse.WebSearchRequests},
		ServiceTier:   string(u.ServiceTier),
		InferenceGeo:  u.InferenceGeo,
	}
}

// TestSDKEndToEnd drives every reply shape through the gateway with the
// official Go SDK, streaming and not: the accumulated stream equals the
// non-streamed message (but for its id), the usage is the simulator's rule,
// the balance moves by exactly the price computed here from the published
// rates, and the call record and ledger entries say the same.
func TestSDKEndToEnd(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	client := h.sdkClient(a.Key)

	weatherTool := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Weather for a city"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"query": map[string]any{"type": "string"}}},
	}}
	webSearch := anthropic.ToolUnionParam{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{MaxUses: anthropic.Int(3)}}
	user := func(text string) []anthropic.MessageParam {
		return []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}
	}
	cases := []struct {
		name   string
		params anthropic.MessageNewParams
		check  func(t *testing.T, m *anthropic.Message)
	}{
		{"text", anthropic.MessageNewParams{MaxTokens: 100, Messages: user("Say hello twice [[sim:words=20,chunk=3]]")},
			func(t *testing.T, m *anthropic.Message) {
				if len(m.Content) != 1 || m.Content[0].Type != "text" || m.StopReason != "end_turn" {
					t.Fatalf("unexpected text reply %+v", m.Content)
				}
			}},
		{"max_tokens", anthropic.MessageNewParams{MaxTokens: 5, Messages: user("one two three four five six seven eight nine ten")},
			func(t *testing.T, m *anthropic.Message) {
				if m.StopReason != "max_tokens" || m.Usage.OutputTokens != 5 {
					t.Fatalf("unexpected cut reply; got stop %q output %d; want max_tokens 5", m.StopReason, m.Usage.OutputTokens)
				}
			}},
		{"tool_use", anthropic.MessageNewParams{MaxTokens: 200, Tools: []anthropic.ToolUnionParam{weatherTool},
			Messages: user("What is the weather in Paris today [[sim:tool_use]]")},
			func(t *testing.T, m *anthropic.Message) {
				last := m.Content[len(m.Content)-1]
				if m.StopReason != "tool_use" || last.Type != "tool_use" || last.Name != "get_weather" || !strings.HasPrefix(last.ID, "toolu_sim_") {
					t.Fatalf("unexpected tool use reply %+v", m.Content)
				}
			}},
		{"thinking", anthropic.MessageNewParams{MaxTokens: 2048, Thinking: anthropic.ThinkingConfigParamOfEnabled(1024),
			Messages: user("Think first then answer [[sim:thinking=12,chunk=2]]")},
			func(t *testing.T, m *anthropic.Message) {
				if m.Content[0].Type != "thinking" || len(strings.Fields(m.Content[0].Thinking)) != 12 || m.Content[0].Signature == "" {
					t.Fatalf("unexpected thinking block %+v", m.Content[0])
				}
			}},
		{"cache_5m", anthropic.MessageNewParams{MaxTokens: 100,
			System:   []anthropic.TextBlockParam{{Text: "You are a terse assistant.", CacheControl: anthropic.CacheControlEphemeralParam{TTL: anthropic.CacheControlEphemeralTTLTTL5m}}},
			Messages: user("Cached prompt [[sim:cache=5m,cache_write=3000,cache_read=9000]]")},
			func(t *testing.T, m *anthropic.Message) {
				if m.Usage.CacheCreation.Ephemeral5mInputTokens != 3000 || m.Usage.CacheReadInputTokens != 9000 {
					t.Fatalf("unexpected cache usage %+v", m.Usage)
				}
			}},
		{"cache_1h", anthropic.MessageNewParams{MaxTokens: 100,
			System:   []anthropic.TextBlockParam{{Text: "You are a terse assistant.", CacheControl: anthropic.CacheControlEphemeralParam{TTL: anthropic.CacheControlEphemeralTTLTTL1h}}},
			Messages: user("Cached prompt [[sim:cache=1h,cache_write=2000,cache_read=7000]]")},
			func(t *testing.T, m *anthropic.Message) {
				if m.Usage.CacheCreation.Ephemeral1hInputTokens != 2000 || m.Usage.CacheReadInputTokens != 7000 {
					t.Fatalf("unexpected cache usage %+v", m.Usage)
				}
			}},
		{"web_search", anthropic.MessageNewParams{MaxTokens: 300, Tools: []anthropic.ToolUnionParam{webSearch},
			Messages: user("Search the web for cats please [[sim:web_search=2]]")},
			func(t *testing.T, m *anthropic.Message) {
				if m.Usage.ServerToolUse.WebSearchRequests != 2 || m.Content[0].Type != "server_tool_use" {
					t.Fatalf("unexpected web search reply %+v; usage %+v", m.Content, m.Usage)
				}
			}},
		{"everything", anthropic.MessageNewParams{MaxTokens: 4000, Thinking: anthropic.ThinkingConfigParamOfEnabled(1024),
			Tools:    []anthropic.ToolUnionParam{webSearch, weatherTool},
			Metadata: anthropic.MetadataParam{UserID: anthropic.String("user-42")},
			Messages: user("Search then call a tool [[sim:web_search=1,thinking=3,tool_use,cache=1h,cache_write=100,cache_read=200,padded]]")},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer h.use(t)()
			params := tc.params
			params.Model = testModel
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()

			// Streaming.
			before := h.balance(a)
			var streamResp *http.Response
			stream := client.Messages.NewStreaming(ctx, params, option.WithResponseInto(&streamResp))
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatalf("cannot accumulate: %s", err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("unexpected stream error: %s", err)
			}
			stream.Close()
			upBody := h.lastUpstreamBody()
			want := expectedUsage(t, upBody)
			if got := sdkUsage(acc.Usage); got != want {
				t.Fatalf("unexpected streamed usage; got %+v; want %+v", got, want)
			}
			price := haikuPrice(want)
			after := h.balance(a)
			if d := before.Available - after.Available; d != price || after.Held != 0 {
				t.Fatalf("unexpected balance change after the stream; got -%d (held %d); want -%d (held 0)", d, after.Held, price)
			}
			if streamResp == nil {
				t.Fatalf("no HTTP response captured")
			}
			if ct := streamResp.Header.Get("content-type"); ct != "text/event-stream; charset=utf-8" {
				t.Fatalf("unexpected content-type; got %q; want the upstream's", ct)
			}
			reqID := streamResp.Header.Get("request-id")
			if !requestIDPattern.MatchString(reqID) {
				t.Fatalf("unexpected request-id; got %q; want Tollgate's own", reqID)
			}
			c := h.adminCall(reqID)
			if c == nil {
				t.Fatalf("no call record for %s", reqID)
			}
			checkRecordUsage(t, c, want)
			h.checkSettled(a, c, "ok", price)
			if c.Status != 200 || c.UsageEstimated || !strings.HasPrefix(c.UpstreamRequestID, "req_sim_") || c.Upstream != "anthropic" {
				t.Fatalf("unexpected call record %+v", c)
			}
			if c.TTFBMs <= 0 {
				t.Fatalf("unexpected ttfb_ms %d; want > 0", c.TTFBMs)
			}
			if c.SourceIPDigest != loopbackDigest {
				t.Fatalf("unexpected source_ip_digest; got %q; want HMAC-SHA-256(key, 127.0.0.1) = %q", c.SourceIPDigest, loopbackDigest)
			}
			if got := mustAmount(t, c.UpstreamCost); got != price {
				t.Fatalf("unexpected upstream_cost; got %d; want the list price %d", got, price)
			}
			// The hold is the catalogue's upper bound for the request as the
			// client sent it (the simulator's cache directives report more
			// cache than the request's text, so those calls overrun it).
			clientBody := bytes.Replace(upBody, []byte(`"model":"`+testModelDated+`"`), []byte(`"model":"`+testModel+`"`), 1)
			if bytes.Equal(clientBody, upBody) {
				t.Fatalf("the upstream body does not name %s: %s", testModelDated, upBody)
			}
			if held, wantHeld := mustAmount(t, c.Held), holdFor(t, clientBody); held != wantHeld {
				t.Fatalf("unexpected held; got %d; want %d", held, wantHeld)
			}

			// Non-streaming, same request.
			before = after
			var plainResp *http.Response
			msg, err := client.Messages.New(ctx, params, option.WithResponseInto(&plainResp))
			if err != nil {
				t.Fatalf("unexpected error: %s", err)
			}
			if got := sdkUsage(msg.Usage); got != want {
				t.Fatalf("unexpected usage; got %+v; want %+v", got, want)
			}
			after = h.balance(a)
			if d := before.Available - after.Available; d != price {
				t.Fatalf("unexpected balance change after the message; got -%d; want -%d", d, price)
			}
			c2 := h.adminCall(plainResp.Header.Get("request-id"))
			if c2 == nil {
				t.Fatalf("no call record for %s", plainResp.Header.Get("request-id"))
			}
			checkRecordUsage(t, c2, want)
			h.checkSettled(a, c2, "ok", price)

			// The stream accumulates into the message.
			if acc.ID == msg.ID || !strings.HasPrefix(acc.ID, "msg_sim_") || acc.Model != testModelDated {
				t.Fatalf("unexpected ids or model; got %q, %q, %q", acc.ID, msg.ID, acc.Model)
			}
			if sa, sm := rawWithoutID(t, acc.RawJSON()), rawWithoutID(t, msg.RawJSON()); !reflect.DeepEqual(sa, sm) {
				ja, _ := json.Marshal(sa)
				jm, _ := json.Marshal(sm)
				t.Fatalf("unexpected accumulated message;\ngot  %s\nwant %s", ja, jm)
			}
			if tc.check != nil {
				tc.check(t, msg)
			}
		})
	}

	// GET /v1/calls shows the same records to the key, newest first,
	// without the admin-only fields.
	resp, body := h.get("/v1/calls?limit=2", a.Key)
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status of GET /v1/calls; got %d; want 200", resp.StatusCode)
	}
	var raw struct {
		Data       []map[string]any `json:"data"`
		HasMore    bool             `json:"has_more"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("cannot decode %s: %s", body, err)
	}
	if len(raw.Data) != 2 || !raw.HasMore || raw.NextCursor == nil {
		t.Fatalf("unexpected page of calls; got %d records, has_more %v; want 2 and more", len(raw.Data), raw.HasMore)
	}
	for _, f := range []string{"upstream", "upstream_request_id", "upstream_cost", "attempts"} {
		if _, ok := raw.Data[0][f]; ok {
			t.Fatalf("unexpected admin-only field %q in GET /v1/calls", f)
		}
	}
	for _, f := range []string{"request_id", "account_id", "key_id", "time", "model", "status", "outcome", "input_tokens", "output_tokens",
		"cache_creation_input_tokens", "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens", "cache_read_input_tokens",
		"web_search_requests", "held", "charged", "usage_estimated", "source_ip_digest", "duration_ms", "ttfb_ms"} {
		if _, ok := raw.Data[0][f]; !ok {
			t.Fatalf("missing field %q in GET /v1/calls: %v", f, raw.Data[0])
		}
	}
	// Following next_cursor pages through every record, newest first.
	var paged []string
	cursor := ""
	for range 20 {
		path := "/v1/calls?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp, body := h.get(path, a.Key)
		var l callList
		if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("unexpected GET %s; got %d %s", path, resp.StatusCode, body)
		}
		for _, c := range l.Data {
			paged = append(paged, c.RequestID)
		}
		if !l.HasMore {
			if l.NextCursor != nil {
				t.Fatalf("unexpected next_cursor %q without has_more", *l.NextCursor)
			}
			break
		}
		cursor = *l.NextCursor
	}
	all := h.accountCalls(a.ID)
	if len(paged) != len(all) {
		t.Fatalf("unexpected records paging GET /v1/calls; got %d; want %d", len(paged), len(all))
	}
	for i := range all {
		if paged[i] != all[i].RequestID {
			t.Fatalf("unexpected record %d paging GET /v1/calls; got %s; want %s", i, paged[i], all[i].RequestID)
		}
		if i > 0 && all[i].Time > all[i-1].Time {
			t.Fatalf("unexpected order: %s after %s; want newest first", all[i].Time, all[i-1].Time)
		}
	}
	if len(all) != 2*len(cases) {
		t.Fatalf("unexpected number of call records; got %d; want %d", len(all), 2*len(cases))
	}
	var charged int64
	for _, c := range all {
		charged += mustAmount(t, c.Charged)
	}
	if b := h.balance(a); b.Available != a.TopUps-charged {
		t.Fatalf("unexpected final balance; got %d; want %d - %d", b.Available, a.TopUps, charged)
	}
}

// TestSDKStreamErrors: the SDK raises the errors a stream ends with, with
// Tollgate's request ID.
func TestSDKStreamErrors(t *testing.T) {
	h := newHarness(t, withShortTimeouts())
	a := h.newAccount("10")
	client := h.sdkClient(a.Key)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	params := func(text string) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{Model: testModel, MaxTokens: 100,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}}
	}
	f := func(text, wantType string, wantStatus int) {
		t.Helper()
		var resp *http.Response
		stream := client.Messages.NewStreaming(ctx, params(text), option.WithResponseInto(&resp))
		for stream.Next() {
		}
		err := stream.Err()
		stream.Close()
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("unexpected error for %q; got %v (%T); want *anthropic.Error", text, err, err)
		}
		if string(apiErr.Type()) != wantType {
			t.Fatalf("unexpected error type for %q; got %q; want %q", text, apiErr.Type(), wantType)
		}
		if wantStatus != 0 && apiErr.StatusCode != wantStatus {
			t.Fatalf("unexpected status for %q; got %d; want %d", text, apiErr.StatusCode, wantStatus)
		}
		if !requestIDPattern.MatchString(apiErr.RequestID) {
			t.Fatalf("unexpected request ID in the SDK error for %q; got %q; want Tollgate's", text, apiErr.RequestID)
		}
	}
	f("one two three four [[sim:error_after=2]]", "overloaded_error", 0)
	f("one two three four [[sim:hang_after=2]]", "timeout_error", 0)
	f("one two three four [[sim:truncate_after=2]]", "api_error", 0)
	f("hi [[sim:status=529]]", "overloaded_error", 529)
	f("hi [[sim:hang=headers]]", "timeout_error", 504)
}
