package proxy

import (
	"unicode/utf8"

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

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
