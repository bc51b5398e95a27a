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
// blocks, the stop reason and the usage. Framers (SSE now, Bedrock's
// event-stream later) turn it into bytes through events and appendMessage.
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
	source := strings.Fields(stripDirectives(req.userText))
	if len(source) == 0 {
		source = fallbackWords
	}
	word := func(i int) string { return source[i%len(source)] }
	seed := req.userText

	w := min(len(source), DefaultReplyWords)
	if d.hasWords {
		w = d.words
	}
	chunk := max(d.chunk, 1)
	q := min(queryWords, len(source))

	total := int64(d.thinkingWords) + int64(d.webSearches*q) + int64(w)
	if d.toolUse {
		total += int64(q)
	}
	truncating := total > req.maxTokens
	remaining := req.maxTokens
	// take spends up to n words of the max_tokens budget and returns how many fit.
	take := func(n int) int {
		k := int64(n)
		if truncating && k > remaining {
			k = remaining
		}
		remaining -= k
		return int(k)
	}
	cut := func() bool { return truncating && remaining == 0 }

	r := &reply{id: id, model: model}
	if d.thinkingWords > 0 {
		k := take(d.thinkingWords)
		words := make([]string, k)
		for i := range words {
			words[i] = word(i)
		}
		full := strings.Join(words, " ")
		sum := sha256.Sum256([]byte("sim-thinking:" + full))
		if d.redacted {
			r.blocks = append(r.blocks, block{kind: blockRedactedThinking,
				data: "sim_redacted_" + base64.StdEncoding.EncodeToString(sum[:])})
		} else {
			r.blocks = append(r.blocks, block{kind: blockThinking, full: full,
				pieces: wordPieces(words, chunk), signature: base64.StdEncoding.EncodeToString(sum[:])})
		}
	}
	searches := 0
	for i := 0; i < d.webSearches && !cut(); i++ {
		k := take(q)
		words := make([]string, k)
		for j := range words {
			words[j] = word(i + j)
		}
		id := newDerivedID("srvtoolu_sim_", seed, len(r.blocks))
		full, pieces := queryInput(words)
		r.blocks = append(r.blocks, block{kind: blockServerToolUse, id: id, name: "web_search", full: full, pieces: pieces})
		if k < q || cut() {
			break
		}
		searches++
		r.blocks = append(r.blocks, block{kind: blockWebSearchResult, toolUseID: id,
			query: strings.Join(words, " "), ordinal: searches})
	}
	if w > 0 && !cut() {
		k := take(w)
		words := make([]string, k)
		for i := range words {
			words[i] = word(i)
		}
		r.blocks = append(r.blocks, block{kind: blockText, full: strings.Join(words, " "), pieces: wordPieces(words, chunk)})
	}
	if d.toolUse && !cut() {
		k := take(q)
		words := make([]string, k)
		for j := range words {
			words[j] = word(j)
		}
		name := d.toolName
		if name == "" {
			name = req.firstTool
		}
		if name == "" {
			name = defaultToolName
		}
		full, pieces := queryInput(words)
		r.blocks = append(r.blocks, block{kind: blockToolUse, id: newDerivedID("toolu_sim_", seed, len(r.blocks)),
			name: name, full: full, pieces: pieces})
	}

	switch {
	case truncating:
		r.stopReason = "max_tokens"
	case d.toolUse:
		r.stopReason = "tool_use"
	default:
		r.stopReason = "end_turn"
	}

	base := req.inputWords
	if d.hasInput {
		base = d.input
	}
	u := Usage{
		InputTokens:              base + int64(searches)*WebSearchInputTokens,
		CacheCreationInputTokens: d.cacheWrite,
		CacheReadInputTokens:     d.cacheRead,
		OutputTokens:             min(total, req.maxTokens),
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
	r.final = u
	r.start = u
	r.start.OutputTokens = 1
	r.oldUsage = d.oldUsage
	if !d.oldUsage {
		r.start.InputTokens = base
		r.start.ServerToolUse = ServerToolUse{}
	}
	return r
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
