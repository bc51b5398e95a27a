package simulator

import (
	"strings"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	f := func(text string, want directives) {
		t.Helper()
		var got directives
		n := 0
		if err := parseDirectives(&got, text, &n); err != nil {
			t.Fatalf("unexpected error for %q: %s", text, err)
		}
		if got != want {
			t.Fatalf("unexpected directives for %q;\ngot  %+v\nwant %+v", text, got, want)
		}
	}
	f("no directive here", directives{})
	f("[[sim:]]", directives{})
	f("a [[sim:words=5]] b", directives{words: 5, hasWords: true})
	f("[[sim: words = 5 , delay = 10ms ]]", directives{words: 5, hasWords: true, delay: 10 * time.Millisecond, hasDelay: true})
	f("[[sim:words=5]] and [[sim:words=7]]", directives{words: 7, hasWords: true})
	f("[[sim:delay=0s,ttfb=1s]]", directives{hasDelay: true, ttfb: time.Second})
	f("[[sim:chunk=3,input=1000]]", directives{chunk: 3, input: 1000, hasInput: true})
	f("[[sim:cache=1h,cache_write=100,cache_read=50]]", directives{cache1h: true, cacheWrite: 100, cacheRead: 50})
	f("[[sim:cache=5m,cache_write=100]]", directives{cacheWrite: 100})
	f("[[sim:tool_use]]", directives{toolUse: true})
	f("[[sim:tool_use=lookup]]", directives{toolUse: true, toolName: "lookup"})
	f("[[sim:thinking]]", directives{thinkingWords: defaultThinkingWords})
	f("[[sim:thinking=3]]", directives{thinkingWords: 3})
	f("[[sim:redacted_thinking]]", directives{thinkingWords: defaultThinkingWords, redacted: true})
	f("[[sim:web_search=2]]", directives{webSearches: 2})
	f("[[sim:status=529,retry_after=3]]", directives{status: 529, retryAfter: 3, hasRetryAfter: true})
	f("[[sim:status=400,error_type=invalid_request_error,message=Your credit balance is too low]]",
		directives{status: 400, errorType: "invalid_request_error", message: "Your credit balance is too low"})
	f("[[sim:error_after=3]]", directives{fault: faultError, faultAfter: 3})
	f("[[sim:hang_after=0]]", directives{fault: faultHang})
	f("[[sim:truncate_after=2]]", directives{fault: faultTruncate, faultAfter: 2})
	f("[[sim:garbage_after=1]]", directives{fault: faultGarbage, faultAfter: 1})
	f("[[sim:error_after=1,error_after=2]]", directives{fault: faultError, faultAfter: 2})
	f("[[sim:hang=headers]]", directives{hangHeaders: true})
	f("[[sim:garbage,json_error_200,old_usage,padded]]", directives{garbage: true, jsonError200: true, oldUsage: true, padded: true})
	f("[[sim:split=odd]]", directives{split: splitOdd})
	f("[[sim:split=4]]", directives{split: 4})
}

func TestParseDirectivesError(t *testing.T) {
	f := func(text, wantSubstr string) {
		t.Helper()
		var d directives
		n := 0
		err := parseDirectives(&d, text, &n)
		if err == nil {
			t.Fatalf("expecting an error for %q", text)
		}
		if !strings.Contains(err.Error(), wantSubstr) {
			t.Fatalf("unexpected error for %q; got %q; want it to contain %q", text, err, wantSubstr)
		}
	}
	f("[[sim:wrods=5]]", `unknown key "wrods"`)
	f("[[sim:words=5", "unterminated")
	f("[[sim:words]]", "needs a value")
	f("[[sim:words=-1]]", "want an integer")
	f("[[sim:words=abc]]", "want an integer")
	f("[[sim:words=100001]]", "want an integer")
	f("[[sim:delay=fast]]", "Go duration")
	f("[[sim:delay=-1s]]", "Go duration")
	f("[[sim:cache=2h]]", "cache=5m or cache=1h")
	f("[[sim:status=200]]", "from 400 to 599")
	f("[[sim:status=600]]", "from 400 to 599")
	f("[[sim:hang=body]]", "hang=headers")
	f("[[sim:split=even]]", "split=odd")
	f("[[sim:padded=true]]", "takes no value")
	f("[[sim:garbage=1]]", "takes no value")
	f("[[sim:error_after=1,truncate_after=2]]", "conflicts")
	f("[[sim:thinking=0]]", "want an integer")
	f("[[sim:web_search=0]]", "want an integer")
	f("[[sim:tool_use=]]", "tool name")
	f("[[sim:error_type=two words]]", "error_type")
	f("[[sim:message=]]", "needs a text")
	f(strings.Repeat("[[sim:]]", maxDirectives+1), "more than")
	f("[[sim:"+strings.Repeat("x", maxDirectiveLen+1)+"]]", "longer than")
}

func TestStripDirectives(t *testing.T) {
	f := func(text, want string) {
		t.Helper()
		if got := stripDirectives(text); got != want {
			t.Fatalf("unexpected stripDirectives(%q); got %q; want %q", text, got, want)
		}
	}
	f("plain", "plain")
	f("a [[sim:words=1]] b", "a   b")
	f("[[sim:x]]a[[sim:y]]b", " a b")
	f("a [[sim:open", "a [[sim:open")
}
