package openai

import (
	"bytes"
	"strconv"

	"github.com/tollgate/tollgate/meter"
)

// maxEventBytes bounds one upstream event: its data lines and any
// unfinished line. It is the meter's bound, so an event the meter reads
// fits here too; a larger one ends the stream with an error.
const maxEventBytes = meter.DefaultMaxEventBytes

// maxToolCalls bounds the tool calls of one reply (Stream keeps the block
// index of each). Real replies make a handful; a reply past the bound ends
// with an error rather than grow the state without limit.
const maxToolCalls = 1024

// maxNameBytes bounds an event name; longer names are no event we know.
const maxNameBytes = 32

// maxIDBytes bounds the message ID and model kept from message_start.
const maxIDBytes = 256

// retainBufferBytes is the largest buffer Reset keeps, so that a Stream
// that once met a big event does not hold its memory in a pool.
const retainBufferBytes = 64 << 10

// Stream translates the Anthropic SSE of one call into OpenAI
// chat.completion.chunk SSE lines, `data: <json>\n\n` with no event lines,
// ending with `data: [DONE]\n\n` after message_stop or with an error line
// after an `event: error`; nothing follows either.
//
// Lines end in LF, CRLF or CR, as in the SSE specification and the meter.
// An event is dispatched on its `event:` name, else on its JSON type, as
// the SDKs and the meter do. The output is the same however the input is
// split. Memory is bounded per stream: one event (maxEventBytes), the tool
// calls' block indices (maxToolCalls) and a chunk prefix.
//
// A Stream is not safe for concurrent use. Reuse it through Reset; the zero
// value is a Stream reset with zero Options and created.
type Stream struct {
	opts    Options
	created int64

	// SSE framing.
	line    []byte // an unfinished line, carried to the next Append
	data    []byte // the current event's data lines, joined by '\n'
	name    [maxNameBytes]byte
	nameLen int  // -1: too long to be a name we know (the event is skipped)
	hasData bool // a data line was seen: a blank line dispatches an event
	crSeen  bool // the last input ended in '\r': a leading '\n' ends nothing

	// Translation.
	ev       event  // the event being translated, reused
	scratch  []byte // a tool call's initial arguments
	started  bool   // message_start seen
	finished bool   // the finish_reason chunk sent
	done     bool   // [DONE] or an error sent: the rest is ignored
	// prefix is each chunk's beginning, up to and including "choices":[.
	prefix []byte
	// toolBlocks is the Anthropic block index of each tool call so far;
	// a call's OpenAI index is its position.
	toolBlocks []int64
	usage      tokens
}

// event is what Stream reads of any Anthropic stream event.
type event struct {
	Type         string            `json:"type"`
	Message      *anthropicMessage `json:"message"`
	Index        int64             `json:"index"`
	ContentBlock *contentBlock     `json:"content_block"`
	Delta        eventDelta        `json:"delta"`
	Usage        *usage            `json:"usage"`
	Error        *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// eventDelta is content_block_delta's delta and message_delta's delta.
type eventDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Thinking    string `json:"thinking"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// Reset readies s for a new stream of a request with opts; created is the
// chunks' created time in Unix seconds. Buffers are kept unless they grew
// past 64 KiB.
func (s *Stream) Reset(opts Options, created int64) {
	*s = Stream{
		opts:       opts,
		created:    created,
		line:       keep(s.line),
		data:       keep(s.data),
		scratch:    keep(s.scratch),
		prefix:     keep(s.prefix),
		toolBlocks: s.toolBlocks[:0],
	}
}

func keep(b []byte) []byte {
	if cap(b) > retainBufferBytes {
		return nil
	}
	return b[:0]
}

// Append translates every complete event in what was fed so far, sse
// included, and appends the result to dst. It keeps a partial event for the
// next call and never retains sse.
func (s *Stream) Append(dst, sse []byte) []byte {
	for len(sse) > 0 && !s.done {
		if s.crSeen {
			s.crSeen = false
			if sse[0] == '\n' {
				sse = sse[1:]
				continue
			}
		}
		j := bytes.IndexAny(sse, "\r\n")
		if j < 0 {
			if len(s.line)+len(sse)+len(s.data) > maxEventBytes {
				return s.fail(dst, "api_error", "the upstream sent an event larger than the limit")
			}
			s.line = append(s.line, sse...)
			return dst
		}
		line := sse[:j]
		if len(s.line)+j+len(s.data) > maxEventBytes {
			return s.fail(dst, "api_error", "the upstream sent an event larger than the limit")
		}
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		dst = s.onLine(dst, line)
		s.line = s.line[:0]
		if sse[j] == '\r' {
			if j+1 == len(sse) {
				s.crSeen = true
			} else if sse[j+1] == '\n' {
				j++
			}
		}
		sse = sse[j+1:]
	}
	return dst
}

// onLine handles one line: a field of the current event, a comment, or the
// blank line that dispatches the event.
func (s *Stream) onLine(dst, line []byte) []byte {
	if len(line) == 0 {
		return s.dispatch(dst)
	}
	if line[0] == ':' {
		return dst
	}
	field, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if len(s.data)+len(value)+1 > maxEventBytes {
			return s.fail(dst, "api_error", "the upstream sent an event larger than the limit")
		}
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.hasData = true
	case "event":
		s.nameLen = -1
		if len(value) <= maxNameBytes {
			s.nameLen = copy(s.name[:], value)
		}
	}
	return dst
}

// dispatch ends the current event at a blank line; an event without data
// is none, as in the SSE specification.
func (s *Stream) dispatch(dst []byte) []byte {
	if s.hasData {
		dst = s.event(dst)
	}
	s.data = s.data[:0]
	s.hasData = false
	s.nameLen = 0
	return dst
}

// eventKind is an event type Stream tells apart.
type eventKind uint8

const (
	kindOther   eventKind = iota // event types added later: nothing
	kindNothing                  // ping, content_block_stop: not even decoded
	kindMessageStart
	kindBlockStart
	kindDelta
	kindMessageDelta
	kindMessageStop
	kindError
)

func kindOf[S ~string | ~[]byte](name S) eventKind {
	switch string(name) {
	case "ping", "content_block_stop":
		return kindNothing
	case "message_start":
		return kindMessageStart
	case "content_block_start":
		return kindBlockStart
	case "content_block_delta":
		return kindDelta
	case "message_delta":
		return kindMessageDelta
	case "message_stop":
		return kindMessageStop
	case "error":
		return kindError
	}
	return kindOther
}

// event translates the current event: of the kind its name says, else
// (no event line) of its JSON type.
func (s *Stream) event(dst []byte) []byte {
	kind := kindOf(s.name[:max(s.nameLen, 0)])
	if s.nameLen < 0 || kind == kindNothing {
		return dst
	}
	s.ev = event{}
	if lenientJSON.Unmarshal(s.data, &s.ev) != nil {
		return s.fail(dst, "api_error", "the upstream sent an event that is not valid JSON")
	}
	if s.nameLen == 0 {
		kind = kindOf(s.ev.Type)
	}
	switch kind {
	case kindMessageStart:
		return s.onMessageStart(dst)
	case kindBlockStart:
		return s.onBlockStart(dst)
	case kindDelta:
		return s.onDelta(dst)
	case kindMessageDelta:
		return s.onMessageDelta(dst)
	case kindMessageStop:
		return s.onMessageStop(dst)
	case kindError:
		return s.onError(dst)
	}
	return dst
}

func (s *Stream) onMessageStart(dst []byte) []byte {
	m := s.ev.Message
	if m == nil {
		return s.fail(dst, "api_error", "the upstream sent message_start without a message")
	}
	if s.started {
		return dst // a second start changes nothing
	}
	s.started = true
	s.usage.merge(&m.Usage)
	model := m.Model
	if model == "" {
		model = s.opts.Model
	}
	s.setPrefix(m.ID, model)
	dst = s.chunkStart(dst)
	dst = append(dst, `{"role":"assistant","content":""}`...)
	return s.chunkEnd(dst, "")
}

// setPrefix sets the beginning every chunk shares.
func (s *Stream) setPrefix(id, model string) {
	p := append(s.prefix[:0], `data: {"id":`...)
	p = appendChatID(p, id[:min(len(id), maxIDBytes)])
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, s.created, 10)
	p = append(p, `,"model":`...)
	p = meter.AppendJSONString(p, model[:min(len(model), maxIDBytes)])
	s.prefix = append(p, `,"choices":[`...)
}

func (s *Stream) chunkStart(dst []byte) []byte {
	if len(s.prefix) == 0 {
		s.setPrefix("", s.opts.Model) // content before message_start
	}
	dst = append(dst, s.prefix...)
	return append(dst, `{"index":0,"delta":`...)
}

// chunkEnd ends a chunk whose delta was appended; finish "" is null.
func (s *Stream) chunkEnd(dst []byte, finish string) []byte {
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = append(dst, finish...)
		dst = append(dst, '"')
	}
	dst = append(dst, "}]"...)
	if s.opts.IncludeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}

// onBlockStart announces a tool call; a text or thinking block that
// starts with text (Anthropic's start empty) passes it on as a delta.
func (s *Stream) onBlockStart(dst []byte) []byte {
	b := s.ev.ContentBlock
	if b == nil {
		return s.fail(dst, "api_error", "the upstream sent content_block_start without a block")
	}
	switch b.Type {
	case "text":
		return s.textDelta(dst, "content", b.Text)
	case "thinking":
		return s.textDelta(dst, "reasoning_content", b.Thinking)
	case "tool_use":
	default:
		return dst // server tools, their results, redacted thinking: nothing
	}
	if len(s.toolBlocks) == maxToolCalls {
		return s.fail(dst, "api_error", "the reply has more tool calls than the limit")
	}
	s.toolBlocks = append(s.toolBlocks, s.ev.Index)
	// The input at the start is a placeholder {} when deltas follow.
	s.scratch = appendArguments(s.scratch[:0], b.Input)
	if string(s.scratch) == "{}" {
		s.scratch = s.scratch[:0]
	}
	dst = s.chunkStart(dst)
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(len(s.toolBlocks)-1), 10)
	dst = append(dst, `,"id":`...)
	dst = meter.AppendJSONString(dst, b.ID)
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = meter.AppendJSONString(dst, b.Name)
	dst = append(dst, `,"arguments":`...)
	dst = meter.AppendJSONString(dst, string(s.scratch))
	dst = append(dst, "}}]}"...)
	return s.chunkEnd(dst, "")
}

// textDelta appends a chunk whose delta is {key: text}, none for "".
func (s *Stream) textDelta(dst []byte, key, text string) []byte {
	if text == "" {
		return dst
	}
	dst = s.chunkStart(dst)
	dst = append(dst, `{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = meter.AppendJSONString(dst, text)
	dst = append(dst, '}')
	return s.chunkEnd(dst, "")
}

// onDelta translates text, thinking and a tool call's argument fragments;
// signatures, citations and server tools' input have no OpenAI form.
func (s *Stream) onDelta(dst []byte) []byte {
	d := &s.ev.Delta
	switch d.Type {
	case "text_delta":
		return s.textDelta(dst, "content", d.Text)
	case "thinking_delta":
		return s.textDelta(dst, "reasoning_content", d.Thinking)
	case "input_json_delta":
	default:
		return dst
	}
	call := s.toolCall(s.ev.Index)
	if call < 0 || d.PartialJSON == "" {
		return dst
	}
	dst = s.chunkStart(dst)
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(call), 10)
	dst = append(dst, `,"function":{"arguments":`...)
	dst = meter.AppendJSONString(dst, d.PartialJSON)
	dst = append(dst, "}}]}"...)
	return s.chunkEnd(dst, "")
}

// toolCall returns the OpenAI index of the tool call of Anthropic block
// index, or -1 when that block is no tool call (a server tool's).
func (s *Stream) toolCall(index int64) int {
	for i := len(s.toolBlocks) - 1; i >= 0; i-- {
		if s.toolBlocks[i] == index {
			return i
		}
	}
	return -1
}

func (s *Stream) onMessageDelta(dst []byte) []byte {
	if s.ev.Usage != nil {
		s.usage.merge(s.ev.Usage)
	}
	if r := s.ev.Delta.StopReason; r != "" && !s.finished {
		return s.finish(dst, finishReason(r))
	}
	return dst
}

func (s *Stream) finish(dst []byte, reason string) []byte {
	s.finished = true
	dst = s.chunkStart(dst)
	dst = append(dst, "{}"...)
	return s.chunkEnd(dst, reason)
}

// onMessageStop ends the stream: the finish chunk if no stop reason came
// ("stop"), the usage chunk when asked for, then [DONE].
func (s *Stream) onMessageStop(dst []byte) []byte {
	if !s.finished {
		dst = s.finish(dst, "stop")
	}
	if s.opts.IncludeUsage {
		dst = append(dst, s.prefix...)
		dst = append(dst, `],"usage":`...)
		dst = s.usage.appendJSON(dst)
		dst = append(dst, "}\n\n"...)
	}
	s.done = true
	return append(dst, "data: [DONE]\n\n"...)
}

// onError ends the stream with OpenAI's error object, without [DONE].
func (s *Stream) onError(dst []byte) []byte {
	typ, message := "api_error", "the upstream stream failed"
	if e := s.ev.Error; e != nil {
		if e.Type != "" {
			typ = e.Type
		}
		if e.Message != "" {
			message = e.Message
		}
	}
	return s.fail(dst, typ, message)
}

// fail ends the stream with an error line; the rest of the input is
// ignored.
func (s *Stream) fail(dst []byte, typ, message string) []byte {
	s.done = true
	s.line, s.data = s.line[:0], s.data[:0]
	dst = append(dst, "data: "...)
	dst = AppendError(dst, typ, message, "")
	return append(dst, "\n\n"...)
}
