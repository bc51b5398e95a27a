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
func parseRequest(body []byte, countTokens bool) (*request, error) {
	var fields map[string]sonic.NoCopyRawMessage
	if err := stdJSON.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, invalid("The request body is not valid JSON: expected a JSON object")
	}
	r := &request{countTokens: countTokens}

	model, ok := fields["model"]
	if !ok || isNull(model) {
		return nil, invalid("model: Field required")
	}
	if err := stdJSON.Unmarshal(model, &r.model); err != nil {
		return nil, invalid("model: Input should be a valid string")
	}
	if r.model == "" {
		return nil, invalid("model: String should have at least 1 character")
	}

	if !countTokens {
		mt, ok := fields["max_tokens"]
		if !ok || isNull(mt) {
			return nil, invalid("max_tokens: Field required")
		}
		if err := stdJSON.Unmarshal(mt, &r.maxTokens); err != nil {
			return nil, invalid("max_tokens: Input should be a valid integer")
		}
		if r.maxTokens < 1 {
			return nil, invalid("max_tokens: Input should be greater than or equal to 1")
		}
		if st, ok := fields["stream"]; ok && !isNull(st) {
			if err := stdJSON.Unmarshal(st, &r.stream); err != nil {
				return nil, invalid("stream: Input should be a valid boolean")
			}
		}
	}
	if geo, ok := fields["inference_geo"]; ok && !isNull(geo) {
		if err := stdJSON.Unmarshal(geo, &r.inferenceGeo); err != nil {
			return nil, invalid("inference_geo: Input should be a valid string")
		}
	}

	var system, messages, tools any
	if raw, ok := fields["system"]; ok {
		_ = stdJSON.Unmarshal(raw, &system) // valid: the whole body decoded
		switch system.(type) {
		case nil, string, []any:
		default:
			return nil, invalid("system: Input should be a valid string or a list of text blocks")
		}
	}
	raw, ok := fields["messages"]
	if !ok || isNull(raw) {
		return nil, invalid("messages: Field required")
	}
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
		role, _ := msg["role"].(string)
		// "system" messages inside the conversation come with the beta
		// mid-conversation-tool-changes-2026-07-01 (Claude Code sends them).
		if role != "user" && role != "assistant" && role != "system" {
			return nil, invalidf("messages.%d.role: Input should be 'user', 'assistant' or 'system'", i)
		}
		switch c := msg["content"].(type) {
		case string:
		case []any:
			for j, b := range c {
				if _, ok := b.(map[string]any); !ok {
					return nil, invalidf("messages.%d.content.%d: Input should be a valid dictionary", i, j)
				}
			}
		default:
			return nil, invalidf("messages.%d.content: Input should be a valid string or list", i)
		}
		if role == "user" {
			r.userText = contentText(msg["content"])
		}
	}
	if raw, ok := fields["tools"]; ok && !isNull(raw) {
		_ = stdJSON.Unmarshal(raw, &tools)
		tl, ok := tools.([]any)
		if !ok {
			return nil, invalid("tools: Input should be a valid list")
		}
		if len(tl) > 0 {
			if t, ok := tl[0].(map[string]any); ok {
				r.firstTool, _ = t["name"].(string)
			}
		}
	}

	r.inputWords = countStringWords(system) + countStringWords(messages) + countStringWords(tools)

	n := 0
	if err := parseDirectives(&r.dir, contentText(system), &n); err != nil {
		return nil, invalid(err.Error())
	}
	if err := parseDirectives(&r.dir, r.userText, &n); err != nil {
		return nil, invalid(err.Error())
	}
	return r, nil
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
