package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
)

// The official OpenAI Go SDK (the version the gateway's SDK tests use) as
// the judge of this front's wire: it builds requests, parses replies and
// accumulates streams as the SDK's users do.

// jsonNames returns the JSON names of struct type t's fields.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestParamsCoverSDK: chatRequest declares exactly the parameters of the
// SDK's ChatCompletionNewParams, plus stream (which the SDK sets itself),
// so a parameter a new SDK adds is refused as unknown until it is decided.
func TestParamsCoverSDK(t *testing.T) {
	want := append(jsonNames(reflect.TypeFor[oai.ChatCompletionNewParams]()), "stream")
	slices.Sort(want)
	if got := jsonNames(reflect.TypeFor[chatRequest]()); !slices.Equal(got, want) {
		t.Fatalf("unexpected parameters;\ngot  %v\nwant %v", got, want)
	}
}

// TestSDKRequests: what the SDK sends, including a reply it parsed sent
// back with ToParam, is translated.
func TestSDKRequests(t *testing.T) {
	var reply oai.ChatCompletion
	completion, err := AppendCompletion(nil, []byte(toolMessage), created)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(completion, &reply); err != nil {
		t.Fatalf("cannot parse %s: %s", completion, err)
	}
	params := oai.ChatCompletionNewParams{
		Model:               "claude-sonnet-4-6",
		MaxCompletionTokens: oai.Int(300),
		Messages: []oai.ChatCompletionMessageParamUnion{
			oai.SystemMessage("Be brief."),
			oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
				oai.TextContentPart("Weather here?"),
				oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgo=", Detail: "auto"}),
			}),
			reply.Choices[0].Message.ToParam(),
			oai.ToolMessage("18C", "toolu_01A"),
			oai.ToolMessage("21C", "toolu_01B"),
		},
		Tools: []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "get_weather",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
		})},
		ToolChoice:        oai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: oai.String("auto")},
		ParallelToolCalls: oai.Bool(false),
		StreamOptions:     oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
		ReasoningEffort:   shared.ReasoningEffortHigh,
		User:              oai.String("user-42"),
	}
	body, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := TranslateRequest(nil, body, 1024)
	if err != nil {
		t.Fatalf("unexpected refusal of the SDK's %s: %s", body, err)
	}
	want := `{"model":"claude-sonnet-4-6","max_tokens":300,"system":[{"type":"text","text":"Be brief."}],"messages":[` +
		`{"role":"user","content":[{"type":"text","text":"Weather here?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},` +
		`{"role":"assistant","content":[{"type":"text","text":"Checking both.\n"},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","unit":"c"}},{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{"unit":"c","city":"Rome"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A","content":[{"type":"text","text":"18C"}]},{"type":"tool_result","tool_use_id":"toolu_01B","content":[{"type":"text","text":"21C"}]}]}],` +
		`"metadata":{"user_id":"user-42"},"tools":[{"name":"get_weather","input_schema":{"properties":{"city":{"type":"string"}},"type":"object"}}],` +
		`"tool_choice":{"type":"auto","disable_parallel_tool_use":true},"output_config":{"effort":"high"}}`
	if !sameJSON(t, got, []byte(want)) {
		t.Fatalf("unexpected translation of the SDK's %s;\ngot  %s\nwant %s", body, got, want)
	}
}

// toolMessage is a reply with thinking, text and two tool calls.
const toolMessage = `{"id":"msg_01Tools","type":"message","role":"assistant","model":"claude-opus-4-6","content":[{"type":"thinking","thinking":"Two cities.","signature":"EqQB"},{"type":"text","text":"Checking both.\n"},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","unit":"c"}},{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{"unit":"c","city":"Rome"}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"cache_creation_input_tokens":1200,"cache_read_input_tokens":22175,"output_tokens":310,"output_tokens_details":{"thinking_tokens":120}}}`

// TestSDKCompletion: the SDK parses a chat.completion into what the reply
// said, reasoning_content as an extra field.
func TestSDKCompletion(t *testing.T) {
	out, err := AppendCompletion(nil, []byte(toolMessage), created)
	if err != nil {
		t.Fatal(err)
	}
	var c oai.ChatCompletion
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("cannot parse %s: %s", out, err)
	}
	m := c.Choices[0].Message
	calls := m.ToolCalls
	switch {
	case c.ID != "chatcmpl-msg_01Tools" || c.Object != "chat.completion" || c.Created != created || c.Model != "claude-opus-4-6":
		t.Fatalf("unexpected header %q %q %d %q", c.ID, c.Object, c.Created, c.Model)
	case m.Content != "Checking both.\n" || m.Role != "assistant" || c.Choices[0].FinishReason != "tool_calls":
		t.Fatalf("unexpected message %+v", c.Choices[0])
	case m.JSON.ExtraFields["reasoning_content"].Raw() != `"Two cities."`:
		t.Fatalf("unexpected reasoning_content %q", m.JSON.ExtraFields["reasoning_content"].Raw())
	case len(calls) != 2 || calls[1].ID != "toolu_01B" || calls[1].Function.Name != "get_weather" || calls[1].Function.Arguments != `{"unit":"c","city":"Rome"}`:
		t.Fatalf("unexpected tool calls %+v", calls)
	case c.Usage.PromptTokens != 23378 || c.Usage.CompletionTokens != 310 || c.Usage.TotalTokens != 23688 ||
		c.Usage.PromptTokensDetails.CachedTokens != 22175 || c.Usage.PromptTokensDetails.CacheWriteTokens != 1200 ||
		c.Usage.CompletionTokensDetails.ReasoningTokens != 120:
		t.Fatalf("unexpected usage %+v", c.Usage)
	}
}

// TestSDKStream: the OpenAI SDK's accumulator, fed each stream's
// translation that ends in [DONE], builds the completion AppendCompletion
// writes for the Message the Anthropic SDK accumulates from the same
// events: both SDKs agree with both paths. (Thinking, an extra field, is
// left to the clients that read it.)
func TestSDKStream(t *testing.T) {
	compared := 0
	for _, fx := range streams(t) {
		out := translate(fx.data, streamOpts, len(fx.data))
		if !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
			continue
		}
		compared++
		var acc oai.ChatCompletionAccumulator
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n\ndata: [DONE]\n\n"), "\n\n") {
			var chunk oai.ChatCompletionChunk
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &chunk); err != nil {
				t.Fatalf("%s: cannot parse %s: %s", fx.name, line, err)
			}
			if !acc.AddChunk(chunk) {
				t.Fatalf("%s: unexpected chunk refused by the accumulator: %s", fx.name, line)
			}
		}
		want := sdkCompletion(t, fx.data)
		got := acc.ChatCompletion
		if got.ID != want.ID || got.Model != want.Model || !sameUsage(got.Usage, want.Usage) ||
			got.Choices[0].FinishReason != want.Choices[0].FinishReason || got.Choices[0].Message.Content != want.Choices[0].Message.Content ||
			!sameToolCalls(got.Choices[0].Message.ToolCalls, want.Choices[0].Message.ToolCalls) {
			t.Fatalf("%s: unexpected accumulation;\ngot  %+v\nwant %+v", fx.name, got, want)
		}
	}
	if compared < 10 {
		t.Fatalf("unexpected %d streams ending in [DONE]; want at least 10", compared)
	}
}

// sdkCompletion is the OpenAI SDK's parse of AppendCompletion of the
// Message the Anthropic SDK accumulates from data: the same reply, whole.
func sdkCompletion(t *testing.T, data []byte) oai.ChatCompletion {
	t.Helper()
	res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(data))}
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(res), nil)
	var m anthropic.Message
	for stream.Next() {
		if err := m.Accumulate(stream.Current()); err != nil {
			t.Fatalf("cannot accumulate: %s", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("cannot read the stream: %s", err)
	}
	message, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := AppendCompletion(nil, message, created)
	if err != nil {
		t.Fatalf("cannot translate %s: %s", message, err)
	}
	var c oai.ChatCompletion
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("cannot parse %s: %s", out, err)
	}
	return c
}

// sameUsage compares the counts the accumulator keeps (it drops
// cache_write_tokens).
func sameUsage(a, b oai.CompletionUsage) bool {
	return a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens && a.TotalTokens == b.TotalTokens &&
		a.PromptTokensDetails.CachedTokens == b.PromptTokensDetails.CachedTokens &&
		a.CompletionTokensDetails.ReasoningTokens == b.CompletionTokensDetails.ReasoningTokens
}

func sameToolCalls(a, b []oai.ChatCompletionMessageToolCallUnion) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Function.Name != b[i].Function.Name || !sameArguments(a[i].Function.Arguments, b[i].Function.Arguments) {
			return false
		}
	}
	return true
}

// sameArguments compares arguments as JSON: a stream passes the model's
// fragments as they came, a whole reply its input compacted.
func sameArguments(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}
