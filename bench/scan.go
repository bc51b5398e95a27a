package bench

import "bytes"

// Markers the load generator looks for in a streamed reply. The stream is
// not parsed: a benchmark client that framed events would cost CPU on the
// cores the gateway is measured on, and the gateway's own tests check the
// bytes. Finding these two lines is enough to tell a complete reply from a
// truncated or failed one.
const (
	markStopText  = "event: message_stop"
	markErrorText = "event: error"
	// markSpan is the longest marker minus one: the bytes carried from one
	// read to the next so that a marker split across reads is still found.
	markSpan = len(markStopText) - 1
)

var (
	markStop  = []byte(markStopText)
	markError = []byte(markErrorText)
)

// eventScanner finds markStop and markError in a body read in pieces of
// any size. The zero value is ready; reset before each reply.
type eventScanner struct {
	sawStop, sawError bool
	tail              [markSpan]byte
	tailLen           int
	joint             [2 * markSpan]byte
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
}
