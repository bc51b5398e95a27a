package simulator

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bytedance/sonic"
)

// request is what the simulator keeps of a Messages or count_tokens request
// body: copies only, never views into the fasthttp request, so it may outlive
// the handler.
type request struct {
	model        string
	maxTokens    int64
	stream       bool
	inferenceGeo string // the request's inference_geo, echoed in usage
	inputWords   int64  // words in every string value under system, messages and tools
	userText     string // text of the last user message, directives included
	firstTool    string // name of the first entry of tools, or ""
	countTokens  bool   // a count_tokens request: no max_tokens, answered with the input count
	dir          directives
}

// requestError is a 400 invalid_request_error with its message.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func invalid(msg string) error { return &requestError{msg: msg} }

// parseRequest validates body like the Messages API does (a JSON object with
// a model, messages and, unless countTokens, a positive integer max_tokens)
// and extracts what the reply depends on. Every error is a *requestError.
// Fields are checked in a fixed order, so the first error is always the same.
func parseRequest(body []byte, countTokens bool) (*request, error) {
	var fields rawFields
	if err := stdJSON.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, invalid("The request body is not valid JSON: expected a JSON object")
	}
	r := &request{countTokens: countTokens}
	var err error
	if r.model, err = readModel(fields); err != nil {
		return nil, err
	}
	if !countTokens {
		if r.maxTokens, err = readMaxTokens(fields); err != nil {
			return nil, err
		}
		if err := readOptional(fields, "stream", &r.stream, "stream: Input should be a valid boolean"); err != nil {
			return nil, err
		}
	}
	if err := readOptional(fields, "inference_geo", &r.inferenceGeo, "inference_geo: Input should be a valid string"); err != nil {
		return nil, err
	}
	system, err := readSystem(fields)
	if err != nil {
		return nil, err
	}
	messages, err := r.readMessages(fields)
	if err != nil {
		return nil, err
	}
	tools, err := r.readTools(fields)
	if err != nil {
		return nil, err
	}
	r.inputWords = countStringWords(system) + countStringWords(messages) + countStringWords(tools)
	if err := r.readDirectives(contentText(system)); err != nil {
		return nil, err
	}
	return r, nil
}

// rawFields are the members of a JSON object, each value still raw.
type rawFields = map[string]sonic.NoCopyRawMessage

// readModel reads model: a non-empty string.
func readModel(f rawFields) (string, error) {
	raw, ok := f["model"]
	if !ok || isNull(raw) {
		return "", invalid("model: Field required")
	}
	var model string
	if err := stdJSON.Unmarshal(raw, &model); err != nil {
		return "", invalid("model: Input should be a valid string")
	}
	if model == "" {
		return "", invalid("model: String should have at least 1 character")
	}
	return model, nil
}

// readMaxTokens reads max_tokens: an integer from 1.
func readMaxTokens(f rawFields) (int64, error) {
	raw, ok := f["max_tokens"]
	if !ok || isNull(raw) {
		return 0, invalid("max_tokens: Field required")
	}
	var n int64
	if err := stdJSON.Unmarshal(raw, &n); err != nil {
		return 0, invalid("max_tokens: Input should be a valid integer")
	}
	if n < 1 {
		return 0, invalid("max_tokens: Input should be greater than or equal to 1")
	}
	return n, nil
}

// readOptional decodes the field key, unless absent or null, into dst; a
// value of another type is refused with msg.
func readOptional(f rawFields, key string, dst any, msg string) error {
	raw, ok := f[key]
	if !ok || isNull(raw) {
		return nil
	}
	if err := stdJSON.Unmarshal(raw, dst); err != nil {
		return invalid(msg)
	}
	return nil
}

// readSystem reads system: absent, null, a string or a list (of text blocks).
func readSystem(f rawFields) (any, error) {
	raw, ok := f["system"]
	if !ok {
		return nil, nil
	}
	var system any
	_ = stdJSON.Unmarshal(raw, &system) // valid: the whole body decoded
	switch system.(type) {
	case nil, string, []any:
		return system, nil
	}
	return nil, invalid("system: Input should be a valid string or a list of text blocks")
}

// readMessages reads messages, a non-empty list of messages, and keeps the
// text of the last user message.
func (r *request) readMessages(f rawFields) (any, error) {
	raw, ok := f["messages"]
	if !ok || isNull(raw) {
		return nil, invalid("messages: Field required")
	}
	var messages any
	_ = stdJSON.Unmarshal(raw, &messages)
	list, ok := messages.([]any)
	if !ok {
		return nil, invalid("messages: Input should be a valid list")
	}
	if len(list) == 0 {
		return nil, invalid("messages: at least one message is required")
	}
	for i, m := range list {
		msg, ok := m.(map[string]any)
		if !ok {
			return nil, invalidf("messages.%d: Input should be a valid dictionary", i)
		}
		if err := checkMessage(i, msg); err != nil {
			return nil, err
		}
		if msg["role"] == "user" {
			r.userText = contentText(msg["content"])
		}
	}
	return messages, nil
}

// checkMessage checks the i-th message's role and content: a string or a
// list of blocks.
func checkMessage(i int, msg map[string]any) error {
	role, _ := msg["role"].(string)
	// "system" messages inside the conversation come with the beta
	// mid-conversation-tool-changes-2026-07-01 (Claude Code sends them).
	if role != "user" && role != "assistant" && role != "system" {
		return invalidf("messages.%d.role: Input should be 'user', 'assistant' or 'system'", i)
	}
	switch c := msg["content"].(type) {
	case string:
	case []any:
		for j, b := range c {
			if _, ok := b.(map[string]any); !ok {
				return invalidf("messages.%d.content.%d: Input should be a valid dictionary", i, j)
			}
		}
	default:
		return invalidf("messages.%d.content: Input should be a valid string or list", i)
	}
	return nil
}

// readTools reads tools, a list, and keeps the first tool's name.
func (r *request) readTools(f rawFields) (any, error) {
	raw, ok := f["tools"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var tools any
	_ = stdJSON.Unmarshal(raw, &tools)
	list, ok := tools.([]any)
	if !ok {
		return nil, invalid("tools: Input should be a valid list")
	}
	if len(list) > 0 {
		if t, ok := list[0].(map[string]any); ok {
			r.firstTool, _ = t["name"].(string)
		}
	}
	return tools, nil
}

// readDirectives parses the directives of the system prompt's text, then of
// the last user message, so that the latter's override.
func (r *request) readDirectives(systemText string) error {
	n := 0
	if err := parseDirectives(&r.dir, systemText, &n); err != nil {
		return invalid(err.Error())
	}
	if err := parseDirectives(&r.dir, r.userText, &n); err != nil {
		return invalid(err.Error())
	}
	return nil
}

func invalidf(format string, i ...any) error {
	return invalid(fmt.Sprintf(format, i...))
}

func isNull(raw sonic.NoCopyRawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// contentText returns the text of a system prompt or message content: the
// string itself, or the "text" fields of its text blocks joined by newlines.
func contentText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, block := range c {
			m, ok := block.(map[string]any)
			if !ok || m["type"] != "text" {
				continue
			}
			t, _ := m["text"].(string)
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t)
		}
		return b.String()
	}
	return ""
}

// countStringWords returns the number of whitespace-separated words in every
// JSON string value inside v (object keys are not counted).
func countStringWords(v any) int64 {
	switch x := v.(type) {
	case string:
		return countWords(x)
	case []any:
		var n int64
		for _, e := range x {
			n += countStringWords(e)
		}
		return n
	case map[string]any:
		var n int64
		for _, e := range x {
			n += countStringWords(e)
		}
		return n
	}
	return 0
}

// countWords returns len(strings.Fields(s)) without allocating.
func countWords(s string) int64 {
	var n int64
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = asciiSpace[c]
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
			i += size
		}
		if space {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}

// asciiSpace matches strings.Fields' ASCII white space.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}
