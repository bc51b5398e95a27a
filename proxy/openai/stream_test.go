package openai

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/golden from the current output")

// streamOpts are the options the golden streams are translated with.
var streamOpts = Options{Model: "claude-asked-for", Stream: true, IncludeUsage: true}

type fixture struct {
	name string
	data []byte
}

// streams returns the Anthropic SSE fixtures in testdata/streams (copied
// from the meter's real and hand-made streams, plus this front's own).
func streams(t testing.TB) []fixture {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	if err != nil || len(names) == 0 {
		t.Fatalf("cannot list the stream fixtures: %v (%d found)", err, len(names))
	}
	var fs []fixture
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatalf("cannot read %s: %s", n, err)
		}
		fs = append(fs, fixture{strings.TrimSuffix(filepath.Base(n), ".sse"), data})
	}
	return fs
}

// translate feeds data to a fresh Stream in chunks of size bytes.
func translate(data []byte, opts Options, size int) []byte {
	var s Stream
	s.Reset(opts, created)
	return feed(&s, data, size)
}

func feed(s *Stream, data []byte, size int) []byte {
	var out []byte
	for len(data) > 0 {
		n := min(size, len(data))
		out = s.Append(out, data[:n])
		data = data[n:]
	}
	return out
}

// checkChunks checks that out is only complete `data: …\n\n` lines, each a
// JSON object or [DONE], nothing after [DONE] or an error, and that every
// chunk has the fields OpenAI's SDKs read.
func checkChunks(t *testing.T, out []byte) {
	t.Helper()
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n\n")) {
		t.Fatalf("unexpected output not ending in a blank line: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	for i, line := range lines {
		if line == "" && len(out) == 0 {
			return
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok || strings.Contains(payload, "\n") {
			t.Fatalf("unexpected line %d %q; want data: and one line of JSON", i, line)
		}
		last := i == len(lines)-1
		if payload == "[DONE]" {
			if !last {
				t.Fatalf("unexpected line after [DONE]: %q", lines[i+1])
			}
			continue
		}
		var chunk map[string]json.RawMessage
		if err := json.Unmarshal([]byte(payload), &chunk); err != nil {
			t.Fatalf("unexpected invalid JSON in line %d %q: %s", i, payload, err)
		}
		if _, isError := chunk["error"]; isError {
			if !last {
				t.Fatalf("unexpected line after an error: %q", lines[i+1])
			}
			continue
		}
		for _, k := range [...]string{"id", "object", "created", "model", "choices"} {
			if _, ok := chunk[k]; !ok {
				t.Fatalf("unexpected chunk without %s: %s", k, payload)
			}
		}
		if string(chunk["object"]) != `"chat.completion.chunk"` {
			t.Fatalf("unexpected object in %s", payload)
		}
	}
}

// TestStreamGolden translates each fixture whole and compares with
// testdata/golden/<name>.txt (go test -rewrite writes them).
func TestStreamGolden(t *testing.T) {
	for _, fx := range streams(t) {
		got := translate(fx.data, streamOpts, len(fx.data))
		checkChunks(t, got)
		path := filepath.Join("testdata", "golden", fx.name+".txt")
		if *rewrite {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("cannot read the golden file: %s", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("unexpected translation of %s;\ngot\n%s\nwant\n%s", fx.name, got, want)
		}
	}
}

// TestStreamWithoutUsage: without include_usage the chunks are the same
// but for "usage":null and the usage chunk.
func TestStreamWithoutUsage(t *testing.T) {
	opts := streamOpts
	opts.IncludeUsage = false
	for _, fx := range streams(t) {
		with := string(translate(fx.data, streamOpts, len(fx.data)))
		var want []string
		for _, line := range strings.SplitAfter(with, "\n\n") {
			if strings.Contains(line, `"choices":[],"usage":{`) {
				continue
			}
			want = append(want, strings.Replace(line, `,"usage":null}`+"\n\n", "}\n\n", 1))
		}
		got := translate(fx.data, opts, len(fx.data))
		checkChunks(t, got)
		if string(got) != strings.Join(want, "") || bytes.Contains(got, []byte(`"usage"`)) {
			t.Fatalf("unexpected translation of %s without usage;\ngot\n%s\nwant\n%s", fx.name, got, strings.Join(want, ""))
		}
	}
}

// TestStreamSplits: every split size, and random splits, give the output
// of the whole stream, splits inside events and lines included.
func TestStreamSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, fx := range streams(t) {
		want := translate(fx.data, streamOpts, len(fx.data))
		for size := 1; size < len(fx.data); size++ {
			if got := translate(fx.data, streamOpts, size); !bytes.Equal(got, want) {
				t.Fatalf("unexpected translation of %s in chunks of %d;\ngot\n%s\nwant\n%s", fx.name, size, got, want)
			}
		}
		for range 100 {
			var s Stream
			s.Reset(streamOpts, created)
			var got []byte
			for rest := fx.data; len(rest) > 0; {
				n := min(1+rng.IntN(64), len(rest))
				got = s.Append(got, rest[:n])
				rest = rest[n:]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("unexpected translation of %s in random chunks;\ngot\n%s\nwant\n%s", fx.name, got, want)
			}
		}
	}
}

// TestStreamLineEnds: CRLF and CR line ends read as LF, split anywhere.
func TestStreamLineEnds(t *testing.T) {
	for _, fx := range streams(t) {
		want := translate(fx.data, streamOpts, len(fx.data))
		for _, end := range [...]string{"\r\n", "\r"} {
			data := bytes.ReplaceAll(fx.data, []byte("\n"), []byte(end))
			for _, size := range [...]int{1, 2, 3, 7, len(data)} {
				if got := translate(data, streamOpts, size); !bytes.Equal(got, want) {
					t.Fatalf("unexpected translation of %s with %q line ends in chunks of %d;\ngot\n%s\nwant\n%s", fx.name, end, size, got, want)
				}
			}
		}
	}
}

// TestStreamReset: a reused Stream gives the output of a fresh one.
func TestStreamReset(t *testing.T) {
	var s Stream
	fs := streams(t)
	for _, fx := range append(fs, fs...) {
		s.Reset(streamOpts, created)
		got := feed(&s, fx.data, 5)
		if want := translate(fx.data, streamOpts, len(fx.data)); !bytes.Equal(got, want) {
			t.Fatalf("unexpected translation of %s by a reused Stream;\ngot\n%s\nwant\n%s", fx.name, got, want)
		}
	}
}

// The start of each chunk of the inline cases below.
const (
	chunkPrefix = `data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1767225600,"model":"claude-x","choices":[`
	startEvent  = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
	roleChunk   = chunkPrefix + `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	stopEvents  = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	stopChunks  = chunkPrefix + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
)

func TestStreamEvents(t *testing.T) {
	f := func(sse, want string) {
		t.Helper()
		got := translate([]byte(sse), Options{Model: "claude-asked-for", Stream: true}, len(sse))
		checkChunks(t, got)
		if string(got) != want {
			t.Fatalf("unexpected translation of %q;\ngot\n%s\nwant\n%s", sse, got, want)
		}
	}
	text := func(s string) string {
		return chunkPrefix + `{"index":0,"delta":{"content":` + s + `},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	}
	// Events without event lines go by their JSON type; comments, id and
	// retry lines, events without data and unknown events are nothing.
	f(": comment\nid: 1\nretry: 10\n\n"+strings.ReplaceAll(startEvent, "event: message_start\n", "")+
		"event: ping\n\n"+
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"\\n\\u00e9\"}}\n\n"+
		"event: tool_change\ndata: {\"type\":\"tool_change\"}\n\n"+
		"event: "+strings.Repeat("x", 100)+"\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"skipped\"}}\n\n"+
		"data:{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"b\"}}\n\n"+
		stopEvents,
		roleChunk+text(`"a\"\né"`)+text(`"b"`)+stopChunks)
	// Data split over several data lines is joined with "\n".
	f(startEvent+"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\ndata: \"delta\":{\"type\":\"text_delta\",\"text\":\"c\"}}\n\n"+stopEvents,
		roleChunk+text(`"c"`)+stopChunks)
	// Empty deltas make no chunk; a block that starts with text passes it.
	f(startEvent+
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Hello\"}}\n\n"+
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n"+
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"type\":\"char_location\"}}}\n\n"+
		stopEvents,
		roleChunk+text(`"Hello"`)+stopChunks)
	// A tool_use block whose input comes whole at its start (no deltas).
	f(startEvent+"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{ \"a\" : [1, 2] }}}\n\n"+stopEvents,
		roleChunk+chunkPrefix+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n"+stopChunks)
	// message_stop without a stop reason still finishes; a second
	// message_start and a second stop reason change nothing.
	f(startEvent+strings.Replace(startEvent, "msg_1", "msg_2", 1)+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"output_tokens\":3}}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		roleChunk+stopChunks)
	f(startEvent+stopEvents+stopEvents, roleChunk+stopChunks)
	// Nothing after [DONE], whatever follows.
	f(startEvent+stopEvents+"garbage\n\nevent: error\ndata: {}\n\n", roleChunk+stopChunks)
	// Content before message_start: the client's model, no message ID.
	f("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
		`data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":1767225600,"model":"claude-asked-for","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}`+"\n\n")
}

// TestStreamErrors: an error event, and what Stream cannot translate, end
// the stream with an error line and no [DONE]; nothing follows.
func TestStreamErrors(t *testing.T) {
	f := func(sse, typ, message string) {
		t.Helper()
		got := translate([]byte(sse), Options{Model: "m", Stream: true}, len(sse))
		checkChunks(t, got)
		want := `data: {"error":{"message":` + string(mustJSON(t, message)) + `,"type":"` + typ + `","param":null,"code":null}}` + "\n\n"
		if !bytes.HasSuffix(got, []byte(want)) {
			t.Fatalf("unexpected end of the translation of %.200q;\ngot\n%s\nwant it to end with\n%s", sse, got, want)
		}
	}
	// The upstream's error event and the gateway's own.
	f(startEvent+"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"+stopEvents, "overloaded_error", "Overloaded")
	f("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the gateway is shutting down\"},\"request_id\":\"req_1\"}\n\n", "api_error", "the gateway is shutting down")
	f("event: error\ndata: {\"type\":\"error\"}\n\n", "api_error", "the upstream stream failed")
	// Undecodable and malformed events.
	f(startEvent+"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"metered every tok"+
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream stream ended unexpectedly\"}}\n\n",
		"api_error", "the upstream sent an event that is not valid JSON")
	f("event: message_start\ndata: {\"type\":\"message_start\"}\n\n", "api_error", "the upstream sent message_start without a message")
	f(startEvent+"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0}\n\n", "api_error", "the upstream sent content_block_start without a block")
	f(startEvent+"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":\"zero\"}\n\n", "api_error", "the upstream sent an event that is not valid JSON")
	// Events past the bound, in one line, in many, unfinished.
	big := strings.Repeat("x", maxEventBytes)
	f(startEvent+"data: "+big+"\n\n", "api_error", "the upstream sent an event larger than the limit")
	f(startEvent+"data: "+big[:maxEventBytes/2]+"\ndata: "+big[:maxEventBytes/2]+"\n\n", "api_error", "the upstream sent an event larger than the limit")
	f(startEvent+"data: "+big, "api_error", "the upstream sent an event larger than the limit")
	f(startEvent+": "+big+"\n", "api_error", "the upstream sent an event larger than the limit")
	// Tool calls past the bound.
	call := "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"
	f(startEvent+strings.Repeat(call, maxToolCalls+1), "api_error", "the reply has more tool calls than the limit")
}

// TestStreamBounded: memory stays within the bounds whatever the input.
func TestStreamBounded(t *testing.T) {
	var s Stream
	s.Reset(streamOpts, created)
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	s.Append(nil, []byte("data: "))
	for range 2 * maxEventBytes / len(chunk) {
		s.Append(nil, chunk)
	}
	if n := cap(s.line) + cap(s.data); n > 2*maxEventBytes {
		t.Fatalf("unexpected buffers of %d bytes; want at most %d", n, 2*maxEventBytes)
	}
	s.Reset(streamOpts, created)
	if s.line != nil || s.data != nil {
		t.Fatalf("unexpected buffers kept past Reset: %d and %d bytes", cap(s.line), cap(s.data))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
