package meter

import (
	"bytes"
	"encoding/base64"
)

// countPDFPages counts the pages of the base64 PDF in the JSON string raw
// (escaped when esc): the page objects (/Type /Page, not /Pages) visible in
// the file, decoded a block at a time into a stack buffer, so that a large
// document costs no allocation. A PDF that hides its page objects in
// compressed object streams shows none: it counts as MaxPDFPages, as does
// anything the meter cannot decode; the count is capped there too.
func countPDFPages(raw []byte, esc bool) int64 {
	if esc {
		return MaxPDFPages // base64 never needs escapes but "\/"; do not guess
	}
	const block = 4 << 10 // base64 bytes per step, a multiple of 4
	var out [block / 4 * 3]byte
	// carry keeps the tail of the previous block, so that a marker split
	// across two blocks is still seen.
	var carry [16]byte
	nCarry := 0
	var pages int64
	var scan [len(carry) + len(out)]byte
	for len(raw) > 0 {
		n := min(len(raw), block)
		chunk := raw[:n]
		raw = raw[n:]
		m, err := base64.StdEncoding.Decode(out[:], chunk)
		if err != nil {
			return MaxPDFPages
		}
		buf := append(append(scan[:0], carry[:nCarry]...), out[:m]...)
		pages += countPageObjects(buf)
		// A marker that ends within the carried tail was counted already:
		// carry only what cannot hold a whole marker.
		keep := min(len(buf), len(pageMarker)+pageMarkerSlack)
		nCarry = copy(carry[:], buf[len(buf)-keep:])
		pages -= countPageObjects(carry[:nCarry])
	}
	if pages <= 0 {
		return MaxPDFPages
	}
	return min(pages, MaxPDFPages)
}

var pageMarker = []byte("/Type")

// pageMarkerSlack is the most whitespace and the name after /Type that a
// page marker spans: "/Type /Page" plus the byte after it.
const pageMarkerSlack = 8

// countPageObjects counts "/Type /Page" (any whitespace before /Page, not
// followed by 's') in b.
func countPageObjects(b []byte) int64 {
	var n int64
	for {
		i := bytes.Index(b, pageMarker)
		if i < 0 {
			return n
		}
		b = b[i+len(pageMarker):]
		j := 0
		for j < len(b) && (b[j] == ' ' || b[j] == '\n' || b[j] == '\r' || b[j] == '\t') {
			j++
		}
		rest := b[j:]
		if bytes.HasPrefix(rest, []byte("/Page")) && len(rest) > len("/Page") && rest[len("/Page")] != 's' {
			n++
		}
	}
}
