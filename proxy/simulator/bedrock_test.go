package simulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/bedrock"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const testBedrockModel = "global.anthropic.claude-haiku-4-5-20251001-v1:0"

// startBedrockSim serves a Bedrock-mode simulator checking signatures by
// TestAWSCredentials in us-east-1 (and bearer tokens equal to apiKey).
func startBedrockSim(t *testing.T, apiKey string) (*Simulator, string) {
	return startSim(t, Config{Mode: ModeBedrock, AWSCredentials: TestAWSCredentials, AWSRegion: "us-east-1", APIKey: apiKey})
}

// bedrockSDKClient is the official Go SDK's Bedrock client pointed at url,
// signing with creds.
func bedrockSDKClient(t *testing.T, url string, creds aws.Credentials) anthropic.Client {
	t.Helper()
	for _, k := range []string{"AWS_BEARER_TOKEN_BEDROCK", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"} {
		t.Setenv(k, "")
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })}
	return anthropic.NewClient(
		bedrock.WithConfig(cfg),
		option.WithBaseURL(url),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newClient(t)),
	)
}

// TestBedrockSDK: the Anthropic Go SDK's own Bedrock client (SigV4, its
// request rewrite, its event-stream decoder) gets from Bedrock mode the
// same Message as the Anthropic client gets from Anthropic mode, streamed
// and not, but for the message ID.
func TestBedrockSDK(t *testing.T) {
	_, url := startBedrockSim(t, "")
	bc := bedrockSDKClient(t, url, TestAWSCredentials)
	ac, _ := sdkClient(t)
	ctx := context.Background()
	for _, text := range []string{
		"Say hello twice [[sim:words=9,chunk=2]]",
		"Think then call [[sim:thinking=5,tool_use,cache=1h,cache_write=40,cache_read=60]]",
		"Older shape [[sim:old_usage]]",
		"Split frames [[sim:split=odd,words=30]]",
	} {
		params := userParams(text, 400)
		want, err := ac.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("%s: unexpected anthropic-mode error: %s", text, err)
		}
		params.Model = testBedrockModel
		got, err := bc.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("%s: unexpected bedrock-mode error: %s", text, err)
		}
		if !strings.HasPrefix(got.ID, "msg_bdrk_") {
			t.Fatalf("unexpected message ID %q", got.ID)
		}
		if w, g := rawWithoutID(t, want.RawJSON()), rawWithoutID(t, got.RawJSON()); !reflect.DeepEqual(w, g) {
			t.Fatalf("%s: unexpected message; got %s; want %s", text, got.RawJSON(), want.RawJSON())
		}
		stream := bc.Messages.NewStreaming(ctx, params)
		var acc anthropic.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatalf("cannot accumulate: %s", err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("%s: unexpected stream error: %s", text, err)
		}
		if w, g := rawWithoutID(t, want.RawJSON()), rawWithoutID(t, acc.RawJSON()); !reflect.DeepEqual(w, g) {
			t.Fatalf("%s: unexpected streamed message; got %s; want %s", text, acc.RawJSON(), want.RawJSON())
		}
	}

	// A mid-stream exception reaches the SDK as an error.
	stream := bc.Messages.NewStreaming(ctx, userParams("one two three [[sim:error_after=1,error_type=throttlingException]]", 100))
	for stream.Next() {
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "throttlingException") {
		t.Fatalf("unexpected stream error %v; want the exception", err)
	}

	// Wrong credentials are refused as AWS refuses them.
	wrong := TestAWSCredentials
	wrong.SecretAccessKey = "wrong"
	wc := bedrockSDKClient(t, url, wrong)
	_, err := wc.Messages.New(ctx, userParams("hello", 10))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("unexpected result with a wrong secret: %v", err)
	}
}

// signedRequest builds a request to the Bedrock simulator signed by creds.
func signedRequest(t *testing.T, url, path string, body []byte, creds aws.Credentials, region string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, at); err != nil {
		t.Fatal(err)
	}
	return req
}

// bedrockFrames decodes an event stream with the AWS SDK's decoder (CRCs
// checked) into its messages, and the error that ended it (io.EOF when
// clean).
func bedrockFrames(body []byte) ([]eventstream.Message, error) {
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(body)
	var out []eventstream.Message
	for {
		m, err := dec.Decode(r, nil)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// chunkEvent returns the event JSON a chunk frame carries.
func chunkEvent(t *testing.T, m eventstream.Message) string {
	t.Helper()
	var c struct {
		Bytes string `json:"bytes"`
		P     string `json:"p"`
	}
	if err := json.Unmarshal(m.Payload, &c); err != nil || c.P == "" {
		t.Fatalf("unexpected chunk payload %s", m.Payload)
	}
	b, err := base64.StdEncoding.DecodeString(c.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBedrockWire: the frames, headers and errors of Bedrock mode, seen
// through a plain HTTP client signing with the AWS SDK.
func TestBedrockWire(t *testing.T) {
	_, url := startBedrockSim(t, "api-key-1")
	c := newClient(t)
	now := time.Now()
	do := func(req *http.Request) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"one two three [[sim:cache_read=5]]"}]}`)
	path := "/model/" + strings.ReplaceAll(testBedrockModel, ":", "%3A") + "/invoke-with-response-stream"
	resp, got := do(signedRequest(t, url, path, body, TestAWSCredentials, "us-east-1", now))
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/vnd.amazon.eventstream" || resp.Header.Get("x-amzn-requestid") == "" {
		t.Fatalf("unexpected response %d %v: %q", resp.StatusCode, resp.Header, got)
	}
	frames, err := bedrockFrames(got)
	if err != io.EOF || len(frames) < 6 {
		t.Fatalf("unexpected frames: %d, %v", len(frames), err)
	}
	var events []string
	for _, f := range frames {
		if f.Headers.Get(":message-type").String() != "event" || f.Headers.Get(":event-type").String() != "chunk" ||
			f.Headers.Get(":content-type").String() != "application/json" {
			t.Fatalf("unexpected frame headers %v", f.Headers)
		}
		events = append(events, chunkEvent(t, f))
	}
	last := events[len(events)-1]
	if !strings.HasPrefix(last, `{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":5,"outputTokenCount":3,`) ||
		!strings.Contains(last, `"cacheReadInputTokenCount":5}`) {
		t.Fatalf("unexpected message_stop %s", last)
	}
	if !strings.Contains(events[0], `"model":"claude-haiku-4-5-20251001"`) || !strings.Contains(events[0], `"id":"msg_bdrk_`) {
		t.Fatalf("unexpected message_start %s", events[0])
	}

	// Non-streaming, with the Bedrock API key as a bearer token.
	req, _ := http.NewRequest(http.MethodPost, url+"/model/"+testBedrockModel+"/invoke", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer api-key-1")
	resp, got = do(req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Amzn-Bedrock-Output-Token-Count") != "3" || !bytes.Contains(got, []byte(`"cache_read_input_tokens":5`)) {
		t.Fatalf("unexpected non-streaming reply %d %v %s", resp.StatusCode, resp.Header, got)
	}

	f := func(name string, req *http.Request, status int, exception string) {
		t.Helper()
		resp, got := do(req)
		if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("x-amzn-errortype"), exception+":") {
			t.Fatalf("%s: unexpected answer %d %q %s; want %d %s", name, resp.StatusCode, resp.Header.Get("x-amzn-errortype"), got, status, exception)
		}
		var e struct{ Message string }
		if json.Unmarshal(got, &e) != nil {
			t.Fatalf("%s: unexpected body %s", name, got)
		}
	}
	wrong := TestAWSCredentials
	wrong.SecretAccessKey = "x"
	f("wrong secret", signedRequest(t, url, path, body, wrong, "us-east-1", now), 403, "InvalidSignatureException")
	wrong = TestAWSCredentials
	wrong.AccessKeyID = "AKIDOTHER"
	f("unknown key", signedRequest(t, url, path, body, wrong, "us-east-1", now), 403, "UnrecognizedClientException")
	f("other region", signedRequest(t, url, path, body, TestAWSCredentials, "eu-west-1", now), 403, "InvalidSignatureException")
	f("old signature", signedRequest(t, url, path, body, TestAWSCredentials, "us-east-1", now.Add(-10*time.Minute)), 403, "InvalidSignatureException")
	tampered := signedRequest(t, url, path, body, TestAWSCredentials, "us-east-1", now)
	tampered.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte("50"), []byte("99"), 1)))
	f("tampered body", tampered, 403, "InvalidSignatureException")
	unsigned, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	f("unsigned", unsigned, 403, "MissingAuthenticationTokenException")
	bearer, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	bearer.Header.Set("Authorization", "Bearer wrong")
	f("wrong bearer", bearer, 403, "UnrecognizedClientException")
	forged := func(credential, amzDate string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+credential+", SignedHeaders=host;x-amz-date, Signature=00")
		req.Header.Set("X-Amz-Date", amzDate)
		return req
	}
	amzNow := now.UTC().Format("20060102T150405Z")
	f("no scope", forged("AKIDTOLLGATESIMULATOR", amzNow), 403, "IncompleteSignatureException")
	f("other service", forged("AKIDTOLLGATESIMULATOR/20260101/us-east-1/s3/aws4_request", amzNow), 403, "InvalidSignatureException")
	f("no date", forged("AKIDTOLLGATESIMULATOR/20260101/us-east-1/bedrock/aws4_request", ""), 403, "IncompleteSignatureException")
	f("forged signature", forged("AKIDTOLLGATESIMULATOR/20260101/us-east-1/bedrock/aws4_request", amzNow), 403, "InvalidSignatureException")
	f("unknown operation", signedRequest(t, url, "/model/x/converse", body, TestAWSCredentials, "us-east-1", now), 404, "UnknownOperationException")
	sign := func(b string) *http.Request {
		return signedRequest(t, url, path, []byte(b), TestAWSCredentials, "us-east-1", now)
	}
	f("model in the body", sign(`{"anthropic_version":"bedrock-2023-05-31","model":"x","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`), 400, "ValidationException")
	f("stream in the body", sign(`{"anthropic_version":"bedrock-2023-05-31","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`), 400, "ValidationException")
	f("no version", sign(`{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`), 400, "ValidationException")
	f("betas not a list", sign(`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":"x","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`), 400, "ValidationException")
	f("no max_tokens", sign(`{"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"x"}]}`), 400, "ValidationException")
	directive := func(d string) *http.Request {
		return sign(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"x [[sim:` + d + `]]"}]}`)
	}
	f("throttled", directive("status=429"), 429, "ThrottlingException")
	f("model timeout", directive("status=504"), 408, "ModelTimeoutException")
	f("access", directive("status=403"), 403, "AccessDeniedException")
	f("quota", directive("status=400,error_type=ServiceQuotaExceededException"), 400, "ServiceQuotaExceededException")
	f("internal", directive("status=500"), 500, "InternalServerException")

	// Mid-stream faults: an exception frame; a frame failing its CRC.
	_, got = do(directive("error_after=1,error_type=modelStreamErrorException,message=boom"))
	frames, err = bedrockFrames(got)
	if err != io.EOF || len(frames) == 0 {
		t.Fatalf("unexpected frames of error_after: %v", err)
	}
	ex := frames[len(frames)-1]
	if ex.Headers.Get(":message-type").String() != "exception" || ex.Headers.Get(":exception-type").String() != "modelStreamErrorException" || string(ex.Payload) != `{"message":"boom"}` {
		t.Fatalf("unexpected exception frame %v %s", ex.Headers, ex.Payload)
	}
	_, got = do(directive("garbage_after=1"))
	var crc eventstream.ChecksumError
	if _, err := bedrockFrames(got); !errors.As(err, &crc) {
		t.Fatalf("unexpected end of garbage_after: %v; want a checksum error", err)
	}
}

// TestBedrockModelName: the model a reply names for a Bedrock model ID.
func TestBedrockModelName(t *testing.T) {
	f := func(id, want string) {
		t.Helper()
		if got := bedrockModelName(id); got != want {
			t.Fatalf("unexpected model name of %s; got %q; want %q", id, got, want)
		}
	}
	f("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001")
	f("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1-20250805")
	f("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307")
	f("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6")
	f("global.anthropic.claude-sonnet-5", "claude-sonnet-5")
	f("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514")
	f("my-model", "my-model")
}

// TestParseBedrockPath: the model ID and operation of a raw request URI.
func TestParseBedrockPath(t *testing.T) {
	f := func(uri, wantID string, wantStream, wantOK bool) {
		t.Helper()
		id, stream, ok := parseBedrockPath([]byte(uri))
		if id != wantID || stream != wantStream || ok != wantOK {
			t.Fatalf("unexpected parse of %s; got %q %v %v; want %q %v %v", uri, id, stream, ok, wantID, wantStream, wantOK)
		}
	}
	f("/model/a.b-v1:0/invoke", "a.b-v1:0", false, true)
	f("/model/a.b-v1%3A0/invoke-with-response-stream?x=1", "a.b-v1:0", true, true)
	f("/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.x/invoke", "arn:aws:bedrock:us-east-1:1:inference-profile/us.x", false, true)
	f("/model/a/b/invoke", "", false, false)
	f("/model//invoke", "", false, false)
	f("/model/x/converse", "", false, false)
	f("/v1/messages", "", false, false)
	f("/model/%zz/invoke", "", false, false)
}

// TestBedrockRefusalsBeforeTheHandler: the answers that do not come from a
// parsed request (a body over the limit refused by Serve's server, requests
// after Shutdown began, a non-streaming wait ended by Shutdown) are
// Bedrock's too, not Anthropic's.
func TestBedrockRefusalsBeforeTheHandler(t *testing.T) {
	checkBedrockError := func(name string, resp *http.Response, body []byte, status int, exception string) {
		t.Helper()
		if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("x-amzn-errortype"), exception+":") {
			t.Fatalf("%s: unexpected answer %d %q %s; want %d %s", name, resp.StatusCode, resp.Header.Get("x-amzn-errortype"), body, status, exception)
		}
		if resp.Header.Get("x-amzn-requestid") == "" || resp.Header.Get("request-id") != "" || resp.Header.Get("anthropic-organization-id") != "" {
			t.Fatalf("%s: unexpected headers %v", name, resp.Header)
		}
		var e struct{ Message string }
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			t.Fatalf("%s: unexpected body %s", name, body)
		}
	}
	path := "/model/" + testBedrockModel + "/invoke"
	bedrockBody := func(text string) []byte {
		return []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"` + text + `"}]}`)
	}

	s, url := startSim(t, Config{Mode: ModeBedrock, MaxBodySize: 1000})
	c := newClient(t)
	resp, got := post(t, c, url+path, bedrockBody(strings.Repeat("word ", 400)), nil)
	checkBedrockError("body too large", resp, got, 413, "ValidationException")
	// Shut down the simulator's state but keep its server answering with
	// the handler: requests get 503.
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	resp, got = post(t, c, url+path, bedrockBody("hi"), nil)
	checkBedrockError("after Shutdown", resp, got, 503, "ServiceUnavailableException")

	// A non-streaming reply waiting out its delay when Shutdown begins.
	s, url = startSim(t, Config{Mode: ModeBedrock})
	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := c.Post(url+path, "application/json", bytes.NewReader(bedrockBody("a b c [[sim:delay=5m]]")))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp, b, err}
	}()
	waitFor(t, "the request to wait", func() bool { return s.Stats().InFlight == 1 })
	if err := s.Shutdown(); err != nil {
		t.Fatalf("unexpected Shutdown error: %s", err)
	}
	a := <-answered
	if a.err != nil {
		t.Fatalf("unexpected error of the waiting request: %s", a.err)
	}
	checkBedrockError("wait ended by Shutdown", a.resp, a.body, 503, "ServiceUnavailableException")
}

// TestBedrockFaults: the directives' failures in Bedrock mode, each framed
// as Bedrock frames it, and the counters they move.
func TestBedrockFaults(t *testing.T) {
	s, url := startSim(t, Config{Mode: ModeBedrock, MaxHang: 200 * time.Millisecond})
	c := newClient(t)
	send := func(text string, stream bool) (*http.Response, []byte, error) {
		t.Helper()
		op := "/invoke"
		if stream {
			op = "/invoke-with-response-stream"
		}
		body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"one two three [[sim:` + text + `]]"}]}`
		resp, err := c.Post(url+"/model/"+testBedrockModel+op, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: cannot POST: %s", text, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	wantType := func(name string, resp *http.Response, contentType string) {
		t.Helper()
		if resp.StatusCode != 200 || resp.Header.Get("content-type") != contentType || resp.Header.Get("x-amzn-requestid") == "" {
			t.Fatalf("%s: unexpected response %d %v", name, resp.StatusCode, resp.Header)
		}
	}

	resp, got, _ := send("json_error_200", true)
	wantType("json_error_200", resp, "application/json")
	if !bytes.Contains(got, []byte(`"type":"overloaded_error"`)) {
		t.Fatalf("unexpected json_error_200 body %s", got)
	}
	resp, got, _ = send("garbage", true)
	wantType("garbage", resp, bedrockStreamContentType)
	if !bytes.Equal(got, garbageBytes) {
		t.Fatalf("unexpected garbage body %q", got)
	}
	resp, got, _ = send("garbage", false)
	wantType("garbage (not streaming)", resp, "application/json")
	if !bytes.Equal(got, garbageBytes) {
		t.Fatalf("unexpected garbage body %q", got)
	}
	resp, got, _ = send("padded", false)
	wantType("padded", resp, "application/json")
	if !bytes.HasSuffix(got, []byte("         }")) {
		t.Fatalf("unexpected padded body %s", got)
	}

	// truncate_after: whole frames, then half of one, then the connection closes.
	resp, got, err := send("truncate_after=1", true)
	wantType("truncate_after", resp, bedrockStreamContentType)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected end of truncate_after; got %v; want %v", err, io.ErrUnexpectedEOF)
	}
	frames, err := bedrockFrames(got)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(frames) != 4 {
		t.Fatalf("unexpected frames of truncate_after: %d, %v", len(frames), err)
	}
	// hang_after: whole frames, then silence until MaxHang closes the connection.
	resp, got, err = send("hang_after=1", true)
	wantType("hang_after", resp, bedrockStreamContentType)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected end of hang_after; got %v; want %v", err, io.ErrUnexpectedEOF)
	}
	if frames, err := bedrockFrames(got); err != io.EOF || len(frames) != 4 {
		t.Fatalf("unexpected frames of hang_after: %d, %v", len(frames), err)
	}
	// split and ttfb leave the frames as they are.
	_, want, _ := send("words=9", true)
	_, got, _ = send("words=9,split=7,ttfb=10ms", true)
	wantFrames, _ := bedrockFrames(want)
	frames, err = bedrockFrames(got)
	if err != io.EOF || len(frames) != len(wantFrames) || len(frames) < 10 {
		t.Fatalf("unexpected frames of split: %d, %v; want %d", len(frames), err, len(wantFrames))
	}
	for i := range frames {
		if g, w := chunkEvent(t, frames[i]), chunkEvent(t, wantFrames[i]); !strings.Contains(g, `"msg_bdrk_sim_`) && g != w {
			t.Fatalf("unexpected event %d of split; got %s; want %s", i, g, w)
		}
	}
	// hang=headers: no answer until MaxHang closes the connection.
	req, _ := http.NewRequest(http.MethodPost, url+"/model/"+testBedrockModel+"/invoke",
		strings.NewReader(`{"anthropic_version":"x","max_tokens":5,"messages":[{"role":"user","content":"[[sim:hang=headers]]"}]}`))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("unexpected answer to hang=headers: %d", resp.StatusCode)
	}

	waitFor(t, "in-flight requests to end", func() bool { return s.Stats().InFlight == 0 })
	wantStats := Stats{Requests: 9, Messages: 9, Streams: 6, Injected: 6, Completed: 3}
	if st := s.Stats(); st != wantStats {
		t.Fatalf("unexpected stats; got %+v; want %+v", st, wantStats)
	}
}
