package proxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// TestSDKRetries: the official Go SDK retries 429 and 529 answers passed on by
// the gateway, honouring retry-after; every attempt is its own call record
// with outcome upstream_error and nothing charged, and a retry that succeeds
// is billed once.
func TestSDKRetries(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	client := h.sdkClient(a.Key, option.WithMaxRetries(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		directive string
		status    int
		minWait   time.Duration
	}{
		{"[[sim:status=429,retry_after=1]]", 429, 2 * time.Second},
		{"[[sim:status=529]]", 529, 0},
	} {
		before := len(h.accountCalls(a.ID))
		start := time.Now()
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{
			Model:     "claude-haiku-4-5",
			MaxTokens: 50,
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi " + tc.directive))},
		})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
			t.Fatalf("%s: unexpected error %v; want status %d", tc.directive, err, tc.status)
		}
		if waited := time.Since(start); waited < tc.minWait {
			t.Fatalf("%s: the SDK retried after %s, not honouring retry-after", tc.directive, waited)
		}
		calls := h.accountCalls(a.ID)
		if got := len(calls) - before; got != 3 {
			t.Fatalf("%s: unexpected attempts; got %d call records; want 3 (1 + 2 retries)", tc.directive, got)
		}
		for _, c := range calls[:3] {
			if c.Outcome != "upstream_error" || c.Status != tc.status || c.Charged != "0" {
				t.Fatalf("%s: unexpected record of a refused attempt: %+v", tc.directive, c)
			}
		}
	}
	if b := h.balance(a); b.Available != 10_000_000_000 {
		t.Fatalf("refused attempts were charged: %+v", b)
	}
}
