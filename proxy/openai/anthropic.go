package openai

import "github.com/bytedance/sonic"

// The Anthropic Messages request TranslateRequest writes, in the field order
// of Anthropic's own documentation. Raw JSON values (schemas, tool inputs)
// are compacted before they are stored here, since the encoder writes raw
// values as they are.

type anthropicRequest struct {
	Model         string        `json:"model"`
	MaxTokens     int64         `json:"max_tokens"`
	System        []block       `json:"system,omitempty"`
	Messages      []turn        `json:"messages"`
	Metadata      *metadata     `json:"metadata,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	Tools         []tool        `json:"tools,omitempty"`
	ToolChoice    *toolChoice   `json:"tool_choice,omitempty"`
	OutputConfig  *outputConfig `json:"output_config,omitempty"`
}

// turn is one Anthropic message: consecutive OpenAI messages of one role
// (tool results counting as the user's) become one turn.
type turn struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
	// first is the index of the OpenAI message that opened the turn, to
	// name it when the turn ends up empty.
	first int
}

// MarshalJSON writes a turn of one text block with its content as a
// string, as a client of the Messages API writes it: the same request as a
// native call, so the same upstream reply and the same charge.
func (t turn) MarshalJSON() ([]byte, error) {
	type plain struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	}
	if len(t.Content) == 1 && t.Content[0].Type == "text" {
		return sonic.Marshal(struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}{t.Role, t.Content[0].Text})
	}
	return sonic.Marshal(plain{t.Role, t.Content})
}

// block is every content block this front writes: text, image, tool_use
// and tool_result (whose content holds text blocks).
type block struct {
	Type      string                 `json:"type"`
	Text      string                 `json:"text,omitempty"`
	Source    *imageSource           `json:"source,omitempty"`
	ID        string                 `json:"id,omitempty"`
	Name      string                 `json:"name,omitempty"`
	Input     sonic.NoCopyRawMessage `json:"input,omitempty"`
	ToolUseID string                 `json:"tool_use_id,omitempty"`
	Content   []block                `json:"content,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

type tool struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	InputSchema sonic.NoCopyRawMessage `json:"input_schema"`
	Strict      bool                   `json:"strict,omitempty"`
}

type toolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type outputConfig struct {
	Effort string        `json:"effort,omitempty"`
	Format *outputFormat `json:"format,omitempty"`
}

type outputFormat struct {
	Type   string                 `json:"type"`
	Schema sonic.NoCopyRawMessage `json:"schema"`
}
