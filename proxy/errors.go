package proxy

import (
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// appendErrorEvent appends an SSE error event carrying the contract's error.
func appendErrorEvent(dst []byte, typ, message, requestID string) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = views.AppendError(dst, typ, message, requestID)
	return append(dst, "\n\n"...)
}

// writeError sends an error response in the contract's shape. The request-id
// header must already be set.
func writeError(ctx *fasthttp.RequestCtx, status int, typ, message string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	id := ctx.Response.Header.Peek(hdrRequestID)
	ctx.SetBody(views.AppendError(ctx.Response.Body()[:0], typ, message, b2s(id)))
}

const hexDigits = "0123456789abcdef"
