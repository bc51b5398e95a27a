package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// Claude on AWS Bedrock as an upstream.
//
// A call to a bedrock upstream is the client's Messages request rewritten as
// the official SDKs do it: the body loses model and stream (the model goes
// in the path, stream picks the operation) and gains anthropic_version
// "bedrock-2023-05-31" and the anthropic-beta header values as an
// anthropic_beta array (meter.AppendBedrockBody); the path is /model/{escaped model ID}/invoke or
// /invoke-with-response-stream. It is signed last, with SigV4 over the
// rewritten body, or carries a Bedrock API key as a bearer token.
//
// A non-streaming reply is Anthropic's Message JSON and takes the same path
// as one from Anthropic's API. A streaming reply is AWS event-stream frames
// whose chunks carry, base64-encoded, exactly the JSON of Anthropic's SSE
// events; BedrockStream (bedrock_stream.go) decodes them as they arrive and
// hands the client the SSE Anthropic's API would have sent, so the client
// cannot tell the upstreams apart but for IDs. Errors, before the stream
// (an HTTP status with x-amzn-ErrorType) and within it (exception frames),
// map to the contract's statuses, error types and outcomes.
//
// The signer works on a net/http request, built for signing only: the
// signature's headers are then copied onto the fasthttp request. That costs
// allocations per call, which the Anthropic path does not pay; signing by
// hand would save them at the price of owning a security-critical
// canonicalisation the AWS SDK already gets right.

// bedrockAuth authenticates one bedrock upstream's requests. Safe for
// concurrent use.
type bedrockAuth struct {
	region string
	creds  aws.CredentialsProvider
	// bearer is "Bearer <key>" when a Bedrock API key is used instead of SigV4.
	bearer string
	signer *v4.Signer
	// timeout bounds getting credentials (a refresh may call AWS).
	timeout time.Duration
}

func newBedrockAuth(uc Config, timeout time.Duration) *bedrockAuth {
	a := &bedrockAuth{region: uc.Region, creds: uc.AWSCredentials, signer: v4.NewSigner(), timeout: timeout}
	if uc.BearerToken != "" {
		a.bearer = "Bearer " + uc.BearerToken
	}
	return a
}

// CredentialsError is a bedrock call that could not be signed: the
// platform's own credentials failed, which the client sees as 503.
type CredentialsError struct{ err error }

func (e *CredentialsError) Error() string {
	return "cannot sign the bedrock request: " + e.err.Error()
}

func (e *CredentialsError) Unwrap() error { return e.err }

// PrepareBedrockRequest fills req for sending a client's Messages request
// body (with its anthropic-beta values betas) to the bedrock upstream u as
// modelID, streaming or not: the body rewritten into bodyBuf (the meter's
// rewrite of a body InspectRequest accepted, which cannot fail), the path
// built in uriBuf, then signed. It returns the two buffers for reuse.
func (u *Upstream) PrepareBedrockRequest(req *fasthttp.Request, body, betas []byte, stream bool, modelID string, bodyBuf, uriBuf []byte) ([]byte, []byte, error) {
	bodyBuf = meter.AppendBedrockBody(bodyBuf[:0], body, betas)
	uri := append(uriBuf[:0], u.pathPrefix...)
	uri = append(uri, "/model/"...)
	uri = append(uri, url.PathEscape(modelID)...)
	accept := "application/json"
	if stream {
		uri = append(uri, "/invoke-with-response-stream"...)
		accept = "application/vnd.amazon.eventstream"
		req.Header.Set("x-amzn-bedrock-accept", "application/json")
	} else {
		uri = append(uri, "/invoke"...)
	}
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetRequestURIBytes(uri)
	req.Header.SetHost(u.host)
	req.Header.SetContentType("application/json")
	req.Header.Set("accept", accept)
	req.SetBodyRaw(bodyBuf)
	return bodyBuf, uri, u.bedrock.authorize(req, u.scheme, u.host, uri, bodyBuf)
}

// authorize adds the bearer token, or signs r with SigV4 (service bedrock)
// over body. It must run last: any later change to the body or to a signed
// header breaks the signature.
func (a *bedrockAuth) authorize(r *fasthttp.Request, scheme, host string, uri, body []byte) error {
	if a.bearer != "" {
		r.Header.Set("authorization", a.bearer)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		return &CredentialsError{err}
	}
	// The signing request carries exactly the headers sent, so that the
	// signed set matches; url parsing keeps the escaped path (RawPath) the
	// canonical request is built from.
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+host+string(uri), nil)
	if err != nil {
		return &CredentialsError{err}
	}
	hreq.ContentLength = int64(len(body))
	for _, h := range [...]string{"content-type", "accept", "x-amzn-bedrock-accept"} {
		if v := r.Header.Peek(h); len(v) > 0 {
			hreq.Header.Set(h, string(v))
		}
	}
	sum := sha256.Sum256(body)
	if err := a.signer.SignHTTP(ctx, creds, hreq, hex.EncodeToString(sum[:]), "bedrock", a.region, time.Now()); err != nil {
		return &CredentialsError{err}
	}
	for _, h := range [...]string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := hreq.Header.Get(h); v != "" {
			r.Header.Set(h, v)
		}
	}
	return nil
}

// JudgeBedrock maps a Bedrock error reply to what the client receives:
// status, Anthropic error type and message, and whether it is about the
// platform's own account (503 overloaded_error "upstream unavailable", a
// failure for failover). errType is the x-amzn-ErrorType header
// ("ThrottlingException:http://internal.amazon.com/..."), body the reply
// ({"message":"..."}). Bedrock's message passes on only for a validation
// error, which is about the request; every other gets Tollgate's wording,
// since it can name the platform's AWS account and resources.
func JudgeBedrock(status int, errType, body []byte) Error {
	if i := bytes.IndexByte(errType, ':'); i >= 0 {
		errType = errType[:i]
	}
	name := string(bytes.TrimSpace(errType))
	if name == "" && bytes.Contains(body, []byte(`"type"`)) {
		// An Anthropic error passed through (Bedrock does so with 529).
		return JudgeAnthropic(status, body)
	}
	var e struct {
		Message string `json:"message"`
	}
	_ = sonic.Unmarshal(body, &e)
	out := Error{UpstreamType: name}
	switch name {
	case "ThrottlingException", "ModelNotReadyException":
		out.Status, out.Type = fasthttp.StatusTooManyRequests, views.RateLimitError
	case "ModelTimeoutException":
		out.Status, out.Type = fasthttp.StatusGatewayTimeout, views.TimeoutError
	case "ValidationException":
		out.Status, out.Type, out.Message = fasthttp.StatusBadRequest, views.InvalidRequestError, e.Message
	case "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
		"InvalidSignatureException", "IncompleteSignatureException", "MissingAuthenticationTokenException",
		"ServiceQuotaExceededException", "ResourceNotFoundException":
		// The platform's credentials, permissions, quotas or model access:
		// another upstream may serve the call.
		out.Platform = true
	case "ServiceUnavailableException":
		out.Status, out.Type = 529, views.OverloadedError
	case "InternalServerException", "ModelErrorException", "ModelStreamErrorException":
		out.Status, out.Type = fasthttp.StatusInternalServerError, views.APIError
	default:
		switch {
		case status == 401 || status == 403 || status == 404:
			out.Platform = true
		case status == 408:
			out.Status, out.Type = fasthttp.StatusGatewayTimeout, views.TimeoutError
		case status == 429:
			out.Status, out.Type = status, views.RateLimitError
		case status == 529:
			out.Status, out.Type = status, views.OverloadedError
		case status >= 400 && status < 500:
			out.Status, out.Type, out.Message = fasthttp.StatusBadRequest, views.InvalidRequestError, e.Message
		default:
			out.Status, out.Type = fasthttp.StatusInternalServerError, views.APIError
		}
	}
	if out.Status == fasthttp.StatusBadRequest && out.Message == "" {
		out.Message = "invalid request"
	}
	return out.withOwnWording()
}

// bedrockExceptionErrorType is the Anthropic error type an exception frame
// in a Bedrock stream becomes: overloaded_error for throttling and capacity,
// api_error for the rest (as Anthropic's SDKs surface any exception frame).
func bedrockExceptionErrorType(exception []byte) string {
	switch {
	case bytes.EqualFold(exception, []byte("throttlingException")),
		bytes.EqualFold(exception, []byte("serviceUnavailableException")):
		return views.OverloadedError
	}
	return views.APIError
}
