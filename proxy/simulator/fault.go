package simulator

import (
	"bufio"
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

// answer answers an accepted request, in either mode, following the order
// of the package comment: ttfb; then the first failure that applies before
// any reply (status, json_error_200, hang=headers); then the token count,
// or the reply with the faults that apply to it (serveMessage,
// serveStream). It reports whether it handed the request's leave over to a
// stream writer.
func (s *Simulator) answer(ctx *fasthttp.RequestCtx, reqID string, req *request, model string) (handedOff bool) {
	d := &req.dir
	if req.stream {
		s.streams.Add(1)
	}
	if d.ttfb > 0 && s.wait(d.ttfb, nil) != endDone {
		s.writeShuttingDown(ctx, reqID)
		return false
	}
	if s.failBeforeReply(ctx, reqID, d) {
		return false
	}
	if req.countTokens {
		s.serveCountTokens(ctx, req)
		return false
	}
	r := buildReply(req, model, s.proto.newMessageID())
	if !req.stream {
		s.serveMessage(ctx, reqID, r, d)
		return false
	}
	return s.serveStream(ctx, reqID, r, d)
}

// failBeforeReply answers with the failure d asks for before any reply:
// status=NNN, json_error_200 or hang=headers, the first that applies. It
// reports whether there was one.
func (s *Simulator) failBeforeReply(ctx *fasthttp.RequestCtx, reqID string, d *directives) bool {
	if d.status == 0 && !d.jsonError200 && !d.hangHeaders {
		return false
	}
	s.injected.Add(1)
	switch {
	case d.status != 0:
		s.proto.writeStatus(ctx, reqID, d)
	case d.jsonError200:
		// A JSON error body with 200, in Anthropic's shape in both modes: a
		// Bedrock InvokeModel body is a Messages API body.
		errType, msg := errorOverride("overloaded_error", "Overloaded", d)
		writeError(ctx, reqID, fasthttp.StatusOK, errType, msg)
	default:
		s.hijack(ctx, &hijackJob{})
	}
	return true
}

// serveMessage answers a non-streaming request with the Message JSON, after
// the pauses its events would have taken, or with garbage.
func (s *Simulator) serveMessage(ctx *fasthttp.RequestCtx, reqID string, r *reply, d *directives) {
	setHeaders(&ctx.Response.Header, s.proto.messageHeaders(r))
	ctx.SetContentType("application/json")
	if d.garbage {
		s.injected.Add(1)
		ctx.SetBody(garbageBytes)
		return
	}
	if delay := s.eventDelay(d); delay > 0 {
		total := min(delay*time.Duration(r.eventCount()-1), s.cfg.MaxHang)
		if s.wait(total, nil) != endDone {
			s.writeShuttingDown(ctx, reqID)
			return
		}
	}
	body := r.appendMessage(nil)
	if d.padded {
		body = padBeforeLastBrace(body, 9)
	}
	ctx.SetBody(body)
	s.completed.Add(1)
}

// serveStream answers a streaming request: with garbage instead of the
// stream, or with the stream, on a hijacked connection when a fault or split
// needs one (see hijackJob), else through fasthttp's stream writer. It
// reports whether it handed the request's leave over to the stream writer.
func (s *Simulator) serveStream(ctx *fasthttp.RequestCtx, reqID string, r *reply, d *directives) bool {
	setHeaders(&ctx.Response.Header, s.proto.streamHeaders())
	if d.garbage || d.fault != faultNone {
		s.injected.Add(1)
	}
	switch {
	case d.garbage:
		ctx.SetBody(garbageBytes)
		return false
	case d.needsHijack():
		s.hijack(ctx, &hijackJob{reply: r, dir: *d, reqID: reqID})
		return false
	}
	// The closure owns copies only: r and dir hold no view into ctx.
	dir := *d
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.leave()
		sw := s.newStreamWriter(bodyWriter{w}, r, &dir)
		s.endStream(sw, s.play(sw, r, &dir, nil), &dir, nil)
	})
	return true
}

// eventDelay is the pause between two events: delay=D, else Config.EventDelay.
func (s *Simulator) eventDelay(d *directives) time.Duration {
	if d.hasDelay {
		return d.delay
	}
	return s.cfg.EventDelay
}

// newStreamWriter returns the writer of r's stream to w, framed as the
// simulator's protocol frames it.
func (s *Simulator) newStreamWriter(w sink, r *reply, d *directives) *streamWriter {
	return &streamWriter{w: w, f: s.proto.newFramer(r, d), split: d.split}
}

// play writes r's events to sw, pausing eventDelay between events, until
// message_stop (endDone), the directives' *_after fault (endFault), a failed
// write or gone closing (endClientGone), or Shutdown (endShutdown). A fault
// after N deltas fires right after the Nth content_block_delta (after
// message_start for N=0), or before message_delta when the reply has fewer.
func (s *Simulator) play(sw *streamWriter, r *reply, d *directives, gone <-chan struct{}) waitEnd {
	delay := s.eventDelay(d)
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
