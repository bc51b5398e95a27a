package simulator

import (
	"strconv"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/meter"
)

// stdJSON reads requests (sonic, the gateway's library for cold paths) as
// encoding/json does: control characters inside strings are refused, as the
// API refuses them, and every string is copied out of the body, since a
// request outlives the handler that read it.
var stdJSON = sonic.ConfigStd

// JSON strings are written with meter.AppendJSONString, the gateway's own
// encoder. Like the Anthropic API (and unlike encoding/json) it leaves <, >
// and & literal, so the SDKs' re-encoding of accumulated text matches the
// bytes sent.

// appendJSONStringContent appends s escaped for use inside a JSON string
// literal, without the quotes: a piece of a string built from several
// parts, or a fragment of partial JSON.
func appendJSONStringContent(dst []byte, s string) []byte {
	n := len(dst)
	dst = meter.AppendJSONString(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1]) // drop the quotes
	return dst[:len(dst)-2]
}

// appendInt appends the decimal form of n.
func appendInt(dst []byte, n int64) []byte {
	return strconv.AppendInt(dst, n, 10)
}
