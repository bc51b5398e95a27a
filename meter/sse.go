package meter

import "bytes"

// DefaultMaxEventBytes is the bound on one event's data that Reset(0) applies.
// Real events are far smaller (a text delta is tens of bytes; the largest are
// server-tool results in content_block_start, tens of KiB), so 1 MiB only ever
// trips on a broken or hostile upstream.
const DefaultMaxEventBytes = 1 << 20

// retainBufferBytes is the largest event buffer Reset keeps. An Observer that
// once met a big event gives its buffer back, so a pool of Observers stays small.
const retainBufferBytes = 64 << 10

// maxModelBytes bounds the response model name kept in StreamResult.Model.
const maxModelBytes = 128

// StreamEnd says how a stream ended, as far as it has been seen.
type StreamEnd uint8

const (
	// EndCutOff is a stream with neither message_stop nor an error event (yet).
	EndCutOff StreamEnd = iota
	// EndCompleted is a stream that reached message_stop.
	EndCompleted
	// EndError is a stream that carried `event: error`.
	EndError
)

// String returns the name of e.
func (e StreamEnd) String() string {
	switch e {
	case EndCutOff:
		return "cut_off"
	case EndCompleted:
		return "completed"
	case EndError:
		return "error"
	}
	return "unknown"
}

// ContentKind is the kind of content whose bytes StreamResult.ContentBytes counts.
type ContentKind uint8

const (
	// ContentText is text_delta text and text block starts.
	ContentText ContentKind = iota
	// ContentThinking is thinking_delta text and thinking block starts.
	ContentThinking
	// ContentToolInput is input_json_delta partial JSON (tool_use and server_tool_use).
	ContentToolInput
	// ContentOther is signatures, citations, redacted thinking data, unknown
	// delta types, and oversized content events.
	ContentOther
	// NumContentKinds is the number of content kinds.
	NumContentKinds
)

// Error types of the `event: error` payloads the meter knows (Anthropic's
// error types). The
// Observer returns these interned strings so that an error event costs no
// allocation; an unknown type is copied once.
const (
	ErrorTypeInvalidRequest  = "invalid_request_error"
	ErrorTypeAuthentication  = "authentication_error"
	ErrorTypePermission      = "permission_error"
	ErrorTypeNotFound        = "not_found_error"
	ErrorTypeRequestTooLarge = "request_too_large"
	ErrorTypeRateLimit       = "rate_limit_error"
	ErrorTypeAPI             = "api_error"
	ErrorTypeTimeout         = "timeout_error"
	ErrorTypeOverloaded      = "overloaded_error"
	ErrorTypeBilling         = "billing_error"
)

var knownErrorTypes = [...]string{
	ErrorTypeInvalidRequest, ErrorTypeAuthentication, ErrorTypePermission,
	ErrorTypeNotFound, ErrorTypeRequestTooLarge, ErrorTypeRateLimit, ErrorTypeAPI,
	ErrorTypeTimeout, ErrorTypeOverloaded, ErrorTypeBilling,
}

// StreamResult is what an Observer has seen of a stream so far.
type StreamResult struct {
	// End says how the stream ended: cut off (also "not yet"), completed, or error.
	End StreamEnd
	// ErrorType is error.type of the error event for EndError, e.g.
	// "overloaded_error"; empty when the event carried none.
	ErrorType string
	// Usage is the folded usage: message_start's snapshot with
	// every field a later message_delta carried overwritten; on Bedrock,
	// amazon-bedrock-invocationMetrics override it where they disagree.
	Usage Usage
	// SawMessageStart is true once a well-formed message_start was seen.
	SawMessageStart bool
	// Model is message.model of message_start: a view into the Observer's own
	// buffer, valid until its next Reset (or a second message_start, which
	// real streams never send). Empty when absent or longer than 128 bytes.
	Model []byte
	// ContentBytes counts decoded content bytes seen per ContentKind, for
	// EstimateOutputTokens.
	ContentBytes [NumContentKinds]int64
	// Blocks is the number of content_block_start events.
	Blocks int
	// Events is the number of events dispatched, pings and unknown types included.
	Events int
	// OversizedEvents counts events skipped because their data exceeded the bound.
	OversizedEvents int
	// MalformedEvents counts events of a known type whose JSON did not parse;
	// they change nothing else.
	MalformedEvents int
	// InvocationMetrics is true when message_stop carried Bedrock's
	// amazon-bedrock-invocationMetrics; MetricsDisagreed is true when they
	// differed from the events' usage and so replaced it.
	InvocationMetrics, MetricsDisagreed bool

	// Iterations is usage.iterations as last reported, folded by kind and
	// model (views into the Observer, valid like Model); nil when none was.
	Iterations []Iteration
	// FallbackModel is to.model of the last fallback content block: the
	// model a server-side fallback handed the reply to mid-output; empty
	// when there was none (or it was longer than 128 bytes).
	FallbackModel []byte
	// Refused is set when the last stop_reason reported was "refusal".
	Refused bool
	// SpeedReported and GeoReported are set when the usage reported speed and
	// inference_geo (which only message_start and whole replies carry).
	SpeedReported, GeoReported bool
	// ContentBytesAtReport and BlocksAtReport are ContentBytes' sum and
	// Blocks when the usage last reported output_tokens: what streamed after
	// that report is what an estimate adds to it.
	ContentBytesAtReport int64
	BlocksAtReport       int
}

// EstimateOutputTokens estimates the output of a stream that was cut off: the
// last output_tokens reported plus an estimate of the content streamed after
// that report (so nothing is counted twice): one token per 3 bytes of
// decoded text, thinking and tool input (English prose runs near 4 bytes per
// token, code near 3, CJK text 3 bytes per character and about one token
// each), plus 16 tokens per content block started since, for the framing the
// model emits (tool names and ids). It leans high: a cut-off call has
// usually generated more than was delivered.
func EstimateOutputTokens(r *StreamResult) int64 {
	n := max(r.contentBytes()-r.ContentBytesAtReport, 0)
	est := sat(n/3+int64(n%3+2)/3, 16*int64(max(r.Blocks-r.BlocksAtReport, 0)))
	return sat(r.Usage.OutputTokens, est)
}

// contentBytes is the sum of ContentBytes.
func (r *StreamResult) contentBytes() int64 {
	var n int64
	for _, b := range r.ContentBytes {
		n = sat(n, b)
	}
	return n
}

// RefusedBeforeOutput reports whether the reply is a refusal that came
// before any output reached the client: such a call is not billed.
func (r *StreamResult) RefusedBeforeOutput() bool {
	return r.Refused && r.ContentBytes[ContentText] == 0 && r.ContentBytes[ContentThinking] == 0 &&
		r.ContentBytes[ContentToolInput] == 0
}

// Observer watches an Anthropic SSE stream as it passes: it frames lines and
// events over whatever chunks the caller feeds, folds the usage they carry and
// counts content bytes. It only reads the bytes; the caller forwards them.
//
// Memory is bounded per stream whatever its length: a few hundred bytes of
// state plus one event's data, at most maxEventBytes; a larger event is
// skipped and counted, never buffered. In steady state Write does not allocate.
//
// An Observer is not safe for concurrent use. Reuse it through Reset; the zero
// value behaves as after Reset(0).
type Observer struct {
	maxEventBytes int

	line     lineState
	value    valueKind
	field    [8]byte // the first bytes of the current line's field name
	fieldLen int     // the field name's full length
	crSeen   bool    // the previous chunk ended in '\r': a leading '\n' ends nothing

	// The current event.
	name        [24]byte // event name; longer names are no type we know
	nameLen     int
	nameLong    bool
	data        []byte // data lines joined by '\n', up to maxEventBytes
	dataLines   int
	dataBytes   int64 // the full data length, also past the bound
	oversized   bool
	haveMetrics bool

	res      StreamResult
	fold     usageFold
	metrics  usageFields // Bedrock invocationMetrics in usage terms
	model    [maxModelBytes]byte
	fallback [maxModelBytes]byte
	iters    iterations
}

type lineState uint8

const (
	lineStart  lineState = iota // at the start of a line
	lineField                   // in the field name
	lineSpace                   // just after the colon: one space is dropped
	lineValue                   // in the value
	lineIgnore                  // in a comment line
)

type valueKind uint8

const (
	valueOther valueKind = iota
	valueData
	valueEvent
)

// Reset clears o for a new stream. maxEventBytes bounds one event's data
// (0 means DefaultMaxEventBytes). It keeps the event buffer unless it grew past
// 64 KiB or past the new bound.
func (o *Observer) Reset(maxEventBytes int) {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	data := o.data[:0]
	if cap(data) > min(retainBufferBytes, maxEventBytes) {
		data = nil
	}
	*o = Observer{maxEventBytes: maxEventBytes, data: data}
}

// Write feeds the next chunk of the stream, split anywhere. It never retains p
// nor changes it.
//
// The work of each line state stays in Write's loop but for the field
// name, which readField reads: a line's start and its value in methods of
// their own cost BenchmarkObserver about 5% (CPU time), this loop being the
// hottest of the gateway.
func (o *Observer) Write(p []byte) {
	if o.maxEventBytes == 0 {
		o.maxEventBytes = DefaultMaxEventBytes
	}
	if len(p) == 0 {
		return
	}
	i := 0
	if o.crSeen {
		o.crSeen = false
		if p[0] == '\n' {
			i = 1
		}
	}
	for i < len(p) {
		switch o.line {
		case lineStart:
			switch p[i] {
			case '\n', '\r':
				o.dispatch()
				i = o.endOfLine(p, i)
				continue
			case ':':
				o.line = lineIgnore
				i++
				continue
			}
			o.line, o.fieldLen = lineField, 0
		case lineField:
			i = o.readField(p, i)
		case lineSpace:
			if p[i] == ' ' {
				i++
			}
			o.line = lineValue
		case lineValue, lineIgnore:
			// The value (or comment) runs to the end of the line, or of p.
			rest := p[i:]
			j := bytes.IndexByte(rest, '\n')
			seg := rest
			if j >= 0 {
				seg = rest[:j]
			}
			if k := bytes.IndexByte(seg, '\r'); k >= 0 {
				seg, j = seg[:k], k
			}
			if o.line == lineValue {
				o.appendValue(seg)
			}
			if j < 0 {
				return
			}
			o.line = lineStart
			i = o.endOfLine(p, i+j)
		}
	}
}

// readField reads a field name from p[i] up to its colon, or to the end of
// a line without one (a field with an empty value), or to the end of p.
// It returns the index of the next byte to read.
func (o *Observer) readField(p []byte, i int) int {
	for ; i < len(p); i++ {
		c := p[i]
		if c == ':' {
			o.beginValue()
			o.line = lineSpace
			return i + 1
		}
		if c == '\n' || c == '\r' {
			o.beginValue()
			o.line = lineStart
			return o.endOfLine(p, i)
		}
		if o.fieldLen < len(o.field) {
			o.field[o.fieldLen] = c
		}
		o.fieldLen++
	}
	return i
}

// endOfLine steps over the line terminator at p[i] ('\n', '\r' or "\r\n", the
// last possibly split across chunks).
func (o *Observer) endOfLine(p []byte, i int) int {
	if p[i] == '\r' {
		if i+1 == len(p) {
			o.crSeen = true
		} else if p[i+1] == '\n' {
			return i + 2
		}
	}
	return i + 1
}

func (o *Observer) beginValue() {
	f := o.field[:min(o.fieldLen, len(o.field))]
	switch {
	case o.fieldLen == 4 && string(f) == "data":
		o.value = valueData
		if o.dataLines > 0 {
			o.appendValue(newline[:])
		}
		o.dataLines++
	case o.fieldLen == 5 && string(f) == "event":
		o.value = valueEvent
		o.nameLen, o.nameLong = 0, false
	default:
		o.value = valueOther
	}
}

var newline = [1]byte{'\n'}

func (o *Observer) appendValue(s []byte) {
	switch o.value {
	case valueData:
		o.dataBytes += int64(len(s))
		if o.oversized {
			return
		}
		n := len(o.data) + len(s)
		if n > o.maxEventBytes {
			o.oversized = true
			o.data = o.data[:0]
			return
		}
		if n > cap(o.data) {
			// Grow by hand so the buffer never exceeds the bound.
			d := make([]byte, len(o.data), min(max(2*cap(o.data), n, 512), o.maxEventBytes))
			copy(d, o.data)
			o.data = d
		}
		o.data = append(o.data, s...)
	case valueEvent:
		if o.nameLen+len(s) > len(o.name) {
			o.nameLong = true
			return
		}
		o.nameLen += copy(o.name[o.nameLen:], s)
	}
}

// dispatch ends the current event at a blank line.
func (o *Observer) dispatch() {
	if o.dataLines > 0 {
		o.res.Events++
		name := o.name[:o.nameLen]
		if o.nameLong {
			name = unknownName // longer than any name we know
		}
		if o.oversized {
			o.res.OversizedEvents++
			if bytes.HasPrefix(name, contentBlockPrefix) {
				o.res.ContentBytes[ContentOther] = sat(o.res.ContentBytes[ContentOther], o.dataBytes)
			}
		} else {
			o.event(name, o.data)
		}
	}
	o.nameLen, o.nameLong = 0, false
	o.data = o.data[:0]
	o.dataLines, o.dataBytes, o.oversized = 0, 0, false
}

var (
	contentBlockPrefix = []byte("content_block_")
	unknownName        = []byte("?")
)

// WriteEvent observes one whole event given as its JSON data alone, the type
// taken from its "type" field. It is for upstreams that frame events
// themselves, such as Bedrock's event stream, whose chunks carry exactly the
// JSON that follows `data:` in Anthropic's SSE. It never retains data.
func (o *Observer) WriteEvent(data []byte) {
	if o.maxEventBytes == 0 {
		o.maxEventBytes = DefaultMaxEventBytes
	}
	o.res.Events++
	if len(data) > o.maxEventBytes {
		o.res.OversizedEvents++
		return
	}
	o.event(nil, data)
}

// event handles one complete event. An empty name (no `event:` line) falls back
// to the JSON type field; otherwise the name decides, as in the SDKs.
func (o *Observer) event(name, data []byte) {
	if len(name) == 0 {
		name = jsonType(data)
	}
	var ok bool
	switch string(name) {
	case "content_block_delta":
		ok = o.onContent(data, "delta")
	case "content_block_start":
		o.res.Blocks++
		ok = o.onContent(data, "content_block")
	case "message_start":
		ok = o.onMessageStart(data)
	case "message_delta":
		ok = o.onMessageDelta(data)
	case "message_stop":
		// The event name alone ends the stream; its data only matters for
		// Bedrock's metrics.
		if o.res.End == EndCutOff {
			o.res.End = EndCompleted
		}
		ok = o.onMessageStop(data)
	case "error":
		o.res.End = EndError
		ok = o.onError(data)
	default: // ping, content_block_stop, and types added later
		ok = true
	}
	if !ok {
		o.res.MalformedEvents++
	}
}

// jsonType returns the top-level "type" string of an event, or nil.
func jsonType(data []byte) []byte {
	it := openObject(data, 0)
	for it.next() {
		if it.keyIs("type") {
			raw, esc, _, ok := stringAt(data, it.i)
			if !ok || esc {
				return nil // no event type we know needs escapes
			}
			return raw
		}
		if !it.skip(1) {
			return nil
		}
	}
	return nil
}

func (o *Observer) onMessageStart(b []byte) bool {
	var u usageFields
	var model [maxModelBytes]byte
	modelLen, haveUsage := 0, false
	it := openObject(b, 0)
	for it.next() {
		if !it.keyIs("message") {
			it.skip(1)
			continue
		}
		// A repeated "message" replaces the first, as in JSON.
		modelLen, haveUsage = 0, false
		m := openObject(b, it.i)
		for m.next() {
			switch {
			case m.keyIs("usage"):
				end, ok := parseUsage(b, m.i, &u, &o.iters)
				if !ok {
					return false
				}
				m.i, haveUsage = end, true
			case m.keyIs("model"):
				modelLen = 0
				raw, _, end, ok := stringAt(b, m.i)
				if !ok {
					m.skip(2) // null or another type: no model
					continue
				}
				d, fits := appendUnescaped(model[:0], raw, true)
				if fits {
					modelLen = len(d)
				}
				m.i = end
			default:
				m.skip(2)
			}
		}
		if m.bad {
			return false
		}
		it.i = m.i
	}
	if it.bad || !atEnd(b, it.i) || !haveUsage {
		return false
	}
	o.fold.onStart(&u)
	o.model = model
	o.res.Model = o.model[:modelLen]
	o.res.SawMessageStart = true
	o.reported(&u)
	return true
}

// reported notes a usage report: what content had streamed when it last
// reported output.
func (o *Observer) reported(u *usageFields) {
	if u.set&fOutput != 0 {
		o.res.ContentBytesAtReport, o.res.BlocksAtReport = o.res.contentBytes(), o.res.Blocks
	}
}

func (o *Observer) onMessageDelta(b []byte) bool {
	var u usageFields
	haveUsage := false
	it := openObject(b, 0)
	for it.next() {
		switch {
		case it.keyIs("usage"):
			end, ok := parseUsage(b, it.i, &u, &o.iters)
			if !ok {
				return false
			}
			it.i, haveUsage = end, true
		case it.keyIs("delta"):
			sub := it.sub()
			for sub.next() {
				if !sub.keyIs("stop_reason") {
					sub.skip(2)
					continue
				}
				raw, esc, end, ok := stringAt(b, sub.i)
				if !ok {
					sub.skip(2) // null: no stop reason yet
					continue
				}
				o.res.Refused, sub.i = rawEqual(raw, esc, "refusal"), end
			}
			it.exit(&sub)
		default:
			it.skip(1)
		}
	}
	if it.bad || !atEnd(b, it.i) {
		return false
	}
	if haveUsage {
		o.fold.onDelta(&u)
		o.reported(&u)
	}
	return true
}

// onMessageStop reads Bedrock's amazon-bedrock-invocationMetrics, if any.
func (o *Observer) onMessageStop(b []byte) bool {
	var m usageFields
	have := false
	it := openObject(b, 0)
	for it.next() {
		if !it.keyIs("amazon-bedrock-invocationMetrics") {
			it.skip(1)
			continue
		}
		have = true
		m = usageFields{}
		sub := it.sub()
		for sub.next() {
			switch {
			case sub.keyIs("inputTokenCount"):
				sub.intField(&m.input, &m.set, fInput)
			case sub.keyIs("outputTokenCount"):
				sub.intField(&m.output, &m.set, fOutput)
			case sub.keyIs("cacheReadInputTokenCount"):
				sub.intField(&m.cacheRead, &m.set, fCacheRead)
			case sub.keyIs("cacheWriteInputTokenCount"):
				sub.intField(&m.cacheCreation, &m.set, fCacheCreation)
			default:
				sub.skip(2)
			}
		}
		it.exit(&sub)
	}
	if it.bad || !atEnd(b, it.i) {
		return false
	}
	if have {
		o.metrics, o.haveMetrics = m, true
	}
	return true
}

func (o *Observer) onError(b []byte) bool {
	var typ []byte
	var esc bool
	it := openObject(b, 0)
	for it.next() {
		if !it.keyIs("error") {
			it.skip(1)
			continue
		}
		sub := it.sub()
		for sub.next() {
			if !sub.keyIs("type") {
				sub.skip(2)
				continue
			}
			raw, e, end, ok := stringAt(b, sub.i)
			if !ok {
				sub.skip(2)
				continue
			}
			typ, esc, sub.i = raw, e, end
		}
		it.exit(&sub)
	}
	if it.bad || !atEnd(b, it.i) {
		return false
	}
	o.res.ErrorType = internErrorType(typ, esc)
	return true
}

func internErrorType(raw []byte, esc bool) string {
	if len(raw) == 0 {
		return ""
	}
	for _, t := range knownErrorTypes {
		if rawEqual(raw, esc, t) {
			return t
		}
	}
	// An unknown type: rare, so one allocation is fine.
	d, _ := appendUnescaped(make([]byte, 0, len(raw)), raw, false)
	return string(d)
}

// onContent counts the content bytes of a content_block_start or _delta event:
// the block or delta under objKey.
func (o *Observer) onContent(b []byte, objKey string) bool {
	var n [NumContentKinds]int64
	it := openObject(b, 0)
	for it.next() {
		if !it.keyIs(objKey) {
			it.skip(1)
			continue
		}
		sub := it.sub()
		o.countBlock(&sub, &n, false)
		it.exit(&sub)
	}
	if it.bad || !atEnd(b, it.i) {
		return false
	}
	o.addContent(&n)
	return true
}

func (o *Observer) addContent(n *[NumContentKinds]int64) {
	for k, v := range n {
		o.res.ContentBytes[k] = sat(o.res.ContentBytes[k], v)
	}
}

// countBlock adds the content bytes of the members of a content block or
// delta to n. Each field name maps to one kind whatever the block or delta
// type, so the order of keys does not matter: text, thinking, partial_json
// (and, in a whole reply, a tool's input object), and the rest.
func (o *Observer) countBlock(sub *objIter, n *[NumContentKinds]int64, wholeReply bool) {
	b := sub.b
	for sub.next() {
		kind := ContentOther
		switch {
		case sub.keyIs("text"):
			kind = ContentText
		case sub.keyIs("thinking"):
			kind = ContentThinking
		case sub.keyIs("partial_json"):
			kind = ContentToolInput
		case wholeReply && sub.keyIs("input"):
			start := sub.i
			if sub.skip(3) {
				n[ContentToolInput] += int64(sub.i - start)
			}
			continue
		case sub.keyIs("signature"), sub.keyIs("data"):
		case sub.keyIs("to"):
			// A fallback block: {"type":"fallback","from":{...},"to":{"model":...}}.
			if !o.onFallbackTo(sub) {
				sub.fail()
			}
			continue
		case sub.keyIs("citation"):
			start := sub.i
			if sub.skip(3) {
				n[ContentOther] += int64(sub.i - start)
			}
			continue
		default:
			sub.skip(3)
			continue
		}
		if sub.i < len(b) && b[sub.i] == '"' {
			end, l, _, ok := scanString(b, sub.i)
			if !ok {
				sub.fail()
				continue
			}
			n[kind] += l
			sub.i = end
			continue
		}
		sub.skip(3)
	}
}

// onFallbackTo reads the model of a fallback block's "to" object.
func (o *Observer) onFallbackTo(it *objIter) bool {
	to := it.sub()
	for to.next() {
		if !to.keyIs("model") {
			to.skip(4)
			continue
		}
		raw, _, end, ok := stringAt(to.b, to.i)
		if !ok {
			to.skip(4)
			continue
		}
		d, fits := appendUnescaped(o.fallback[:0], raw, true)
		o.res.FallbackModel = nil
		if fits {
			o.res.FallbackModel = d
		}
		to.i = end
	}
	it.exit(&to)
	return !it.bad
}

// Result returns what has been seen so far. It may be called at any time, and
// again after more Writes.
func (o *Observer) Result() StreamResult {
	r := o.res
	r.Usage = o.fold.usage()
	r.SpeedReported, r.GeoReported = o.fold.start.set&fSpeed != 0, o.fold.start.set&fGeo != 0
	if o.iters.seen {
		r.Iterations = o.iters.list()
	}
	if o.haveMetrics {
		r.InvocationMetrics = true
		r.MetricsDisagreed = applyMetrics(&r.Usage, &o.metrics, &o.fold)
	}
	return r
}

// applyMetrics lets Bedrock's invocationMetrics win where they disagree with
// the events (they count what Bedrock bills) and reports whether any did. Fields the metrics omit
// (cache counts when nothing was cached) are kept from the events.
func applyMetrics(u *Usage, m *usageFields, f *usageFold) bool {
	differ := false
	set := func(dst *int64, v int64, bit uint16) {
		if m.set&bit != 0 && *dst != v {
			*dst, differ = v, true
		}
	}
	set(&u.InputTokens, m.input, fInput)
	set(&u.OutputTokens, m.output, fOutput)
	set(&u.CacheReadInputTokens, m.cacheRead, fCacheRead)
	total := u.CacheCreationInputTokens
	set(&total, m.cacheCreation, fCacheCreation)
	if total != u.CacheCreationInputTokens {
		h1 := min(f.start.eph1h, total)
		u.CacheCreationInputTokens, u.CacheCreation1hInputTokens, u.CacheCreation5mInputTokens = total, h1, total-h1
	}
	return differ
}
