package simulator

import (
	"bufio"
	"fmt"
)

// sink is where a stream's bytes go: a bodyWriter inside a
// SetBodyStreamWriter closure, or a chunkWriter on a hijacked connection.
// Flush pushes everything written so far towards the client; end ends the
// response body.
type sink interface {
	Write(p []byte) (int, error)
	Flush() error
	end() error
}

// bodyWriter is the sink of fasthttp's SetBodyStreamWriter closure.
type bodyWriter struct{ *bufio.Writer }

// end does nothing: fasthttp ends the chunked body when the closure returns.
func (bodyWriter) end() error { return nil }

// framer turns a reply's events into one protocol's stream bytes
// (sseFramer: Anthropic's SSE; bedrockFramer: Bedrock's event stream), and
// knows what each mid-stream fault sends in that protocol. The faults
// themselves, when and whether they fire, are decided elsewhere. A framer
// is used by one goroutine.
type framer interface {
	// appendEvent appends the frame of one event.
	appendEvent(dst []byte, name string, data []byte) []byte
	// appendError appends what error_after ends the stream with.
	appendError(dst []byte, d *directives) []byte
	// appendGarbage appends what garbage_after ends the stream with.
	appendGarbage(dst []byte) []byte
	// appendCut appends what truncate_after sends before the connection
	// closes (possibly nothing).
	appendCut(dst []byte) []byte
}

// oddChunkSizes is the cycle of write sizes of split=odd: odd, and not
// aligned with anything, so event and line boundaries fall inside writes.
var oddChunkSizes = [...]int{1, 3, 5, 7, 9, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47}

// streamWriter sends the frames of its framer to a sink, flushed after every
// event. With split it writes in fixed or odd-sized pieces, each flushed on
// its own, carrying a partial piece over to the next event. A streamWriter
// is used by one goroutine.
type streamWriter struct {
	w        sink
	f        framer
	pending  []byte // framed bytes not yet written (split only keeps any between calls)
	split    int    // 0: whole events; splitOdd; or a fixed size in bytes
	splitIdx int    // next index into oddChunkSizes
}

// writeEvent frames and sends one event.
func (sw *streamWriter) writeEvent(name string, data []byte) error {
	sw.pending = sw.f.appendEvent(sw.pending, name, data)
	return sw.flush(false)
}

// writeFault sends, whole, what error_after, garbage_after or truncate_after
// end the stream with.
func (sw *streamWriter) writeFault(d *directives) error {
	switch d.fault {
	case faultError:
		sw.pending = sw.f.appendError(sw.pending, d)
	case faultGarbage:
		sw.pending = sw.f.appendGarbage(sw.pending)
	case faultTruncate:
		sw.pending = sw.f.appendCut(sw.pending)
	default:
		panic(fmt.Sprintf("BUG: writeFault called for fault %d", d.fault))
	}
	return sw.flush(true)
}

// end flushes what is pending and ends the response body.
func (sw *streamWriter) end() error {
	if err := sw.flush(true); err != nil {
		return err
	}
	return sw.w.end()
}

// flush writes the pending bytes. Without split it writes them all; with
// split it writes whole pieces only, unless all is set (before a pause, a
// fault or the end), when the remainder goes out as a last, shorter piece.
func (sw *streamWriter) flush(all bool) error {
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
