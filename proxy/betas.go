package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// appendBetas appends every anthropic-beta line of the request joined with
// ", " and returns the first value that is in denied, if any.
func appendBetas(dst []byte, h *fasthttp.RequestHeader, denied []string) ([]byte, string) {
	var refused string
	for k, v := range h.All() {
		if !bytes.EqualFold(k, []byte("anthropic-beta")) {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
		if refused == "" && len(denied) > 0 {
			for part := range bytes.SplitSeq(v, []byte(",")) {
				part = bytes.TrimSpace(part)
				for _, d := range denied {
					if string(part) == d {
						refused = d
					}
				}
			}
		}
	}
	return dst, refused
}
