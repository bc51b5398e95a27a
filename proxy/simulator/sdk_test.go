package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// sdkClient starts a simulator that requires an upstream key and returns
// the official Go SDK pointed at it, and a function returning the body of
// the last request the simulator received.
func sdkClient(t *testing.T) (anthropic.Client, func() []byte) {
	t.Helper()
	// Keep the environment's Anthropic settings out of the SDK.
	for _, k := range []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_PROFILE"} {
		t.Setenv(k, "")
	}
	var mu sync.Mutex
	var last []byte
	_, url := startSim(t, Config{APIKey: "sk-sim-test", OnRequest: func(ri RequestInfo) {
		mu.Lock()
		last = ri.Body
		mu.Unlock()
	}})
	client := anthropic.NewClient(
		option.WithBaseURL(url),
		option.WithAPIKey("sk-sim-test"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newClient(t)),
	)
	return client, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func userParams(text string, maxTokens int64) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-haiku-4-5",
		MaxTokens: maxTokens,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

// TestSDKAccumulate checks that the official Go SDK accumulates every reply
// shape's stream into exactly the non-streamed message (but for the message
// ID), and that its usage is ExpectedUsage of the request the SDK sent.
func TestSDKAccumulate(t *testing.T) {
	client, lastBody := sdkClient(t)
	ctx := context.Background()
	f := func(text string, maxTokens int64) {
		t.Helper()
		params := userParams(text, maxTokens)
		stream := client.Messages.NewStreaming(ctx, params)
		var acc anthropic.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatalf("cannot accumulate for %q: %s", text, err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("unexpected stream error for %q: %s", text, err)
		}
		stream.Close()
		want, err := ExpectedUsage(lastBody())
		if err != nil {
			t.Fatalf("unexpected ExpectedUsage error: %s", err)
		}

		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("unexpected error for %q: %s", text, err)
		}
		if acc.ID == msg.ID || !strings.HasPrefix(acc.ID, "msg_sim_") {
			t.Fatalf("unexpected IDs %q and %q", acc.ID, msg.ID)
		}
		a, m := rawWithoutID(t, acc.RawJSON()), rawWithoutID(t, msg.RawJSON())
		if !reflect.DeepEqual(a, m) {
			ja, _ := json.Marshal(a)
			jm, _ := json.Marshal(m)
			t.Fatalf("accumulated message differs from the non-streamed one for %q;\nstream %s\nplain  %s", text, ja, jm)
		}
		if len(acc.Content) != len(msg.Content) || acc.StopReason != msg.StopReason || acc.Model != "claude-haiku-4-5-20251001" {
			t.Fatalf("unexpected accumulated fields for %q: %+v", text, acc)
		}
		for i := range acc.Content {
			if acc.Content[i].Type != msg.Content[i].Type || acc.Content[i].Text != msg.Content[i].Text ||
				acc.Content[i].Thinking != msg.Content[i].Thinking || string(acc.Content[i].Input) != string(msg.Content[i].Input) {
				t.Fatalf("block %d differs for %q: %+v; %+v", i, text, acc.Content[i], msg.Content[i])
			}
		}
		u := acc.Usage
		got := Usage{
			InputTokens:              u.InputTokens,
			CacheCreationInputTokens: u.CacheCreationInputTokens,
			CacheReadInputTokens:     u.CacheReadInputTokens,
			CacheCreation: CacheCreation{
				Ephemeral5mInputTokens: u.CacheCreation.Ephemeral5mInputTokens,
				Ephemeral1hInputTokens: u.CacheCreation.Ephemeral1hInputTokens,
			},
			OutputTokens:  u.OutputTokens,
			ServerToolUse: ServerToolUse{WebSearchRequests: u.ServerToolUse.WebSearchRequests},
			ServiceTier:   string(u.ServiceTier),
			InferenceGeo:  u.InferenceGeo,
		}
		if got != want {
			t.Fatalf("unexpected SDK usage for %q;\ngot  %+v\nwant %+v", text, got, want)
		}
	}
	f("Say hello twice", 100)
	f("Say hello twice [[sim:words=40,chunk=7]]", 1000)
	f("Say hello twice [[sim:words=40]]", 10)
	f("Think first [[sim:thinking=12]]", 100)
	f("Think first [[sim:redacted_thinking]]", 100)
	f("Look it up <now> & \"quoted\" [[sim:tool_use=lookup]]", 100)
	f("Search the web for cats [[sim:web_search=2]]", 100)
	f("Search the web for cats [[sim:web_search=2,thinking=3,tool_use]]", 100)
	f("Cached prompt [[sim:cache=1h,cache_write=3000,cache_read=9000]]", 100)
	f("Old shape [[sim:old_usage,web_search=1]]", 100)
	f("Padded fixture shape [[sim:padded,thinking=2,tool_use]]", 100)
	f("Split into pieces [[sim:split=odd,thinking=2,tool_use,words=30]]", 100)
	f("[[sim:words=0]]", 100)
}

// rawWithoutID decodes a message's wire JSON and drops its id.
func rawWithoutID(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("cannot decode %s: %s", raw, err)
	}
	delete(m, "id")
	return m
}

func TestSDKErrors(t *testing.T) {
	client, _ := sdkClient(t)
	ctx := context.Background()

	// error_after: the stream raises the in-stream error.
	stream := client.Messages.NewStreaming(ctx, userParams("one two three four [[sim:error_after=2]]", 100))
	var acc anthropic.Message
	events := 0
	for stream.Next() {
		events++
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatalf("cannot accumulate: %s", err)
		}
	}
	err := stream.Err()
	stream.Close()
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("unexpected stream error %v (%T); want *anthropic.Error", err, err)
	}
	if apiErr.Type() != "overloaded_error" || !strings.HasPrefix(apiErr.RequestID, "req_sim_") {
		t.Fatalf("unexpected API error type %q, request ID %q", apiErr.Type(), apiErr.RequestID)
	}
	if events != 4 || acc.Content[0].Text != "one two" || acc.Usage.OutputTokens != 1 {
		t.Fatalf("unexpected events before the error: %d, %+v", events, acc)
	}

	// status=529 before the stream, streaming and not.
	stream = client.Messages.NewStreaming(ctx, userParams("hi [[sim:status=529,retry_after=1]]", 100))
	for stream.Next() {
		t.Fatalf("unexpected event from a 529")
	}
	if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 529 || apiErr.Type() != "overloaded_error" {
		t.Fatalf("unexpected error %v", stream.Err())
	}
	stream.Close()
	_, err = client.Messages.New(ctx, userParams("hi [[sim:status=429]]", 100))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type() != "rate_limit_error" {
		t.Fatalf("unexpected error %v", err)
	}

	// truncate_after: the stream fails instead of ending quietly.
	stream = client.Messages.NewStreaming(ctx, userParams("one two three [[sim:truncate_after=1]]", 100))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatalf("expecting an error from a truncated stream")
	}
	stream.Close()

	// A wrong upstream key.
	_, err = client.Messages.New(ctx, userParams("hi", 100), option.WithAPIKey("sk-wrong"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Type() != "authentication_error" {
		t.Fatalf("unexpected error %v", err)
	}

	// hang_after with a client deadline: the SDK gives up.
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	stream = client.Messages.NewStreaming(tctx, userParams("one two three [[sim:hang_after=1]]", 100))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatalf("expecting an error from a hanging stream")
	}
	stream.Close()
}

func TestSDKCountTokens(t *testing.T) {
	client, lastBody := sdkClient(t)
	res, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "claude-haiku-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("How many tokens is this?"))},
	})
	if err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	// "user", "text" and five words.
	if res.InputTokens != 7 {
		t.Fatalf("unexpected input_tokens %d; want 7 for %s", res.InputTokens, lastBody())
	}
}
