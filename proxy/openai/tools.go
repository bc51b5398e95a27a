package openai

import "github.com/bytedance/sonic"

type toolDef struct {
	Type     string                 `json:"type"`
	Function *functionDef           `json:"function"`
	Custom   sonic.NoCopyRawMessage `json:"custom"`
}

type functionDef struct {
	Name        string                 `json:"name"`
	Description *string                `json:"description"`
	Parameters  sonic.NoCopyRawMessage `json:"parameters"`
	Strict      *bool                  `json:"strict"`
}

type toolChoiceObject struct {
	Type     string `json:"type"`
	Function *struct {
		Name string `json:"name"`
	} `json:"function"`
	Custom       sonic.NoCopyRawMessage `json:"custom"`
	AllowedTools sonic.NoCopyRawMessage `json:"allowed_tools"`
}

// tools turns function tools into Anthropic tools.
func (t *translator) tools(req *chatRequest) error {
	for i := range req.Tools {
		path := indexPath("tools", i)
		d := &req.Tools[i]
		switch {
		case d.Type == "custom":
			return badParam(path, `of type "custom" is not supported: Anthropic's tools take JSON input`)
		case d.Type != "function":
			return badParam(path+".type", `must be "function"`)
		case d.Function == nil:
			return badParam(path+".function", "is required")
		case d.Function.Name == "":
			return badParam(path+".function.name", "is required")
		}
		schema, ok := inputSchema(d.Function.Parameters)
		if !ok {
			return badParam(path+".function.parameters", "must be a JSON Schema object")
		}
		tl := tool{Name: d.Function.Name, InputSchema: schema}
		if d.Function.Description != nil {
			tl.Description = *d.Function.Description
		}
		tl.Strict = d.Function.Strict != nil && *d.Function.Strict
		t.out.Tools = append(t.out.Tools, tl)
	}
	return nil
}

// inputSchema is a function's parameters as an Anthropic input_schema,
// which must say "type": a function without parameters, or whose schema
// leaves the type out (OpenAI's are objects), gets "type":"object".
func inputSchema(params []byte) (sonic.NoCopyRawMessage, bool) {
	if !present(params) {
		return sonic.NoCopyRawMessage(`{"type":"object"}`), true
	}
	schema, ok := compactObject(params)
	if !ok {
		return nil, false
	}
	var keys map[string]sonic.NoCopyRawMessage
	if lenientJSON.Unmarshal(schema, &keys) != nil {
		return nil, false
	}
	if _, ok := keys["type"]; ok {
		return schema, true
	}
	typed := append(make([]byte, 0, len(schema)+16), `{"type":"object"`...)
	if len(schema) > 2 {
		typed = append(typed, ',')
	}
	return append(typed, schema[1:]...), true
}

// toolChoice maps tool_choice and parallel_tool_calls.
func (t *translator) toolChoice(req *chatRequest) error {
	choice, err := decodeToolChoice(req.ToolChoice)
	if err != nil {
		return err
	}
	if len(t.out.Tools) == 0 {
		// Without tools, "none" and "auto" mean what having no tools means
		// (and parallel_tool_calls has nothing to run in parallel).
		if choice.Type == "" || choice.Type == "none" || choice.Type == "auto" {
			return nil
		}
		return badParam("tool_choice", "requires tools")
	}
	if choice.Type == "tool" && !t.hasTool(choice.Name) {
		return badParam("tool_choice.function.name", "names no function in tools")
	}
	if p := req.ParallelToolCalls; p != nil && !*p && choice.Type != "none" {
		if choice.Type == "" {
			choice.Type = "auto" // OpenAI's default with tools
		}
		choice.DisableParallelToolUse = true
	}
	if choice.Type != "" {
		t.out.ToolChoice = &choice
	}
	return nil
}

// decodeToolChoice reads tool_choice: "none", "auto", "required" or a
// named function. A zero type is no choice given.
func decodeToolChoice(raw []byte) (toolChoice, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return toolChoice{}, nil
	case '"':
		var s string
		if err := decode(raw, &s, "tool_choice"); err != nil {
			return toolChoice{}, err
		}
		switch s {
		case "none", "auto":
			return toolChoice{Type: s}, nil
		case "required":
			return toolChoice{Type: "any"}, nil
		}
		return toolChoice{}, badParam("tool_choice", `must be "none", "auto", "required" or a function`)
	case '{':
	default:
		return toolChoice{}, badParam("tool_choice", "must be a string or an object")
	}
	var o toolChoiceObject
	if err := decode(raw, &o, "tool_choice"); err != nil {
		return toolChoice{}, err
	}
	switch {
	case o.Type == "allowed_tools" || present(o.AllowedTools):
		return toolChoice{}, badParam("tool_choice", `of type "allowed_tools" is not supported: list only the allowed tools in tools`)
	case o.Type == "custom" || present(o.Custom):
		return toolChoice{}, badParam("tool_choice", `of type "custom" is not supported: Anthropic's tools take JSON input`)
	case o.Type != "function":
		return toolChoice{}, badParam("tool_choice.type", `must be "function"`)
	case o.Function == nil || o.Function.Name == "":
		return toolChoice{}, badParam("tool_choice.function.name", "is required")
	}
	return toolChoice{Type: "tool", Name: o.Function.Name}, nil
}

func (t *translator) hasTool(name string) bool {
	for _, tl := range t.out.Tools {
		if tl.Name == name {
			return true
		}
	}
	return false
}
