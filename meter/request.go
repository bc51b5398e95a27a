package meter

import (
	"bytes"
	"fmt"
	"math"
	"unicode/utf8"
)

// RequestError is a request the gateway refuses with 400
// invalid_request_error. Message names the field at fault.
type RequestError struct {
	// Message is the error message for the client, starting with the field.
	Message string
}

// Error returns the message.
func (e *RequestError) Error() string { return e.Message }

func requestErrorf(format string, args ...any) error {
	return &RequestError{Message: fmt.Sprintf(format, args...)}
}

// CacheTTL is the longest prompt-cache lifetime a request asks for anywhere
// through cache_control.
type CacheTTL uint8

const (
	// CacheNone is a request with no cache_control.
	CacheNone CacheTTL = iota
	// Cache5m is cache_control without a ttl, or with "5m".
	Cache5m
	// Cache1h is cache_control with "ttl": "1h".
	Cache1h
)

// Token costs of the parts of a request whose tokens cannot be counted from its
// text (InspectRequest's estimate). Each is an upper bound for current models,
// so the hold covers the call; settlement returns the difference at once.
const (
	// RequestOverheadTokens covers the prompt framing of any request.
	RequestOverheadTokens = 16
	// ToolsOverheadTokens covers the tool-use system prompt Anthropic adds when
	// a request has tools (313 to 530 tokens per the pricing page).
	ToolsOverheadTokens = 1000
	// ServerToolTokens covers each Anthropic-defined tool (web search, bash,
	// text editor, computer use, ...), whose definition and instructions are
	// added server-side: up to about 2,700 tokens for web search.
	ServerToolTokens = 3000
	// MCPServerTokens covers the tool definitions of each mcp_servers entry,
	// which are fetched upstream and unknown here.
	MCPServerTokens = 10000
	// ImageTokens covers one image: the largest images current models accept,
	// about 5 megapixels at 750 pixels per token.
	ImageTokens = 7000
	// PDFPageTokens covers one page of a PDF: the page's text (a dense page
	// holds about 1,600 tokens of English, 3,000 of CJK) plus the image of
	// the page the model also reads (pages are rendered at most 1,568 pixels
	// on the long side, about 1,600 tokens).
	PDFPageTokens = 4000 + 2500
	// MaxPDFPages is the page limit of a PDF request; a PDF whose pages the
	// meter cannot count (compressed object streams) is held at it.
	MaxPDFPages = 100
	// UnboundedDocumentTokens stands for a document the gateway cannot see
	// (a URL or a Files API file_id): more than any context window, so the
	// hold is taken at the model's window (Hold caps the estimate there).
	UnboundedDocumentTokens = 10_000_000
)

// maxTokensLimit is the largest max_tokens accepted before the model is known
// (Anthropic's own field is a 32-bit integer); Model.Supports then checks the
// model's own maximum.
const maxTokensLimit = math.MaxInt32

// Request is what the meter needs from a Messages request body: the fields the
// hold and the routing depend on, and an upper bound of its input tokens.
// InspectRequest fills it; a Request may be reused, and a reused one keeps its
// Model string when the next body names the same model, so steady-state
// inspection does not allocate for it.
type Request struct {
	// Model is the model as the client asked for it: at most MaxModelBytes
	// of printable ASCII without quotes or backslashes. When the client's
	// string is not (InspectRequest then fails), Model is its first
	// TruncatedModelBytes with every byte outside that set replaced by '?',
	// and ModelTruncated is set, so that a rejection can still be recorded.
	Model          string
	ModelTruncated bool
	// ModelStart and ModelEnd delimit the model's JSON string (quotes included)
	// in the body, for AppendRewriteModel.
	ModelStart, ModelEnd int
	// MaxTokens is max_tokens, at least 1.
	MaxTokens int64
	// Stream is the stream flag.
	Stream bool
	// EstimatedInputTokens is an upper bound of the input tokens (uncached +
	// cache writes + cache reads) the request will be charged for, before any
	// server-tool loop: text at one token per two UTF-8 bytes (English runs
	// near four bytes per token, code near three, CJK three bytes per
	// character and about one token each), JSON keys and numbers likewise,
	// base64 PDF documents at PDFPageTokens per page, and the fixed costs
	// above for images, unseen documents, tools and MCP servers.
	EstimatedInputTokens int64
	// CacheTTL is the longest cache lifetime asked for anywhere.
	CacheTTL CacheTTL
	// HasWebSearch is true when tools include a web_search tool.
	HasWebSearch bool
	// WebSearchMaxUses is the sum of max_uses over the web_search tools that
	// set it.
	WebSearchMaxUses int64
	// WebSearchToolsWithoutMaxUses counts web_search tools without max_uses;
	// Hold charges each a configured default number of uses.
	WebSearchToolsWithoutMaxUses int64
	// UnpricedTool is the type of the first server tool the meter cannot
	// price (code execution is billed per container-hour, which no usage
	// field reports; unknown tools are unknown), truncated to
	// TruncatedModelBytes; empty when there is none. Model.Supports refuses it.
	UnpricedTool string
	// Speed, ServiceTier and InferenceGeo are the request's values, empty when
	// absent.
	Speed, ServiceTier, InferenceGeo string
	// Modifiers is what Speed, ServiceTier and InferenceGeo mean for the
	// price; unknown values map to the Unknown constants, which Supports refuses.
	Modifiers Modifiers
	// Messages, Images and Documents count what the estimate saw.
	Messages, Images, Documents int
}

// Top-level keys InspectRequest reads; a second occurrence of any of them is
// refused, because the gateway and the upstream could read different ones.
var inspectedKeys = [...]string{
	keyModel:        "model",
	keyMaxTokens:    "max_tokens",
	keyStream:       "stream",
	keyMessages:     "messages",
	keySystem:       "system",
	keyTools:        "tools",
	keySpeed:        "speed",
	keyServiceTier:  "service_tier",
	keyInferenceGeo: "inference_geo",
	keyCacheControl: "cache_control",
	keyMCPServers:   "mcp_servers",
}

// Indexes into inspectedKeys; a bit per key records which were seen.
const (
	keyModel = iota
	keyMaxTokens
	keyStream
	keyMessages
	keySystem
	keyTools
	keySpeed
	keyServiceTier
	keyInferenceGeo
	keyCacheControl
	keyMCPServers
)

// InspectRequest reads a Messages request body into r, validating what the
// gateway relies on: the body is a JSON object, well-formed throughout; model
// is a non-empty string; max_tokens an integer from 1 to 2^31-1; stream a
// boolean; messages an array of objects; system a string or an array; tools an
// array of objects; speed, service_tier and inference_geo strings; no
// duplicate of these keys. It returns a *RequestError naming the field for
// every refusal (400 invalid_request_error). Other fields pass unchecked: the
// upstream judges them.
func InspectRequest(body []byte, r *Request) error { return inspect(body, r, true) }

// InspectCountTokensRequest is InspectRequest for a count_tokens body,
// which has no max_tokens (MaxTokens is then 0).
func InspectCountTokensRequest(body []byte, r *Request) error { return inspect(body, r, false) }

func inspect(body []byte, r *Request, needMaxTokens bool) error {
	model := r.Model
	*r = Request{}
	it := openObject(body, 0)
	if it.bad {
		return requestErrorf("invalid JSON: the body must be a JSON object")
	}
	e := estimator{r: r}
	var seen uint16 // bit k: inspectedKeys[k] was read
	for it.next() {
		k := inspectedKey(&it)
		if k < 0 {
			if !it.skip(1) {
				return errInvalidJSON
			}
			continue
		}
		if seen&(1<<k) != 0 {
			return requestErrorf("%s: duplicate key", inspectedKeys[k])
		}
		seen |= 1 << k
		if isNull(body, it.i) && k != keyModel && k != keyMaxTokens && k != keyMessages {
			it.i += 4 // an optional field set to null is absent
			continue
		}
		var err error
		if it.i, err = e.inspectValue(body, k, it.i, model); err != nil {
			return err
		}
	}
	if it.bad || !atEnd(body, it.i) {
		return errInvalidJSON
	}
	if err := missingKey(seen, needMaxTokens); err != nil {
		return err
	}
	r.defaultModifiers()
	r.EstimatedInputTokens = e.total()
	return nil
}

// inspectedKey returns the index in inspectedKeys of it's current key, or -1.
func inspectedKey(it *objIter) int {
	for k, name := range inspectedKeys {
		if it.keyIs(name) {
			return k
		}
	}
	return -1
}

// inspectValue reads the value at b[i] of the top-level key inspectedKeys[k]
// into e and its Request, and returns the index after it. oldModel is the
// Model the Request held before, kept when the body names it again.
func (e *estimator) inspectValue(b []byte, k, i int, oldModel string) (int, error) {
	r := e.r
	switch k {
	case keyModel:
		return r.readModel(b, i, oldModel)
	case keyMaxTokens:
		return r.readMaxTokens(b, i)
	case keyStream:
		return r.readStream(b, i)
	case keyMessages:
		return e.messages(b, i)
	case keySystem:
		return e.content(b, i, "system", 1)
	case keyTools:
		return e.tools(b, i)
	case keyMCPServers:
		return e.mcpServers(b, i)
	case keyCacheControl:
		return e.cacheControl(b, i, 1)
	case keySpeed:
		end, err := stringOption(b, i, "speed", &r.Speed, "standard", "fast")
		r.Modifiers.Speed = speedOf([]byte(r.Speed), false)
		return end, err
	case keyServiceTier:
		end, err := stringOption(b, i, "service_tier", &r.ServiceTier, "auto", "standard_only")
		r.Modifiers.ServiceTier = tierOf([]byte(r.ServiceTier), false)
		return end, err
	case keyInferenceGeo:
		end, err := stringOption(b, i, "inference_geo", &r.InferenceGeo, "global", "us")
		r.Modifiers.InferenceGeo = geoOf([]byte(r.InferenceGeo), false)
		return end, err
	}
	panic(fmt.Sprintf("BUG: inspectValue called for key %d", k))
}

// readModel reads model at b[i]: a valid model name (see MaxModelBytes).
// Model keeps old when the name equals it, so a reused Request does not
// allocate; an invalid name is recorded sanitized, with ModelTruncated.
func (r *Request) readModel(b []byte, i int, old string) (int, error) {
	raw, esc, end, ok := stringAt(b, i)
	if !ok {
		return 0, typeError(b, i, "model", "a string")
	}
	if len(raw) == 0 {
		return 0, requestErrorf("model: must not be empty")
	}
	r.ModelStart, r.ModelEnd = i, end
	if !validModelName(raw, esc) {
		r.Model, r.ModelTruncated = sanitizedPrefix(raw), true
		return 0, errInvalidModel
	}
	r.Model = internString(old, raw, esc)
	return end, nil
}

// readMaxTokens reads max_tokens at b[i]: an integer from 1 to
// maxTokensLimit.
func (r *Request) readMaxTokens(b []byte, i int) (int, error) {
	n, end, res := parseInt(b, i)
	switch res {
	case intBad:
		return 0, typeError(b, i, "max_tokens", "an integer")
	case intNotInt:
		return 0, requestErrorf("max_tokens: must be an integer")
	case intOverflow:
		n = math.MaxInt64
	}
	if n < 1 || n > maxTokensLimit {
		return 0, requestErrorf("max_tokens: %s is out of range (1 to %d)", b[i:end], maxTokensLimit)
	}
	r.MaxTokens = n
	return end, nil
}

// readStream reads stream at b[i]: a boolean.
func (r *Request) readStream(b []byte, i int) (int, error) {
	switch {
	case bytes.HasPrefix(b[i:], []byte("true")):
		r.Stream = true
		return i + 4, nil
	case bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, nil
	}
	return 0, typeError(b, i, "stream", "a boolean")
}

// missingKey returns the error for the first required key not seen (bit k
// of seen stands for inspectedKeys[k]), or nil.
func missingKey(seen uint16, needMaxTokens bool) error {
	switch {
	case seen&(1<<keyModel) == 0:
		return requestErrorf("model: field required")
	case seen&(1<<keyMaxTokens) == 0 && needMaxTokens:
		return requestErrorf("max_tokens: field required")
	case seen&(1<<keyMessages) == 0:
		return requestErrorf("messages: field required")
	}
	return nil
}

// defaultModifiers gives absent speed, service_tier and inference_geo their
// default modifiers.
func (r *Request) defaultModifiers() {
	if r.Speed == "" {
		r.Modifiers.Speed = SpeedStandard
	}
	if r.ServiceTier == "" {
		r.Modifiers.ServiceTier = TierStandard
	}
	if r.InferenceGeo == "" {
		r.Modifiers.InferenceGeo = GeoDefault
	}
}

var errInvalidJSON = &RequestError{Message: "invalid JSON: the body is not well-formed JSON"}

// Bounds of the model name. A model name reaches metric labels (once the
// catalogue knows it), log lines and call records, so it is held to what a
// model ID can be: short printable ASCII without quotes or backslashes.
const (
	// MaxModelBytes is the longest model name a request may carry.
	MaxModelBytes = 256
	// TruncatedModelBytes is how much of an invalid model name is recorded.
	TruncatedModelBytes = 64
)

var errInvalidModel = &RequestError{Message: fmt.Sprintf(
	"model: must be 1 to %d bytes of printable ASCII without quotes, backslashes or control characters", MaxModelBytes)}

// modelByte reports whether c may appear in a model name.
func modelByte(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }

// validModelName reports whether the JSON string raw (escaped when esc)
// decodes to a valid model name. An escape can only decode to a valid byte
// through \u00XX or \/, so escaped names are decoded (bounded) and checked.
func validModelName(raw []byte, esc bool) bool {
	if esc {
		var buf [MaxModelBytes + utf8.UTFMax]byte
		d, ok := appendUnescaped(buf[:0], raw, true)
		if !ok {
			return false
		}
		raw = d
	}
	if len(raw) == 0 || len(raw) > MaxModelBytes {
		return false
	}
	for _, c := range raw {
		if !modelByte(c) {
			return false
		}
	}
	return true
}

// sanitizedPrefix is the recorded form of an invalid model name (or of
// another name a message repeats): its first TruncatedModelBytes raw bytes,
// each byte a model name may not hold replaced by '?'.
func sanitizedPrefix(raw []byte) string {
	raw = raw[:min(len(raw), TruncatedModelBytes)]
	b := make([]byte, len(raw))
	for i, c := range raw {
		if !modelByte(c) {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// typeError is the error for a value of the wrong type at b[i], or for
// malformed JSON there.
func typeError(b []byte, i int, field, want string) error {
	if _, ok := skipValue(b, i, 1); !ok {
		return errInvalidJSON
	}
	return requestErrorf("%s: must be %s", field, want)
}

// internString returns old when raw decodes to it, else the decoded string:
// reused Requests keep their Model without allocating.
func internString(old string, raw []byte, esc bool) string {
	if rawEqual(raw, esc, old) {
		return old
	}
	if !esc {
		return string(raw)
	}
	d, _ := appendUnescaped(make([]byte, 0, len(raw)), raw, false)
	return string(d)
}

// stringOption reads the string option at b[i] into *dst, interning the known
// values.
func stringOption(b []byte, i int, field string, dst *string, known ...string) (int, error) {
	raw, esc, end, ok := stringAt(b, i)
	if !ok {
		return 0, typeError(b, i, field, "a string")
	}
	*dst = ""
	for _, k := range known {
		if rawEqual(raw, esc, k) {
			*dst = k
			return end, nil
		}
	}
	*dst = internString("", raw, esc)
	return end, nil
}

// AppendRewriteModel appends body to dst with its model value replaced by
// model (the catalogue's upstream ID), leaving every other byte as it is.
// r must come from InspectRequest(body, r).
func AppendRewriteModel(dst, body []byte, r *Request, model string) []byte {
	dst = append(dst, body[:r.ModelStart]...)
	dst = AppendJSONString(dst, model)
	return append(dst, body[r.ModelEnd:]...)
}

// BedrockVersion is the anthropic_version that Claude on Bedrock takes in a
// request body.
const BedrockVersion = "bedrock-2023-05-31"

// AppendBedrockBody appends to dst the Bedrock form of a Messages request
// body, as the official SDKs rewrite it: anthropic_version (BedrockVersion)
// and, unless betas is blank, anthropic_beta (the names in betas, the
// request's anthropic-beta header values joined by commas) first, then every
// member of body but model and stream (the URL carries them) and any
// anthropic_version or anthropic_beta of its own, byte for byte. Keys are
// matched decoded, as InspectRequest reads them.
//
// body must be one InspectRequest accepted: the walk, with the same scanner
// and depth bound, cannot fail then, and panics (a bug) otherwise.
func AppendBedrockBody(dst, body, betas []byte) []byte {
	dst = append(dst, `{"anthropic_version":"`+BedrockVersion+`"`...)
	if len(bytes.TrimSpace(betas)) > 0 {
		dst = append(dst, `,"anthropic_beta":[`...)
		first := true
		for rest := betas; len(rest) > 0; {
			var part []byte
			part, rest, _ = bytes.Cut(rest, []byte{','})
			if part = bytes.TrimSpace(part); len(part) == 0 {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, part)
		}
		dst = append(dst, ']')
	}
	it := openObject(body, 0)
	for it.next() {
		start := it.keyAt
		drop := it.keyIs("model") || it.keyIs("stream") || it.keyIs("anthropic_version") || it.keyIs("anthropic_beta")
		if !it.skip(1) {
			break
		}
		if !drop {
			dst = append(dst, ',')
			dst = append(dst, body[start:it.i]...)
		}
	}
	if it.bad || !atEnd(body, it.i) {
		panic(fmt.Sprintf("BUG: AppendBedrockBody got a body InspectRequest refuses (%d bytes, the walk stopped at byte %d)", len(body), it.i))
	}
	return append(dst, '}')
}

// estimator accumulates the input estimate of a request.
type estimator struct {
	r      *Request
	bytes  int64 // UTF-8 bytes of text, keys and numbers
	fixed  int64 // tokens of the fixed costs
	nTools int
}

func (e *estimator) total() int64 {
	t := sat(RequestOverheadTokens, e.fixed)
	if e.nTools > 0 {
		t = sat(t, ToolsOverheadTokens)
	}
	return sat(t, e.bytes/2+e.bytes%2)
}

// messages walks the messages array.
func (e *estimator) messages(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, typeError(b, i, "messages", "an array")
	}
	a := arrIter{b: b, i: i + 1}
	for a.next() {
		if b[a.i] != '{' {
			return 0, typeError(b, a.i, fmt.Sprintf("messages.%d", a.n-1), "an object")
		}
		e.r.Messages++
		m := openObject(b, a.i)
		for m.next() {
			var err error
			if m.keyIs("content") {
				e.key(&m)
				m.i, err = e.content(b, m.i, "messages.content", 3)
			} else {
				err = e.member(&m, 3)
			}
			if err != nil {
				return 0, err
			}
		}
		if m.bad {
			return 0, errInvalidJSON
		}
		a.i = m.i
	}
	if a.bad {
		return 0, errInvalidJSON
	}
	return a.i, nil
}

// content walks a content value: a string, or an array of content blocks.
func (e *estimator) content(b []byte, i int, field string, depth int) (int, error) {
	switch {
	case i < len(b) && b[i] == '"':
		return e.any(b, i, depth)
	case i < len(b) && b[i] == '[':
		if depth >= maxJSONDepth {
			return 0, errInvalidJSON
		}
	default:
		return 0, typeError(b, i, field, "a string or an array")
	}
	a := arrIter{b: b, i: i + 1}
	for a.next() {
		end, err := e.block(b, a.i, depth+1)
		if err != nil {
			return 0, err
		}
		a.i = end
	}
	if a.bad {
		return 0, errInvalidJSON
	}
	return a.i, nil
}

// block walks one content block. Images and documents are costed by rule;
// tool results, search results and document content may nest blocks; anything
// else counts as text.
func (e *estimator) block(b []byte, i, depth int) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return e.any(b, i, depth)
	}
	if depth >= maxJSONDepth {
		return 0, errInvalidJSON
	}
	typ := memberString(b, i, "type")
	switch {
	case bytes.Equal(typ, []byte("image")):
		e.r.Images++
		e.fixed = sat(e.fixed, ImageTokens)
		return e.mediaBlock(b, i, false, depth)
	case bytes.Equal(typ, []byte("document")):
		e.r.Documents++
		return e.mediaBlock(b, i, true, depth)
	}
	o := openObject(b, i)
	for o.next() {
		var err error
		if o.keyIs("content") {
			e.key(&o)
			o.i, err = e.content(b, o.i, "content", depth+1)
		} else {
			err = e.member(&o, depth+1)
		}
		if err != nil {
			return 0, err
		}
	}
	if o.bad {
		return 0, errInvalidJSON
	}
	return o.i, nil
}

// mediaBlock walks an image or document block: its source is costed by rule,
// everything else (title, context, citations) counts as text.
func (e *estimator) mediaBlock(b []byte, i int, doc bool, depth int) (int, error) {
	o := openObject(b, i)
	for o.next() {
		if !o.keyIs("source") || byteAt(b, o.i) != '{' {
			if err := e.member(&o, depth+1); err != nil {
				return 0, err
			}
			continue
		}
		if depth+1 >= maxJSONDepth {
			return 0, errInvalidJSON
		}
		srcType := memberString(b, o.i, "type")
		s := openObject(b, o.i)
		for s.next() {
			var err error
			switch {
			case !doc:
				// An image costs ImageTokens whatever its source.
				if !s.skip(depth + 2) {
					return 0, errInvalidJSON
				}
				continue
			case s.keyIs("data") && bytes.Equal(srcType, []byte("base64")):
				raw, esc, end, ok := stringAt(b, s.i)
				if !ok {
					return 0, typeError(b, s.i, "source.data", "a string")
				}
				e.fixed = sat(e.fixed, PDFPageTokens*countPDFPages(raw, esc))
				s.i = end
				continue
			case s.keyIs("data"):
				s.i, err = e.any(b, s.i, depth+2) // plain text
			case s.keyIs("content"):
				s.i, err = e.content(b, s.i, "source.content", depth+2)
			case s.keyIs("url"), s.keyIs("file_id"):
				e.fixed = sat(e.fixed, UnboundedDocumentTokens)
				if !s.skip(depth + 2) {
					return 0, errInvalidJSON
				}
				continue
			default:
				if !s.skip(depth + 2) {
					return 0, errInvalidJSON
				}
				continue
			}
			if err != nil {
				return 0, err
			}
		}
		o.exit(&s)
	}
	if o.bad {
		return 0, errInvalidJSON
	}
	return o.i, nil
}

// tools walks the tools array, classifying each tool by its type.
func (e *estimator) tools(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, typeError(b, i, "tools", "an array")
	}
	a := arrIter{b: b, i: i + 1}
	for a.next() {
		if b[a.i] != '{' {
			return 0, typeError(b, a.i, fmt.Sprintf("tools.%d", a.n-1), "an object")
		}
		e.nTools++
		var typ []byte
		maxUses, haveMaxUses := int64(0), false
		o := openObject(b, a.i)
		for o.next() {
			switch {
			case o.keyIs("type"):
				e.key(&o)
				raw, esc, end, ok := stringAt(b, o.i)
				if !ok {
					return 0, typeError(b, o.i, fmt.Sprintf("tools.%d.type", a.n-1), "a string")
				}
				if esc {
					d, _ := appendUnescaped(nil, raw, false)
					raw = d
				}
				typ = raw
				e.bytes += int64(len(raw))
				o.i = end
			case o.keyIs("max_uses"):
				e.key(&o)
				n, end, res := parseInt(b, o.i)
				if res != intOK || n < 0 {
					if res == intBad && isNull(b, o.i) {
						o.i += 4
						continue
					}
					return 0, requestErrorf("tools.%d.max_uses: must be a non-negative integer", a.n-1)
				}
				maxUses, haveMaxUses = n, true
				e.bytes += int64(end - o.i)
				o.i = end
			default:
				if err := e.member(&o, 3); err != nil {
					return 0, err
				}
			}
		}
		if o.bad {
			return 0, errInvalidJSON
		}
		a.i = o.i
		e.tool(typ, maxUses, haveMaxUses)
	}
	if a.bad {
		return 0, errInvalidJSON
	}
	return a.i, nil
}

// tokenPricedTools are the families of Anthropic-defined tools whose whole
// cost is tokens, which the usage reports and the catalogue prices: the
// client-run tools (bash, text editor, computer use, memory) and the server
// tools without a price of their own (web fetch, tool search, MCP). A server
// tool outside this list and web search has a price the meter cannot read
// (code execution's container hours) or is unknown, and is refused: a new
// tool is allowed only once it is known how it bills.
var tokenPricedTools = [...]string{"bash_", "text_editor_", "computer_", "memory_", "web_fetch_", "tool_search_tool_", "mcp_toolset"}

// tool classifies one tool by type: a custom tool (no type, or "custom") costs
// only its text; an Anthropic-defined tool adds ServerToolTokens; web search
// is priced per use; any other server tool is unpriced (Supports refuses it).
func (e *estimator) tool(typ []byte, maxUses int64, haveMaxUses bool) {
	r := e.r
	switch {
	case len(typ) == 0 || bytes.Equal(typ, []byte("custom")):
		return
	case bytes.HasPrefix(typ, []byte("web_search_")):
		r.HasWebSearch = true
		if haveMaxUses {
			r.WebSearchMaxUses = sat(r.WebSearchMaxUses, maxUses)
		} else {
			r.WebSearchToolsWithoutMaxUses++
		}
	case !tokenPriced(typ):
		if r.UnpricedTool == "" {
			r.UnpricedTool = sanitizedPrefix(typ) // bounded, printable
		}
	}
	e.fixed = sat(e.fixed, ServerToolTokens)
}

func tokenPriced(typ []byte) bool {
	for _, p := range tokenPricedTools {
		if bytes.HasPrefix(typ, []byte(p)) {
			return true
		}
	}
	return false
}

// mcpServers walks the mcp_servers array: each server costs MCPServerTokens.
func (e *estimator) mcpServers(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, typeError(b, i, "mcp_servers", "an array")
	}
	a := arrIter{b: b, i: i + 1}
	for a.next() {
		e.fixed = sat(e.fixed, MCPServerTokens)
		end, ok := skipValue(b, a.i, 2)
		if !ok {
			return 0, errInvalidJSON
		}
		a.i = end
	}
	if a.bad {
		return 0, errInvalidJSON
	}
	return a.i, nil
}

// cacheControl reads a cache_control object at the given depth: ttl "1h"
// asks for 1-hour writes, anything else for 5-minute ones.
func (e *estimator) cacheControl(b []byte, i, depth int) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, typeError(b, i, "cache_control", "an object")
	}
	if depth >= maxJSONDepth {
		return 0, errInvalidJSON
	}
	ttl := Cache5m
	o := openObject(b, i)
	for o.next() {
		if o.keyIs("ttl") {
			if raw, esc, end, ok := stringAt(b, o.i); ok {
				if rawEqual(raw, esc, "1h") {
					ttl = Cache1h
				}
				o.i = end
				continue
			}
		}
		o.skip(depth + 1)
	}
	if o.bad {
		return 0, errInvalidJSON
	}
	e.r.CacheTTL = max(e.r.CacheTTL, ttl)
	return o.i, nil
}

// any walks any value, counting strings, keys and numbers as text, and
// cache_control objects wherever they are.
func (e *estimator) any(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errInvalidJSON
	}
	switch b[i] {
	case '"':
		end, n, _, ok := scanString(b, i)
		if !ok {
			return 0, errInvalidJSON
		}
		e.bytes += n
		return end, nil
	case '{':
		if depth >= maxJSONDepth {
			return 0, errInvalidJSON
		}
		o := objIter{b: b, i: i + 1}
		for o.next() {
			if err := e.member(&o, depth+1); err != nil {
				return 0, err
			}
		}
		if o.bad {
			return 0, errInvalidJSON
		}
		return o.i, nil
	case '[':
		if depth >= maxJSONDepth {
			return 0, errInvalidJSON
		}
		a := arrIter{b: b, i: i + 1}
		for a.next() {
			end, err := e.any(b, a.i, depth+1)
			if err != nil {
				return 0, err
			}
			a.i = end
		}
		if a.bad {
			return 0, errInvalidJSON
		}
		return a.i, nil
	}
	end, ok := skipValue(b, i, depth)
	if !ok {
		return 0, errInvalidJSON
	}
	if c := b[i]; c == '-' || (c >= '0' && c <= '9') {
		e.bytes += int64(end - i)
	}
	return end, nil
}

// member walks the current member of o: a cache_control object sets the TTL
// and is not prompt text; anything else counts as text, key included.
func (e *estimator) member(o *objIter, depth int) error {
	var err error
	if o.keyIs("cache_control") && byteAt(o.b, o.i) == '{' {
		o.i, err = e.cacheControl(o.b, o.i, depth)
		return err
	}
	e.key(o)
	o.i, err = e.any(o.b, o.i, depth)
	return err
}

// byteAt returns b[i], or 0 past the end.
func byteAt(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// key counts the current key as text.
func (e *estimator) key(o *objIter) { e.bytes += int64(len(o.key)) }

// memberString returns the raw value of the string member key of the object at
// b[i], or nil; it stops at the member, so a block's leading "type" is cheap.
func memberString(b []byte, i int, key string) []byte {
	o := openObject(b, i)
	for o.next() {
		if o.keyIs(key) {
			raw, esc, _, ok := stringAt(b, o.i)
			if !ok || esc {
				return nil
			}
			return raw
		}
		if !o.skip(5) {
			return nil
		}
	}
	return nil
}
