package bench

import (
	"bytes"
	"fmt"
	"testing"
)

func TestEventScanner(t *testing.T) {
	f := func(body string, wantStop, wantError, wantDelta bool) {
		t.Helper()
		check := func(how string, s *eventScanner) {
			t.Helper()
			if s.sawStop != wantStop || s.sawError != wantError || s.sawDelta != wantDelta {
				t.Fatalf("unexpected result %s of %q; got stop %v error %v delta %v; want %v %v %v",
					how, body, s.sawStop, s.sawError, s.sawDelta, wantStop, wantError, wantDelta)
			}
		}
		// Every split into two pieces, and one byte at a time, must agree
		// with scanning the body whole.
		for cut := 0; cut <= len(body); cut++ {
			var s eventScanner
			s.feed([]byte(body[:cut]))
			s.feed([]byte(body[cut:]))
			check(fmt.Sprintf("cut at %d", cut), &s)
		}
		var s eventScanner
		for i := range len(body) {
			s.feed([]byte{body[i]})
		}
		check("byte by byte", &s)
	}
	f("", false, false, false)
	f("event: ping\ndata: {}\n\n", false, false, false)
	f("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true, false, false)
	f("event: content_block_delta\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\"}\n\n", false, true, true)
	f("event: message_delta\ndata: {}\n\nevent: error\ndata: {}\n\nevent: message_stop\ndata: {}\n\n", true, true, false)
	// Near misses.
	f("event: message_sto", false, false, false)
	f("event: errors are fine", false, true, false)
	f("xevent: message_stopx", true, false, false)
	f("event: content_block_delt", false, false, false)
	f("data: {\"type\":\"content_block_delta\"}", false, false, false)

	// A whole reply of the built-in upstream, in pieces of every size.
	reply := bytes.Join(ReplyEvents(5, 7), nil)
	for size := 1; size < 64; size++ {
		var s eventScanner
		for off := 0; off < len(reply); off += size {
			s.feed(reply[off:min(off+size, len(reply))])
		}
		if !s.sawStop || s.sawError || !s.sawDelta {
			t.Fatalf("unexpected result in pieces of %d; got stop %v error %v delta %v; want true false true", size, s.sawStop, s.sawError, s.sawDelta)
		}
	}
}
