package meter

import (
	"encoding/base64"
	"fmt"
)

// Bedrock's streaming reply is AWS event-stream frames. A chunk frame's
// payload is {"bytes":"<base64>","p":"<padding>"}, the base64 being exactly
// the JSON of one event of Anthropic's SSE, plus, in message_stop, Bedrock's
// amazon-bedrock-invocationMetrics member. The functions here read the
// payload and the event with the meter's scanner, as the Observer reads the
// event, so the proxy never parses JSON of its own.

// invocationMetricsKey is the member Bedrock adds to message_stop.
const invocationMetricsKey = "amazon-bedrock-invocationMetrics"

// AppendBedrockChunk appends to dst the event JSON that a Bedrock chunk
// payload carries: the base64 (standard, padded) of its "bytes" member, the
// last one if there are several, decoded straight into dst. It returns false,
// with dst as it was, when payload is not one well-formed JSON object with a
// "bytes" string of valid, non-empty base64. It allocates only to grow dst.
func AppendBedrockChunk(dst, payload []byte) ([]byte, bool) {
	var raw []byte
	esc, found := false, false
	it := openObject(payload, 0)
	for it.next() {
		if !it.keyIs("bytes") {
			it.skip(1)
			continue
		}
		r, e, end, ok := stringAt(payload, it.i)
		if !ok {
			return dst, false
		}
		raw, esc, found, it.i = r, e, true, end
	}
	if it.bad || !atEnd(payload, it.i) || !found || len(raw) == 0 {
		return dst, false
	}
	n := len(dst)
	if esc {
		// An encoder may write '/' as \/. Unescape after dst's end, decode
		// after that (the two do not overlap even if dst grows), then move
		// the event down.
		dst, _ = appendUnescaped(dst, raw, false)
		raw = dst[n:]
	}
	m := len(dst)
	out, err := base64.StdEncoding.AppendDecode(dst, raw)
	if err != nil || len(out) == m {
		return out[:n], false
	}
	if esc {
		out = out[:n+copy(out[n:], out[m:])]
	}
	return out, true
}

// BedrockEventType reads one event of a Bedrock stream (the JSON a chunk
// carries): its type, as the Observer reads it (the first top-level "type",
// a string without escapes, as every event type is), and whether it carries
// amazon-bedrock-invocationMetrics. ok is false when event is not one
// well-formed JSON object with a non-empty type. typ is a view into event.
func BedrockEventType(event []byte) (typ []byte, hasMetrics, ok bool) {
	haveType := false
	it := openObject(event, 0)
	for it.next() {
		switch {
		case !haveType && it.keyIs("type"):
			raw, esc, end, ok := stringAt(event, it.i)
			if !ok || esc || len(raw) == 0 {
				return nil, false, false
			}
			typ, haveType, it.i = raw, true, end
		case it.keyIs(invocationMetricsKey):
			hasMetrics = true
			it.skip(1)
		default:
			it.skip(1)
		}
	}
	if it.bad || !atEnd(event, it.i) || !haveType {
		return nil, false, false
	}
	return typ, hasMetrics, true
}

// AppendWithoutInvocationMetrics appends event to dst as Anthropic's API
// sends it: without amazon-bedrock-invocationMetrics, every other member
// byte for byte. event must be one BedrockEventType accepted: the walk cannot
// fail then, and panics (a bug) otherwise.
func AppendWithoutInvocationMetrics(dst, event []byte) []byte {
	dst = append(dst, '{')
	first := true
	it := openObject(event, 0)
	for it.next() {
		start := it.keyAt
		drop := it.keyIs(invocationMetricsKey)
		if !it.skip(1) {
			break
		}
		if drop {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, event[start:it.i]...)
	}
	if it.bad || !atEnd(event, it.i) {
		panic(fmt.Sprintf("BUG: AppendWithoutInvocationMetrics got an event BedrockEventType refuses (%d bytes, the walk stopped at byte %d)", len(event), it.i))
	}
	return append(dst, '}')
}
