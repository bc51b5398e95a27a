package proxy

import (
	"bytes"
	"crypto/subtle"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/valyala/fasthttp"
)

// authenticate finds the key the request presents in x-api-key or
// Authorization: Bearer. It returns nil and the message for a 401 when the
// key is missing, unknown, revoked or expired, or when the two headers carry
// different keys. The lookup is by SHA-256 of the secret in a map, so its
// time does not depend on how close a wrong key is to a right one.
func (g *Gateway) authenticate(ctx *fasthttp.RequestCtx) (*ledger.Key, string) {
	apiKey := ctx.Request.Header.Peek("x-api-key")
	var bearer []byte
	if auth := ctx.Request.Header.Peek("Authorization"); len(auth) > 7 && bytes.EqualFold(auth[:7], []byte("bearer ")) {
		bearer = bytes.TrimSpace(auth[7:])
	}
	secret := apiKey
	switch {
	case len(apiKey) == 0 && len(bearer) == 0:
		return nil, "missing API key: send it in x-api-key or Authorization: Bearer"
	case len(apiKey) == 0:
		secret = bearer
	case len(bearer) > 0 && subtle.ConstantTimeCompare(apiKey, bearer) != 1:
		return nil, "x-api-key and Authorization carry different keys"
	}
	k := g.ledger.KeyByHash(ids.HashKey(secret))
	if k == nil {
		return nil, "invalid API key"
	}
	if k.Revoked {
		return nil, "API key revoked"
	}
	if k.ExpiresAtNanos != 0 && time.Now().UnixNano() >= k.ExpiresAtNanos {
		return nil, "API key expired"
	}
	return k, ""
}
