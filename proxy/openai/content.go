package openai

import (
	"strings"

	"github.com/bytedance/sonic"
)

// contentPart is one element of a message's content array, of any type;
// which types a role may send is a partKinds.
type contentPart struct {
	Type                  string                 `json:"type"`
	Text                  *string                `json:"text"`
	ImageURL              *imageURL              `json:"image_url"`
	InputAudio            sonic.NoCopyRawMessage `json:"input_audio"`
	File                  sonic.NoCopyRawMessage `json:"file"`
	Refusal               *string                `json:"refusal"`
	PromptCacheBreakpoint sonic.NoCopyRawMessage `json:"prompt_cache_breakpoint"`
}

type imageURL struct {
	URL    string  `json:"url"`
	Detail *string `json:"detail"`
}

// partKinds is the content part types a role may send.
type partKinds uint8

const (
	textParts      partKinds = iota // system, developer, tool: text
	userParts                       // user: text, image_url, input_audio, file
	assistantParts                  // assistant: text, refusal
)

// contentBlocks turns content (a string or an array of parts) into blocks.
// Empty text is left out: Anthropic refuses empty text blocks, and an
// empty string says nothing.
func contentBlocks(raw []byte, path string, kinds partKinds) ([]block, error) {
	parts, err := decodeContent(raw, path)
	if err != nil {
		return nil, err
	}
	var blocks []block
	for j := range parts {
		b, err := partBlock(&parts[j], indexPath(path, j), kinds)
		if err != nil {
			return nil, err
		}
		if b.Type != "" {
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

// decodeContent decodes content: absent, null, a string (one text part)
// or an array of parts.
func decodeContent(raw []byte, path string) ([]contentPart, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if err := decode(raw, &s, path); err != nil {
			return nil, err
		}
		return []contentPart{{Type: "text", Text: &s}}, nil
	case '[':
		var parts []contentPart
		err := decode(raw, &parts, path)
		return parts, err
	}
	return nil, badParam(path, "must be a string or an array of content parts")
}

// partBlock turns one part into a block; a zero block is an empty text.
func partBlock(p *contentPart, path string, kinds partKinds) (block, error) {
	if err := p.check(path); err != nil {
		return block{}, err
	}
	switch {
	case p.Type == "text":
		return textBlock(*p.Text), nil
	case p.Type == "refusal" && kinds == assistantParts:
		return textBlock(*p.Refusal), nil
	case p.Type == "image_url" && kinds == userParts:
		return imageBlock(p.ImageURL, path+".image_url")
	case p.Type == "input_audio" && kinds == userParts:
		return block{}, badParam(path, "is not supported: Anthropic's models take no audio input")
	case p.Type == "file" && kinds == userParts:
		return block{}, badParam(path, "is not supported: file parts cannot be passed to Anthropic's models through this API")
	}
	return block{}, badParam(path+".type", "must be "+kinds.String())
}

// String lists the part types of k, for a refusal.
func (k partKinds) String() string {
	switch k {
	case userParts:
		return `"text", "image_url", "input_audio" or "file"`
	case assistantParts:
		return `"text" or "refusal"`
	}
	return `"text"`
}

// check refuses a part whose fields do not match its type, and cache
// breakpoints, which Anthropic's cache_control cannot match (OpenAI's
// 30-minute lifetime is neither of Anthropic's 5 minutes and 1 hour).
func (p *contentPart) check(path string) error {
	if p.Type == "" {
		return badParam(path+".type", "is required")
	}
	if present(p.PromptCacheBreakpoint) {
		return badParam(path+".prompt_cache_breakpoint", "is not supported: explicit cache breakpoints cannot be expressed")
	}
	fields := [...]struct {
		name string
		set  bool
	}{
		{"text", p.Text != nil}, {"image_url", p.ImageURL != nil}, {"input_audio", present(p.InputAudio)},
		{"file", present(p.File)}, {"refusal", p.Refusal != nil},
	}
	has := false
	for _, f := range fields {
		switch {
		case f.set && f.name != p.Type:
			return badParam(path+"."+f.name, "does not belong in a part of type "+quote(p.Type))
		case f.name == p.Type:
			has = f.set
		}
	}
	if !has {
		return badParam(path+"."+p.Type, "is required")
	}
	return nil
}

// textBlock is a text block, or the zero block for empty text.
func textBlock(s string) block {
	if s == "" {
		return block{}
	}
	return block{Type: "text", Text: s}
}

func quote(s string) string { return `"` + s + `"` }

// imageBlock turns an image_url into an image block: a data URL into a
// base64 source, an http(s) URL into a URL source that the upstream
// fetches (the gateway never does).
func imageBlock(u *imageURL, path string) (block, error) {
	if u.Detail != nil {
		switch *u.Detail {
		case "auto", "high":
		case "low", "original":
			return block{}, badParam(path+".detail", quote(*u.Detail)+` is not supported: Anthropic's models read each image at their own resolution; use "auto"`)
		default:
			return block{}, badParam(path+".detail", `must be "auto", "low", "high" or "original"`)
		}
	}
	switch {
	case hasPrefixFold(u.URL, "data:"):
		return dataImage(u.URL, path)
	case hasPrefixFold(u.URL, "https://"), hasPrefixFold(u.URL, "http://"):
		return block{Type: "image", Source: &imageSource{Type: "url", URL: u.URL}}, nil
	}
	return block{}, badParam(path, "must be a data URL or an http(s) URL")
}

// dataImage parses data:<media type>;base64,<data>. The data is passed on
// unchecked; the upstream decodes it.
func dataImage(url, path string) (block, error) {
	meta, data, ok := strings.Cut(url[len("data:"):], ",")
	mediaType, params, _ := strings.Cut(meta, ";")
	if !ok || !strings.EqualFold(params, "base64") {
		return block{}, badParam(path, "must be a base64 data URL (data:image/png;base64,...)")
	}
	mediaType = strings.ToLower(mediaType)
	switch mediaType {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
	case "image/jpg":
		mediaType = "image/jpeg" // a common misspelling of the registered name
	default:
		return block{}, badParam(path, "has media type "+quote(mediaType)+": Anthropic's models take image/jpeg, image/png, image/gif and image/webp")
	}
	if data == "" {
		return block{}, badParam(path, "holds no image data")
	}
	return block{Type: "image", Source: &imageSource{Type: "base64", MediaType: mediaType, Data: data}}, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
