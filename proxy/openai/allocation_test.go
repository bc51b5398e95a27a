//go:build !race

package openai

import (
	"bytes"
	"os"
	"testing"
)

// This front may allocate, modestly: a few objects per event or request
// part, never per byte. These bounds catch a change that would allocate
// more (the benchmarks give the exact counts).

func TestAllocationStream(t *testing.T) {
	data, err := os.ReadFile("testdata/streams/parallel_tools.sse")
	if err != nil {
		t.Fatal(err)
	}
	events := bytes.Count(data, []byte("\n\n"))
	var s Stream
	var out []byte
	run := func() {
		s.Reset(streamOpts, created)
		out = out[:0]
		for rest := data; len(rest) > 0; {
			n := min(512, len(rest))
			out = s.Append(out, rest[:n])
			rest = rest[n:]
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n > float64(4*events) {
		t.Fatalf("unexpected %.0f allocations for %d events; want at most 4 per event", n, events)
	}
}

func TestAllocationTranslateRequest(t *testing.T) {
	var out []byte
	run := func() {
		var err error
		if out, _, err = TranslateRequest(out[:0], benchBody, 1024); err != nil {
			t.Fatal(err)
		}
	}
	run()
	// 4 messages, 3 parts, a tool, a tool call: about 70 today.
	if n := testing.AllocsPerRun(100, run); n > 100 {
		t.Fatalf("unexpected %.0f allocations for a request; want at most 100", n)
	}
}
