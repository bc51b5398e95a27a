package simulator

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestStream(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	body := messagesBody("Say hello twice", 100, true)
	resp, raw := post(t, c, url+"/v1/messages", body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d: %s", resp.StatusCode, raw)
	}
	for k, want := range map[string]string{
		"content-type":              "text/event-stream; charset=utf-8",
		"cache-control":             "no-cache",
		"anthropic-organization-id": simOrganizationID,
	} {
		if got := resp.Header.Get(k); got != want {
			t.Fatalf("unexpected %s; got %q; want %q", k, got, want)
		}
	}
	if id := resp.Header.Get("request-id"); !strings.HasPrefix(id, "req_sim_") || len(id) != len("req_sim_")+randomIDLen {
		t.Fatalf("unexpected request-id %q", id)
	}
	events := parseSSE(t, raw)
	checkSequence(t, events)
	if got, want := eventNames(events), "message_start,content_block_start,ping,content_block_delta,content_block_delta,content_block_delta,content_block_stop,message_delta,message_stop"; got != want {
		t.Fatalf("unexpected events;\ngot  %s\nwant %s", got, want)
	}
	if events[2].data != `{"type": "ping"}` {
		t.Fatalf("unexpected ping data %q", events[2].data)
	}
	if got, want := events[1].data, `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`; got != want {
		t.Fatalf("unexpected content_block_start;\ngot  %s\nwant %s", got, want)
	}
	if got, want := events[4].data, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" hello"}}`; got != want {
		t.Fatalf("unexpected delta;\ngot  %s\nwant %s", got, want)
	}
	if got, want := events[7].data, `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"stop_details":null},"usage":{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}`; got != want {
		t.Fatalf("unexpected message_delta;\ngot  %s\nwant %s", got, want)
	}
	if got, want := events[8].data, `{"type":"message_stop"}`; got != want {
		t.Fatalf("unexpected message_stop %s", got)
	}
	var start struct {
		Message struct {
			Model, ID, Type, Role string
			Content               []any
			StopReason            *string `json:"stop_reason"`
			Usage                 Usage
		}
	}
	mustUnmarshal(t, events[0].data, &start)
	m := start.Message
	if m.Model != "claude-haiku-4-5-20251001" || !strings.HasPrefix(m.ID, "msg_sim_") || m.Type != "message" ||
		m.Role != "assistant" || len(m.Content) != 0 || m.StopReason != nil {
		t.Fatalf("unexpected message_start %s", events[0].data)
	}
	if !strings.Contains(events[0].data, `"usage":{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}}`) {
		t.Fatalf("unexpected message_start usage %s", events[0].data)
	}
	wantStart, _ := ExpectedStartUsage(body)
	if m.Usage != wantStart {
		t.Fatalf("unexpected start usage; got %+v; want %+v", m.Usage, wantStart)
	}
	want, _ := ExpectedUsage(body)
	if got := foldUsage(t, events); got != want {
		t.Fatalf("unexpected folded usage; got %+v; want %+v", got, want)
	}
	if got := streamText(t, events); got != "Say hello twice" {
		t.Fatalf("unexpected text %q", got)
	}
	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
	st := s.Stats()
	if st.Requests != 1 || st.Messages != 1 || st.Streams != 1 || st.Completed != 1 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

// TestStreamUsage checks, for each reply shape, that the stream is
// well-formed, that its folded usage and the non-streaming usage both equal
// ExpectedUsage, and that message_start carries ExpectedStartUsage.
func TestStreamUsage(t *testing.T) {
	_, url := startSim(t, Config{})
	c := newClient(t)
	f := func(text string, maxTokens int, wantStop string) {
		t.Helper()
		body := messagesBody(text, maxTokens, true)
		resp, raw := post(t, c, url+"/v1/messages", body, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("unexpected status %d for %q: %s", resp.StatusCode, text, raw)
		}
		events := parseSSE(t, raw)
		checkSequence(t, events)
		want, err := ExpectedUsage(body)
		if err != nil {
			t.Fatalf("unexpected ExpectedUsage error: %s", err)
		}
		if got := foldUsage(t, events); got != want {
			t.Fatalf("unexpected folded usage for %q;\ngot  %+v\nwant %+v", text, got, want)
		}
		wantStart, _ := ExpectedStartUsage(body)
		if got := foldUsage(t, events[:1]); got != wantStart {
			t.Fatalf("unexpected start usage for %q;\ngot  %+v\nwant %+v", text, got, wantStart)
		}
		var delta struct{ Delta struct{ StopReason string } }
		mustUnmarshal(t, strings.ReplaceAll(events[len(events)-2].data, "stop_reason", "StopReason"), &delta)
		if delta.Delta.StopReason != wantStop {
			t.Fatalf("unexpected stop_reason for %q; got %q; want %q", text, delta.Delta.StopReason, wantStop)
		}

		resp, raw = post(t, c, url+"/v1/messages", messagesBody(text, maxTokens, false), nil)
		if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/json" {
			t.Fatalf("unexpected non-streaming response %d %q: %s", resp.StatusCode, resp.Header.Get("content-type"), raw)
		}
		var msg struct {
			Usage      Usage
			StopReason string `json:"stop_reason"`
		}
		mustUnmarshal(t, string(raw), &msg)
		if msg.Usage != want || msg.StopReason != wantStop {
			t.Fatalf("unexpected non-streaming usage for %q;\ngot  %+v %s\nwant %+v %s", text, msg.Usage, msg.StopReason, want, wantStop)
		}
	}
	f("Say hello twice", 100, "end_turn")
	f("Say hello twice [[sim:words=20,chunk=3]]", 100, "end_turn")
	f("Say hello twice [[sim:words=20]]", 7, "max_tokens")
	f("[[sim:words=0]]", 10, "end_turn")
	f("one two three [[sim:thinking]]", 100, "end_turn")
	f("one two three [[sim:thinking=20]]", 5, "max_tokens")
	f("one two three [[sim:redacted_thinking]]", 100, "end_turn")
	f("one two three [[sim:tool_use]]", 100, "tool_use")
	f("one two three [[sim:tool_use]]", 4, "max_tokens")
	f("one two three four [[sim:web_search=3]]", 100, "end_turn")
	f("one two three four [[sim:web_search=3]]", 4, "max_tokens")
	f("a [[sim:cache=1h,cache_write=2048,cache_read=4096]]", 100, "end_turn")
	f("a [[sim:input=250000]]", 100, "end_turn")
	f("a b c [[sim:old_usage,web_search=1,thinking=2,tool_use]]", 100, "tool_use")
	f("a b c [[sim:padded,thinking=2,tool_use,web_search=1]]", 100, "tool_use")
	f("a b c [[sim:split=odd,words=30]]", 100, "end_turn")
	f("a b c [[sim:split=5,words=30]]", 100, "end_turn")
}

func TestNonStreamingBody(t *testing.T) {
	_, url := startSim(t, Config{})
	c := newClient(t)
	resp, raw := post(t, c, url+"/v1/messages", messagesBody("one two [[sim:tool_use=lookup,thinking=2]]", 100, false), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d: %s", resp.StatusCode, raw)
	}
	re := regexp.MustCompile(`^\{"model":"claude-haiku-4-5-20251001","id":"msg_sim_[0-9A-Za-z]{20}","type":"message","role":"assistant","content":\[` +
		`\{"type":"thinking","thinking":"one two","signature":"[A-Za-z0-9+/=]+"\},` +
		`\{"type":"text","text":"one two"\},` +
		`\{"type":"tool_use","id":"toolu_sim_[0-9A-Za-z]{11}","name":"lookup","input":\{"query":"one two"\}\}\],` +
		`"stop_reason":"tool_use","stop_sequence":null,"stop_details":null,` +
		`"usage":\{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":\{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0\},"output_tokens":6,"service_tier":"standard","inference_geo":"not_available"\}\}$`)
	if !re.Match(raw) {
		t.Fatalf("unexpected body %s", raw)
	}
}

func TestModelEcho(t *testing.T) {
	f := func(cfg Config, model, want string) {
		t.Helper()
		_, url := startSim(t, cfg)
		body := []byte(`{"model":"` + model + `","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
		resp, raw := post(t, newClient(t), url+"/v1/messages", body, nil)
		var m struct{ Model string }
		mustUnmarshal(t, string(raw), &m)
		if resp.StatusCode != 200 || m.Model != want {
			t.Fatalf("unexpected model for %q; got %q (status %d); want %q", model, m.Model, resp.StatusCode, want)
		}
	}
	f(Config{}, "claude-haiku-4-5", "claude-haiku-4-5-20251001")
	f(Config{}, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
	f(Config{}, "claude-opus-4-6", "claude-opus-4-6")
	f(Config{}, "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001")
	f(Config{}, "anything", "anything")
	f(Config{ModelAliases: map[string]string{}}, "claude-haiku-4-5", "claude-haiku-4-5")
	f(Config{ModelAliases: map[string]string{"x": "y"}}, "x", "y")
}

func TestCountTokens(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	f := func(body string, want int64) {
		t.Helper()
		resp, raw := post(t, c, url+"/v1/messages/count_tokens", []byte(body), nil)
		if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/json" {
			t.Fatalf("unexpected response %d: %s", resp.StatusCode, raw)
		}
		if got, wantBody := string(raw), fmt.Sprintf(`{"input_tokens":%d}`, want); got != wantBody {
			t.Fatalf("unexpected body; got %s; want %s", got, wantBody)
		}
	}
	f(`{"model":"m","messages":[{"role":"user","content":"Say hello twice"}]}`, 4)
	f(`{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"Say hello twice"}]}`, 6)
	f(`{"model":"m","messages":[{"role":"user","content":"x [[sim:input=12345]]"}]}`, 12345)
	// The same rule as message_start's input_tokens, stream-only keys ignored.
	body := messagesBody("alpha beta [[sim:web_search=2,error_after=1]]", 10, false)
	u, _ := ExpectedStartUsage(body)
	f(string(body), u.InputTokens)
	resp, raw := post(t, c, url+"/v1/messages/count_tokens", []byte(`{"model":"m"}`), nil)
	checkErrorBody(t, resp, raw, 400, "invalid_request_error")
	resp, raw = post(t, c, url+"/v1/messages/count_tokens", []byte(`{"model":"m","messages":[{"role":"user","content":"[[sim:status=429]]"}]}`), nil)
	checkErrorBody(t, resp, raw, 429, "rate_limit_error")
	if st := s.Stats(); st.CountTokens != 6 || st.Messages != 0 || st.Completed != 4 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestNotFound(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	f := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(`{}`))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("cannot %s %s: %s", method, path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkErrorBody(t, resp, raw, 404, "not_found_error")
	}
	f("GET", "/v1/messages")
	f("POST", "/v1/message")
	f("POST", "/v1/messages/batches")
	f("GET", "/v1/models")
	f("DELETE", "/")
	if st := s.Stats(); st.NotFound != 5 || st.Requests != 5 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestAuth(t *testing.T) {
	s, url := startSim(t, Config{APIKey: "sk-sim-upstream"})
	c := newClient(t)
	f := func(header map[string]string, wantStatus int) {
		t.Helper()
		resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi", 5, false), header)
		if wantStatus == 401 {
			if msg := checkErrorBody(t, resp, raw, 401, "authentication_error"); msg != "invalid x-api-key" {
				t.Fatalf("unexpected message %q", msg)
			}
			return
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("unexpected status for %v; got %d; want %d", header, resp.StatusCode, wantStatus)
		}
	}
	f(nil, 401)
	f(map[string]string{"x-api-key": "sk-other"}, 401)
	f(map[string]string{"authorization": "Bearer sk-other"}, 401)
	f(map[string]string{"authorization": "sk-sim-upstream"}, 401)
	f(map[string]string{"x-api-key": "sk-sim-upstream", "authorization": "Bearer sk-other"}, 401)
	f(map[string]string{"x-api-key": "sk-other", "authorization": "Bearer sk-sim-upstream"}, 401)
	f(map[string]string{"x-api-key": "sk-sim-upstream"}, 200)
	f(map[string]string{"authorization": "Bearer sk-sim-upstream"}, 200)
	f(map[string]string{"x-api-key": "sk-sim-upstream", "authorization": "Bearer sk-sim-upstream"}, 200)
	if st := s.Stats(); st.Rejected != 6 || st.Completed != 3 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestBadRequest(t *testing.T) {
	s, url := startSim(t, Config{MaxHang: time.Second})
	c := newClient(t)
	f := func(body, wantSubstr string) {
		t.Helper()
		resp, raw := post(t, c, url+"/v1/messages", []byte(body), nil)
		if msg := checkErrorBody(t, resp, raw, 400, "invalid_request_error"); !strings.Contains(msg, wantSubstr) {
			t.Fatalf("unexpected message %q; want it to contain %q", msg, wantSubstr)
		}
	}
	f(`{"model":`, "not valid JSON")
	f(`{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "model: Field required")
	f(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens: Field required")
	f(`{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "greater than or equal to 1")
	f(string(messagesBody("hi [[sim:wrods=3]]", 5, true)), `unknown key "wrods"`)
	f(string(messagesBody("hi [[sim:delay=2s]]", 5, true)), "max hang")
	if st := s.Stats(); st.Rejected != 6 || st.Streams != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestRequireVersion(t *testing.T) {
	_, url := startSim(t, Config{RequireVersion: true})
	c := newClient(t)
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(string(messagesBody("hi", 5, false))))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if msg := checkErrorBody(t, resp, raw, 400, "invalid_request_error"); !strings.Contains(msg, "anthropic-version") {
		t.Fatalf("unexpected message %q", msg)
	}
	if resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi", 5, false), nil); resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d: %s", resp.StatusCode, raw)
	}
}

func TestBodyTooLarge(t *testing.T) {
	// Serve's server refuses the body from its content-length.
	_, url := startSim(t, Config{MaxBodySize: 1000})
	c := newClient(t)
	big := messagesBody(strings.Repeat("word ", 400), 5, false)
	resp, raw := post(t, c, url+"/v1/messages", big, nil)
	checkErrorBody(t, resp, raw, 413, "request_too_large")

	// Handler checks too, for servers with a larger limit.
	s := New(Config{MaxBodySize: 1000})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: s.Handler}
	go srv.Serve(ln) //nolint:errcheck
	defer func() {
		srv.Shutdown() //nolint:errcheck
		s.Shutdown()   //nolint:errcheck
	}()
	resp, raw = post(t, c, "http://"+ln.Addr().String()+"/v1/messages", big, nil)
	checkErrorBody(t, resp, raw, 413, "request_too_large")
	if st := s.Stats(); st.Rejected != 1 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestOnRequest(t *testing.T) {
	var mu sync.Mutex
	var got []RequestInfo
	_, url := startSim(t, Config{OnRequest: func(ri RequestInfo) {
		mu.Lock()
		got = append(got, ri)
		mu.Unlock()
	}})
	body := messagesBody("hi", 5, false)
	resp, _ := post(t, newClient(t), url+"/v1/messages?beta=true", body, map[string]string{"anthropic-beta": "a-1, b-2", "x-api-key": "k"})
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("unexpected number of requests %d", len(got))
	}
	ri := got[0]
	if ri.Method != "POST" || ri.Path != "/v1/messages" || ri.Query != "beta=true" || string(ri.Body) != string(body) ||
		ri.Header.Get("Anthropic-Beta") != "a-1, b-2" || ri.Header.Get("x-api-key") != "k" || ri.Header.Get("anthropic-version") != "2023-06-01" {
		t.Fatalf("unexpected request info %+v", ri)
	}
}

func TestStatusDirective(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	f := func(directive string, stream bool, status int, errType, retryAfter, msg string) {
		t.Helper()
		resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi "+directive, 5, stream), nil)
		got := checkErrorBody(t, resp, raw, status, errType)
		if ra := resp.Header.Get("retry-after"); ra != retryAfter {
			t.Fatalf("unexpected retry-after; got %q; want %q", ra, retryAfter)
		}
		if msg != "" && got != msg {
			t.Fatalf("unexpected message; got %q; want %q", got, msg)
		}
	}
	f("[[sim:status=529,retry_after=2]]", true, 529, "overloaded_error", "2", "Overloaded")
	f("[[sim:status=529]]", false, 529, "overloaded_error", "", "")
	f("[[sim:status=429,retry_after=30]]", true, 429, "rate_limit_error", "30", "")
	f("[[sim:status=400,message=Your credit balance is too low]]", true, 400, "invalid_request_error", "", "Your credit balance is too low")
	f("[[sim:status=401]]", true, 401, "authentication_error", "", "")
	f("[[sim:status=402]]", true, 402, "billing_error", "", "")
	f("[[sim:status=403]]", false, 403, "permission_error", "", "")
	f("[[sim:status=404]]", false, 404, "not_found_error", "", "")
	f("[[sim:status=413]]", false, 413, "request_too_large", "", "")
	f("[[sim:status=500]]", true, 500, "api_error", "", "")
	f("[[sim:status=503]]", true, 503, "api_error", "", "")
	f("[[sim:status=504]]", true, 504, "timeout_error", "", "")
	f("[[sim:status=418]]", true, 418, "invalid_request_error", "", "")
	f("[[sim:status=500,error_type=overloaded_error]]", true, 500, "overloaded_error", "", "")
	// status wins over the other failures.
	f("[[sim:status=529,hang=headers,garbage,error_after=0]]", true, 529, "overloaded_error", "", "")
	if st := s.Stats(); st.Injected != 15 || st.Completed != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestJSONError200(t *testing.T) {
	_, url := startSim(t, Config{})
	c := newClient(t)
	for _, stream := range []bool{true, false} {
		resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi [[sim:json_error_200]]", 5, stream), nil)
		checkErrorBody(t, resp, raw, 200, "overloaded_error")
	}
	resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi [[sim:json_error_200,error_type=api_error]]", 5, true), nil)
	checkErrorBody(t, resp, raw, 200, "api_error")
}

func TestGarbage(t *testing.T) {
	_, url := startSim(t, Config{})
	c := newClient(t)
	resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi [[sim:garbage]]", 5, true), nil)
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "text/event-stream; charset=utf-8" || string(raw) != string(garbageBytes) {
		t.Fatalf("unexpected garbage response %d %q: %q", resp.StatusCode, resp.Header.Get("content-type"), raw)
	}
	resp, raw = post(t, c, url+"/v1/messages", messagesBody("hi [[sim:garbage]]", 5, false), nil)
	if resp.StatusCode != 200 || json.Valid(raw) {
		t.Fatalf("unexpected non-streaming garbage response %d: %q", resp.StatusCode, raw)
	}
	// garbage_after: two deltas of SSE, then the garbage.
	resp, raw = post(t, c, url+"/v1/messages", messagesBody("a b c d [[sim:garbage_after=2]]", 50, true), nil)
	sse, ok := strings.CutSuffix(string(raw), string(garbageBytes))
	if resp.StatusCode != 200 || !ok {
		t.Fatalf("unexpected garbage_after body %q", raw)
	}
	events := parseSSE(t, []byte(sse))
	if got, want := eventNames(events), "message_start,content_block_start,ping,content_block_delta,content_block_delta"; got != want {
		t.Fatalf("unexpected events before the garbage;\ngot  %s\nwant %s", got, want)
	}
}

func TestErrorAfter(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	f := func(directive, wantNames, wantError string) {
		t.Helper()
		resp, raw := post(t, c, url+"/v1/messages", messagesBody("one two three four five "+directive, 50, true), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
		events := parseSSE(t, raw)
		if got := eventNames(events); got != wantNames {
			t.Fatalf("unexpected events for %s;\ngot  %s\nwant %s", directive, got, wantNames)
		}
		if got := events[len(events)-1].data; got != wantError {
			t.Fatalf("unexpected error event;\ngot  %s\nwant %s", got, wantError)
		}
	}
	overloaded := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	f("[[sim:error_after=2]]", "message_start,content_block_start,ping,content_block_delta,content_block_delta,error", overloaded)
	f("[[sim:error_after=0]]", "message_start,error", overloaded)
	f("[[sim:error_after=1000]]", "message_start,content_block_start,ping,content_block_delta,content_block_delta,content_block_delta,content_block_delta,content_block_delta,content_block_stop,error", overloaded)
	f("[[sim:error_after=1,error_type=api_error,message=Internal server error]]", "message_start,content_block_start,ping,content_block_delta,error",
		`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`)
	// Deltas of every kind count: thinking's two words and its signature.
	f("[[sim:thinking=2,error_after=3]]", "message_start,content_block_start,ping,content_block_delta,content_block_delta,content_block_delta,error", overloaded)
	// With split the same bytes arrive in pieces.
	f("[[sim:split=odd,error_after=2]]", "message_start,content_block_start,ping,content_block_delta,content_block_delta,error", overloaded)
	// The client has read the whole reply before the handler's last
	// bookkeeping runs: wait for it.
	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
	if st := s.Stats(); st.Injected != 6 || st.Completed != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestTruncateAfter(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	f := func(n int, wantDeltas int) {
		t.Helper()
		resp, rest := postStart(t, c, url+"/v1/messages", messagesBody(fmt.Sprintf("one two three four five [[sim:truncate_after=%d]]", n), 50, true), nil)
		defer rest.Close()
		if resp.StatusCode != 200 || resp.Header.Get("content-type") != "text/event-stream; charset=utf-8" || !strings.HasPrefix(resp.Header.Get("request-id"), "req_sim_") {
			t.Fatalf("unexpected response %d %v", resp.StatusCode, resp.Header)
		}
		raw, err := io.ReadAll(rest)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected read error; got %v; want %v", err, io.ErrUnexpectedEOF)
		}
		events := parseSSE(t, raw)
		if got := countEvents(events, evContentBlockDelta); got != wantDeltas {
			t.Fatalf("unexpected deltas before the cut; got %d; want %d", got, wantDeltas)
		}
		if countEvents(events, evMessageStop) != 0 || countEvents(events, evMessageDelta) != 0 {
			t.Fatalf("unexpected end events: %s", eventNames(events))
		}
	}
	f(3, 3)
	f(0, 0)
	f(100, 5)
	if st := s.Stats(); st.Injected != 3 || st.Completed != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
}

func TestHangAfter(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	resp, rest := postStart(t, c, url+"/v1/messages", messagesBody("one two three four five [[sim:hang_after=2]]", 50, true), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	// Read the events up to the second delta, then expect silence.
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(rest)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deltas := 0
	for deltas < 2 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended after %d deltas", deltas)
			}
			if line == "event: content_block_delta" {
				deltas++
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out after %d deltas", deltas)
		}
	}
	// The second delta's data line and blank line, then nothing.
	for range 2 {
		<-lines
	}
	select {
	case line := <-lines:
		t.Fatalf("unexpected line after the hang point: %q", line)
	case <-time.After(100 * time.Millisecond):
	}
	if st := s.Stats(); st.InFlight != 1 {
		t.Fatalf("unexpected stats while hanging %+v", st)
	}
	// The client leaves: the hang ends.
	rest.Close()
	waitFor(t, "the hang to notice the client leaving", func() bool {
		st := s.Stats()
		return st.InFlight == 0 && st.ClientGone == 1
	})
}

func TestHangBounded(t *testing.T) {
	s, url := startSim(t, Config{MaxHang: 150 * time.Millisecond})
	c := newClient(t)
	// hang_after: after MaxHang the connection closes, the body unterminated.
	start := time.Now()
	resp, rest := postStart(t, c, url+"/v1/messages", messagesBody("one two [[sim:hang_after=1]]", 50, true), nil)
	raw, err := io.ReadAll(rest)
	rest.Close()
	if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected end of a bounded hang: status %d, error %v", resp.StatusCode, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("hang ended too early, after %s", d)
	}
	if got := countEvents(parseSSE(t, raw), evContentBlockDelta); got != 1 {
		t.Fatalf("unexpected deltas %d", got)
	}
	// hang=headers: after MaxHang the connection closes without a response.
	start = time.Now()
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(string(messagesBody("hi [[sim:hang=headers]]", 5, false))))
	if _, err := c.Do(req); err == nil {
		t.Fatalf("expecting an error from a request that never got headers")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("hang=headers ended too early, after %s", d)
	}
	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
	if st := s.Stats(); st.ClientGone != 0 || st.Injected != 2 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestHangHeaders(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	c.Timeout = 100 * time.Millisecond
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(string(messagesBody("hi [[sim:hang=headers]]", 5, true))))
	if _, err := c.Do(req); err == nil {
		t.Fatalf("expecting a timeout")
	}
	waitFor(t, "the hang to notice the client leaving", func() bool {
		st := s.Stats()
		return st.InFlight == 0 && st.ClientGone == 1
	})
	// count_tokens hangs too.
	req, _ = http.NewRequest("POST", url+"/v1/messages/count_tokens", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"[[sim:hang=headers]]"}]}`))
	if _, err := c.Do(req); err == nil {
		t.Fatalf("expecting a timeout")
	}
	waitFor(t, "the hang to notice the client leaving", func() bool { return s.Stats().ClientGone == 2 })
}

func TestDelay(t *testing.T) {
	_, url := startSim(t, Config{EventDelay: 5 * time.Millisecond})
	c := newClient(t)
	f := func(text string, stream bool, atLeast time.Duration) {
		t.Helper()
		start := time.Now()
		resp, _ := post(t, c, url+"/v1/messages", messagesBody(text, 50, stream), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
		if d := time.Since(start); d < atLeast {
			t.Fatalf("reply to %q came after %s; want at least %s", text, d, atLeast)
		}
	}
	// 3 words: 9 events, 8 pauses.
	f("a b c [[sim:delay=25ms]]", true, 8*25*time.Millisecond)
	f("a b c [[sim:delay=25ms]]", false, 8*25*time.Millisecond)
	f("a b c", true, 8*5*time.Millisecond)
	f("a b c [[sim:delay=0s,ttfb=150ms]]", true, 150*time.Millisecond)
	f("a b c [[sim:delay=10ms,split=odd]]", true, 8*10*time.Millisecond)

	// The pauses are between events: the first event is not delayed.
	resp, rest := postStart(t, c, url+"/v1/messages", messagesBody("a b c [[sim:delay=300ms]]", 50, true), nil)
	defer rest.Close()
	start := time.Now()
	line, err := bufio.NewReader(rest).ReadString('\n')
	if err != nil || line != "event: message_start\n" || resp.StatusCode != 200 {
		t.Fatalf("unexpected first line %q: %v", line, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("first event delayed by %s", d)
	}
}

func TestOldUsage(t *testing.T) {
	_, url := startSim(t, Config{})
	_, raw := post(t, newClient(t), url+"/v1/messages", messagesBody("a b c [[sim:old_usage]]", 50, true), nil)
	events := parseSSE(t, raw)
	checkSequence(t, events)
	if got, want := events[len(events)-2].data, `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"stop_details":null},"usage":{"output_tokens":3}}`; got != want {
		t.Fatalf("unexpected message_delta;\ngot  %s\nwant %s", got, want)
	}
}

func TestPadded(t *testing.T) {
	_, url := startSim(t, Config{})
	c := newClient(t)
	_, raw := post(t, c, url+"/v1/messages", messagesBody("a b c [[sim:padded]]", 50, true), nil)
	events := parseSSE(t, raw)
	checkSequence(t, events)
	padded := regexp.MustCompile(`[^ ] +}$`)
	for _, ev := range events {
		if ev.name == evPing {
			if ev.data != `{"type": "ping"}` {
				t.Fatalf("ping padded: %q", ev.data)
			}
			continue
		}
		if !padded.MatchString(ev.data) {
			t.Fatalf("event not padded: %q", ev.data)
		}
	}
	if !strings.Contains(string(raw), `"inference_geo":"not_available"}}`) {
		t.Fatalf("message_start padding is not before the outer brace: %s", events[0].data)
	}
	body := messagesBody("a b c [[sim:padded]]", 50, false)
	want, _ := ExpectedUsage(body)
	if got := foldUsage(t, events); got != want {
		t.Fatalf("unexpected folded usage %+v; want %+v", got, want)
	}
	_, raw = post(t, c, url+"/v1/messages", body, nil)
	if !padded.Match(raw) || !json.Valid(raw) {
		t.Fatalf("non-streaming body not padded: %s", raw)
	}
}

// TestSplit reads the chunked response of a split stream by hand: each
// piece is one HTTP chunk, of odd size (or of N bytes) except possibly the
// last, and the bytes are those of the same stream unsplit.
func TestSplit(t *testing.T) {
	_, url := startSim(t, Config{})
	addr := strings.TrimPrefix(url, "http://")
	f := func(split string, check func(size int) bool) {
		t.Helper()
		text := "one two three four five six [[sim:thinking=3,tool_use," + split + "]]"
		chunks := rawChunks(t, addr, messagesBody(text, 50, true))
		if len(chunks) < 20 {
			t.Fatalf("too few chunks: %d", len(chunks))
		}
		var all []byte
		midEvent := 0
		for i, ch := range chunks {
			if i < len(chunks)-1 && !check(len(ch)) {
				t.Fatalf("chunk %d has %d bytes", i, len(ch))
			}
			all = append(all, ch...)
			if !strings.HasSuffix(string(all), "\n\n") {
				midEvent++
			}
		}
		if midEvent == 0 {
			t.Fatalf("no chunk ended inside an event")
		}
		events := parseSSE(t, all)
		checkSequence(t, events)
		// The same bytes as the unsplit stream, but for the message ID.
		_, plain := post(t, newClient(t), url+"/v1/messages", messagesBody(text, 50, true), nil)
		id := regexp.MustCompile(`msg_sim_[0-9A-Za-z]+`)
		if a, b := id.ReplaceAllString(string(all), "ID"), id.ReplaceAllString(string(plain), "ID"); a != b {
			t.Fatalf("split stream differs from the plain one;\n%s\n%s", a, b)
		}
	}
	f("split=odd", func(n int) bool { return n%2 == 1 })
	f("split=8", func(n int) bool { return n == 8 })
}

// rawChunks POSTs body over a raw connection and returns the chunks of the
// chunked response body.
func rawChunks(t *testing.T, addr string, body []byte) [][]byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	br := bufio.NewReader(conn)
	chunked := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("cannot read headers: %s", err)
		}
		if strings.EqualFold(strings.TrimSpace(line), "Transfer-Encoding: chunked") {
			chunked = true
		}
		if line == "\r\n" {
			break
		}
	}
	if !chunked {
		t.Fatalf("response is not chunked")
	}
	var chunks [][]byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("cannot read chunk size: %s", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("bad chunk size %q", line)
		}
		if n == 0 {
			return chunks
		}
		ch := make([]byte, n+2)
		if _, err := io.ReadFull(br, ch); err != nil {
			t.Fatalf("cannot read chunk: %s", err)
		}
		chunks = append(chunks, ch[:n])
	}
}

func TestConcurrentStreams(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := messagesBody(fmt.Sprintf("request %d says hello [[sim:words=%d,delay=1ms]]", i, i+1), 100, true)
			req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(string(body)))
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				errs <- err
				return
			}
			if got := strings.Count(string(raw), "event: content_block_delta\n"); got != i+1 {
				errs <- fmt.Errorf("request %d: %d deltas", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
	if st := s.Stats(); st.Streams != n || st.Completed != n {
		t.Fatalf("unexpected stats %+v", st)
	}
}

func TestFasthttpClient(t *testing.T) {
	_, url := startSim(t, Config{})
	var c fasthttp.Client
	defer c.CloseIdleConnections()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url + "/v1/messages/count_tokens")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"model":"m","messages":[{"role":"user","content":"one two three"}]}`)
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || string(resp.Body()) != `{"input_tokens":4}` {
		t.Fatalf("unexpected response %d %s", resp.StatusCode(), resp.Body())
	}
	req.SetRequestURI(url + "/v1/messages")
	req.SetBody(messagesBody("one two three", 10, true))
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	events := parseSSE(t, resp.Body())
	checkSequence(t, events)
	if got := streamText(t, events); got != "one two three" {
		t.Fatalf("unexpected text %q", got)
	}
}

func TestStreamClientGone(t *testing.T) {
	s, url := startSim(t, Config{})
	resp, rest := postStart(t, newClient(t), url+"/v1/messages", messagesBody("a b c [[sim:words=500,delay=5ms]]", 1000, true), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(rest).ReadString('\n')
	if err != nil || line != "event: message_start\n" {
		t.Fatalf("unexpected first line %q: %v", line, err)
	}
	rest.Close()
	waitFor(t, "the stream to notice the client leaving", func() bool {
		st := s.Stats()
		return st.InFlight == 0 && st.ClientGone == 1 && st.Completed == 0
	})
}
