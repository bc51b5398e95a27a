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

// verifyBedrockAuth checks a Bedrock-mode request's credential as AWS would:
// a SigV4 signature (service bedrock) by Config.AWSCredentials, checked by
// signing the request as received again with the AWS SDK's signer and
// comparing, or a bearer token equal to Config.APIKey (a Bedrock API key).
// With neither configured, anything is accepted. It returns the exception
// and message of a refusal (403).
func (s *Simulator) verifyBedrockAuth(ctx *fasthttp.RequestCtx) (exception, msg string, ok bool) {
	creds := s.cfg.AWSCredentials
	if creds.AccessKeyID == "" && s.cfg.APIKey == "" {
		return "", "", true
	}
	auth := string(ctx.Request.Header.Peek("authorization"))
	if token, found := strings.CutPrefix(auth, "Bearer "); found {
		if s.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) == 1 {
			return "", "", true
		}
		return "UnrecognizedClientException", "The security token included in the request is invalid.", false
	}
	fields, found := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !found || creds.AccessKeyID == "" {
		return "MissingAuthenticationTokenException", "Missing Authentication Token", false
	}
	var credential string
	for f := range strings.SplitSeq(fields, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Credential="); ok {
			credential = v
		}
	}
	// Credential=AKID/yyyymmdd/region/service/aws4_request
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "IncompleteSignatureException", "Authorization header requires a valid Credential.", false
	}
	if scope[0] != creds.AccessKeyID {
		return "UnrecognizedClientException", "The security token included in the request is invalid.", false
	}
	region, service := scope[2], scope[3]
	if service != "bedrock" {
		return "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'.", false
	}
	if s.cfg.AWSRegion != "" && region != s.cfg.AWSRegion {
		return "InvalidSignatureException", "Credential should be scoped to a valid region.", false
	}
	signedAt, err := time.Parse("20060102T150405Z", string(ctx.Request.Header.Peek("x-amz-date")))
	if err != nil {
		return "IncompleteSignatureException", "Authorization requires a valid X-Amz-Date header.", false
	}
	if d := time.Since(signedAt); d > maxSigV4Skew || d < -maxSigV4Skew {
		return "InvalidSignatureException", "Signature expired: the request's X-Amz-Date is too far from the server's time.", false
	}

	// The request as received, with exactly the headers it says it signed;
	// the raw URI keeps the path's escaping, which the signature covers.
	host := string(ctx.Request.Header.Host())
	req, err := http.NewRequest(http.MethodPost, "http://"+host+string(ctx.Request.Header.RequestURI()), nil)
	if err != nil {
		return "InvalidSignatureException", "The request URI cannot be signed.", false
	}
	req.Host = host
	body := ctx.PostBody()
	req.ContentLength = int64(len(body))
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
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, signedAt); err != nil {
		return "InvalidSignatureException", "The request cannot be signed: " + err.Error(), false
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(auth)) != 1 {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.", false
	}
	return "", "", true
}
