package simulator

// sseFramer frames events as Anthropic's SSE: "event: NAME\ndata: JSON\n\n".
// With padded it inserts a run of spaces before the closing brace of each
// data JSON (pings excepted), like the official 2026 fixtures.
type sseFramer struct {
	padded bool
	events int // events framed so far; varies the padding
}

// appendEvent appends one event in SSE framing.
func (f *sseFramer) appendEvent(p []byte, name string, data []byte) []byte {
	p = append(p, "event: "...)
	p = append(p, name...)
	p = append(p, "\ndata: "...)
	if f.padded && name != evPing && len(data) > 0 && data[len(data)-1] == '}' {
		p = append(p, data[:len(data)-1]...)
		for range 1 + (f.events*7)%16 {
			p = append(p, ' ')
		}
		p = append(p, '}')
	} else {
		p = append(p, data...)
	}
	f.events++
	return append(p, "\n\n"...)
}

// appendError appends the error event of error_after: overloaded_error
// unless error_type= and message= say otherwise.
func (f *sseFramer) appendError(dst []byte, d *directives) []byte {
	errType, msg := errorOverride("overloaded_error", "Overloaded", d)
	return f.appendEvent(dst, evError, appendErrorJSON(nil, errType, msg, ""))
}

// appendGarbage appends garbageBytes.
func (f *sseFramer) appendGarbage(dst []byte) []byte { return append(dst, garbageBytes...) }

// appendCut appends nothing: an SSE stream is cut between events.
func (f *sseFramer) appendCut(dst []byte) []byte { return dst }
