package meter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/tokens"
)

func readStream(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "streams", name))
	if err != nil {
		t.Fatalf("cannot read stream: %s", err)
	}
	return data
}

// resultString renders a result comparably: Model as a string, everything else
// as it is.
// resultString formats r for comparison. The report marks
// (ContentBytesAtReport, BlocksAtReport) are left out: they follow from where
// usage was reported, which TestEstimateAfterReport checks; so are the
// modifier report flags.
func resultString(r StreamResult) string {
	m, fb := string(r.Model), string(r.FallbackModel)
	r.Model, r.FallbackModel = nil, nil
	r.ContentBytesAtReport, r.BlocksAtReport = 0, 0
	r.SpeedReported, r.GeoReported = false, false // TestSettledModifiers
	return fmt.Sprintf("%+v model=%q fallback=%q", r, m, fb)
}

// observeChunks feeds chunks to a fresh Observer and returns its result.
func observeChunks(chunks ...[]byte) StreamResult {
	var o Observer
	o.Reset(0)
	for _, c := range chunks {
		o.Write(c)
	}
	return o.Result()
}

// checkAllSplits feeds data whole, split in two at every byte boundary, one
// byte at a time and in random chunk sizes, and fails unless every way gives
// want.
func checkAllSplits(t *testing.T, name string, data []byte, want string) {
	t.Helper()
	check := func(how string, r StreamResult) {
		t.Helper()
		if got := resultString(r); got != want {
			t.Fatalf("unexpected result for %s fed %s;\ngot  %s\nwant %s", name, how, got, want)
		}
	}
	check("whole", observeChunks(data))
	for i := 0; i <= len(data); i++ {
		check(fmt.Sprintf("split at %d", i), observeChunks(data[:i], data[i:]))
	}
	var o Observer
	o.Reset(0)
	for i := range data {
		o.Write(data[i : i+1])
	}
	check("one byte at a time", o.Result())
	rng := rand.New(rand.NewPCG(1, uint64(len(data))))
	for round := range 50 {
		o.Reset(0)
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(64))
			if round%2 == 1 {
				n = min(len(rest), 1+rng.IntN(7))
			}
			o.Write(rest[:n])
			rest = rest[n:]
		}
		check(fmt.Sprintf("in random chunks, round %d", round), o.Result())
	}
}

func TestObserverGolden(t *testing.T) {
	f := func(file string, want StreamResult, wantModel string) {
		t.Helper()
		data := readStream(t, file)
		want.Model = []byte(wantModel)
		w := resultString(want)
		checkAllSplits(t, file, data, w)
		// The same stream with CRLF and with CR line ends.
		checkAllSplits(t, file+" (CRLF)", bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")), w)
		checkAllSplits(t, file+" (CR)", bytes.ReplaceAll(data, []byte("\n"), []byte("\r")), w)
	}
	text := func(n int64) [NumContentKinds]int64 { return [NumContentKinds]int64{ContentText: n} }

	f("plain_text.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 27, OutputTokens: 9}},
		SawMessageStart: true,
		ContentBytes:    text(17),
		Blocks:          1,
		Events:          8,
	}, "claude-haiku-4-5-20251001")

	f("tool_use.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 377, OutputTokens: 65}},
		SawMessageStart: true,
		ContentBytes:    [NumContentKinds]int64{ContentText: 25, ContentToolInput: 33},
		Blocks:          2,
		Events:          12,
	}, "claude-sonnet-4-5-20250929")

	f("thinking.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 85, OutputTokens: 307}},
		SawMessageStart: true,
		ContentBytes:    [NumContentKinds]int64{ContentText: 17, ContentThinking: 83, ContentOther: 53},
		Blocks:          2,
		Events:          11,
	}, "claude-opus-4-6")

	f("redacted_thinking.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 120, OutputTokens: 164}},
		SawMessageStart: true,
		ContentBytes:    [NumContentKinds]int64{ContentText: 49, ContentOther: 111},
		Blocks:          2,
		Events:          8,
	}, "claude-sonnet-4-6")

	// The final input count (10682) replaces message_start's (2679): the
	// server-tool loop added input.
	f("web_search.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 10682, OutputTokens: 510, WebSearchRequests: 1}},
		SawMessageStart: true,
		ContentBytes:    [NumContentKinds]int64{ContentText: 135, ContentToolInput: 30, ContentOther: 188},
		Blocks:          4,
		Events:          21,
	}, "claude-opus-4-6")

	f("cache_5m.sse", StreamResult{
		End: EndCompleted,
		Usage: Usage{Counts: tokens.Counts{InputTokens: 3, OutputTokens: 210,
			CacheCreationInputTokens: 22175, CacheCreation5mInputTokens: 22175}},
		SawMessageStart: true,
		ContentBytes:    text(33),
		Blocks:          1,
		Events:          6,
	}, "claude-opus-4-5-20251101")

	// 1h writes are min(message_start's 4000, the final 6500); 5m the rest.
	f("cache_1h.sse", StreamResult{
		End: EndCompleted,
		Usage: Usage{Counts: tokens.Counts{InputTokens: 50, OutputTokens: 42, CacheReadInputTokens: 12000,
			CacheCreationInputTokens: 6500, CacheCreation5mInputTokens: 2500, CacheCreation1hInputTokens: 4000}},
		SawMessageStart: true,
		ContentBytes:    text(22),
		Blocks:          1,
		Events:          6,
	}, "claude-sonnet-4-6")

	f("long_context_over.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 150000, OutputTokens: 2000, CacheReadInputTokens: 60000}},
		SawMessageStart: true,
		ContentBytes:    text(34),
		Blocks:          1,
		Events:          6,
	}, "claude-sonnet-4-5-20250929")

	f("long_context_under.sse", StreamResult{
		End: EndCompleted,
		Usage: Usage{Counts: tokens.Counts{InputTokens: 120000, OutputTokens: 1500,
			CacheCreationInputTokens: 80000, CacheCreation5mInputTokens: 80000}},
		SawMessageStart: true,
		ContentBytes:    text(25),
		Blocks:          1,
		Events:          6,
	}, "claude-sonnet-4-5-20250929")

	f("output_only_delta.sse", StreamResult{
		End:               EndCompleted,
		Usage:             Usage{Counts: tokens.Counts{InputTokens: 10, OutputTokens: 15}},
		SawMessageStart:   true,
		ContentBytes:      text(32),
		Blocks:            1,
		Events:            6,
		InvocationMetrics: true,
	}, "claude-sonnet-4-5-20250929")

	// The second delta's nulls leave the first delta's values alone.
	f("multiple_deltas.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 900, OutputTokens: 120, CacheReadInputTokens: 300, WebSearchRequests: 2}},
		SawMessageStart: true,
		ContentBytes:    text(14),
		Blocks:          1,
		Events:          8,
	}, "claude-haiku-4-5-20251001")

	// A refusal after output (text streamed first), with its iterations.
	f("padded.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 1200, OutputTokens: 77, CacheReadInputTokens: 800}},
		Refused:         true,
		Iterations:      []Iteration{{Kind: IterMessage, Usage: Usage{Counts: tokens.Counts{InputTokens: 1200, OutputTokens: 77, CacheReadInputTokens: 800}}}},
		SawMessageStart: true,
		ContentBytes:    [NumContentKinds]int64{ContentText: 5, ContentThinking: 30, ContentOther: 12},
		Blocks:          2,
		Events:          10,
	}, "claude-fable-5")

	f("pings.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 14, OutputTokens: 4}},
		SawMessageStart: true,
		ContentBytes:    text(2),
		Blocks:          1,
		Events:          13,
	}, "claude-haiku-4-5-20251001")

	// Output stays message_start's placeholder: nothing later reported it.
	f("error_after_deltas.sse", StreamResult{
		End:             EndError,
		ErrorType:       "overloaded_error",
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 640, OutputTokens: 1}},
		SawMessageStart: true,
		ContentBytes:    text(52),
		Blocks:          1,
		Events:          5,
	}, "claude-opus-4-6")

	// The unfinished last event is not dispatched.
	f("cut_mid_event.sse", StreamResult{
		End:             EndCutOff,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 900, OutputTokens: 2}},
		SawMessageStart: true,
		ContentBytes:    text(43),
		Blocks:          1,
		Events:          4,
	}, "claude-sonnet-4-6")

	// Usage-shaped text in content and a nested "usage" fool nothing; the
	// escaped top-level key usa\u0067e is "usage" and counts.
	f("fake_usage.sse", StreamResult{
		End:             EndCompleted,
		Usage:           Usage{Counts: tokens.Counts{InputTokens: 31, OutputTokens: 12}},
		SawMessageStart: true,
		ContentBytes:    text(125),
		Blocks:          1,
		Events:          7,
	}, "claude-haiku-4-5-20251001")
}

// TestObserverFraming covers SSE framing details on small streams.
func TestObserverFraming(t *testing.T) {
	f := func(stream string, want StreamResult) {
		t.Helper()
		checkAllSplits(t, fmt.Sprintf("%q", stream), []byte(stream), resultString(want))
	}
	start := `{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}`
	u := Usage{Counts: tokens.Counts{InputTokens: 5, OutputTokens: 1}}

	// data: without a space, and event names from the JSON type when there is
	// no event line.
	f("data:"+start+"\n\n", StreamResult{Usage: u, SawMessageStart: true, Events: 1})
	// Only one space after the colon is dropped; JSON does not mind the second.
	f("event: message_start\ndata:  "+start+"\n\n", StreamResult{Usage: u, SawMessageStart: true, Events: 1})
	// Several data lines are joined with '\n', which is JSON whitespace.
	f("event: message_delta\ndata: {\"type\":\"message_delta\",\ndata: \"usage\":{\"output_tokens\":7}}\n\n",
		StreamResult{Usage: Usage{Counts: tokens.Counts{OutputTokens: 7}}, Events: 1})
	// Comments, id and retry lines, and unknown fields are ignored.
	f(": keep-alive\nid: 1\nretry: 1000\nfoo\nevent: message_start\n: comment inside\ndata: "+start+"\n\n",
		StreamResult{Usage: u, SawMessageStart: true, Events: 1})
	// A comment line longer than any buffer.
	f(":"+strings.Repeat("x", 5000)+"\nevent: message_stop\ndata: {}\n\n", StreamResult{End: EndCompleted, Events: 1})
	// An event without data is not dispatched; extra blank lines are nothing.
	f("event: message_stop\n\n\n\n", StreamResult{})
	// "data" without a colon is an empty data line: dispatched, malformed JSON.
	f("event: message_delta\ndata\n\n", StreamResult{Events: 1, MalformedEvents: 1})
	// The event name decides over the JSON type, as in the SDKs.
	f("event: ping\ndata: "+start+"\n\n", StreamResult{Events: 1})
	// A name longer than any known one is unknown, whatever its prefix.
	f("event: message_start_and_some_more_text\ndata: "+start+"\n\n", StreamResult{Events: 1})
	// Unknown event types are ignored.
	f("event: new_kind\ndata: {\"type\":\"new_kind\",\"usage\":{\"output_tokens\":5}}\n\n", StreamResult{Events: 1})
	// message_stop ends the stream even with malformed data.
	f("event: message_stop\ndata: {\n\n", StreamResult{End: EndCompleted, Events: 1, MalformedEvents: 1})
	// Malformed usage leaves the fold alone.
	f("data: "+start+"\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":-3}}\n\n",
		StreamResult{Usage: u, SawMessageStart: true, Events: 2, MalformedEvents: 1})
	f("data: "+start+"\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":1.5}}\n\n",
		StreamResult{Usage: u, SawMessageStart: true, Events: 2, MalformedEvents: 1})
	f("data: "+start+"\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":99999999999999999999}}\n\n",
		StreamResult{Usage: u, SawMessageStart: true, Events: 2, MalformedEvents: 1})
	f("data: "+start+"\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":9}} x\n\n",
		StreamResult{Usage: u, SawMessageStart: true, Events: 2, MalformedEvents: 1})
	// A message_start without usage is malformed.
	f("data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n", StreamResult{Events: 1, MalformedEvents: 1})
	// Error types: known ones interned, escaped ones decoded, unknown ones kept.
	f("event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"x\",\"type\":\"api\\u005ferror\"}}\n\n",
		StreamResult{End: EndError, ErrorType: ErrorTypeAPI, Events: 1})
	f("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"brand_new_error\"}}\n\n",
		StreamResult{End: EndError, ErrorType: "brand_new_error", Events: 1})
	f("event: error\ndata: {\"type\":\"error\"}\n\n", StreamResult{End: EndError, Events: 1})
	// An error after message_stop is still an error; message_stop after an
	// error does not undo it.
	f("event: error\ndata: {\"error\":{\"type\":\"overloaded_error\"}}\n\nevent: message_stop\ndata: {}\n\n",
		StreamResult{End: EndError, ErrorType: ErrorTypeOverloaded, Events: 2})
	// Modifiers reported by message_start.
	f("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"speed\":\"fast\",\"inference_geo\":\"us\",\"service_tier\":\"batch\"}}}\n\n",
		StreamResult{Usage: Usage{Counts: tokens.Counts{InputTokens: 1}, Modifiers: Modifiers{Speed: SpeedFast, InferenceGeo: GeoUS, ServiceTier: TierBatch}},
			SawMessageStart: true, Events: 1})
	// A cache-write total without a split is all 5-minute writes; a split
	// without a total is its own total; a final total below the 1h count cuts it.
	f("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"cache_creation_input_tokens\":70}}}\n\n",
		StreamResult{Usage: Usage{Counts: tokens.Counts{CacheCreationInputTokens: 70, CacheCreation5mInputTokens: 70}}, SawMessageStart: true, Events: 1})
	f("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"cache_creation\":{\"ephemeral_5m_input_tokens\":3,\"ephemeral_1h_input_tokens\":4}}}}\n\n",
		StreamResult{Usage: Usage{Counts: tokens.Counts{CacheCreationInputTokens: 7, CacheCreation5mInputTokens: 3, CacheCreation1hInputTokens: 4}}, SawMessageStart: true, Events: 1})
	f("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"cache_creation_input_tokens\":50,\"cache_creation\":{\"ephemeral_5m_input_tokens\":10,\"ephemeral_1h_input_tokens\":40}}}}\n\n"+
		"data: {\"type\":\"message_delta\",\"usage\":{\"cache_creation_input_tokens\":25,\"cache_creation\":{\"ephemeral_1h_input_tokens\":1}}}\n\n",
		StreamResult{Usage: Usage{Counts: tokens.Counts{CacheCreationInputTokens: 25, CacheCreation1hInputTokens: 25}}, SawMessageStart: true, Events: 2})
	// A model name longer than 128 bytes is not kept.
	f("data: {\"type\":\"message_start\",\"message\":{\"model\":\""+strings.Repeat("m", 129)+"\",\"usage\":{}}}\n\n",
		StreamResult{SawMessageStart: true, Events: 1})
	// Content block kinds by field name, whatever the order of keys.
	f("data: {\"delta\":{\"text\":\"abc\",\"type\":\"text_delta\"},\"type\":\"content_block_delta\"}\n\n"+
		"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"a\":1}}}\n\n"+
		"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"x\",\"text\":null}}\n\n",
		StreamResult{ContentBytes: [NumContentKinds]int64{ContentText: 3, ContentOther: 7}, Events: 3})
	// Escapes count as the bytes they decode to: é is 2, a surrogate pair 4,
	// a lone surrogate 3 (U+FFFD).
	f("data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"\\u00e9\\ud83d\\ude00\\ud800\\n\"}}\n\n",
		StreamResult{ContentBytes: [NumContentKinds]int64{ContentText: 10}, Events: 1})
}

func TestObserverOversized(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1},\"pad\":\"" +
		strings.Repeat("x", 200) + "\"}}\n\n"
	delta := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"" + strings.Repeat("y", 100) + "\"}}\n\n"
	small := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"z\"}}\n\n"
	stop := "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	stream := []byte(start + delta + small + stop)

	f := func(maxEventBytes int, want StreamResult) {
		t.Helper()
		for i := 0; i <= len(stream); i += 7 {
			var o Observer
			o.Reset(maxEventBytes)
			o.Write(stream[:i])
			o.Write(stream[i:])
			if got, w := resultString(o.Result()), resultString(want); got != w {
				t.Fatalf("unexpected result with bound %d split at %d;\ngot  %s\nwant %s", maxEventBytes, i, got, w)
			}
			if c := cap(o.data); c > maxEventBytes {
				t.Fatalf("unexpected event buffer capacity; got %d; want at most %d", c, maxEventBytes)
			}
		}
	}
	// Everything fits.
	f(1024, StreamResult{End: EndCompleted, Usage: Usage{Counts: tokens.Counts{InputTokens: 5, OutputTokens: 1}}, SawMessageStart: true,
		ContentBytes: [NumContentKinds]int64{ContentText: 101}, Events: 4})
	// message_start is dropped; the big delta counts as other content by its
	// data length.
	f(128, StreamResult{End: EndCompleted, ContentBytes: [NumContentKinds]int64{ContentText: 1, ContentOther: 150}, // the big delta's data length
		Events: 4, OversizedEvents: 2})
}

func TestObserverReset(t *testing.T) {
	var o Observer
	o.Reset(0)
	o.Write(readStream(t, "web_search.sse"))
	first := resultString(o.Result())
	o.Reset(0)
	o.Write(readStream(t, "plain_text.sse"))
	want := resultString(observeChunks(readStream(t, "plain_text.sse")))
	if got := resultString(o.Result()); got != want {
		t.Fatalf("unexpected result after Reset;\ngot  %s\nwant %s", got, want)
	}
	o.Reset(0)
	o.Write(readStream(t, "web_search.sse"))
	if got := resultString(o.Result()); got != first {
		t.Fatalf("unexpected result after second Reset;\ngot  %s\nwant %s", got, first)
	}
	// A buffer that grew past 64 KiB is released.
	o.Reset(0)
	o.Write([]byte("data: \"" + strings.Repeat("x", 100<<10) + "\"\n\n"))
	o.Reset(0)
	if c := cap(o.data); c != 0 {
		t.Fatalf("unexpected buffer capacity after Reset; got %d; want 0", c)
	}
	// The zero Observer works as after Reset(0).
	var z Observer
	z.Write(readStream(t, "plain_text.sse"))
	if got := resultString(z.Result()); got != want {
		t.Fatalf("unexpected result of the zero Observer;\ngot  %s\nwant %s", got, want)
	}
}

func TestObserverModelLifetime(t *testing.T) {
	var o Observer
	o.Reset(0)
	o.Write(readStream(t, "plain_text.sse"))
	r := o.Result()
	o.Write([]byte("event: ping\ndata: {}\n\n"))
	if got, want := string(r.Model), "claude-haiku-4-5-20251001"; got != want {
		t.Fatalf("unexpected model after more writes; got %q; want %q", got, want)
	}
}

// TestObserverWriteEvent feeds a Bedrock-shaped stream as decoded chunks.
func TestObserverWriteEvent(t *testing.T) {
	f := func(stop string, want StreamResult) {
		t.Helper()
		var o Observer
		o.Reset(0)
		for _, ev := range []string{
			`{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":70,"ephemeral_1h_input_tokens":30},"output_tokens":1}}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
			`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
			stop,
		} {
			o.WriteEvent([]byte(ev))
		}
		want.Model = []byte("claude-sonnet-4-5-20250929")
		if got, w := resultString(o.Result()), resultString(want); got != w {
			t.Fatalf("unexpected result;\ngot  %s\nwant %s", got, w)
		}
	}
	base := Usage{Counts: tokens.Counts{InputTokens: 10, OutputTokens: 15, CacheCreationInputTokens: 100, CacheCreation5mInputTokens: 70, CacheCreation1hInputTokens: 30}}
	f(`{"type":"message_stop"}`, StreamResult{End: EndCompleted, Usage: base, SawMessageStart: true,
		ContentBytes: [NumContentKinds]int64{ContentText: 5}, Events: 4})
	// Agreeing metrics change nothing.
	f(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15,"invocationLatency":1798,"firstByteLatency":1507,"cacheWriteInputTokenCount":100}}`,
		StreamResult{End: EndCompleted, Usage: base, SawMessageStart: true,
			ContentBytes: [NumContentKinds]int64{ContentText: 5}, Events: 4, InvocationMetrics: true})
	// Disagreeing metrics win; a smaller cache-write total cuts the 1h share.
	f(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":20,"cacheReadInputTokenCount":7,"cacheWriteInputTokenCount":20}}`,
		StreamResult{End: EndCompleted, Usage: Usage{Counts: tokens.Counts{InputTokens: 12, OutputTokens: 20, CacheReadInputTokens: 7,
			CacheCreationInputTokens: 20, CacheCreation1hInputTokens: 20}},
			SawMessageStart: true, ContentBytes: [NumContentKinds]int64{ContentText: 5}, Events: 4,
			InvocationMetrics: true, MetricsDisagreed: true})
}

func TestEstimateOutputTokens(t *testing.T) {
	f := func(content [NumContentKinds]int64, blocks int, output, want int64) {
		t.Helper()
		r := StreamResult{ContentBytes: content, Blocks: blocks, Usage: Usage{Counts: tokens.Counts{OutputTokens: output}}}
		if got := EstimateOutputTokens(&r); got != want {
			t.Fatalf("unexpected estimate for %v, %d blocks, %d reported; got %d; want %d", content, blocks, output, got, want)
		}
	}
	f([NumContentKinds]int64{}, 0, 0, 0)
	f([NumContentKinds]int64{ContentText: 1}, 0, 0, 1)
	f([NumContentKinds]int64{ContentText: 3}, 0, 0, 1)
	f([NumContentKinds]int64{ContentText: 4}, 0, 0, 2)
	f([NumContentKinds]int64{ContentText: 300, ContentThinking: 300, ContentToolInput: 299, ContentOther: 1}, 2, 0, 332)
	// What was reported, plus what streamed after the report.
	f([NumContentKinds]int64{ContentText: 30}, 1, 500, 500+10+16)
	// Saturates rather than wrapping.
	f([NumContentKinds]int64{ContentText: 1<<63 - 1, ContentOther: 1<<63 - 1}, 1, 0, (1<<63-1)/3+1+16)
}

// TestEstimateCutOff checks that the estimate of a cut-off golden stream lies
// between what had been reported and a sane multiple of its content.
func TestEstimateCutOff(t *testing.T) {
	data := readStream(t, "cut_mid_event.sse")
	r := observeChunks(data)
	got := EstimateOutputTokens(&r)
	// 43 bytes of English text is about 11 tokens; the estimate must cover
	// that and stay below twice the bytes.
	if got < 11 || got > 2*43 {
		t.Fatalf("unexpected estimate for the cut-off stream; got %d; want between 11 and 86", got)
	}
}

// stream200 is a realistic 200-event stream: message_start, one text block of
// 185 text deltas and 10 pings, content_block_stop, message_delta and message_stop.
func stream200() []byte {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-6\",\"id\":\"msg_01BiHaB6TfwQ4SrYoHQQBE7h\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"stop_details\":null,\"usage\":{\"input_tokens\":2095,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1800,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\",\"inference_geo\":\"global\"}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	words := []string{"The gateway ", "meters every ", "call as it ", "streams, so ", "the customer ", "pays for what ", "the model did. ", "Caf\\u00e9 \\\"quoted\\\"\\n"}
	for i := range 190 {
		if i%40 == 20 {
			b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
			continue
		}
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"")
		b.WriteString(words[i%len(words)])
		b.WriteString("\"}}\n\n")
	}
	for range 5 {
		b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"stop_details\":null},\"usage\":{\"input_tokens\":2095,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1800,\"output_tokens\":612}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return []byte(b.String())
}

func TestStream200(t *testing.T) {
	r := observeChunks(stream200())
	if r.Events != 200 || r.End != EndCompleted || r.Usage.OutputTokens != 612 || r.MalformedEvents != 0 {
		t.Fatalf("unexpected result of the 200-event stream: %s", resultString(r))
	}
}

// TestEstimateAfterReport: a cut-off stream is charged the output last
// reported plus an estimate of what streamed after that report, never the
// bytes before it twice. A stream cut by the total timeout was once charged
// only message_start's placeholder output.
func TestEstimateAfterReport(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	delta := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"abcdefghi\"}}\n\n"
	report := "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"output_tokens\":40}}\n\n"
	f := func(stream string, want int64) {
		t.Helper()
		r := observeChunks([]byte(stream))
		if got := EstimateOutputTokens(&r); got != want {
			t.Fatalf("unexpected estimate; got %d; want %d", got, want)
		}
	}
	// 184 deltas after the placeholder: 1 + 184*9/3 + 16 for the block.
	f(start+strings.Repeat(delta, 184), 1+184*3+16)
	// A report of 40, then 10 more deltas: 40 + 10*9/3.
	f(start+strings.Repeat(delta, 5)+report+strings.Repeat(delta, 10), 40+30)
	// Nothing after the report: the report alone.
	f(start+strings.Repeat(delta, 5)+report, 40)
}
