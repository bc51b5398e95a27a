package simulator

import (
	"time"

	"github.com/valyala/fasthttp"
)

// waitEnd says why a wait or a stream ended.
type waitEnd uint8

const (
	endDone       waitEnd = iota // the timer fired, or the stream wrote message_stop
	endFault                     // the stream reached its *_after fault
	endClientGone                // the client went away (a write failed or the connection closed)
	endShutdown                  // Shutdown began
)

// wait sleeps d, ending early on Shutdown or when gone (which may be nil) closes.
func (s *Simulator) wait(d time.Duration, gone <-chan struct{}) waitEnd {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return endDone
	case <-s.done:
		return endShutdown
	case <-gone:
		return endClientGone
	}
}

// countHang counts a hang or stream that ended because the client left
// (and not because Shutdown broke the connection).
func (s *Simulator) countHang(end waitEnd) {
	if end != endClientGone {
		return
	}
	select {
	case <-s.done:
	default:
		s.clientGone.Add(1)
	}
}

// serveMessage answers a non-streaming request with the Message JSON.
func (s *Simulator) serveMessage(ctx *fasthttp.RequestCtx, reqID string, r *reply, d *directives, delay time.Duration) bool {
	ctx.SetContentType("application/json")
	if d.garbage {
		s.injected.Add(1)
		ctx.SetBody(garbageBytes)
		return false
	}
	if delay > 0 {
		total := min(delay*time.Duration(r.eventCount()-1), s.cfg.MaxHang)
		if s.wait(total, nil) != endDone {
			s.writeShuttingDown(ctx, reqID)
			return false
		}
	}
	body := r.appendMessage(nil)
	if d.padded {
		body = padBeforeLastBrace(body, 9)
	}
	ctx.SetBody(body)
	s.completed.Add(1)
	return false
}

// play writes r's events to sw, pausing delay between events, until
// message_stop (endDone), the directives' *_after fault (endFault), a failed
// write or gone closing (endClientGone), or Shutdown (endShutdown). A fault
// after N deltas fires right after the Nth content_block_delta (after
// message_start for N=0), or before message_delta when the reply has fewer.
func (s *Simulator) play(sw *streamWriter, r *reply, d *directives, delay time.Duration, gone <-chan struct{}) waitEnd {
	end := endDone
	faultAt := -1
	if d.fault != faultNone {
		faultAt = d.faultAfter
	}
	deltas := 0
	first := true
	r.events(func(name string, data []byte) bool {
		if faultAt >= 0 && name == evMessageDelta {
			end = endFault
			return false
		}
		if !first && delay > 0 {
			if sw.flush(true) != nil {
				end = endClientGone
				return false
			}
			if end = s.wait(delay, gone); end != endDone {
				return false
			}
		}
		first = false
		if sw.writeEvent(name, data) != nil {
			end = endClientGone
			return false
		}
		if name == evContentBlockDelta {
			deltas++
		}
		if faultAt >= 0 && deltas >= faultAt && (name == evContentBlockDelta || name == evMessageStart) {
			end = endFault
			return false
		}
		return true
	})
	if (end == endDone || end == endFault) && sw.flush(true) != nil {
		end = endClientGone
	}
	return end
}

// endStream ends a stream that play returned from with end, on fasthttp's
// stream writer or a hijacked connection alike: a complete stream's body is
// ended and counted; a mid-stream fault sends what it ends the stream with;
// a client gone is counted. hang_after and truncate_after reach here on a
// hijacked connection only: hang_after waits, with the connection open,
// for the client to leave, Shutdown or Config.MaxHang; truncate_after
// leaves the chunked body unterminated (on Bedrock, mid-frame) for the
// connection to close.
func (s *Simulator) endStream(sw *streamWriter, end waitEnd, d *directives, gone <-chan struct{}) {
	switch {
	case end == endDone:
		if sw.end() == nil {
			s.completed.Add(1)
		}
	case end != endFault:
		s.countHang(end)
	case d.fault == faultHang:
		s.countHang(s.wait(s.cfg.MaxHang, gone))
	case d.fault == faultTruncate:
		_ = sw.writeFault(d)
	default:
		_ = sw.writeFault(d)
		_ = sw.end()
	}
}

// garbageBytes is what garbage and garbage_after send: no SSE framing, NUL
// and invalid UTF-8 bytes, an HTML error page and a data line that is not JSON.
var garbageBytes = []byte("\x00\x01\x02garbage\xff\xfe\r\n<html><body><h1>502 Bad Gateway</h1></body></html>\ndata: {not json\n\n")

// checkWaits refuses waits above Config.MaxHang.
func (s *Simulator) checkWaits(d *directives) error {
	if d.delay > s.cfg.MaxHang || d.ttfb > s.cfg.MaxHang {
		return errDirective("delay and ttfb may not exceed the simulator's max hang of %s", s.cfg.MaxHang)
	}
	return nil
}

func errorOverride(errType, msg string, d *directives) (string, string) {
	if d.errorType != "" {
		errType = d.errorType
	}
	if d.message != "" {
		msg = d.message
	}
	return errType, msg
}

// padBeforeLastBrace inserts n spaces before the last byte of a JSON object.
func padBeforeLastBrace(b []byte, n int) []byte {
	if len(b) == 0 || b[len(b)-1] != '}' {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	out = append(out, b[:len(b)-1]...)
	for range n {
		out = append(out, ' ')
	}
	return append(out, '}')
}
