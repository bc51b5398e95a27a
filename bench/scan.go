package bench

import "bytes"

// Markers the load generator looks for in a streamed reply. The stream is
// not parsed: a benchmark client that framed events would cost CPU on the
// cores the gateway is measured on, and the gateway's own tests check the
// bytes. Finding the stop and error lines is enough to tell a complete
// reply from a truncated or failed one; the first delta's line tells a
// client that is to leave mid-stream (LoadConfig.DisconnectShare) that
// the stream is under way.
const (
	markStopText  = "event: message_stop"
	markErrorText = "event: error"
	markDeltaText = "event: content_block_delta"
	// markSpan is the longest marker minus one: the bytes carried from one
	// read to the next so that a marker split across reads is still found.
	markSpan = len(markDeltaText) - 1
)

var (
	markStop  = []byte(markStopText)
	markError = []byte(markErrorText)
	markDelta = []byte(markDeltaText)
)

// eventScanner finds markStop, markError and markDelta in a body read in
// pieces of any size. The zero value is ready; reset before each reply.
type eventScanner struct {
	sawStop, sawError, sawDelta bool
	tail                        [markSpan]byte
	tailLen                     int
	joint                       [2 * markSpan]byte
}

func (s *eventScanner) reset() { *s = eventScanner{} }

// feed scans the next piece of the body.
func (s *eventScanner) feed(p []byte) {
	if len(p) == 0 {
		return
	}
	// A marker straddling the previous piece and this one lies within the
	// carried tail plus this piece's first markSpan bytes.
	j := append(s.joint[:0], s.tail[:s.tailLen]...)
	j = append(j, p[:min(len(p), markSpan)]...)
	s.match(j)
	s.match(p)
	// Carry the last markSpan bytes of (tail + p).
	if len(p) >= markSpan {
		s.tailLen = copy(s.tail[:], p[len(p)-markSpan:])
		return
	}
	keep := j[max(0, len(j)-markSpan):]
	s.tailLen = copy(s.tail[:], keep)
}

func (s *eventScanner) match(b []byte) {
	if !s.sawStop && bytes.Contains(b, markStop) {
		s.sawStop = true
	}
	if !s.sawError && bytes.Contains(b, markError) {
		s.sawError = true
	}
	if !s.sawDelta && bytes.Contains(b, markDelta) {
		s.sawDelta = true
	}
}
