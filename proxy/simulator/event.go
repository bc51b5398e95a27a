package simulator

import "github.com/tollgate/tollgate/meter"

// Event names of the Messages stream. The JSON "type" of each event equals its name.
const (
	evMessageStart      = "message_start"
	evContentBlockStart = "content_block_start"
	evPing              = "ping"
	evContentBlockDelta = "content_block_delta"
	evContentBlockStop  = "content_block_stop"
	evMessageDelta      = "message_delta"
	evMessageStop       = "message_stop"
	evError             = "error"
)

// pingData is the ping event's JSON, spaced as the API sends it.
var pingData = []byte(`{"type": "ping"}`)

// events calls yield with each event of the streamed reply in order: its name
// and its compact JSON, which is valid only until the next call (it lives in
// r.buf). The order is message_start, then per block content_block_start,
// its deltas and content_block_stop, with one ping after the first
// content_block_start (or after message_start when there are no blocks),
// then message_delta and message_stop. events stops, returning false, as soon
// as yield returns false.
//
// events is framing-independent: the SSE framer writes name and data as two
// lines, and a Bedrock framer can base64 data into event-stream chunks.
func (r *reply) events(yield func(name string, data []byte) bool) bool {
	b := r.buf[:0]
	defer func() { r.buf = b[:0] }()

	b = append(b, `{"type":"message_start","message":`...)
	b = r.appendMessageHead(b)
	b = append(b, `[],"stop_reason":null,"stop_sequence":null,"stop_details":null,"usage":`...)
	b = appendUsage(b, &r.start, usageFull)
	b = append(b, "}}"...)
	if !yield(evMessageStart, b) {
		return false
	}
	if len(r.blocks) == 0 && !yield(evPing, pingData) {
		return false
	}
	for i := range r.blocks {
		var ok bool
		if b, ok = r.blockEvents(b, i, yield); !ok {
			return false
		}
	}
	b = append(b[:0], `{"type":"message_delta","delta":{"stop_reason":`...)
	b = meter.AppendJSONString(b, r.stopReason)
	b = append(b, `,"stop_sequence":null,"stop_details":null},"usage":`...)
	if r.oldUsage {
		b = appendUsage(b, &r.final, usageOutputOnly)
	} else {
		b = appendUsage(b, &r.final, usageDelta)
	}
	b = append(b, '}')
	if !yield(evMessageDelta, b) {
		return false
	}
	return yield(evMessageStop, append(b[:0], `{"type":"message_stop"}`...))
}

// blockEvents yields the events of block i: content_block_start (followed by
// the stream's ping for the first block), its deltas, content_block_stop.
// It builds them in b and returns b, grown, and false as soon as yield does.
func (r *reply) blockEvents(b []byte, i int, yield func(name string, data []byte) bool) ([]byte, bool) {
	blk := &r.blocks[i]
	b = append(b[:0], `{"type":"content_block_start","index":`...)
	b = appendInt(b, int64(i))
	b = append(b, `,"content_block":`...)
	b = blk.appendStart(b)
	b = append(b, '}')
	if !yield(evContentBlockStart, b) {
		return b, false
	}
	if i == 0 && !yield(evPing, pingData) {
		return b, false
	}
	if deltaType, field := blk.deltaKind(); deltaType != "" {
		for _, p := range blk.pieces {
			b = appendDelta(b[:0], i, deltaType, field, p)
			if !yield(evContentBlockDelta, b) {
				return b, false
			}
		}
	}
	if blk.kind == blockThinking {
		b = appendDelta(b[:0], i, "signature_delta", "signature", blk.signature)
		if !yield(evContentBlockDelta, b) {
			return b, false
		}
	}
	b = append(b[:0], `{"type":"content_block_stop","index":`...)
	b = appendInt(b, int64(i))
	b = append(b, '}')
	return b, yield(evContentBlockStop, b)
}

// deltaKind returns the delta type and field that carry the block's pieces,
// or "" for a block sent whole in its content_block_start.
func (blk *block) deltaKind() (deltaType, field string) {
	switch blk.kind {
	case blockText:
		return "text_delta", "text"
	case blockThinking:
		return "thinking_delta", "thinking"
	case blockToolUse, blockServerToolUse:
		return "input_json_delta", "partial_json"
	}
	return "", ""
}

// eventCount returns the number of events the stream of r has.
func (r *reply) eventCount() int {
	n := 4 // message_start, ping, message_delta, message_stop
	for i := range r.blocks {
		n += 2 + len(r.blocks[i].pieces)
		if r.blocks[i].kind == blockThinking {
			n++ // signature_delta
		}
	}
	return n
}

// appendMessage appends the non-streaming Message JSON of r: the same object
// the SDKs accumulate from the stream.
func (r *reply) appendMessage(b []byte) []byte {
	b = r.appendMessageHead(b)
	b = append(b, '[')
	for i := range r.blocks {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.blocks[i].appendFull(b)
	}
	b = append(b, `],"stop_reason":`...)
	b = meter.AppendJSONString(b, r.stopReason)
	b = append(b, `,"stop_sequence":null,"stop_details":null,"usage":`...)
	b = appendUsage(b, &r.final, usageFull)
	return append(b, '}')
}

// appendMessageHead appends the Message object's opening up to "content":.
func (r *reply) appendMessageHead(b []byte) []byte {
	b = append(b, `{"model":`...)
	b = meter.AppendJSONString(b, r.model)
	b = append(b, `,"id":`...)
	b = meter.AppendJSONString(b, r.id)
	return append(b, `,"type":"message","role":"assistant","content":`...)
}

func appendDelta(b []byte, index int, deltaType, field, value string) []byte {
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = appendInt(b, int64(index))
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, deltaType...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = meter.AppendJSONString(b, value)
	return append(b, "}}"...)
}

// appendStart appends the content_block of the block's content_block_start:
// empty text, thinking and input for blocks that stream deltas, the whole
// block for the others.
func (blk *block) appendStart(b []byte) []byte {
	switch blk.kind {
	case blockText:
		return append(b, `{"type":"text","text":""}`...)
	case blockThinking:
		return append(b, `{"type":"thinking","thinking":"","signature":""}`...)
	case blockToolUse, blockServerToolUse:
		return blk.appendTool(b, "{}")
	}
	return blk.appendFull(b)
}

// appendFull appends the block as it appears in a Message's content.
func (blk *block) appendFull(b []byte) []byte {
	switch blk.kind {
	case blockText:
		b = append(b, `{"type":"text","text":`...)
		b = meter.AppendJSONString(b, blk.full)
		return append(b, '}')
	case blockThinking:
		b = append(b, `{"type":"thinking","thinking":`...)
		b = meter.AppendJSONString(b, blk.full)
		b = append(b, `,"signature":`...)
		b = meter.AppendJSONString(b, blk.signature)
		return append(b, '}')
	case blockRedactedThinking:
		b = append(b, `{"type":"redacted_thinking","data":`...)
		b = meter.AppendJSONString(b, blk.data)
		return append(b, '}')
	case blockToolUse, blockServerToolUse:
		return blk.appendTool(b, blk.full)
	case blockWebSearchResult:
		b = append(b, `{"type":"web_search_tool_result","tool_use_id":`...)
		b = meter.AppendJSONString(b, blk.toolUseID)
		b = append(b, `,"content":[{"type":"web_search_result","title":"Result `...)
		b = appendInt(b, int64(blk.ordinal))
		b = append(b, `: `...)
		b = appendJSONStringContent(b, blk.query)
		b = append(b, `","url":"https://example.com/sim/search/`...)
		b = appendInt(b, int64(blk.ordinal))
		b = append(b, `","encrypted_content":"c2ltLXNlYXJjaC1yZXN1bHQ=","page_age":null}]}`...)
		return b
	}
	panic("BUG: unknown block kind")
}

func (blk *block) appendTool(b []byte, input string) []byte {
	if blk.kind == blockToolUse {
		b = append(b, `{"type":"tool_use","id":`...)
	} else {
		b = append(b, `{"type":"server_tool_use","id":`...)
	}
	b = meter.AppendJSONString(b, blk.id)
	b = append(b, `,"name":`...)
	b = meter.AppendJSONString(b, blk.name)
	b = append(b, `,"input":`...)
	b = append(b, input...)
	return append(b, '}')
}

// usageShape selects which usage fields appendUsage writes.
type usageShape uint8

const (
	usageFull       usageShape = iota // message_start and non-streaming: every field
	usageDelta                        // message_delta: cumulative counts, no cache_creation split, tier or geo
	usageOutputOnly                   // message_delta, older and Bedrock shape: output_tokens only
)

func appendUsage(b []byte, u *Usage, shape usageShape) []byte {
	if shape == usageOutputOnly {
		b = append(b, `{"output_tokens":`...)
		b = appendInt(b, u.OutputTokens)
		return append(b, '}')
	}
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.InputTokens)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, u.CacheCreationInputTokens)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, u.CacheReadInputTokens)
	if shape == usageFull {
		b = append(b, `,"cache_creation":{"ephemeral_5m_input_tokens":`...)
		b = appendInt(b, u.CacheCreation.Ephemeral5mInputTokens)
		b = append(b, `,"ephemeral_1h_input_tokens":`...)
		b = appendInt(b, u.CacheCreation.Ephemeral1hInputTokens)
		b = append(b, '}')
	}
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, u.OutputTokens)
	if u.ServerToolUse != (ServerToolUse{}) {
		b = append(b, `,"server_tool_use":{"web_search_requests":`...)
		b = appendInt(b, u.ServerToolUse.WebSearchRequests)
		b = append(b, `,"web_fetch_requests":`...)
		b = appendInt(b, u.ServerToolUse.WebFetchRequests)
		b = append(b, '}')
	}
	if shape == usageFull {
		b = append(b, `,"service_tier":`...)
		b = meter.AppendJSONString(b, u.ServiceTier)
		b = append(b, `,"inference_geo":`...)
		b = meter.AppendJSONString(b, u.InferenceGeo)
	}
	return append(b, '}')
}

// appendErrorJSON appends Anthropic's error body; requestID "" leaves out
// request_id (as in-stream error events do).
func appendErrorJSON(b []byte, errType, msg, requestID string) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = meter.AppendJSONString(b, errType)
	b = append(b, `,"message":`...)
	b = meter.AppendJSONString(b, msg)
	b = append(b, '}')
	if requestID != "" {
		b = append(b, `,"request_id":`...)
		b = meter.AppendJSONString(b, requestID)
	}
	return append(b, '}')
}
