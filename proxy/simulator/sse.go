package simulator

// sink is where a framer's bytes go: fasthttp's *bufio.Writer inside a
// SetBodyStreamWriter closure, or a chunkWriter on a hijacked connection.
// Flush pushes everything written so far towards the client.
type sink interface {
	Write(p []byte) (int, error)
	Flush() error
}

// oddChunkSizes is the cycle of write sizes of split=odd: odd, and not
// aligned with anything, so event and line boundaries fall inside writes.
var oddChunkSizes = [...]int{1, 3, 5, 7, 9, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47}

// sseWriter frames events as Anthropic's SSE: "event: NAME\ndata: JSON\n\n",
// flushed after every event. With padded it inserts a run of spaces before
// the closing brace of each data JSON (pings excepted), like the official
// 2026 fixtures; with split it writes in fixed or odd-sized pieces, each
// flushed on its own, carrying a partial piece over to the next event.
// An sseWriter is used by one goroutine.
type sseWriter struct {
	w        sink
	pending  []byte // framed bytes not yet written (split only keeps any between calls)
	padded   bool
	split    int // 0: whole events; splitOdd; or a fixed size in bytes
	splitIdx int // next index into oddChunkSizes
	events   int // events framed so far; varies the padding
	// bedrock, when set, frames events as Bedrock's event stream instead.
	bedrock *bedrockFramer
}

// writeEvent frames and sends one event.
func (sw *sseWriter) writeEvent(name string, data []byte) error {
	if sw.bedrock != nil {
		sw.pending = sw.bedrock.appendChunk(sw.pending, name, data)
		sw.events++
		return sw.flush(false)
	}
	p := sw.pending
	p = append(p, "event: "...)
	p = append(p, name...)
	p = append(p, "\ndata: "...)
	if sw.padded && name != evPing && len(data) > 0 && data[len(data)-1] == '}' {
		p = append(p, data[:len(data)-1]...)
		for range 1 + (sw.events*7)%16 {
			p = append(p, ' ')
		}
		p = append(p, '}')
	} else {
		p = append(p, data...)
	}
	p = append(p, "\n\n"...)
	sw.pending = p
	sw.events++
	return sw.flush(false)
}

// writeRaw sends bytes as they are (garbage).
func (sw *sseWriter) writeRaw(data []byte) error {
	sw.pending = append(sw.pending, data...)
	return sw.flush(false)
}

// flush writes the pending bytes. Without split it writes them all; with
// split it writes whole pieces only, unless all is set (before a pause, a
// fault or the end), when the remainder goes out as a last, shorter piece.
func (sw *sseWriter) flush(all bool) error {
	if sw.split == 0 {
		if len(sw.pending) > 0 {
			if _, err := sw.w.Write(sw.pending); err != nil {
				return err
			}
			sw.pending = sw.pending[:0]
		}
		return sw.w.Flush()
	}
	off := 0
	for off < len(sw.pending) {
		size := sw.split
		if size == splitOdd {
			size = oddChunkSizes[sw.splitIdx%len(oddChunkSizes)]
		}
		if off+size > len(sw.pending) {
			if !all {
				break
			}
			size = len(sw.pending) - off
		} else {
			sw.splitIdx++
		}
		if _, err := sw.w.Write(sw.pending[off : off+size]); err != nil {
			return err
		}
		if err := sw.w.Flush(); err != nil {
			return err
		}
		off += size
	}
	sw.pending = sw.pending[:copy(sw.pending, sw.pending[off:])]
	return nil
}
