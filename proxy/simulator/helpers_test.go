package simulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startSim serves a new Simulator on 127.0.0.1 and shuts it down at the end
// of the test, failing the test if Shutdown or Serve fail.
func startSim(t *testing.T, cfg Config) (*Simulator, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %s", err)
	}
	s := New(cfg)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("unexpected Shutdown error: %s", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("unexpected Serve error: %s", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

// newClient returns an HTTP client whose idle connections close at the end of the test.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// messagesBody returns a Messages request body with one user message.
func messagesBody(text string, maxTokens int, stream bool) []byte {
	b, err := json.Marshal(map[string]any{
		"model":      "claude-haiku-4-5",
		"max_tokens": maxTokens,
		"stream":     stream,
		"messages":   []any{map[string]any{"role": "user", "content": text}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// post sends body to url and returns the response with its whole body read.
func post(t *testing.T, c *http.Client, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, rest := postStart(t, c, url, body, header)
	defer rest.Close()
	b, err := io.ReadAll(rest)
	if err != nil {
		t.Fatalf("cannot read the response body of %s: %s", url, err)
	}
	return resp, b
}

// postStart sends body to url and returns the response with its body unread.
func postStart(t *testing.T, c *http.Client, url string, body []byte, header map[string]string) (*http.Response, io.ReadCloser) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("cannot build request: %s", err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("cannot POST %s: %s", url, err)
	}
	return resp, resp.Body
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data string
}

// parseSSE parses body strictly as Anthropic frames it: every event exactly
// "event: NAME\ndata: JSON\n\n", LF only, JSON valid, its "type" equal to NAME.
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	s := string(body)
	if !strings.HasSuffix(s, "\n\n") {
		t.Fatalf("stream does not end with a blank line: %q", tail(s))
	}
	var events []sseEvent
	for block := range strings.SplitSeq(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("malformed event %q", block)
		}
		ev := sseEvent{name: strings.TrimPrefix(lines[0], "event: "), data: strings.TrimPrefix(lines[1], "data: ")}
		if strings.Contains(ev.data, "\r") {
			t.Fatalf("CR in event %q", block)
		}
		var typed struct{ Type string }
		if err := json.Unmarshal([]byte(ev.data), &typed); err != nil {
			t.Fatalf("invalid JSON in event %q: %s", block, err)
		}
		if typed.Type != ev.name {
			t.Fatalf("event name %q differs from its JSON type %q", ev.name, typed.Type)
		}
		events = append(events, ev)
	}
	return events
}

func tail(s string) string {
	if len(s) > 200 {
		return "..." + s[len(s)-200:]
	}
	return s
}

func eventNames(events []sseEvent) string {
	names := make([]string, len(events))
	for i, ev := range events {
		names[i] = ev.name
	}
	return strings.Join(names, ",")
}

func countEvents(events []sseEvent, name string) int {
	n := 0
	for _, ev := range events {
		if ev.name == name {
			n++
		}
	}
	return n
}

// checkSequence checks the event order of a complete stream: message_start
// first; blocks started in index order, deltas and stops only for open
// blocks, every block stopped; exactly one ping, right after the first
// content_block_start (or after message_start with no blocks); then
// message_delta and message_stop.
func checkSequence(t *testing.T, events []sseEvent) {
	t.Helper()
	n := len(events)
	if n < 4 || events[0].name != evMessageStart || events[n-2].name != evMessageDelta || events[n-1].name != evMessageStop {
		t.Fatalf("unexpected stream frame: %s", eventNames(events))
	}
	if countEvents(events, evPing) != 1 {
		t.Fatalf("want exactly one ping: %s", eventNames(events))
	}
	if events[1].name == evContentBlockStart {
		if events[2].name != evPing {
			t.Fatalf("ping is not right after the first content_block_start: %s", eventNames(events))
		}
	} else if events[1].name != evPing {
		t.Fatalf("unexpected second event: %s", eventNames(events))
	}
	open := map[int]bool{}
	next := 0
	for _, ev := range events[1 : n-2] {
		var e struct{ Index int }
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatalf("cannot decode %s: %s", ev.data, err)
		}
		switch ev.name {
		case evContentBlockStart:
			if e.Index != next {
				t.Fatalf("block started at index %d; want %d", e.Index, next)
			}
			open[e.Index] = true
			next++
		case evContentBlockDelta:
			if !open[e.Index] {
				t.Fatalf("delta for block %d that is not open", e.Index)
			}
		case evContentBlockStop:
			if !open[e.Index] {
				t.Fatalf("stop for block %d that is not open", e.Index)
			}
			delete(open, e.Index)
		case evPing:
		default:
			t.Fatalf("unexpected event %q inside the stream", ev.name)
		}
	}
	if len(open) != 0 {
		t.Fatalf("blocks never stopped: %v", open)
	}
}

// foldUsage folds the usage of a stream the way the official SDKs do:
// message_start's full usage, then every field present in a message_delta
// overwrites.
func foldUsage(t *testing.T, events []sseEvent) Usage {
	t.Helper()
	var u Usage
	for _, ev := range events {
		switch ev.name {
		case evMessageStart:
			var e struct{ Message struct{ Usage Usage } }
			mustUnmarshal(t, ev.data, &e)
			u = e.Message.Usage
		case evMessageDelta:
			var e struct{ Usage map[string]json.RawMessage }
			mustUnmarshal(t, ev.data, &e)
			set := func(key string, dst any) {
				if raw, ok := e.Usage[key]; ok && string(raw) != "null" {
					mustUnmarshal(t, string(raw), dst)
				}
			}
			set("output_tokens", &u.OutputTokens)
			set("input_tokens", &u.InputTokens)
			set("cache_creation_input_tokens", &u.CacheCreationInputTokens)
			set("cache_read_input_tokens", &u.CacheReadInputTokens)
			set("server_tool_use", &u.ServerToolUse)
		}
	}
	return u
}

func mustUnmarshal(t *testing.T, data string, dst any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), dst); err != nil {
		t.Fatalf("cannot decode %s: %s", data, err)
	}
}

// streamText concatenates the text_delta pieces of a stream.
func streamText(t *testing.T, events []sseEvent) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range events {
		if ev.name != evContentBlockDelta {
			continue
		}
		var e struct {
			Delta struct{ Type, Text string }
		}
		mustUnmarshal(t, ev.data, &e)
		if e.Delta.Type == "text_delta" {
			b.WriteString(e.Delta.Text)
		}
	}
	return b.String()
}

// checkErrorBody checks an error response: Anthropic's shape with the
// given type, and request_id equal to the request-id header.
func checkErrorBody(t *testing.T, resp *http.Response, body []byte, status int, errType string) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("unexpected status; got %d; want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("content-type"); ct != "application/json" {
		t.Fatalf("unexpected content-type %q", ct)
	}
	var e struct {
		Type  string
		Error struct{ Type, Message string }
		// RequestID is request_id.
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("cannot decode error body %s: %s", body, err)
	}
	if e.Type != "error" || e.Error.Type != errType || e.Error.Message == "" {
		t.Fatalf("unexpected error body %s; want type %q", body, errType)
	}
	if id := resp.Header.Get("request-id"); !strings.HasPrefix(id, "req_sim_") || id != e.RequestID {
		t.Fatalf("request_id %q does not match the request-id header %q", e.RequestID, id)
	}
	return e.Error.Message
}

// waitFor polls cond every few milliseconds until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
