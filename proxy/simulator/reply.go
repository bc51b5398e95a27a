package simulator

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Usage is the usage object of a Messages reply, with the API's field names.
// Token counts are int64 like the rest of Tollgate.
type Usage struct {
	// InputTokens is the uncached input: the word count of the request (or
	// input=N), plus WebSearchInputTokens per web search performed.
	InputTokens int64 `json:"input_tokens"`
	// CacheCreationInputTokens is cache_write=N (all cache writes, 5m + 1h).
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	// CacheReadInputTokens is cache_read=N.
	CacheReadInputTokens int64 `json:"cache_read_input_tokens"`
	// CacheCreation splits CacheCreationInputTokens by TTL (cache=5m|1h).
	CacheCreation CacheCreation `json:"cache_creation"`
	// OutputTokens is the number of generated words, at most max_tokens.
	OutputTokens int64 `json:"output_tokens"`
	// ServerToolUse counts server tool calls; zero (and absent from the JSON)
	// when no web search was performed.
	ServerToolUse ServerToolUse `json:"server_tool_use,omitzero"`
	// ServiceTier is always "standard".
	ServiceTier string `json:"service_tier"`
	// InferenceGeo is the request's inference_geo, or "not_available".
	InferenceGeo string `json:"inference_geo"`
}

// CacheCreation is the TTL split of a reply's cache writes.
type CacheCreation struct {
	// Ephemeral5mInputTokens is the 5-minute cache writes.
	Ephemeral5mInputTokens int64 `json:"ephemeral_5m_input_tokens"`
	// Ephemeral1hInputTokens is the 1-hour cache writes.
	Ephemeral1hInputTokens int64 `json:"ephemeral_1h_input_tokens"`
}

// ServerToolUse counts a reply's server tool calls.
type ServerToolUse struct {
	// WebSearchRequests is the number of web searches performed.
	WebSearchRequests int64 `json:"web_search_requests"`
	// WebFetchRequests is always 0: the simulator does not fetch.
	WebFetchRequests int64 `json:"web_fetch_requests"`
}

const (
	// WebSearchInputTokens is the input each web search adds to the final
	// input_tokens (the search results the model read), as reported by
	// message_delta and the non-streaming usage.
	WebSearchInputTokens = 1000
	// DefaultReplyWords caps the default reply length: without words=N the
	// reply echoes the last user message's words, at most this many.
	DefaultReplyWords = 64
	// queryWords is the number of source words in a tool or search query.
	queryWords = 3
	// defaultToolName names the tool_use block when the request has no tools.
	defaultToolName = "get_weather"
)

// fallbackWords is the reply source when the last user message has no words.
var fallbackWords = strings.Fields("Hello from the Tollgate upstream simulator.")

// ExpectedUsage returns the usage the simulator reports for a complete reply
// to the Messages request body: the non-streaming usage, which equals the
// usage folded from the stream (message_start overwritten by message_delta).
// It applies the rule documented in the package comment and returns an error
// for a body the simulator answers with 400.
func ExpectedUsage(body []byte) (Usage, error) {
	req, err := parseRequest(body, false)
	if err != nil {
		return Usage{}, err
	}
	return buildReply(req, req.model, "").final, nil
}

// ExpectedStartUsage returns the usage in the message_start event of a
// streamed reply to body: ExpectedUsage with output_tokens 1 (the
// placeholder) and the input before web searches (with old_usage, the final
// input and server_tool_use instead). It is what a stream cut short by
// error_after, hang_after, truncate_after or garbage_after has reported.
func ExpectedStartUsage(body []byte) (Usage, error) {
	req, err := parseRequest(body, false)
	if err != nil {
		return Usage{}, err
	}
	return buildReply(req, req.model, "").start, nil
}

// blockKind is the type of a content block.
type blockKind uint8

const (
	blockText blockKind = iota
	blockThinking
	blockRedactedThinking
	blockToolUse
	blockServerToolUse
	blockWebSearchResult
)

// block is one content block of a reply, in the form both the stream and the
// non-streaming body are generated from.
type block struct {
	kind      blockKind
	id, name  string   // tool_use, server_tool_use
	pieces    []string // delta payloads: text, thinking or partial_json fragments
	full      string   // whole text or thinking, or the input JSON of a tool block
	signature string   // thinking
	data      string   // redacted_thinking
	toolUseID string   // web_search_tool_result: its server_tool_use block's id
	query     string   // web_search_tool_result: the search query
	ordinal   int      // web_search_tool_result: 1 for the first search
}

// reply is a complete, deterministic answer to one request: the content
// blocks, the stop reason and the usage. Framers (sseFramer, bedrockFramer)
// turn its events into bytes; appendMessage builds the non-streaming body.
type reply struct {
	id         string
	model      string
	blocks     []block
	stopReason string
	start      Usage // message_start usage
	final      Usage // message_delta and non-streaming usage
	oldUsage   bool  // message_delta carries output_tokens only
	buf        []byte
}

// buildReply derives the reply to req from its words and directives, following
// the rule in the package comment. model is the model echoed in the reply.
func buildReply(req *request, model, id string) *reply {
	d := &req.dir
	p := newReplyPlan(req)
	r := &reply{id: id, model: model, oldUsage: d.oldUsage}
	if d.thinkingWords > 0 {
		r.blocks = append(r.blocks, p.thinkingBlock())
	}
	searches := p.addSearches(r)
	if p.textWords > 0 && !p.cut() {
		r.blocks = append(r.blocks, p.textBlock())
	}
	if d.toolUse && !p.cut() {
		r.blocks = append(r.blocks, p.toolUseBlock(req.firstTool, len(r.blocks)))
	}
	r.stopReason = p.stopReason()
	r.final = finalUsage(req, min(p.total, req.maxTokens), searches)
	r.start = startUsage(req, r.final)
	return r
}

// replyPlan is what buildReply settles before it builds any block: the
// source words, the length of each block, and the max_tokens budget the
// blocks spend in order (thinking, searches, text, tool_use).
type replyPlan struct {
	dir        *directives
	source     []string // the words generated text cycles through
	seed       string   // what tool block IDs derive from: the last user message
	textWords  int      // the text block's length (R)
	queryWords int      // a tool or search query's length (Q)
	chunk      int      // words per text or thinking delta
	total      int64    // the words of the whole reply, uncut
	truncating bool     // total exceeds max_tokens: the reply is cut
	remaining  int64    // what is left of max_tokens
}

func newReplyPlan(req *request) *replyPlan {
	d := &req.dir
	source := strings.Fields(stripDirectives(req.userText))
	if len(source) == 0 {
		source = fallbackWords
	}
	p := &replyPlan{
		dir:        d,
		source:     source,
		seed:       req.userText,
		textWords:  min(len(source), DefaultReplyWords),
		queryWords: min(queryWords, len(source)),
		chunk:      max(d.chunk, 1),
		remaining:  req.maxTokens,
	}
	if d.hasWords {
		p.textWords = d.words
	}
	p.total = int64(d.thinkingWords) + int64(d.webSearches*p.queryWords) + int64(p.textWords)
	if d.toolUse {
		p.total += int64(p.queryWords)
	}
	p.truncating = p.total > req.maxTokens
	return p
}

// take spends up to n words of the max_tokens budget and returns how many fit.
func (p *replyPlan) take(n int) int {
	k := int64(n)
	if p.truncating && k > p.remaining {
		k = p.remaining
	}
	p.remaining -= k
	return int(k)
}

// cut reports whether the reply is cut and its budget is spent.
func (p *replyPlan) cut() bool { return p.truncating && p.remaining == 0 }

// words returns n words of the source from word offset on, cycling through it.
func (p *replyPlan) words(offset, n int) []string {
	words := make([]string, n)
	for i := range words {
		words[i] = p.source[(offset+i)%len(p.source)]
	}
	return words
}

// thinkingBlock returns the thinking or redacted_thinking block.
func (p *replyPlan) thinkingBlock() block {
	words := p.words(0, p.take(p.dir.thinkingWords))
	full := strings.Join(words, " ")
	sum := sha256.Sum256([]byte("sim-thinking:" + full))
	if p.dir.redacted {
		return block{kind: blockRedactedThinking, data: "sim_redacted_" + base64.StdEncoding.EncodeToString(sum[:])}
	}
	return block{kind: blockThinking, full: full, pieces: wordPieces(words, p.chunk),
		signature: base64.StdEncoding.EncodeToString(sum[:])}
}

// addSearches appends a server_tool_use block and its result per web
// search, as long as the budget lasts (a search whose query is cut, or
// spends the budget exactly, gets no result), and returns the number of
// searches performed.
func (p *replyPlan) addSearches(r *reply) (searches int) {
	for i := 0; i < p.dir.webSearches && !p.cut(); i++ {
		k := p.take(p.queryWords)
		words := p.words(i, k)
		id := newDerivedID("srvtoolu_sim_", p.seed, len(r.blocks))
		full, pieces := queryInput(words)
		r.blocks = append(r.blocks, block{kind: blockServerToolUse, id: id, name: "web_search", full: full, pieces: pieces})
		if k < p.queryWords || p.cut() {
			break
		}
		searches++
		r.blocks = append(r.blocks, block{kind: blockWebSearchResult, toolUseID: id,
			query: strings.Join(words, " "), ordinal: searches})
	}
	return searches
}

// textBlock returns the text block.
func (p *replyPlan) textBlock() block {
	words := p.words(0, p.take(p.textWords))
	return block{kind: blockText, full: strings.Join(words, " "), pieces: wordPieces(words, p.chunk)}
}

// toolUseBlock returns the tool_use block, the index-th block of the reply,
// named by tool_use=NAME, else firstTool (the request's first tool), else
// defaultToolName.
func (p *replyPlan) toolUseBlock(firstTool string, index int) block {
	words := p.words(0, p.take(p.queryWords))
	name := p.dir.toolName
	if name == "" {
		name = firstTool
	}
	if name == "" {
		name = defaultToolName
	}
	full, pieces := queryInput(words)
	return block{kind: blockToolUse, id: newDerivedID("toolu_sim_", p.seed, index),
		name: name, full: full, pieces: pieces}
}

// stopReason is max_tokens for a cut reply, else tool_use with a tool_use
// block, else end_turn.
func (p *replyPlan) stopReason() string {
	switch {
	case p.truncating:
		return "max_tokens"
	case p.dir.toolUse:
		return "tool_use"
	default:
		return "end_turn"
	}
}

// baseInputTokens is the input before web searches: the request's words,
// or input=N.
func baseInputTokens(req *request) int64 {
	if req.dir.hasInput {
		return req.dir.input
	}
	return req.inputWords
}

// finalUsage is the usage of message_delta and of the non-streaming reply.
func finalUsage(req *request, outputTokens int64, searches int) Usage {
	d := &req.dir
	u := Usage{
		InputTokens:              baseInputTokens(req) + int64(searches)*WebSearchInputTokens,
		CacheCreationInputTokens: d.cacheWrite,
		CacheReadInputTokens:     d.cacheRead,
		OutputTokens:             outputTokens,
		ServiceTier:              "standard",
		InferenceGeo:             req.inferenceGeo,
	}
	if u.InferenceGeo == "" {
		u.InferenceGeo = "not_available"
	}
	if d.cache1h {
		u.CacheCreation.Ephemeral1hInputTokens = d.cacheWrite
	} else {
		u.CacheCreation.Ephemeral5mInputTokens = d.cacheWrite
	}
	u.ServerToolUse.WebSearchRequests = int64(searches)
	return u
}

// startUsage is the usage of message_start: final with output_tokens 1 (the
// placeholder) and the input before web searches, unless old_usage puts the
// final input and server_tool_use there.
func startUsage(req *request, final Usage) Usage {
	u := final
	u.OutputTokens = 1
	if !req.dir.oldUsage {
		u.InputTokens = baseInputTokens(req)
		u.ServerToolUse = ServerToolUse{}
	}
	return u
}

// wordPieces groups words into delta payloads of chunk words: the first
// piece has no leading space, later ones start with one.
func wordPieces(words []string, chunk int) []string {
	pieces := make([]string, 0, (len(words)+chunk-1)/chunk)
	for i := 0; i < len(words); i += chunk {
		p := strings.Join(words[i:min(i+chunk, len(words))], " ")
		if i > 0 {
			p = " " + p
		}
		pieces = append(pieces, p)
	}
	return pieces
}

// queryInput returns the input JSON {"query":"w1 w2 ..."} of a tool block and
// its input_json_delta fragments: an empty first fragment (as the API sends),
// one fragment per word, and a closing fragment, so that the output cost is
// one token per word.
func queryInput(words []string) (full string, pieces []string) {
	pieces = make([]string, 0, len(words)+2)
	pieces = append(pieces, "")
	for i, w := range words {
		var p []byte
		if i == 0 {
			p = append(p, `{"query":"`...)
		} else {
			p = append(p, ' ')
		}
		pieces = append(pieces, string(appendJSONStringContent(p, w)))
	}
	if len(words) == 0 {
		pieces = append(pieces, `{"query":"`)
	}
	pieces = append(pieces, `"}`)
	return strings.Join(pieces, ""), pieces
}
