package bench

import (
	"bytes"
	"testing"
)

func TestEventScanner(t *testing.T) {
	f := func(body string, wantStop, wantError bool) {
		t.Helper()
		// Every split into two pieces, and one byte at a time, must agree
		// with scanning the body whole.
		for cut := 0; cut <= len(body); cut++ {
			var s eventScanner
			s.feed([]byte(body[:cut]))
			s.feed([]byte(body[cut:]))
			if s.sawStop != wantStop || s.sawError != wantError {
				t.Fatalf("unexpected result cut at %d of %q; got stop %v error %v; want %v %v", cut, body, s.sawStop, s.sawError, wantStop, wantError)
			}
		}
		var s eventScanner
		for i := range len(body) {
			s.feed([]byte{body[i]})
		}
		if s.sawStop != wantStop || s.sawError != wantError {
			t.Fatalf("unexpected result byte by byte of %q; got stop %v error %v; want %v %v", body, s.sawStop, s.sawError, wantStop, wantError)
		}
	}
	f("", false, false)
	f("event: ping\ndata: {}\n\n", false, false)
	f("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true, false)
	f("event: content_block_delta\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\"}\n\n", false, true)
	f("event: message_delta\ndata: {}\n\nevent: error\ndata: {}\n\nevent: message_stop\ndata: {}\n\n", true, true)
	// Near misses.
	f("event: message_sto", false, false)
	f("event: errors are fine", false, true)
	f("xevent: message_stopx", true, false)

	// A whole reply of the built-in upstream, in pieces of every size.
	reply := bytes.Join(ReplyEvents(5, 7), nil)
	for size := 1; size < 64; size++ {
		var s eventScanner
		for off := 0; off < len(reply); off += size {
			s.feed(reply[off:min(off+size, len(reply))])
		}
		if !s.sawStop || s.sawError {
			t.Fatalf("unexpected result in pieces of %d; got stop %v error %v; want true false", size, s.sawStop, s.sawError)
		}
	}
}
