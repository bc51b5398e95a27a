package openai

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/meter"
)

// anthropicMessage is what this front reads of an Anthropic Message (a
// non-streaming reply, or message_start's message).
type anthropicMessage struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Model      string         `json:"model"`
	Content    []contentBlock `json:"content"`
	StopReason string         `json:"stop_reason"`
	Usage      usage          `json:"usage"`
}

type contentBlock struct {
	Type     string                 `json:"type"`
	Text     string                 `json:"text"`
	Thinking string                 `json:"thinking"`
	ID       string                 `json:"id"`
	Name     string                 `json:"name"`
	Input    sonic.NoCopyRawMessage `json:"input"`
}

// usage is Anthropic's Usage or MessageDeltaUsage; nil is absent or null.
type usage struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	OutputTokensDetails      *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

// tokens is usage folded as the meter folds it: each report overwrites the
// counts it carries, field by field, never adding.
type tokens struct {
	input, cacheWrite, cacheRead, output, thinking int64
}

func (t *tokens) merge(u *usage) {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = max(*v, 0)
		}
	}
	set(&t.input, u.InputTokens)
	set(&t.cacheWrite, u.CacheCreationInputTokens)
	set(&t.cacheRead, u.CacheReadInputTokens)
	set(&t.output, u.OutputTokens)
	if d := u.OutputTokensDetails; d != nil {
		set(&t.thinking, d.ThinkingTokens)
	}
}

// appendJSON appends OpenAI's usage object. prompt_tokens counts every
// input token, cached or not, as OpenAI's does; cache_write_tokens is
// openai-go's CompletionUsagePromptTokensDetails field for cache writes.
func (t *tokens) appendJSON(dst []byte) []byte {
	prompt := satAdd(satAdd(t.input, t.cacheWrite), t.cacheRead)
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, prompt, 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, t.output, 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, satAdd(prompt, t.output), 10)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = strconv.AppendInt(dst, t.cacheRead, 10)
	dst = append(dst, `,"cache_write_tokens":`...)
	dst = strconv.AppendInt(dst, t.cacheWrite, 10)
	dst = append(dst, `,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = strconv.AppendInt(dst, t.thinking, 10)
	return append(dst, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// satAdd adds non-negative counts, saturating at the largest int64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// finishReason maps Anthropic's stop reason to OpenAI's finish reason;
// pause_turn (a server tool's long turn, which this front never asks for)
// and reasons added later are "stop".
func finishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop"
}

// AppendCompletion appends the chat.completion object for an Anthropic
// Message (a non-streaming reply body): id "chatcmpl-" + the message ID,
// created in Unix seconds, the message's model. Text blocks make the
// content (null when there are none), tool_use blocks the tool_calls, and
// thinking blocks the non-standard reasoning_content (present only when
// the reply thought). On error dst is returned unchanged.
func AppendCompletion(dst, message []byte, created int64) ([]byte, error) {
	var m anthropicMessage
	if err := lenientJSON.Unmarshal(message, &m); err != nil {
		return dst, fmt.Errorf("cannot decode the upstream message: %w", err)
	}
	if m.Type != "message" {
		return dst, errors.New("cannot translate an upstream reply that is not a message")
	}
	var u tokens
	u.merge(&m.Usage)
	dst = append(dst, `{"id":`...)
	dst = appendChatID(dst, m.ID)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = strconv.AppendInt(dst, created, 10)
	dst = append(dst, `,"model":`...)
	dst = meter.AppendJSONString(dst, m.Model)
	dst = append(dst, `,"choices":[{"index":0,"message":`...)
	dst = appendReply(dst, m.Content)
	dst = append(dst, `,"logprobs":null,"finish_reason":"`...)
	dst = append(dst, finishReason(m.StopReason)...)
	dst = append(dst, `"}],"usage":`...)
	dst = u.appendJSON(dst)
	return append(dst, '}'), nil
}

// appendChatID appends "chatcmpl-" + id as a JSON string.
func appendChatID(dst []byte, id string) []byte {
	n := len(dst)
	dst = meter.AppendJSONString(dst, id)
	// Splice the prefix in after the opening quote.
	dst = append(dst, "chatcmpl-"...)
	copy(dst[n+1+len("chatcmpl-"):], dst[n+1:len(dst)-len("chatcmpl-")])
	copy(dst[n+1:], "chatcmpl-")
	return dst
}

// appendReply appends the choice's message.
func appendReply(dst []byte, content []contentBlock) []byte {
	var text, thinking strings.Builder
	hasText, hasThinking, calls := false, false, 0
	for i := range content {
		switch b := &content[i]; b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = true
		case "thinking":
			thinking.WriteString(b.Thinking)
			hasThinking = true
		case "tool_use":
			calls++
		}
	}
	dst = append(dst, `{"role":"assistant","content":`...)
	dst = appendNullable(dst, text.String(), hasText)
	dst = append(dst, `,"refusal":null`...)
	if hasThinking {
		dst = append(dst, `,"reasoning_content":`...)
		dst = meter.AppendJSONString(dst, thinking.String())
	}
	if calls > 0 {
		dst = appendToolCalls(dst, content)
	}
	return append(dst, '}')
}

// appendToolCalls appends the tool_calls of the tool_use blocks, each
// input as compact JSON in arguments.
func appendToolCalls(dst []byte, content []contentBlock) []byte {
	dst = append(dst, `,"tool_calls":[`...)
	first := true
	var args []byte
	for i := range content {
		b := &content[i]
		if b.Type != "tool_use" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"id":`...)
		dst = meter.AppendJSONString(dst, b.ID)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = meter.AppendJSONString(dst, b.Name)
		dst = append(dst, `,"arguments":`...)
		args = appendArguments(args[:0], b.Input)
		dst = meter.AppendJSONString(dst, string(args))
		dst = append(dst, "}}"...)
	}
	return append(dst, ']')
}

// appendArguments appends a tool input as compact JSON, {} when absent.
func appendArguments(dst, input []byte) []byte {
	if isNull(input) {
		return append(dst, "{}"...)
	}
	return appendCompact(dst, input)
}

// appendNullable appends s as a JSON string when ok, else null.
func appendNullable(dst []byte, s string, ok bool) []byte {
	if !ok {
		return append(dst, "null"...)
	}
	return meter.AppendJSONString(dst, s)
}
