package simulator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/valyala/fasthttp"
)

// maxSigV4Skew is how far X-Amz-Date may be from the simulator's clock, as
// AWS allows.
const maxSigV4Skew = 5 * time.Minute

// authRefusal is why a Bedrock-mode credential is refused: the exception
// name and message AWS answers with 403.
type authRefusal struct{ exception, msg string }

var (
	refuseInvalidToken = &authRefusal{"UnrecognizedClientException", "The security token included in the request is invalid."}
	refuseMissingToken = &authRefusal{"MissingAuthenticationTokenException", "Missing Authentication Token"}
)

// verifyBedrockAuth checks a Bedrock-mode request's credential as AWS would:
// a SigV4 signature (service bedrock) by Config.AWSCredentials, checked by
// signing the request as received again with the AWS SDK's signer and
// comparing, or a bearer token equal to Config.APIKey (a Bedrock API key).
// With neither configured, anything is accepted. It returns nil, or why the
// credential is refused.
func (s *Simulator) verifyBedrockAuth(ctx *fasthttp.RequestCtx) *authRefusal {
	if s.cfg.AWSCredentials.AccessKeyID == "" && s.cfg.APIKey == "" {
		return nil
	}
	auth := string(ctx.Request.Header.Peek("authorization"))
	if token, found := strings.CutPrefix(auth, "Bearer "); found {
		if s.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) == 1 {
			return nil
		}
		return refuseInvalidToken
	}
	fields, found := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !found || s.cfg.AWSCredentials.AccessKeyID == "" {
		return refuseMissingToken
	}
	sig, refusal := s.readSigV4(fields, string(ctx.Request.Header.Peek("x-amz-date")))
	if refusal != nil {
		return refusal
	}
	return s.verifySignature(ctx, auth, sig)
}

// sigV4 is what a SigV4 Authorization header says of its signature.
type sigV4 struct {
	fields   string // the header's comma-separated fields
	region   string // the credential scope's region
	signedAt time.Time
}

// readSigV4 reads a SigV4 Authorization header's fields and X-Amz-Date, and
// checks what can be checked without signing: the credential scope
// (Config.AWSCredentials' key, service bedrock, Config.AWSRegion when set)
// and the date, at most maxSigV4Skew away.
func (s *Simulator) readSigV4(fields, amzDate string) (sigV4, *authRefusal) {
	var credential string
	for f := range strings.SplitSeq(fields, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Credential="); ok {
			credential = v
		}
	}
	// Credential=AKID/yyyymmdd/region/service/aws4_request
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return sigV4{}, &authRefusal{"IncompleteSignatureException", "Authorization header requires a valid Credential."}
	}
	if scope[0] != s.cfg.AWSCredentials.AccessKeyID {
		return sigV4{}, refuseInvalidToken
	}
	region, service := scope[2], scope[3]
	if service != "bedrock" {
		return sigV4{}, &authRefusal{"InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."}
	}
	if s.cfg.AWSRegion != "" && region != s.cfg.AWSRegion {
		return sigV4{}, &authRefusal{"InvalidSignatureException", "Credential should be scoped to a valid region."}
	}
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return sigV4{}, &authRefusal{"IncompleteSignatureException", "Authorization requires a valid X-Amz-Date header."}
	}
	if d := time.Since(signedAt); d > maxSigV4Skew || d < -maxSigV4Skew {
		return sigV4{}, &authRefusal{"InvalidSignatureException", "Signature expired: the request's X-Amz-Date is too far from the server's time."}
	}
	return sigV4{fields: fields, region: region, signedAt: signedAt}, nil
}

// verifySignature signs the request as received again with the AWS SDK's
// signer and compares the result with its Authorization header, auth.
func (s *Simulator) verifySignature(ctx *fasthttp.RequestCtx, auth string, sig sigV4) *authRefusal {
	req, err := requestAsReceived(ctx, sig.fields)
	if err != nil {
		return &authRefusal{"InvalidSignatureException", "The request URI cannot be signed."}
	}
	sum := sha256.Sum256(ctx.PostBody())
	if err := v4.NewSigner().SignHTTP(context.Background(), s.cfg.AWSCredentials, req, hex.EncodeToString(sum[:]), "bedrock", sig.region, sig.signedAt); err != nil {
		return &authRefusal{"InvalidSignatureException", "The request cannot be signed: " + err.Error()}
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(auth)) != 1 {
		return &authRefusal{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}

// requestAsReceived returns the request as received, for signing again: with
// exactly the headers its SignedHeaders field names, and the raw URI, which
// keeps the path's escaping the signature covers.
func requestAsReceived(ctx *fasthttp.RequestCtx, fields string) (*http.Request, error) {
	host := string(ctx.Request.Header.Host())
	req, err := http.NewRequest(http.MethodPost, "http://"+host+string(ctx.Request.Header.RequestURI()), nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	req.ContentLength = int64(len(ctx.PostBody()))
	for f := range strings.SplitSeq(fields, ",") {
		list, ok := strings.CutPrefix(strings.TrimSpace(f), "SignedHeaders=")
		if !ok {
			continue
		}
		for name := range strings.SplitSeq(list, ";") {
			if name == "host" || name == "content-length" {
				continue
			}
			if v := ctx.Request.Header.Peek(name); v != nil {
				req.Header.Set(name, string(v))
			}
		}
	}
	return req, nil
}
