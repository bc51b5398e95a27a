package openai

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"
)

// Options is what the gateway needs to know of a translated request.
type Options struct {
	// Model is the model as the client named it.
	Model string
	// Stream is the request's stream parameter.
	Stream bool
	// IncludeUsage is stream_options.include_usage; always false when
	// Stream is.
	IncludeUsage bool
}

// RequestError is a request this front refuses: a 400
// invalid_request_error naming Param.
type RequestError struct {
	// Param is the parameter's path as OpenAI writes it, such as
	// "messages[2].content[1].image_url"; empty for the body as a whole.
	Param string
	// Message is the whole message for the client, beginning with the
	// parameter's path.
	Message string
}

// Error returns Message.
func (e *RequestError) Error() string { return e.Message }

// badParam refuses param: what is wrong with it follows its path.
func badParam(param, what string) *RequestError {
	if param == "" {
		return &RequestError{Message: what}
	}
	return &RequestError{Param: param, Message: param + " " + what}
}

// chatRequest is an OpenAI chat-completions request body. Every parameter
// of openai-go v3.102.0's ChatCompletionNewParams (plus stream) has a field,
// so that an unknown key is refused by the strict decoder and a known one
// is translated, refused or ignored for a reason doc.go gives. Pointers and
// raw values tell "not given" (absent or null) from a zero value.
type chatRequest struct {
	Model                *string                           `json:"model"`
	Messages             []chatMessage                     `json:"messages"`
	MaxTokens            *int64                            `json:"max_tokens"`
	MaxCompletionTokens  *int64                            `json:"max_completion_tokens"`
	Stream               *bool                             `json:"stream"`
	StreamOptions        *streamOptions                    `json:"stream_options"`
	Temperature          *float64                          `json:"temperature"`
	TopP                 *float64                          `json:"top_p"`
	N                    *int64                            `json:"n"`
	Stop                 sonic.NoCopyRawMessage            `json:"stop"`
	Tools                []toolDef                         `json:"tools"`
	ToolChoice           sonic.NoCopyRawMessage            `json:"tool_choice"`
	ParallelToolCalls    *bool                             `json:"parallel_tool_calls"`
	ResponseFormat       *responseFormat                   `json:"response_format"`
	ReasoningEffort      *string                           `json:"reasoning_effort"`
	User                 *string                           `json:"user"`
	SafetyIdentifier     *string                           `json:"safety_identifier"`
	PromptCacheKey       *string                           `json:"prompt_cache_key"`
	PromptCacheRetention *string                           `json:"prompt_cache_retention"`
	PromptCacheOptions   *promptCacheOptions               `json:"prompt_cache_options"`
	Verbosity            *string                           `json:"verbosity"`
	ServiceTier          *string                           `json:"service_tier"`
	Store                *bool                             `json:"store"`
	Metadata             map[string]sonic.NoCopyRawMessage `json:"metadata"`
	Logprobs             *bool                             `json:"logprobs"`
	TopLogprobs          *int64                            `json:"top_logprobs"`
	FrequencyPenalty     *float64                          `json:"frequency_penalty"`
	PresencePenalty      *float64                          `json:"presence_penalty"`
	LogitBias            map[string]sonic.NoCopyRawMessage `json:"logit_bias"`
	Seed                 sonic.NoCopyRawMessage            `json:"seed"`
	Modalities           []string                          `json:"modalities"`
	Audio                sonic.NoCopyRawMessage            `json:"audio"`
	Prediction           sonic.NoCopyRawMessage            `json:"prediction"`
	WebSearchOptions     sonic.NoCopyRawMessage            `json:"web_search_options"`
	Moderation           sonic.NoCopyRawMessage            `json:"moderation"`
	Functions            sonic.NoCopyRawMessage            `json:"functions"`
	FunctionCall         sonic.NoCopyRawMessage            `json:"function_call"`
}

type streamOptions struct {
	IncludeUsage       *bool `json:"include_usage"`
	IncludeObfuscation *bool `json:"include_obfuscation"`
}

type promptCacheOptions struct {
	Mode *string `json:"mode"`
	TTL  *string `json:"ttl"`
}

type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema"`
}

type jsonSchema struct {
	Name        string                 `json:"name"`
	Description *string                `json:"description"`
	Schema      sonic.NoCopyRawMessage `json:"schema"`
	Strict      *bool                  `json:"strict"`
}

// translator builds one Anthropic request from one OpenAI request.
type translator struct {
	out              anthropicRequest
	opts             Options
	defaultMaxTokens int64
	// names is the participant name seen for each role, to tell a harmless
	// name (one participant) from names that tell participants apart.
	names map[string]string
}

// TranslateRequest turns an OpenAI chat-completions request body into an
// Anthropic Messages request body appended to dst. defaultMaxTokens (at
// least 1) is used when the client sets neither max_tokens nor
// max_completion_tokens. A request it refuses returns a *RequestError, to
// be answered 400 invalid_request_error; any other error is Tollgate's.
// It never retains body or dst.
func TranslateRequest(dst, body []byte, defaultMaxTokens int64) ([]byte, Options, error) {
	if defaultMaxTokens < 1 {
		panic(fmt.Sprintf("BUG: openai.TranslateRequest with defaultMaxTokens %d; want at least 1", defaultMaxTokens))
	}
	if firstByte(body) != '{' || !strictJSON.Valid(body) {
		return dst, Options{}, badParam("", "the request body is not a valid JSON object")
	}
	var req chatRequest
	if err := decode(body, &req, ""); err != nil {
		return dst, Options{}, err
	}
	t := translator{defaultMaxTokens: defaultMaxTokens}
	if err := t.translate(&req); err != nil {
		return dst, Options{}, err
	}
	start := len(dst)
	if err := encoder.EncodeInto(&dst, &t.out, 0); err != nil {
		return dst[:start], Options{}, fmt.Errorf("cannot encode the Anthropic request: %w", err)
	}
	if !utf8.Valid(dst[start:]) {
		// Invalid UTF-8 can only sit inside strings the client sent;
		// U+FFFD keeps the JSON valid, as encoding/json does.
		fixed := bytes.ToValidUTF8(dst[start:], []byte("\uFFFD"))
		dst = append(dst[:start], fixed...)
	}
	return dst, t.opts, nil
}

// translate fills t.out from req, step by step; the first refusal wins,
// so the parameter named does not depend on the order of the body's keys.
func (t *translator) translate(req *chatRequest) error {
	steps := [...]func(*chatRequest) error{
		t.model, t.refuse, t.sampling, t.maxTokens, t.stop, t.streaming,
		t.user, t.reasoning, t.responseFormat, t.tools, t.toolChoice, t.messages,
	}
	for _, step := range steps {
		if err := step(req); err != nil {
			return err
		}
	}
	return nil
}

func (t *translator) model(req *chatRequest) error {
	if req.Model == nil || *req.Model == "" {
		return badParam("model", "is required")
	}
	t.out.Model = *req.Model
	t.opts.Model = *req.Model
	return nil
}

// refuse refuses the parameters Anthropic's API cannot express, each unless
// it is at its neutral value.
func (t *translator) refuse(req *chatRequest) error {
	checks := [...]struct {
		param   string
		refused bool
		message string
	}{
		{"functions", present(req.Functions), "is deprecated and not supported: use tools"},
		{"function_call", present(req.FunctionCall), "is deprecated and not supported: use tool_choice"},
		{"n", req.N != nil && *req.N > 1, "greater than 1 is not supported: each request returns one choice; send one request per choice"},
		{"n", req.N != nil && *req.N < 1, "must be 1"},
		{"seed", present(req.Seed), "is not supported: Anthropic's models take no seed"},
		{"logit_bias", len(req.LogitBias) > 0, "is not supported: Anthropic's models take no token biases"},
		{"logprobs", req.Logprobs != nil && *req.Logprobs, "is not supported: Anthropic's API returns no log probabilities"},
		{"top_logprobs", req.TopLogprobs != nil && *req.TopLogprobs != 0, "is not supported: Anthropic's API returns no log probabilities"},
		{"frequency_penalty", nonZero(req.FrequencyPenalty), "is not supported: Anthropic's models take no frequency penalty; leave it out or set 0"},
		{"presence_penalty", nonZero(req.PresencePenalty), "is not supported: Anthropic's models take no presence penalty; leave it out or set 0"},
		{"audio", present(req.Audio), "is not supported: the models served here answer in text only"},
		{"modalities", !textOnly(req.Modalities), `other than ["text"] is not supported: the models served here answer in text only`},
		{"prediction", present(req.Prediction), "is not supported: Anthropic's API has no predicted outputs"},
		{"web_search_options", present(req.WebSearchOptions), "is not supported by this API"},
		{"moderation", present(req.Moderation), "is not supported: Anthropic's API runs no moderation models"},
		{"service_tier", req.ServiceTier != nil && *req.ServiceTier != "auto" && *req.ServiceTier != "default", `other than "auto" or "default" is not supported`},
		{"store", req.Store != nil && *req.Store, "is not supported: completions are not stored"},
		{"metadata", len(req.Metadata) > 0, "is not supported: it tags stored completions, which are not kept (to pass an end-user ID, use user)"},
		{"verbosity", req.Verbosity != nil && *req.Verbosity != "medium", `other than "medium" is not supported: Anthropic's models take no verbosity`},
		{"prompt_cache_retention", req.PromptCacheRetention != nil && *req.PromptCacheRetention != "in_memory" && *req.PromptCacheRetention != "24h", `must be "in_memory" or "24h"`},
		{"prompt_cache_options", !neutralCache(req.PromptCacheOptions), `other than mode "implicit" and ttl "30m" is not supported: explicit cache breakpoints cannot be expressed`},
	}
	for _, c := range checks {
		if c.refused {
			return badParam(c.param, c.message)
		}
	}
	return nil
}

func present(raw []byte) bool { return !isNull(raw) }

func nonZero(f *float64) bool { return f != nil && *f != 0 }

func textOnly(modalities []string) bool {
	return len(modalities) == 0 || len(modalities) == 1 && modalities[0] == "text"
}

func neutralCache(o *promptCacheOptions) bool {
	return o == nil || (o.Mode == nil || *o.Mode == "implicit") && (o.TTL == nil || *o.TTL == "30m")
}

// sampling passes temperature and top_p. OpenAI's temperature runs from 0
// to 2, Anthropic's from 0 to 1: the shared range passes unchanged (the
// scales are not the same, so no rescaling would be right either).
func (t *translator) sampling(req *chatRequest) error {
	if f := req.Temperature; f != nil {
		switch {
		case *f < 0 || *f > 2:
			return badParam("temperature", "must be between 0 and 2")
		case *f > 1:
			return badParam("temperature", "above 1 is not supported: Anthropic's models take 0 to 1")
		}
		t.out.Temperature = f
	}
	if f := req.TopP; f != nil {
		if *f < 0 || *f > 1 {
			return badParam("top_p", "must be between 0 and 1")
		}
		t.out.TopP = f
	}
	return nil
}

// maxOutputTokens is the largest max_tokens the meter accepts.
const maxOutputTokens = 1<<31 - 1

// maxTokens takes max_completion_tokens or its deprecated alias max_tokens.
func (t *translator) maxTokens(req *chatRequest) error {
	a, b := req.MaxTokens, req.MaxCompletionTokens
	switch {
	case a != nil && (*a < 1 || *a > maxOutputTokens):
		return badParam("max_tokens", "must be between 1 and 2147483647")
	case b != nil && (*b < 1 || *b > maxOutputTokens):
		return badParam("max_completion_tokens", "must be between 1 and 2147483647")
	case a != nil && b != nil && *a != *b:
		return badParam("max_completion_tokens", "differs from max_tokens: set one of them")
	case b != nil:
		t.out.MaxTokens = *b
	case a != nil:
		t.out.MaxTokens = *a
	default:
		t.out.MaxTokens = t.defaultMaxTokens
	}
	return nil
}

// maxStopSequences is OpenAI's limit on stop.
const maxStopSequences = 4

// stop takes a string or an array of at most four strings.
func (t *translator) stop(req *chatRequest) error {
	switch firstByte(req.Stop) {
	case 0, 'n':
		return nil
	case '"':
		var s string
		if err := decode(req.Stop, &s, "stop"); err != nil {
			return err
		}
		t.out.StopSequences = []string{s}
		return nil
	}
	var seqs []string
	if lenientJSON.Unmarshal(req.Stop, &seqs) != nil {
		return badParam("stop", "must be a string or an array of strings")
	}
	if len(seqs) > maxStopSequences {
		return badParam("stop", fmt.Sprintf("may hold at most %d sequences", maxStopSequences))
	}
	t.out.StopSequences = seqs
	return nil
}

// streaming reads stream and stream_options. stream_options without stream
// changes nothing (a reply that is not streamed always carries its usage);
// include_obfuscation is ignored, as doc.go says.
func (t *translator) streaming(req *chatRequest) error {
	t.opts.Stream = req.Stream != nil && *req.Stream
	t.out.Stream = t.opts.Stream
	if o := req.StreamOptions; t.opts.Stream && o != nil && o.IncludeUsage != nil {
		t.opts.IncludeUsage = *o.IncludeUsage
	}
	return nil
}

// user passes the end-user ID, user or its successor safety_identifier, as
// metadata.user_id.
func (t *translator) user(req *chatRequest) error {
	id := ""
	for _, s := range [...]*string{req.User, req.SafetyIdentifier} {
		switch {
		case s == nil || *s == "":
		case id != "" && *s != id:
			return badParam("safety_identifier", "differs from user: Anthropic's API takes one end-user ID")
		default:
			id = *s
		}
	}
	if id != "" {
		t.out.Metadata = &metadata{UserID: id}
	}
	return nil
}

// reasoning maps reasoning_effort to output_config.effort.
func (t *translator) reasoning(req *chatRequest) error {
	if req.ReasoningEffort == nil {
		return nil
	}
	switch e := *req.ReasoningEffort; e {
	case "none":
	case "minimal":
		t.config().Effort = "low"
	case "low", "medium", "high", "xhigh", "max":
		t.config().Effort = e
	default:
		return badParam("reasoning_effort", `must be one of "none", "minimal", "low", "medium", "high", "xhigh", "max"`)
	}
	return nil
}

func (t *translator) config() *outputConfig {
	if t.out.OutputConfig == nil {
		t.out.OutputConfig = &outputConfig{}
	}
	return t.out.OutputConfig
}

// responseFormat maps a JSON schema to Anthropic's structured outputs.
func (t *translator) responseFormat(req *chatRequest) error {
	f := req.ResponseFormat
	if f == nil {
		return nil
	}
	switch f.Type {
	case "text":
		return nil
	case "json_object":
		return badParam("response_format", `of type "json_object" is not supported: Anthropic's models have no JSON mode; use {"type":"json_schema"} with a schema`)
	case "json_schema":
	default:
		return badParam("response_format.type", `must be "text", "json_schema" or "json_object"`)
	}
	s := f.JSONSchema
	switch {
	case s == nil:
		return badParam("response_format.json_schema", "is required")
	case s.Description != nil && *s.Description != "":
		return badParam("response_format.json_schema.description", "is not supported: Anthropic's structured outputs take a schema alone (put the description in the schema)")
	}
	schema, ok := compactObject(s.Schema)
	if !ok {
		return badParam("response_format.json_schema.schema", "must be a JSON Schema object")
	}
	t.config().Format = &outputFormat{Type: "json_schema", Schema: schema}
	return nil
}
