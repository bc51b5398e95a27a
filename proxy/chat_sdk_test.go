package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// chatClient is the official OpenAI Go SDK pointed at the gateway's
// OpenAI-compatible front with key, without retries unless asked.
func (h *harness) chatClient(key string, opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL(h.clientURL + "/v1"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(h.client),
	}
	return openai.NewClient(append(base, opts...)...)
}

// chatParams is a chat request for the test model.
func chatParams(text string, maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:               testModel,
		MaxCompletionTokens: openai.Int(maxTokens),
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

// lastCall is the account's newest call record.
func (h *harness) lastCall(a *account) *callRecord {
	h.t.Helper()
	calls := h.accountCalls(a.ID)
	if len(calls) == 0 {
		h.t.Fatalf("no call record of %s", a.ID)
	}
	return &calls[0]
}

// TestChatCompletionsSDK: the official OpenAI Go SDK against the gateway:
// a plain call and a streamed one with usage read the same reply, each is
// recorded with the OpenAI front, and each costs what the same Messages
// call costs, to the nano-credit.
func TestChatCompletionsSDK(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	client := h.chatClient(a.Key)
	ctx := context.Background()
	const prompt = "one two three four five"

	reply, err := client.Chat.Completions.New(ctx, chatParams(prompt, 100))
	if err != nil {
		t.Fatalf("chat completion: %s", err)
	}
	if len(reply.Choices) != 1 || reply.Choices[0].Message.Content == "" || reply.Choices[0].FinishReason != "stop" {
		t.Fatalf("unexpected completion: %+v", reply)
	}
	if reply.Usage.PromptTokens == 0 || reply.Usage.CompletionTokens == 0 || reply.Usage.TotalTokens != reply.Usage.PromptTokens+reply.Usage.CompletionTokens {
		t.Fatalf("unexpected usage: %+v", reply.Usage)
	}
	chatCall := h.lastCall(a)
	if chatCall.Front != "openai" || chatCall.Outcome != "ok" {
		t.Fatalf("unexpected record of the chat call: %+v", chatCall)
	}
	if chatCall.InputTokens != reply.Usage.PromptTokens || chatCall.OutputTokens != reply.Usage.CompletionTokens {
		t.Fatalf("the usage the client saw (%+v) is not the one charged (%+v)", reply.Usage, chatCall)
	}

	// The same conversation through /v1/messages costs the same.
	_, _, native := h.streamCall(a, messagesBody(prompt, 100, true))
	if native.Front != "anthropic" || native.InputTokens != chatCall.InputTokens || native.OutputTokens != chatCall.OutputTokens || native.Charged != chatCall.Charged {
		t.Fatalf("the chat call cost %s for %d/%d tokens, the Messages call %s for %d/%d", chatCall.Charged,
			chatCall.InputTokens, chatCall.OutputTokens, native.Charged, native.InputTokens, native.OutputTokens)
	}

	params := chatParams(prompt, 100)
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streamed chat completion: %s", err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != reply.Choices[0].Message.Content || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("the stream read %+v; the plain call %q", acc.Choices, reply.Choices[0].Message.Content)
	}
	if acc.Usage.PromptTokens != reply.Usage.PromptTokens || acc.Usage.CompletionTokens != reply.Usage.CompletionTokens {
		t.Fatalf("unexpected streamed usage %+v; want %+v", acc.Usage, reply.Usage)
	}
	if streamed := h.lastCall(a); streamed.Front != "openai" || streamed.Charged != chatCall.Charged {
		t.Fatalf("unexpected record of the streamed chat call: %+v", streamed)
	}
}

// TestChatCompletionsToolsImagesSchema: a tool call streamed in argument
// fragments is put together by the SDK, its result goes back as a tool
// message, an image and a JSON schema response format are accepted.
func TestChatCompletionsToolsImagesSchema(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	client := h.chatClient(a.Key)
	ctx := context.Background()

	params := chatParams("what is the weather in Paris [[sim:tool_use]]", 200)
	params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}},
	})}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streamed tool call: %s", err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].FinishReason != "tool_calls" || len(acc.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("unexpected tool call reply: %+v", acc.Choices)
	}
	call := acc.Choices[0].Message.ToolCalls[0]
	if call.Function.Name != "get_weather" || !strings.HasPrefix(call.Function.Arguments, `{"query"`) || call.ID == "" {
		t.Fatalf("unexpected tool call: %+v", call)
	}
	params.Messages = append(params.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage("sunny, 21 degrees", call.ID))
	params.Messages[0] = openai.UserMessage("what is the weather in Paris")
	if reply, err := client.Chat.Completions.New(ctx, params); err != nil || reply.Choices[0].FinishReason != "stop" {
		t.Fatalf("unexpected answer to the tool result: %v %+v", err, reply)
	}

	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
	image := chatParams("", 50)
	image.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("what is in this picture"),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: png}),
	})}
	if _, err := client.Chat.Completions.New(ctx, image); err != nil {
		t.Fatalf("chat completion with an image: %s", err)
	}

	schema := chatParams("give me a city as JSON", 50)
	schema.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "city", Schema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}},
	}}
	if _, err := client.Chat.Completions.New(ctx, schema); err != nil {
		t.Fatalf("chat completion with a JSON schema: %s", err)
	}
	for _, c := range h.accountCalls(a.ID) {
		if c.Front != "openai" || c.Outcome != "ok" {
			t.Fatalf("unexpected call record: %+v", c)
		}
	}
}

// TestChatCompletionsErrors: the gateway's refusals reach the SDK as its
// typed errors, with OpenAI's error shape and the contract's statuses; a
// parameter the translation cannot express is named.
func TestChatCompletionsErrors(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	poor := h.newAccount("0.000001")
	_, limited := h.mintKey(a.ID, map[string]any{"rpm": 1})
	ctx := context.Background()
	check := func(name string, err error, status int, typ, param string) {
		t.Helper()
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: unexpected error %v; want an *openai.Error", name, err)
		}
		if apiErr.StatusCode != status || apiErr.Type != typ || (param != "" && apiErr.Param != param) {
			t.Fatalf("%s: unexpected error %d %q %q %q; want %d %q param %q", name, apiErr.StatusCode, apiErr.Type, apiErr.Param, apiErr.Message, status, typ, param)
		}
	}
	wrong, poorClient, client := h.chatClient("tg-wrong"), h.chatClient(poor.Key), h.chatClient(a.Key)
	_, err := wrong.Chat.Completions.New(ctx, chatParams("hello", 10))
	check("bad key", err, http.StatusUnauthorized, "authentication_error", "")
	_, err = poorClient.Chat.Completions.New(ctx, chatParams("hello "+strings.Repeat("word ", 200), 1000))
	check("poor account", err, http.StatusPaymentRequired, "billing_error", "")
	unknown := chatParams("hello", 10)
	unknown.Model = "gpt-4o"
	_, err = client.Chat.Completions.New(ctx, unknown)
	check("unknown model", err, http.StatusNotFound, "not_found_error", "")
	two := chatParams("hello", 10)
	two.N = openai.Int(2)
	_, err = client.Chat.Completions.New(ctx, two)
	check("n=2", err, http.StatusBadRequest, "invalid_request_error", "n")

	limitedClient := h.chatClient(limited)
	if _, err := limitedClient.Chat.Completions.New(ctx, chatParams("hello", 10)); err != nil {
		t.Fatalf("first call within the key's limit: %s", err)
	}
	_, err = limitedClient.Chat.Completions.New(ctx, chatParams("hello", 10))
	check("rate limited", err, http.StatusTooManyRequests, "rate_limit_error", "")
	var apiErr *openai.Error
	errors.As(err, &apiErr)
	if apiErr.Response.Header.Get("retry-after") == "" {
		t.Fatalf("a rate-limited chat call has no retry-after")
	}
}
