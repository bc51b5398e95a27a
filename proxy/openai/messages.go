package openai

import "github.com/bytedance/sonic"

// chatMessage is one element of messages, of any role; which fields a role
// may carry is checked in roleFields.
type chatMessage struct {
	Role         string                 `json:"role"`
	Content      sonic.NoCopyRawMessage `json:"content"`
	Name         *string                `json:"name"`
	ToolCalls    []toolCall             `json:"tool_calls"`
	ToolCallID   *string                `json:"tool_call_id"`
	Refusal      *string                `json:"refusal"`
	Audio        sonic.NoCopyRawMessage `json:"audio"`
	FunctionCall sonic.NoCopyRawMessage `json:"function_call"`
	// ReasoningContent is what AppendCompletion writes for thinking, sent
	// back by clients that resend the reply as they got it. It is ignored:
	// Anthropic's models drop the thinking of earlier turns anyway, and
	// without its signature it could not be passed back.
	ReasoningContent sonic.NoCopyRawMessage `json:"reasoning_content"`
	// Parsed and Annotations are fields of a reply, not of a request: the
	// official SDKs' helpers return messages carrying them (openai-node's
	// finalChatCompletion: parsed null, annotations []), and clients append
	// those messages to the conversation as they are. They are ignored, as
	// OpenAI's API ignores them.
	Parsed      sonic.NoCopyRawMessage `json:"parsed"`
	Annotations sonic.NoCopyRawMessage `json:"annotations"`
}

type toolCall struct {
	ID       string                 `json:"id"`
	Type     string                 `json:"type"`
	Function *functionCall          `json:"function"`
	Custom   sonic.NoCopyRawMessage `json:"custom"`
	// Index is left by clients that rebuild tool calls from stream deltas;
	// it is the call's position, which the order of tool_use blocks keeps.
	Index sonic.NoCopyRawMessage `json:"index"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// messages turns messages into system blocks and turns.
func (t *translator) messages(req *chatRequest) error {
	if len(req.Messages) == 0 {
		return badParam("messages", "must hold at least one message")
	}
	for i := range req.Messages {
		if err := t.message(&req.Messages[i], i); err != nil {
			return err
		}
	}
	if len(t.out.Messages) == 0 {
		return badParam("messages", "must hold a message other than system and developer messages")
	}
	for _, tu := range t.out.Messages {
		if len(tu.Content) == 0 {
			return badParam(indexPath("messages", tu.first)+".content", "must not be empty")
		}
	}
	return nil
}

// message translates message i. System and developer messages go to the
// top-level system prompt, in order, wherever they stand; tool messages
// become tool_result blocks of a user turn; consecutive messages of one
// (Anthropic) role share a turn, since Anthropic's roles alternate.
func (t *translator) message(m *chatMessage, i int) error {
	path := indexPath("messages", i)
	switch m.Role {
	case "system", "developer", "user", "assistant", "tool":
	case "function":
		return badParam(path+".role", `"function" is deprecated and not supported: use tool messages`)
	case "":
		return badParam(path+".role", "is required")
	default:
		return badParam(path+".role", `must be "system", "developer", "user", "assistant" or "tool"`)
	}
	if err := roleFields(m, path); err != nil {
		return err
	}
	if err := t.name(m, path); err != nil {
		return err
	}
	var blocks []block
	var err error
	switch m.Role {
	case "system", "developer":
		blocks, err = contentBlocks(m.Content, path+".content", textParts)
		t.out.System = append(t.out.System, blocks...)
		return err
	case "user":
		blocks, err = contentBlocks(m.Content, path+".content", userParts)
	case "assistant":
		blocks, err = assistantBlocks(m, path)
	case "tool":
		blocks, err = toolResult(m, path)
	}
	if err != nil {
		return err
	}
	t.appendTurn(anthropicRole(m.Role), i, blocks)
	return nil
}

// anthropicRole is the role of an OpenAI user, assistant or tool message's
// turn: tool results are the user's.
func anthropicRole(role string) string {
	if role == "assistant" {
		return role
	}
	return "user"
}

// roleFields refuses fields that message m's role does not have.
func roleFields(m *chatMessage, path string) error {
	field := ""
	if m.Role != "assistant" {
		switch {
		case m.ToolCalls != nil:
			field = "tool_calls"
		case m.Refusal != nil:
			field = "refusal"
		case present(m.Audio):
			field = "audio"
		case present(m.FunctionCall):
			field = "function_call"
		case present(m.ReasoningContent):
			field = "reasoning_content"
		}
	}
	switch {
	case field != "":
	case m.Role != "tool" && m.ToolCallID != nil:
		field = "tool_call_id"
	case m.Role == "tool" && m.Name != nil:
		field = "name"
	default:
		return nil
	}
	return badParam(path+"."+field, "is not a parameter of "+m.Role+" messages")
}

// name accepts a participant name while it names the role's only
// participant: Anthropic's messages carry no names, and dropping one that
// tells no participants apart loses nothing. A second, different name for
// the same role would be lost information, so it is refused.
func (t *translator) name(m *chatMessage, path string) error {
	if m.Name == nil || *m.Name == "" {
		return nil
	}
	if t.names == nil {
		t.names = make(map[string]string, 4)
	}
	if prev, ok := t.names[m.Role]; ok && prev != *m.Name {
		return badParam(path+".name", "differs from an earlier "+m.Role+" message's name: names that tell participants apart cannot be expressed in Anthropic's API")
	}
	t.names[m.Role] = *m.Name
	return nil
}

// appendTurn adds blocks to the last turn when it has role, else opens a
// turn for message i.
func (t *translator) appendTurn(role string, i int, blocks []block) {
	if n := len(t.out.Messages); n > 0 && t.out.Messages[n-1].Role == role {
		t.out.Messages[n-1].Content = append(t.out.Messages[n-1].Content, blocks...)
		return
	}
	t.out.Messages = append(t.out.Messages, turn{Role: role, Content: blocks, first: i})
}

// assistantBlocks is an assistant message's text (content, then refusal)
// followed by its tool calls as tool_use blocks.
func assistantBlocks(m *chatMessage, path string) ([]block, error) {
	switch {
	case present(m.FunctionCall):
		return nil, badParam(path+".function_call", "is deprecated and not supported: use tool_calls")
	case present(m.Audio):
		return nil, badParam(path+".audio", "is not supported: an earlier audio reply cannot be passed to Anthropic's models")
	}
	blocks, err := contentBlocks(m.Content, path+".content", assistantParts)
	if err != nil {
		return nil, err
	}
	if m.Refusal != nil && *m.Refusal != "" {
		blocks = append(blocks, block{Type: "text", Text: *m.Refusal})
	}
	for k := range m.ToolCalls {
		b, err := toolUse(&m.ToolCalls[k], indexPath(path+".tool_calls", k))
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// toolUse turns an assistant's function call into a tool_use block whose
// input is the parsed arguments.
func toolUse(c *toolCall, path string) (block, error) {
	switch {
	case c.Type == "custom" || present(c.Custom):
		return block{}, badParam(path, "of type \"custom\" is not supported: Anthropic's tools take JSON input")
	case c.Type != "" && c.Type != "function":
		return block{}, badParam(path+".type", `must be "function"`)
	case c.ID == "":
		return block{}, badParam(path+".id", "is required")
	case c.Function == nil:
		return block{}, badParam(path+".function", "is required")
	case c.Function.Name == "":
		return block{}, badParam(path+".function.name", "is required")
	}
	input, ok := arguments(c.Function.Arguments)
	if !ok {
		return block{}, badParam(path+".function.arguments", "must be a JSON object")
	}
	return block{Type: "tool_use", ID: c.ID, Name: c.Function.Name, Input: input}, nil
}

// arguments parses a function call's arguments; empty arguments (which
// some clients send for a function without parameters) are {}.
func arguments(s string) (sonic.NoCopyRawMessage, bool) {
	if firstByte([]byte(s)) == 0 {
		return sonic.NoCopyRawMessage("{}"), true
	}
	return compactObject([]byte(s))
}

// toolResult turns a tool message into a tool_result block.
func toolResult(m *chatMessage, path string) ([]block, error) {
	if m.ToolCallID == nil || *m.ToolCallID == "" {
		return nil, badParam(path+".tool_call_id", "is required")
	}
	content, err := contentBlocks(m.Content, path+".content", textParts)
	if err != nil {
		return nil, err
	}
	return []block{{Type: "tool_result", ToolUseID: *m.ToolCallID, Content: content}}, nil
}
