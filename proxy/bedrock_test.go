package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/proxy/upstream"
)

// testBedrockModelID is the catalogue's Bedrock ID of testModel.
const testBedrockModelID = "global.anthropic.claude-haiku-4-5-20251001-v1:0"

// bedrockSim is a Bedrock-mode simulator on 127.0.0.1 that remembers the
// last request it received.
type bedrockSim struct {
	sim *simulator.Simulator
	url string

	mu   sync.Mutex
	last simulator.RequestInfo
}

// startBedrockSim starts a Bedrock-mode simulator checking SigV4 signatures
// by simulator.TestAWSCredentials in us-east-1, and bearer tokens equal to
// apiKey when not empty.
func startBedrockSim(t *testing.T, apiKey string) *bedrockSim {
	t.Helper()
	b := &bedrockSim{}
	b.sim = simulator.New(simulator.Config{
		Mode:           simulator.ModeBedrock,
		AWSCredentials: simulator.TestAWSCredentials,
		AWSRegion:      "us-east-1",
		APIKey:         apiKey,
		MaxHang:        15 * time.Second,
		OnRequest: func(ri simulator.RequestInfo) {
			b.mu.Lock()
			b.last = ri
			b.mu.Unlock()
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the bedrock simulator: %s", err)
	}
	b.url = "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- b.sim.Serve(ln) }()
	t.Cleanup(func() {
		if err := b.sim.Shutdown(); err != nil {
			t.Errorf("unexpected bedrock simulator Shutdown error: %s", err)
		}
		<-done
	})
	return b
}

func (b *bedrockSim) lastRequest() simulator.RequestInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// staticCredentials is an AWS credentials provider of fixed credentials.
func staticCredentials(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// bedrockUpstream is a bedrock upstream at url signing with the test credentials.
func bedrockUpstream(name, url string) upstream.Config {
	return upstream.Config{Name: name, Kind: upstream.KindBedrock, BaseURL: url, Region: "us-east-1",
		AWSCredentials: staticCredentials(simulator.TestAWSCredentials)}
}

// withUpstreams replaces the gateway's upstreams.
func withUpstreams(ups ...upstream.Config) harnessOption {
	return func(c *proxy.Config) { c.Upstreams = ups }
}

// newBedrockHarness is a harness whose only upstream is a Bedrock simulator.
func newBedrockHarness(t *testing.T, opts ...harnessOption) (*harness, *bedrockSim) {
	t.Helper()
	b := startBedrockSim(t, "")
	h := newHarness(t, append([]harnessOption{withUpstreams(bedrockUpstream("bedrock", b.url))}, opts...)...)
	return h, b
}

// withoutIDs decodes an event's JSON and drops the message ID, the one thing
// that differs between upstreams.
func withoutIDs(t *testing.T, data string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("cannot decode event data %q: %s", data, err)
	}
	if msg, ok := m["message"].(map[string]any); ok {
		delete(msg, "id")
	}
	delete(m, "id")
	delete(m, "request_id")
	return m
}

// TestBedrockSameAsAnthropic: the same calls through an Anthropic upstream
// and through a Bedrock upstream give the client the same events (SSE bytes
// apart from message IDs) and the same Message through the official Go SDK,
// and charge the same; the call records name the upstream that served.
func TestBedrockSameAsAnthropic(t *testing.T) {
	ha := newHarness(t)
	hb, _ := newBedrockHarness(t)
	aa, ab := ha.newAccount("10"), hb.newAccount("10")
	bodies := []string{
		"Say hello twice [[sim:words=20,chunk=3]]",
		"Think first then answer [[sim:thinking=12,chunk=2,tool_use]]",
		"Cached prompt [[sim:cache=1h,cache_write=2000,cache_read=7000,padded]]",
		"Search the web for cats please [[sim:web_search=2]]",
		"Older shape [[sim:old_usage,cache_write=100,cache_read=300]]",
		"one two three four five six seven eight nine ten",
		"Fails midway [[sim:error_after=2]]",
	}
	for _, text := range bodies {
		body := messagesBody(text, 10, true)
		if strings.Contains(text, "cats") {
			body = []byte(`{"model":"` + testModel + `","max_tokens":300,"stream":true,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}],` +
				`"messages":[{"role":"user","content":"` + text + `"}]}`)
		}
		respA, evA, ca := ha.streamCall(aa, body)
		respB, evB, cb := hb.streamCall(ab, body)
		if !reflect.DeepEqual(eventNames(evA), eventNames(evB)) {
			t.Fatalf("%s: unexpected events through bedrock; got %v; want %v", text, eventNames(evB), eventNames(evA))
		}
		for i := range evA {
			if a, b := withoutIDs(t, evA[i].Data), withoutIDs(t, evB[i].Data); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: unexpected event %d through bedrock; got %s; want %s", text, i, evB[i].Data, evA[i].Data)
			}
			if strings.Contains(evB[i].Data, "invocationMetrics") {
				t.Fatalf("%s: amazon-bedrock-invocationMetrics reached the client: %s", text, evB[i].Data)
			}
		}
		for _, h := range []string{"content-type", "cache-control"} {
			if respA.Header.Get(h) != respB.Header.Get(h) {
				t.Fatalf("%s: unexpected %s through bedrock; got %q; want %q", text, h, respB.Header.Get(h), respA.Header.Get(h))
			}
		}
		if ca.Charged != cb.Charged || ca.Outcome != cb.Outcome || ca.InputTokens != cb.InputTokens || ca.OutputTokens != cb.OutputTokens ||
			ca.CacheCreation1hInputTokens != cb.CacheCreation1hInputTokens || ca.CacheReadInputTokens != cb.CacheReadInputTokens || ca.WebSearchRequests != cb.WebSearchRequests {
			t.Fatalf("%s: unexpected bedrock call record %+v; want the charge and usage of %+v", text, cb, ca)
		}
		if cb.Upstream != "bedrock" || ca.Upstream != "anthropic" || len(cb.Attempts) != 1 || cb.Attempts[0].Upstream != "bedrock" || cb.Attempts[0].Status != 200 {
			t.Fatalf("%s: unexpected upstreams recorded; got %q %+v and %q", text, cb.Upstream, cb.Attempts, ca.Upstream)
		}
		if cb.UpstreamCost != ca.UpstreamCost || cb.UpstreamCost == "" {
			t.Fatalf("%s: unexpected upstream cost; got %q through bedrock; want %q (the catalogue's global profile is at list price)", text, cb.UpstreamCost, ca.UpstreamCost)
		}
		if cb.UpstreamRequestID == "" {
			t.Fatalf("%s: no upstream request ID recorded", text)
		}
	}

	// The official SDK, streaming and not, gets the same Message.
	sdkA, sdkB := ha.sdkClient(aa.Key), hb.sdkClient(ab.Key)
	params := anthropic.MessageNewParams{Model: testModel, MaxTokens: 2048, Thinking: anthropic.ThinkingConfigParamOfEnabled(1024),
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Think then call [[sim:thinking=4,tool_use]]"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"query": map[string]any{"type": "string"}}}}}}}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	accumulate := func(c anthropic.Client) (anthropic.Message, string) {
		var resp *http.Response
		stream := c.Messages.NewStreaming(ctx, params, option.WithResponseInto(&resp))
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
		return acc, resp.Header.Get("request-id")
	}
	streamA, idA := accumulate(sdkA)
	streamB, idB := accumulate(sdkB)
	if !strings.HasPrefix(streamB.ID, "msg_bdrk_") {
		t.Fatalf("unexpected bedrock message ID %q", streamB.ID)
	}
	if a, b := rawWithoutID(t, streamA.RawJSON()), rawWithoutID(t, streamB.RawJSON()); !reflect.DeepEqual(a, b) {
		t.Fatalf("unexpected streamed message through bedrock; got %s; want %s", streamB.RawJSON(), streamA.RawJSON())
	}
	if ra, rb := ha.waitCall(idA), hb.waitCall(idB); ra.Charged != rb.Charged || rb.Outcome != "ok" {
		t.Fatalf("unexpected bedrock charge %s (%s); want %s", rb.Charged, rb.Outcome, ra.Charged)
	}
	msgA, err := sdkA.Messages.New(ctx, params)
	if err != nil {
		t.Fatalf("unexpected error through anthropic: %s", err)
	}
	msgB, err := sdkB.Messages.New(ctx, params)
	if err != nil {
		t.Fatalf("unexpected error through bedrock: %s", err)
	}
	if a, b := rawWithoutID(t, msgA.RawJSON()), rawWithoutID(t, msgB.RawJSON()); !reflect.DeepEqual(a, b) {
		t.Fatalf("unexpected message through bedrock; got %s; want %s", msgB.RawJSON(), msgA.RawJSON())
	}
	if a, b := rawWithoutID(t, streamA.RawJSON()), rawWithoutID(t, msgA.RawJSON()); !reflect.DeepEqual(a["usage"], b["usage"]) {
		t.Fatalf("unexpected usage difference between streamed and not; got %v and %v", a["usage"], b["usage"])
	}
}

// TestBedrockRequestRewrite: what reaches Bedrock is the SDKs' rewrite of
// the client's request, signed: anthropic_version, the anthropic-beta values
// as anthropic_beta, no model or stream, the escaped model ID in the path,
// the operation by stream.
func TestBedrockRequestRewrite(t *testing.T) {
	h, b := newBedrockHarness(t)
	a := h.newAccount("10")
	for _, stream := range []bool{true, false} {
		body := []byte(`{"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,"model":"claude-haiku-4-5","max_tokens":50,` +
			`"metadata":{"user_id":"u-1"},"messages":[{"role":"user","content":"Hi there"}],"temperature":0.5}`)
		resp, got := h.post("/v1/messages", a.Key, body, map[string]string{"Anthropic-Beta": "context-management-2025-06-27, fine-grained-tool-streaming-2025-05-14"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unexpected status %d; body %s", resp.StatusCode, got)
		}
		ri := b.lastRequest()
		op := "invoke"
		if stream {
			op = "invoke-with-response-stream"
		}
		if ri.Path != "/model/"+testBedrockModelID+"/"+op {
			t.Fatalf("unexpected bedrock path %q", ri.Path)
		}
		var sent map[string]any
		if err := json.Unmarshal(ri.Body, &sent); err != nil {
			t.Fatalf("cannot decode the body sent to bedrock %s: %s", ri.Body, err)
		}
		want := map[string]any{
			"anthropic_version": "bedrock-2023-05-31",
			"anthropic_beta":    []any{"context-management-2025-06-27", "fine-grained-tool-streaming-2025-05-14"},
			"max_tokens":        50.0, "temperature": 0.5, "metadata": map[string]any{"user_id": "u-1"},
			"messages": []any{map[string]any{"role": "user", "content": "Hi there"}},
		}
		if !reflect.DeepEqual(sent, want) {
			t.Fatalf("unexpected body sent to bedrock; got %s; want %v", ri.Body, want)
		}
		if auth := ri.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+simulator.TestAWSCredentials.AccessKeyID+"/") ||
			!strings.Contains(auth, "/us-east-1/bedrock/aws4_request") {
			t.Fatalf("unexpected authorization %q", auth)
		}
		for _, hd := range []string{"Anthropic-Beta", "Anthropic-Version", "X-Api-Key"} {
			if v := ri.Header.Get(hd); v != "" {
				t.Fatalf("unexpected %s %q sent to bedrock", hd, v)
			}
		}
	}
}

// TestBedrockModelIDs: inference profile IDs with ':' and ARNs with '/' are
// escaped into one path segment, and the SigV4 signature over them holds.
func TestBedrockModelIDs(t *testing.T) {
	b := startBedrockSim(t, "")
	for _, id := range []string{
		"us.anthropic.claude-haiku-4-5-20251001-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
	} {
		cat := catalogueWithBedrockID(t, id)
		h := newHarness(t, withUpstreams(bedrockUpstream("bedrock", b.url)))
		h.g.SetCatalogue(cat)
		a := h.newAccount("10")
		resp, evs, c := h.streamCall(a, messagesBody("hello there", 20, true))
		if c.Outcome != "ok" || countEvents(evs, "message_stop") != 1 {
			t.Fatalf("%s: unexpected call %+v; events %v; status %d", id, c, eventNames(evs), resp.StatusCode)
		}
		if got := b.lastRequest().Path; got != "/model/"+id+"/invoke-with-response-stream" {
			t.Fatalf("%s: unexpected decoded path %q", id, got)
		}
	}
}

// TestBedrockBearerToken: a Bedrock API key is sent as a bearer token; a
// wrong one is the platform's credential problem: 503 upstream unavailable.
func TestBedrockBearerToken(t *testing.T) {
	b := startBedrockSim(t, "bedrock-api-key-1")
	up := upstream.Config{Name: "bedrock", Kind: upstream.KindBedrock, BaseURL: b.url, Region: "us-east-1", BearerToken: "bedrock-api-key-1"}
	h := newHarness(t, withUpstreams(up))
	a := h.newAccount("10")
	_, evs, c := h.streamCall(a, messagesBody("hello there", 20, true))
	if c.Outcome != "ok" || countEvents(evs, "message_stop") != 1 {
		t.Fatalf("unexpected call %+v", c)
	}
	if auth := b.lastRequest().Header.Get("Authorization"); auth != "Bearer bedrock-api-key-1" {
		t.Fatalf("unexpected authorization %q", auth)
	}

	up.BearerToken = "wrong"
	h = newHarness(t, withUpstreams(up))
	a = h.newAccount("10")
	resp, body := h.post("/v1/messages", a.Key, messagesBody("hello there", 20, true), nil)
	if msg := checkError(t, resp, body, http.StatusServiceUnavailable, "overloaded_error"); msg != "upstream unavailable" {
		t.Fatalf("unexpected message %q", msg)
	}
}

// TestBedrockWrongSignature: credentials Bedrock does not accept are the
// platform's problem: 503 upstream unavailable, nothing charged.
func TestBedrockWrongSignature(t *testing.T) {
	b := startBedrockSim(t, "")
	wrong := simulator.TestAWSCredentials
	wrong.SecretAccessKey = "not-the-secret"
	up := bedrockUpstream("bedrock", b.url)
	up.AWSCredentials = staticCredentials(wrong)
	h := newHarness(t, withUpstreams(up))
	a := h.newAccount("10")
	resp, body := h.post("/v1/messages", a.Key, messagesBody("hello there", 20, true), nil)
	checkError(t, resp, body, http.StatusServiceUnavailable, "overloaded_error")
	c := h.waitCall(resp.Header.Get("request-id"))
	h.checkVoided(a, c, "upstream_error", http.StatusServiceUnavailable)
	if len(c.Attempts) != 1 || c.Attempts[0].Status != 403 || c.Attempts[0].ErrorType != "InvalidSignatureException" {
		t.Fatalf("unexpected attempts %+v", c.Attempts)
	}
}

// TestBedrockErrorsBeforeStream: Bedrock's exceptions before the stream map
// to the contract's statuses and types; nothing is charged.
func TestBedrockErrorsBeforeStream(t *testing.T) {
	h, _ := newBedrockHarness(t)
	a := h.newAccount("10")
	f := func(directive string, status int, typ, exception string) {
		t.Helper()
		for _, stream := range []bool{true, false} {
			resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:"+directive+"]]", 100, stream), nil)
			checkError(t, resp, body, status, typ)
			c := h.waitCall(resp.Header.Get("request-id"))
			h.checkVoided(a, c, "upstream_error", status)
			if len(c.Attempts) != 1 || c.Attempts[0].ErrorType != exception {
				t.Fatalf("%s: unexpected attempts %+v; want one with error_type %s", directive, c.Attempts, exception)
			}
		}
	}
	f("status=429", http.StatusTooManyRequests, "rate_limit_error", "ThrottlingException")
	f("status=504", http.StatusGatewayTimeout, "timeout_error", "ModelTimeoutException")
	f("status=400", http.StatusBadRequest, "invalid_request_error", "ValidationException")
	f("status=403", http.StatusServiceUnavailable, "overloaded_error", "AccessDeniedException")
	f("status=404", http.StatusServiceUnavailable, "overloaded_error", "ResourceNotFoundException")
	f("status=400,error_type=ServiceQuotaExceededException", http.StatusServiceUnavailable, "overloaded_error", "ServiceQuotaExceededException")
	f("status=500", http.StatusInternalServerError, "api_error", "InternalServerException")
	f("status=424", http.StatusInternalServerError, "api_error", "ModelErrorException")
	f("status=503", 529, "overloaded_error", "ServiceUnavailableException")
}

// TestBedrockStreamException: an exception frame mid-stream reaches the
// client as event: error after the events before it; the call ends as
// stream_error, charged the usage reported.
func TestBedrockStreamException(t *testing.T) {
	h, _ := newBedrockHarness(t)
	a := h.newAccount("10")
	f := func(directive, typ, message string) {
		t.Helper()
		body := messagesBody("one two three four five [[sim:"+directive+"]]", 100, true)
		_, evs, c := h.streamCall(a, body)
		want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"}
		if strings.Join(eventNames(evs), ",") != strings.Join(want, ",") {
			t.Fatalf("%s: unexpected events; got %v; want %v", directive, eventNames(evs), want)
		}
		var e apiError
		if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &e); err != nil || e.Error.Type != typ || e.Error.Message != message || e.RequestID == nil || *e.RequestID != c.RequestID {
			t.Fatalf("%s: unexpected error event %s; want %s %q", directive, evs[len(evs)-1].Data, typ, message)
		}
		u := expectedStartUsage(t, body)
		checkRecordUsage(t, c, u)
		h.checkSettled(a, c, "stream_error", haikuPrice(u))
	}
	// The exception's own message never passes: it can name the platform's
	// AWS resources.
	const overloaded, failed = "the upstream is overloaded; retry later", "the upstream failed to process the request"
	f("error_after=2", "overloaded_error", overloaded)
	f("error_after=2,error_type=throttlingException,message=Too many tokens", "overloaded_error", overloaded)
	f("error_after=2,error_type=modelStreamErrorException,message=Model failed in arn:aws:bedrock:us-east-1:123456789012", "api_error", failed)
	f("error_after=2,error_type=internalServerException", "api_error", failed)
}

// TestBedrockBadFrames: a frame that fails its CRC, a frame cut short, and
// bytes that are no event stream end the call as stream_error with an
// appended api_error, and the gateway goes on serving.
func TestBedrockBadFrames(t *testing.T) {
	h, _ := newBedrockHarness(t)
	a := h.newAccount("10")
	for _, directive := range []string{"garbage_after=2", "truncate_after=2", "truncate_after=2,split=odd", "garbage_after=0,split=7"} {
		body := messagesBody("one two three four five [[sim:"+directive+"]]", 100, true)
		resp, evs, c := h.streamCall(a, body)
		if directive != "garbage_after=0,split=7" && countEvents(evs, "content_block_delta") != 2 {
			t.Fatalf("%s: unexpected events before the bad frame; got %v", directive, eventNames(evs))
		}
		checkAppendedError(t, resp, evs, "api_error")
		if c.Outcome != "stream_error" || c.Status != 200 {
			t.Fatalf("%s: unexpected outcome/status; got %q/%d; want stream_error/200", directive, c.Outcome, c.Status)
		}
		start := expectedStartUsage(t, body)
		u := start
		u.OutputTokens = c.OutputTokens
		if c.InputTokens != start.InputTokens || c.OutputTokens < start.OutputTokens {
			t.Fatalf("%s: unexpected usage %d/%d", directive, c.InputTokens, c.OutputTokens)
		}
		h.checkSettled(a, c, "stream_error", haikuPrice(u))
	}
	// A body that is no event stream at all.
	resp, evs, c := h.streamCall(a, messagesBody("hello [[sim:garbage]]", 100, true))
	checkAppendedError(t, resp, evs, "api_error")
	h.checkSettled(a, c, "stream_error", 0)
	// Still serving.
	_, evs, c = h.streamCall(a, messagesBody("hello again", 100, true))
	if c.Outcome != "ok" || countEvents(evs, "message_stop") != 1 {
		t.Fatalf("unexpected call after bad frames: %+v", c)
	}
}

// TestBedrockShapedStreamsPriced: Bedrock-shaped streams (message_delta
// with output_tokens only, the metrics on message_stop) with cache writes,
// reads and searches are priced exactly, streaming and not, split anywhere.
func TestBedrockShapedStreamsPriced(t *testing.T) {
	h, _ := newBedrockHarness(t)
	a := h.newAccount("100")
	for _, d := range []string{
		"old_usage",
		"old_usage,cache=5m,cache_write=1234,cache_read=98765",
		"old_usage,cache=1h,cache_write=4321,cache_read=5,words=40,chunk=7",
		"old_usage,split=odd,thinking=5,cache_write=10",
		"cache=1h,cache_write=77,input=123456",
	} {
		for _, stream := range []bool{true, false} {
			body := messagesBody("Price me exactly [[sim:"+d+"]]", 300, stream)
			before := h.balance(a)
			resp, got := h.post("/v1/messages", a.Key, body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: unexpected status %d: %s", d, resp.StatusCode, got)
			}
			c := h.waitCall(resp.Header.Get("request-id"))
			u := expectedUsage(t, body)
			checkRecordUsage(t, c, u)
			price := haikuPrice(u)
			h.checkSettled(a, c, "ok", price)
			if after := h.balance(a); before.Available-after.Available != price || after.Held != 0 {
				t.Fatalf("%s: unexpected balance change %d; want %d", d, before.Available-after.Available, price)
			}
		}
	}
}

// catalogueWithBedrockID is the shipped catalogue with testModel's Bedrock
// ID replaced by id.
func catalogueWithBedrockID(t *testing.T, id string) *meter.Catalogue {
	t.Helper()
	data, err := os.ReadFile("../configs/models.yaml")
	if err != nil {
		t.Fatalf("cannot read the catalogue: %s", err)
	}
	old := "bedrock: {id: " + testBedrockModelID + "}"
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("no %q in the catalogue", old)
	}
	cat, err := meter.ParseCatalogue(bytes.Replace(data, []byte(old), []byte(`bedrock: {id: "`+id+`"}`), 1))
	if err != nil {
		t.Fatalf("cannot parse the catalogue: %s", err)
	}
	return cat
}

// TestBedrockClientDisconnect: a client that leaves a Bedrock stream is
// charged the full usage, read by draining and decoding the event stream;
// with the abort policy the output is estimated from what was decoded.
func TestBedrockClientDisconnect(t *testing.T) {
	h, b := newBedrockHarness(t)
	a := h.newAccount("10")
	id := h.disconnect(a)
	c := h.waitCall(id)
	u := expectedUsage(t, disconnectBody)
	checkRecordUsage(t, c, u)
	h.checkSettled(a, c, "client_disconnected", haikuPrice(u))
	if c.UsageEstimated || b.sim.Stats().Completed != 1 {
		t.Fatalf("unexpected drain: usage_estimated %v, upstream streams completed %d", c.UsageEstimated, b.sim.Stats().Completed)
	}

	h, _ = newBedrockHarness(t, withConfig(func(c *proxy.Config) { c.DisconnectPolicy = proxy.PolicyAbort }))
	a = h.newAccount("10")
	c = h.waitCall(h.disconnect(a))
	start := expectedStartUsage(t, disconnectBody)
	if c.Outcome != "client_disconnected" || !c.UsageEstimated || c.InputTokens != start.InputTokens || c.OutputTokens <= start.OutputTokens {
		t.Fatalf("unexpected aborted call %+v", c)
	}
}

// TestBedrockIdleTimeout: a Bedrock stream that falls silent mid-frame or
// between frames ends with an appended timeout_error, outcome timeout,
// charged what it reported plus what it streamed since.
func TestBedrockIdleTimeout(t *testing.T) {
	h, _ := newBedrockHarness(t, withShortTimeouts())
	a := h.newAccount("10")
	body := messagesBody("one two three four five [[sim:hang_after=2,split=5]]", 100, true)
	resp, evs, c := h.streamCall(a, body)
	if n := countEvents(evs, "content_block_delta"); n != 2 {
		t.Fatalf("unexpected events before the timeout; got %v", eventNames(evs))
	}
	checkAppendedError(t, resp, evs, "timeout_error")
	u := timeoutUsage(t, body, evs, 100)
	checkRecordUsage(t, c, u)
	h.checkSettled(a, c, "timeout", haikuPrice(u))
}
