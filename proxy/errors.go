package proxy

import (
	"github.com/tollgate/tollgate/proxy/openai"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// writeError sends an error response in the contract's shape, or in
// OpenAI's on the OpenAI front. The request-id header must already be set.
func writeError(ctx *fasthttp.RequestCtx, status int, typ, message string) {
	writeErrorParam(ctx, status, typ, message, "")
}

// writeErrorParam is writeError naming the request parameter at fault,
// which OpenAI's shape has a field for.
func writeErrorParam(ctx *fasthttp.RequestCtx, status int, typ, message, param string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	if isChatCompletions(ctx) {
		ctx.SetBody(openai.AppendError(ctx.Response.Body()[:0], typ, message, param))
		return
	}
	id := ctx.Response.Header.Peek(hdrRequestID)
	ctx.SetBody(views.AppendError(ctx.Response.Body()[:0], typ, message, b2s(id)))
}

const hexDigits = "0123456789abcdef"

// writeUpstreamError answers the client with e, with Tollgate's request ID.
// The passed retry headers stay; a platform error drops them, since the
// upstream's advice is about the platform's account.
func writeUpstreamError(ctx *fasthttp.RequestCtx, e *upstream.Error) {
	if e.Platform {
		for _, h := range [...]string{"retry-after", "retry-after-ms", "x-should-retry"} {
			ctx.Response.Header.Del(h)
		}
	}
	writeError(ctx, e.Status, e.Type, e.Message)
}
