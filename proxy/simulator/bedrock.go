package simulator

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"
	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/meter"
	"github.com/valyala/fasthttp"
)

// Modes of the simulator (Config.Mode).
const (
	// ModeAnthropic serves Anthropic's Messages API (the default).
	ModeAnthropic = "anthropic"
	// ModeBedrock serves AWS Bedrock's InvokeModel and
	// InvokeModelWithResponseStream for Claude.
	ModeBedrock = "bedrock"
)

// TestAWSCredentials are the fixed SigV4 credentials of `tollgate simulator
// --mode bedrock` and of the tests: not a real AWS key.
var TestAWSCredentials = aws.Credentials{
	AccessKeyID:     "AKIDTOLLGATESIMULATOR",
	SecretAccessKey: "tollgate-simulator-not-a-real-secret-key",
	Source:          "tollgate simulator",
}

// bedrockPaddingAlphabet is what the padding field "p" of a chunk is cut
// from, as in real captures.
const bedrockPaddingAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// acceptBedrock runs Bedrock mode's checks on a request: POST
// /model/{modelId}/invoke and /model/{modelId}/invoke-with-response-stream,
// everything else 404; then the credential (403), the body's size (413) and
// the body itself (400). It answers the requests they refuse, and returns
// the request, read as the Messages request it stands for, and the model its
// reply names.
func (s *Simulator) acceptBedrock(ctx *fasthttp.RequestCtx) (req *request, model string, ok bool) {
	modelID, stream, ok := parseBedrockPath(ctx.Request.Header.RequestURI())
	if !ctx.IsPost() || !ok {
		s.notFound.Add(1)
		writeBedrockError(ctx, fasthttp.StatusNotFound, "UnknownOperationException", "")
		return nil, "", false
	}
	s.messages.Add(1)
	if refusal := s.verifyBedrockAuth(ctx); refusal != nil {
		s.rejected.Add(1)
		writeBedrockError(ctx, fasthttp.StatusForbidden, refusal.exception, refusal.msg)
		return nil, "", false
	}
	if len(ctx.PostBody()) > s.cfg.MaxBodySize {
		s.rejected.Add(1)
		s.proto.writeTooLarge(ctx, "")
		return nil, "", false
	}
	model = s.resolveModel(bedrockModelName(modelID))
	req, err := parseBedrockRequest(ctx.PostBody(), model, stream)
	if err == nil {
		err = s.checkWaits(&req.dir)
	}
	if err != nil {
		s.rejected.Add(1)
		writeBedrockError(ctx, fasthttp.StatusBadRequest, "ValidationException", err.Error())
		return nil, "", false
	}
	return req, model, true
}

// bedrockProtocol is the wire form of Bedrock's runtime API for Claude.
// Error answers carry no request ID in their body: x-amzn-RequestId has it.
type bedrockProtocol struct{}

func (bedrockProtocol) newRequestID() string { return newBedrockRequestID() }

func (bedrockProtocol) headers(reqID string) [][2]string {
	return [][2]string{{"x-amzn-RequestId", reqID}}
}

func (bedrockProtocol) newMessageID() string { return newRandomID("msg_bdrk_sim_") }

func (bedrockProtocol) newFramer(r *reply, _ *directives) framer { return newBedrockFramer(r) }

// streamHeaders are InvokeModelWithResponseStream's.
func (bedrockProtocol) streamHeaders() [][2]string {
	return [][2]string{
		{"Content-Type", bedrockStreamContentType},
		{"X-Amzn-Bedrock-Content-Type", "application/json"},
	}
}

// messageHeaders are InvokeModel's token counts.
func (bedrockProtocol) messageHeaders(r *reply) [][2]string {
	return [][2]string{
		{"X-Amzn-Bedrock-Input-Token-Count", strconv.FormatInt(r.final.InputTokens, 10)},
		{"X-Amzn-Bedrock-Output-Token-Count", strconv.FormatInt(r.final.OutputTokens, 10)},
	}
}

// writeStatus answers with the exception Bedrock pairs with the status (see
// bedrockStatusError).
func (bedrockProtocol) writeStatus(ctx *fasthttp.RequestCtx, _ string, d *directives) {
	status, exception, msg := bedrockStatusError(d.status, d)
	writeBedrockError(ctx, status, exception, msg)
}

func (bedrockProtocol) writeTooLarge(ctx *fasthttp.RequestCtx, _ string) {
	writeBedrockError(ctx, fasthttp.StatusRequestEntityTooLarge, "ValidationException", "Input is too long for requested model.")
}

func (bedrockProtocol) writeMalformed(ctx *fasthttp.RequestCtx, _ string) {
	writeBedrockError(ctx, fasthttp.StatusBadRequest, "ValidationException", "Error when parsing request")
}

func (bedrockProtocol) writeUnavailable(ctx *fasthttp.RequestCtx, _ string) {
	writeBedrockError(ctx, fasthttp.StatusServiceUnavailable, "ServiceUnavailableException", "the simulator is shutting down")
}

// bedrockStreamContentType is the content type of InvokeModelWithResponseStream replies.
const bedrockStreamContentType = "application/vnd.amazon.eventstream"

// parseBedrockPath splits a raw request URI /model/{modelId}/{operation}
// (the model ID path-escaped, so an ARN's '/' arrives as %2F) into the
// model ID and whether the operation streams.
func parseBedrockPath(uri []byte) (modelID string, stream, ok bool) {
	path := string(uri)
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	rest, found := strings.CutPrefix(path, "/model/")
	if !found {
		return "", false, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", false, false
	}
	switch rest[i+1:] {
	case "invoke":
	case "invoke-with-response-stream":
		stream = true
	default:
		return "", false, false
	}
	id, err := url.PathUnescape(rest[:i])
	if err != nil || id == "" || strings.Contains(id, "/") && !strings.HasPrefix(id, "arn:") {
		return "", false, false
	}
	return id, stream, true
}

// bedrockVersionSuffix is the version suffix of Bedrock model IDs.
var bedrockVersionSuffix = regexp.MustCompile(`-v\d+(:\d+)?$`)

// bedrockModelName is the model a reply names for a Bedrock model ID, as
// Bedrock answers: global.anthropic.claude-haiku-4-5-20251001-v1:0 gives
// claude-haiku-4-5-20251001. Of an inference profile ARN the last path
// segment is used; an ID it cannot read is echoed.
func bedrockModelName(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if i := strings.Index(id, "anthropic."); i >= 0 {
		id = id[i+len("anthropic."):]
	}
	return bedrockVersionSuffix.ReplaceAllString(id, "")
}

// parseBedrockRequest validates a Bedrock InvokeModel body for Claude as
// Bedrock does (a JSON object with an anthropic_version string, an optional
// anthropic_beta list of strings, and no model or stream: those are the
// path's), then reads it as the Messages request it stands for.
func parseBedrockRequest(body []byte, model string, stream bool) (*request, error) {
	var fields map[string]sonic.NoCopyRawMessage
	if err := stdJSON.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, invalid("Malformed input request: expected a JSON object, please reformat your input and try again.")
	}
	for _, k := range [...]string{"model", "stream"} {
		if _, ok := fields[k]; ok {
			return nil, invalidf("Malformed input request: #: extraneous key [%s] is not permitted, please reformat your input and try again.", k)
		}
	}
	// Bedrock documents bedrock-2023-05-31 as the value; the Anthropic Go
	// SDK sends its anthropic-version header's date instead, so any
	// non-empty string is taken.
	var version string
	if raw, ok := fields["anthropic_version"]; !ok || stdJSON.Unmarshal(raw, &version) != nil || version == "" {
		return nil, invalid("Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.")
	}
	if raw, ok := fields["anthropic_beta"]; ok {
		var betas []string
		if stdJSON.Unmarshal(raw, &betas) != nil {
			return nil, invalid("Malformed input request: #/anthropic_beta: expected type: JSONArray of strings, please reformat your input and try again.")
		}
	}
	delete(fields, "anthropic_version")
	delete(fields, "anthropic_beta")
	fields["model"], _ = stdJSON.Marshal(model)
	fields["stream"], _ = stdJSON.Marshal(stream)
	messages, err := stdJSON.Marshal(fields)
	if err != nil {
		return nil, invalid("Malformed input request")
	}
	return parseRequest(messages, false)
}

// bedrockStatusError returns the status, exception name and message Bedrock
// answers for status=NNN: the exception Bedrock pairs with the status
// (error_type= names another, message= replaces the message).
func bedrockStatusError(status int, d *directives) (int, string, string) {
	var exception, msg string
	switch status {
	case 400:
		exception, msg = "ValidationException", "Invalid request"
	case 401, 403:
		status, exception, msg = 403, "AccessDeniedException", "You don't have access to the model with the specified model ID."
	case 404:
		exception, msg = "ResourceNotFoundException", "The specified model was not found."
	case 408, 504:
		status, exception, msg = 408, "ModelTimeoutException", "Model has timed out in processing the request."
	case 424:
		exception, msg = "ModelErrorException", "The model failed to process the request."
	case 429:
		exception, msg = "ThrottlingException", "Too many requests, please wait before trying again."
	case 503:
		exception, msg = "ServiceUnavailableException", "Bedrock is unable to process your request."
	case 529:
		exception, msg = "ServiceUnavailableException", "Overloaded"
	default:
		if status < 500 {
			exception, msg = "ValidationException", "Invalid request"
		} else {
			exception, msg = "InternalServerException", "The server encountered an internal error."
		}
	}
	exception, msg = errorOverride(exception, msg, d)
	return status, exception, msg
}

// writeBedrockError answers with a Bedrock error: the exception name in
// x-amzn-ErrorType (Bedrock's form, with the Coral namespace after ':') and
// {"message":...} as the body.
func writeBedrockError(ctx *fasthttp.RequestCtx, status int, exception, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("x-amzn-ErrorType", exception+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	var b []byte
	if msg == "" {
		b = []byte("{}")
	} else {
		b = append(meter.AppendJSONString(append(b, `{"message":`...), msg), '}')
	}
	ctx.SetBody(b)
}

// newBedrockRequestID returns a random request ID in Bedrock's form (a UUID).
func newBedrockRequestID() string {
	a, b := rand.Uint64(), rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
}

// bedrockFramer frames a reply's events as Bedrock's event stream: each
// event's JSON, base64-encoded, in a chunk frame {"bytes":...,"p":...}
// built with the AWS SDK's encoder; message_stop gains
// amazon-bedrock-invocationMetrics with the final usage. Used by one
// goroutine.
type bedrockFramer struct {
	enc     *eventstream.Encoder
	frame   bytes.Buffer
	event   []byte
	payload []byte
	metrics []byte // `"amazon-bedrock-invocationMetrics":{...}`
	frames  int
}

func newBedrockFramer(r *reply) *bedrockFramer {
	f := &bedrockFramer{enc: eventstream.NewEncoder()}
	u := &r.final
	m := []byte(`"amazon-bedrock-invocationMetrics":{"inputTokenCount":`)
	m = appendInt(m, u.InputTokens)
	m = append(m, `,"outputTokenCount":`...)
	m = appendInt(m, u.OutputTokens)
	// Fixed, plausible latencies (milliseconds): the stream's own pauses are
	// the test's business.
	m = append(m, `,"invocationLatency":`...)
	m = appendInt(m, int64(400+10*r.eventCount()))
	m = append(m, `,"firstByteLatency":400`...)
	if u.CacheReadInputTokens > 0 {
		m = append(m, `,"cacheReadInputTokenCount":`...)
		m = appendInt(m, u.CacheReadInputTokens)
	}
	if u.CacheCreationInputTokens > 0 {
		m = append(m, `,"cacheWriteInputTokenCount":`...)
		m = appendInt(m, u.CacheCreationInputTokens)
	}
	f.metrics = append(m, '}')
	return f
}

// appendEvent appends the chunk frame of one event.
func (f *bedrockFramer) appendEvent(dst []byte, name string, data []byte) []byte {
	if name == evMessageStop && len(data) > 1 && data[len(data)-1] == '}' {
		f.event = append(f.event[:0], data[:len(data)-1]...)
		f.event = append(f.event, ',')
		f.event = append(f.event, f.metrics...)
		data = append(f.event, '}')
	}
	p := f.payload[:0]
	p = append(p, `{"bytes":"`...)
	p = base64.StdEncoding.AppendEncode(p, data)
	p = append(p, `","p":"`...)
	p = append(p, bedrockPaddingAlphabet[:1+(f.frames*7)%len(bedrockPaddingAlphabet)]...)
	p = append(p, `"}`...)
	f.payload = p
	f.frames++
	return f.appendFrame(dst, eventstream.Headers{
		{Name: eventstreamapi.EventTypeHeader, Value: eventstream.StringValue("chunk")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: eventstreamapi.MessageTypeHeader, Value: eventstream.StringValue(eventstreamapi.EventMessageType)},
	}, p)
}

// appendException appends an exception frame: exception is the
// lowerCamelCase member name (throttlingException, ...).
func (f *bedrockFramer) appendException(dst []byte, exception, msg string) []byte {
	p := append(f.payload[:0], `{"message":`...)
	p = meter.AppendJSONString(p, msg)
	p = append(p, '}')
	f.payload = p
	return f.appendFrame(dst, eventstream.Headers{
		{Name: eventstreamapi.ExceptionTypeHeader, Value: eventstream.StringValue(exception)},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: eventstreamapi.MessageTypeHeader, Value: eventstream.StringValue(eventstreamapi.ExceptionMessageType)},
	}, p)
}

// appendError appends the exception frame of error_after.
func (f *bedrockFramer) appendError(dst []byte, d *directives) []byte {
	exception, msg := bedrockException(d)
	return f.appendException(dst, exception, msg)
}

// appendGarbage appends what garbage_after sends: a chunk frame (of a ping)
// whose message CRC is wrong.
func (f *bedrockFramer) appendGarbage(dst []byte) []byte {
	n := len(dst)
	dst = f.appendEvent(dst, evPing, pingData)
	dst[len(dst)-1] ^= 0xff
	if len(dst) == n {
		panic("BUG: empty frame")
	}
	return dst
}

// appendCut appends what truncate_after sends before the connection closes:
// the first half of a chunk frame (of a ping).
func (f *bedrockFramer) appendCut(dst []byte) []byte {
	n := len(dst)
	dst = f.appendEvent(dst, evPing, pingData)
	return dst[:n+(len(dst)-n)/2]
}

func (f *bedrockFramer) appendFrame(dst []byte, h eventstream.Headers, payload []byte) []byte {
	f.frame.Reset()
	if err := f.enc.Encode(&f.frame, eventstream.Message{Headers: h, Payload: payload}); err != nil {
		// Only oversized headers or payloads fail, and replies are bounded far below.
		panic("BUG: cannot encode an event-stream frame: " + err.Error())
	}
	return append(dst, f.frame.Bytes()...)
}

// bedrockException is the :exception-type of error_after in Bedrock mode:
// error_type= given as the exception's name (either case of its first
// letter), else serviceUnavailableException, which a gateway maps to
// Anthropic's overloaded_error.
func bedrockException(d *directives) (exception, msg string) {
	exception, msg = errorOverride("serviceUnavailableException", "Overloaded", d)
	if exception != "" {
		exception = strings.ToLower(exception[:1]) + exception[1:]
	}
	return exception, msg
}
