package upstream

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
)

// Two frames of a captured Bedrock stream, their CRCs verified with botocore.
var (
	// wireVector1 is a chunk carrying {"type":"message_stop"}.
	wireVector1 = mustHex("000000870000004b87ea2bf30b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a2265794a306558426c496a6f696257567a6332466e5a56397a64473977496e303d227dba48ab22")
	// wireVector2 is a throttlingException frame.
	wireVector2 = mustHex("000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// chunkFrame encodes an event's JSON as a Bedrock chunk frame with the AWS
// SDK's encoder.
func chunkFrame(t testing.TB, event string) []byte {
	t.Helper()
	payload := `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(event)) + `","p":"abcdefghij"}`
	var b bytes.Buffer
	err := eventstream.NewEncoder().Encode(&b, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: []byte(payload),
	})
	if err != nil {
		t.Fatalf("cannot encode a frame: %s", err)
	}
	return b.Bytes()
}

// translate reads the whole stream of frames through a BedrockStream,
// reading into p of size bufSize, and returns the SSE, what the observer
// saw and the error that ended it.
func translate(src io.Reader, bufSize int) (string, meter.StreamResult, error) {
	var obs meter.Observer
	obs.Reset(0)
	var s BedrockStream
	s.Reset(src, &obs)
	var out strings.Builder
	p := make([]byte, bufSize)
	for range 100000 {
		n, err := s.Read(p)
		out.Write(p[:n])
		if err != nil {
			return out.String(), obs.Result(), err
		}
	}
	panic("BUG: the stream never ended")
}

// A realistic Bedrock stream: the events of a captured one.
var bedrockEvents = []string{
	`{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_bdrk_012GBPzpcoMCLP1b2pcJsSHk","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`,
	`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15,"invocationLatency":1798,"firstByteLatency":1507}}`,
}

func bedrockStreamBytes(t testing.TB, events []string) []byte {
	var b []byte
	for _, e := range events {
		b = append(b, chunkFrame(t, e)...)
	}
	return b
}

// TestBedrockWireVectors: the two captured frames decode to the SSE an
// Anthropic client expects.
func TestBedrockWireVectors(t *testing.T) {
	f := func(frames []byte, wantSSE string, wantEnd meter.StreamEnd) {
		t.Helper()
		got, r, err := translate(bytes.NewReader(frames), 4096)
		if got != wantSSE || err != io.EOF {
			t.Fatalf("unexpected translation; got %q, %v; want %q, EOF", got, err, wantSSE)
		}
		if r.End != wantEnd || r.Events != 1 {
			t.Fatalf("unexpected observer result; got end %s, %d events; want %s, 1", r.End, r.Events, wantEnd)
		}
	}
	f(wireVector1, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", meter.EndCompleted)
	f(wireVector2, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Too many requests, please wait before trying again.\"}}\n\n", meter.EndError)
}

// TestBedrockStreamTranslation: a whole stream becomes Anthropic's SSE,
// whatever the read sizes of the source and of the client, without the
// metrics, which the meter sees and prefers where they disagree.
func TestBedrockStreamTranslation(t *testing.T) {
	var want strings.Builder
	for _, e := range bedrockEvents {
		typ := e[len(`{"type":"`) : strings.Index(e[len(`{"type":"`):], `"`)+len(`{"type":"`)]
		data := e
		if typ == "message_stop" {
			data = `{"type":"message_stop"}`
		}
		want.WriteString("event: " + typ + "\ndata: " + data + "\n\n")
	}
	frames := bedrockStreamBytes(t, bedrockEvents)
	for _, src := range []func() io.Reader{
		func() io.Reader { return bytes.NewReader(frames) },
		func() io.Reader { return iotest.OneByteReader(bytes.NewReader(frames)) },
		func() io.Reader { return iotest.HalfReader(bytes.NewReader(frames)) },
	} {
		for _, size := range []int{1, 7, 64, 32 << 10} {
			got, r, err := translate(src(), size)
			if got != want.String() || err != io.EOF {
				t.Fatalf("unexpected SSE (read size %d); got %q, %v; want %q", size, got, err, want.String())
			}
			if r.End != meter.EndCompleted || !r.InvocationMetrics || r.MetricsDisagreed || r.Usage.InputTokens != 10 || r.Usage.OutputTokens != 15 {
				t.Fatalf("unexpected observer result %+v", r)
			}
		}
	}

	// Metrics that disagree with the events win (they are what Bedrock bills).
	events := append([]string(nil), bedrockEvents...)
	events[len(events)-1] = `{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":16,"invocationLatency":1798,"firstByteLatency":1507,"cacheReadInputTokenCount":300}}`
	_, r, err := translate(bytes.NewReader(bedrockStreamBytes(t, events)), 4096)
	if err != io.EOF || !r.MetricsDisagreed || r.Usage.InputTokens != 12 || r.Usage.OutputTokens != 16 || r.Usage.CacheReadInputTokens != 300 {
		t.Fatalf("unexpected result with disagreeing metrics: %v %+v", err, r)
	}
}

// TestBedrockStreamBadFrames: a CRC error, a frame cut anywhere, and frames
// that are not Bedrock's end the stream with an error (never a panic), after
// the events before them.
func TestBedrockStreamBadFrames(t *testing.T) {
	good := bedrockStreamBytes(t, bedrockEvents[:2])
	firstSSE, _, _ := translate(bytes.NewReader(good[:len(chunkFrame(t, bedrockEvents[0]))]), 4096)

	// A flipped bit in the second frame's payload: its message CRC fails.
	bad := append([]byte(nil), good...)
	bad[len(bad)-20] ^= 0x01
	got, r, err := translate(bytes.NewReader(bad), 4096)
	var crcErr eventstream.ChecksumError
	if got != firstSSE || !errors.As(err, &crcErr) || r.Events != 1 {
		t.Fatalf("unexpected result of a CRC error; got %q, %v, %d events", got, err, r.Events)
	}
	// A flipped bit in a prelude.
	bad = append([]byte(nil), good...)
	bad[len(firstSSE)%4] ^= 0x10
	if _, _, err := translate(bytes.NewReader(bad), 4096); err == nil || err == io.EOF {
		t.Fatalf("unexpected result of a prelude error: %v", err)
	}

	// Cut at every offset: whole frames translate, a partial one is an
	// unexpected EOF, a cut between frames a clean end.
	first := len(chunkFrame(t, bedrockEvents[0]))
	for cut := range len(good) {
		got, _, err := translate(bytes.NewReader(good[:cut]), 4096)
		switch {
		case cut == 0 || cut == first:
			if err != io.EOF {
				t.Fatalf("cut at %d (a frame boundary): unexpected error %v", cut, err)
			}
		case !errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("cut at %d: unexpected error %v; want an unexpected EOF", cut, err)
		}
		if cut >= first && got != firstSSE || cut < first && got != "" {
			t.Fatalf("cut at %d: unexpected SSE %q", cut, got)
		}
	}

	f := func(name string, frame []byte) {
		t.Helper()
		if _, _, err := translate(bytes.NewReader(frame), 4096); !errors.Is(err, errBedrockFrame) {
			t.Fatalf("%s: unexpected error %v; want a malformed frame", name, err)
		}
	}
	f("chunk without bytes", encodeFrame(t, "event", "chunk", `{"p":"abc"}`))
	f("bytes not base64", encodeFrame(t, "event", "chunk", `{"bytes":"!!!"}`))
	f("event without type", chunkFrame(t, `{"index":0}`))
	f("event not JSON", chunkFrame(t, `{"type":"ping"`))
	f("unknown message type", encodeFrame(t, "surprise", "chunk", `{}`))

	// Unknown event types are skipped; an unmodelled error frame is an error event.
	got, r, err = translate(bytes.NewReader(append(encodeFrame(t, "event", "initial-response", `{}`), wireVector1...)), 4096)
	if got != "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n" || err != io.EOF || r.End != meter.EndCompleted {
		t.Fatalf("unexpected result with an unknown event type: %q %v", got, err)
	}
	var b bytes.Buffer
	_ = eventstream.NewEncoder().Encode(&b, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("error")},
		{Name: ":error-code", Value: eventstream.StringValue("InternalFailure")},
		{Name: ":error-message", Value: eventstream.StringValue("boom")},
	}})
	got, r, _ = translate(&b, 4096)
	if got != "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}\n\n" || r.End != meter.EndError {
		t.Fatalf("unexpected translation of an error frame: %q", got)
	}
}

func encodeFrame(t *testing.T, messageType, eventType, payload string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := eventstream.NewEncoder().Encode(&b, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue(eventType)},
			{Name: ":message-type", Value: eventstream.StringValue(messageType)},
		},
		Payload: []byte(payload),
	})
	if err != nil {
		t.Fatalf("cannot encode: %s", err)
	}
	return b.Bytes()
}

// TestBedrockError: Bedrock's exceptions before the stream map to the
// contract's statuses and types.
func TestBedrockError(t *testing.T) {
	f := func(status int, errType, body string, wantStatus int, wantType string, wantPlatform bool) {
		t.Helper()
		e := JudgeBedrock(status, []byte(errType), []byte(body))
		if e.Status != wantStatus || e.Type != wantType || e.Platform != wantPlatform || e.Message == "" {
			t.Fatalf("unexpected mapping of %d %s; got %+v; want %d %s %v", status, errType, e, wantStatus, wantType, wantPlatform)
		}
	}
	const coral = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
	f(429, "ThrottlingException"+coral, `{"message":"Too many tokens"}`, 429, views.RateLimitError, false)
	f(429, "ModelNotReadyException", `{}`, 429, views.RateLimitError, false)
	f(408, "ModelTimeoutException"+coral, `{"message":"slow"}`, 504, views.TimeoutError, false)
	f(400, "ValidationException", `{"message":"bad"}`, 400, views.InvalidRequestError, false)
	f(400, "ServiceQuotaExceededException", `{"message":"quota"}`, 503, views.OverloadedError, true)
	f(403, "AccessDeniedException"+coral, `{"message":"arn:aws:iam::123:user/x is not authorized"}`, 503, views.OverloadedError, true)
	f(403, "UnrecognizedClientException", `{}`, 503, views.OverloadedError, true)
	f(404, "ResourceNotFoundException", `{}`, 503, views.OverloadedError, true)
	f(424, "ModelErrorException", `{}`, 500, views.APIError, false)
	f(500, "InternalServerException", `{}`, 500, views.APIError, false)
	f(503, "ServiceUnavailableException", `{}`, 529, views.OverloadedError, false)
	f(529, "", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 529, views.OverloadedError, false)
	f(401, "", `{}`, 503, views.OverloadedError, true)
	f(502, "", `garbage`, 500, views.APIError, false)
	f(418, "", `{}`, 400, views.InvalidRequestError, false)

	// Messages that may name the platform's account are not passed on.
	for _, c := range []struct {
		status int
		typ    string
	}{{403, "AccessDeniedException"}, {429, "ThrottlingException"}, {500, "InternalServerException"}} {
		if e := JudgeBedrock(c.status, []byte(c.typ), []byte(`{"message":"arn:aws:iam::123456789012:user/x"}`)); strings.Contains(e.Message, "arn:") {
			t.Fatalf("unexpected message passed on for %s: %q", c.typ, e.Message)
		}
	}
}

// FuzzBedrockStream: no input makes the translator panic, loop or return
// bytes without an end.
func FuzzBedrockStream(f *testing.F) {
	f.Add(wireVector1)
	f.Add(wireVector2)
	f.Add(bedrockStreamBytes(f, bedrockEvents))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := translate(bytes.NewReader(data), 512)
		if err == nil {
			t.Fatalf("a stream ended without an error")
		}
	})
}
