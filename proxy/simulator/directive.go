package simulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Directive markers: a directive is directiveOpen, a comma-separated list of
// key or key=value items, and directiveClose, e.g. "[[sim:words=5,delay=10ms]]".
const (
	directiveOpen  = "[[sim:"
	directiveClose = "]]"
)

// Limits on directive values: each bounds work or memory one request can ask for.
const (
	// MaxWords is the largest words=N (and thinking=N) a directive may ask for.
	MaxWords = 100_000
	// maxChunkWords bounds chunk=N (words per text or thinking delta).
	maxChunkWords = 10_000
	// maxTokenCount bounds input=N, cache_write=N and cache_read=N.
	maxTokenCount = 100_000_000
	// MaxWebSearches is the largest web_search=N a directive may ask for.
	MaxWebSearches = 100
	// maxFaultDeltas bounds error_after, hang_after, truncate_after and garbage_after.
	maxFaultDeltas = 10_000_000
	// maxRetryAfterSeconds bounds retry_after=N.
	maxRetryAfterSeconds = 86_400
	// maxDirectives bounds how many [[sim:...]] tokens one request may carry.
	maxDirectives = 64
	// maxDirectiveLen bounds the length of one directive's text.
	maxDirectiveLen = 4096
	// defaultThinkingWords is the length of a thinking block asked for without a count.
	defaultThinkingWords = 8
)

// fault is a mid-stream failure a directive asks for.
type fault uint8

const (
	faultNone     fault = iota
	faultError          // error_after=N: event: error, then the stream ends
	faultHang           // hang_after=N: silence with the connection open
	faultTruncate       // truncate_after=N: the connection is closed mid-stream
	faultGarbage        // garbage_after=N: non-SSE bytes, then the stream ends
)

// splitOdd is directives.split's value for split=odd.
const splitOdd = -1

// directives is the parsed form of every [[sim:...]] token of one request.
// The zero value asks for nothing; has* fields tell "given" from "zero".
type directives struct {
	delay    time.Duration // delay=D: between events
	hasDelay bool
	ttfb     time.Duration // ttfb=D: before the response headers

	words    int // words=N: reply length
	hasWords bool
	chunk    int // chunk=N: words per text/thinking delta; 0 means 1

	input    int64 // input=N: replaces the word count of the input
	hasInput bool

	cache1h    bool  // cache=1h: cache writes are 1-hour writes (else 5-minute)
	cacheWrite int64 // cache_write=N
	cacheRead  int64 // cache_read=N

	toolUse  bool   // tool_use[=NAME]
	toolName string // NAME, or "" for the request's first tool

	thinkingWords int  // thinking[=N] / redacted_thinking[=N]: 0 means no thinking block
	redacted      bool // redacted_thinking

	webSearches int // web_search=N

	status        int // status=NNN: answer with this error status before any stream
	retryAfter    int // retry_after=N seconds
	hasRetryAfter bool
	errorType     string // error_type=T: overrides the error type of status, error_after, json_error_200
	message       string // message=M: overrides the error message of those

	fault      fault // error_after / hang_after / truncate_after / garbage_after
	faultAfter int   // their N: content deltas before the fault

	hangHeaders  bool // hang=headers
	garbage      bool // garbage
	jsonError200 bool // json_error_200
	split        int  // split=odd (splitOdd) or split=N (bytes); 0 means whole events
	oldUsage     bool // old_usage
	padded       bool // padded
}

// errDirective builds the 400 message of a bad directive; it names the
// directive syntax so a typo is easy to find.
func errDirective(format string, args ...any) error {
	return fmt.Errorf("sim directive: "+format, args...)
}

// parseDirectives parses every [[sim:...]] token in text into d. Later items
// override earlier ones. An unterminated token, an unknown key or a bad value
// is an error, so typos fail loudly.
func parseDirectives(d *directives, text string, count *int) error {
	for {
		i := strings.Index(text, directiveOpen)
		if i < 0 {
			return nil
		}
		text = text[i+len(directiveOpen):]
		j := strings.Index(text, directiveClose)
		if j < 0 {
			return errDirective("unterminated %q: want %q", directiveOpen, directiveOpen+"key=value,...]]")
		}
		if j > maxDirectiveLen {
			return errDirective("directive longer than %d bytes", maxDirectiveLen)
		}
		*count++
		if *count > maxDirectives {
			return errDirective("more than %d directives", maxDirectives)
		}
		for item := range strings.SplitSeq(text[:j], ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			key, value, hasValue := strings.Cut(item, "=")
			key = strings.TrimSpace(key)
			value = strings.TrimSpace(value)
			if err := d.set(key, value, hasValue); err != nil {
				return err
			}
		}
		text = text[j+len(directiveClose):]
	}
}

// stripDirectives returns text without its [[sim:...]] tokens. An
// unterminated token is left in place (parseDirectives rejects it anyway).
func stripDirectives(text string) string {
	if !strings.Contains(text, directiveOpen) {
		return text
	}
	var b strings.Builder
	for {
		i := strings.Index(text, directiveOpen)
		if i < 0 {
			break
		}
		j := strings.Index(text[i:], directiveClose)
		if j < 0 {
			break
		}
		b.WriteString(text[:i])
		b.WriteByte(' ')
		text = text[i+j+len(directiveClose):]
	}
	b.WriteString(text)
	return b.String()
}

// set applies one key[=value] item.
func (d *directives) set(key, value string, hasValue bool) error {
	apply, ok := setters[key]
	if !ok {
		return errDirective("unknown key %q", key)
	}
	return apply(d, key, value, hasValue)
}

// setter applies one directive item, key[=value], to d.
type setter func(d *directives, key, value string, hasValue bool) error

// setters holds the setter of every directive key (see the package comment
// for what each asks for).
var setters = map[string]setter{
	"delay": func(d *directives, key, value string, hasValue bool) (err error) {
		d.delay, err = durationValue(key, value, hasValue)
		d.hasDelay = true
		return err
	},
	"ttfb": func(d *directives, key, value string, hasValue bool) (err error) {
		d.ttfb, err = durationValue(key, value, hasValue)
		return err
	},
	"words":       intSetter(0, MaxWords, func(d *directives, n int) { d.words, d.hasWords = n, true }),
	"chunk":       intSetter(1, maxChunkWords, func(d *directives, n int) { d.chunk = n }),
	"input":       intSetter(0, maxTokenCount, func(d *directives, n int) { d.input, d.hasInput = int64(n), true }),
	"cache":       setCache,
	"cache_write": intSetter(0, maxTokenCount, func(d *directives, n int) { d.cacheWrite = int64(n) }),
	"cache_read":  intSetter(0, maxTokenCount, func(d *directives, n int) { d.cacheRead = int64(n) }),
	"tool_use": func(d *directives, _, value string, hasValue bool) error {
		d.toolUse, d.toolName = true, value
		if hasValue && value == "" {
			return errDirective("tool_use= needs a tool name, or no '='")
		}
		return nil
	},
	"thinking":          setThinking,
	"redacted_thinking": setThinking,
	"web_search":        intSetter(1, MaxWebSearches, func(d *directives, n int) { d.webSearches = n }),

	"status":      intSetter(400, 599, func(d *directives, n int) { d.status = n }),
	"retry_after": intSetter(0, maxRetryAfterSeconds, func(d *directives, n int) { d.retryAfter, d.hasRetryAfter = n, true }),
	"error_type": func(d *directives, _, value string, _ bool) error {
		d.errorType = value
		if value == "" || strings.ContainsAny(value, " \"\\") {
			return errDirective("error_type=%q: want a word such as api_error", value)
		}
		return nil
	},
	"message": func(d *directives, _, value string, _ bool) error {
		d.message = value
		if value == "" {
			return errDirective("message= needs a text")
		}
		return nil
	},
	"error_after":    faultSetter(faultError),
	"hang_after":     faultSetter(faultHang),
	"truncate_after": faultSetter(faultTruncate),
	"garbage_after":  faultSetter(faultGarbage),
	"hang": func(d *directives, _, value string, _ bool) error {
		d.hangHeaders = true
		if value != "headers" {
			return errDirective("hang=%q: want hang=headers (or hang_after=N)", value)
		}
		return nil
	},
	"split": setSplit,

	"garbage":        flagSetter(func(d *directives) *bool { return &d.garbage }),
	"json_error_200": flagSetter(func(d *directives) *bool { return &d.jsonError200 }),
	"old_usage":      flagSetter(func(d *directives) *bool { return &d.oldUsage }),
	"padded":         flagSetter(func(d *directives) *bool { return &d.padded }),
}

// intSetter returns the setter of a key=N directive, N from lo to hi, that
// stores N with store.
func intSetter(lo, hi int, store func(d *directives, n int)) setter {
	return func(d *directives, key, value string, hasValue bool) error {
		n, err := intValue(key, value, hasValue, lo, hi)
		store(d, n)
		return err
	}
}

// flagSetter returns the setter of a directive without a value that sets
// the flag field returns.
func flagSetter(field func(d *directives) *bool) setter {
	return func(d *directives, key, _ string, hasValue bool) error {
		return flagValue(key, hasValue, field(d))
	}
}

// faultSetter returns the setter of a mid-stream fault's key=N.
func faultSetter(f fault) setter {
	return func(d *directives, key, value string, hasValue bool) error {
		return d.setFault(f, key, value, hasValue)
	}
}

// setCache applies cache=5m|1h.
func setCache(d *directives, _, value string, _ bool) error {
	switch value {
	case "5m":
		d.cache1h = false
	case "1h":
		d.cache1h = true
	default:
		return errDirective("cache=%q: want cache=5m or cache=1h", value)
	}
	return nil
}

// setThinking applies thinking[=N] and redacted_thinking[=N].
func setThinking(d *directives, key, value string, hasValue bool) (err error) {
	d.thinkingWords = defaultThinkingWords
	if hasValue {
		d.thinkingWords, err = intValue(key, value, hasValue, 1, MaxWords)
	}
	d.redacted = key == "redacted_thinking"
	return err
}

// setSplit applies split=odd and split=N.
func setSplit(d *directives, key, value string, hasValue bool) error {
	if value == "odd" {
		d.split = splitOdd
		return nil
	}
	var err error
	if d.split, err = intValue(key, value, hasValue, 1, 1<<20); err != nil {
		return errDirective("split=%q: want split=odd or split=N bytes", value)
	}
	return nil
}

// setFault records a mid-stream fault; two different faults in one request are an error.
func (d *directives) setFault(f fault, key, value string, hasValue bool) error {
	if d.fault != faultNone && d.fault != f {
		return errDirective("%s conflicts with another *_after directive: give one", key)
	}
	n, err := intValue(key, value, hasValue, 0, maxFaultDeltas)
	d.fault, d.faultAfter = f, n
	return err
}

func flagValue(key string, hasValue bool, dst *bool) error {
	if hasValue {
		return errDirective("%s takes no value", key)
	}
	*dst = true
	return nil
}

func intValue(key, value string, hasValue bool, lo, hi int) (int, error) {
	if !hasValue {
		return 0, errDirective("%s needs a value: %s=N", key, key)
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		return 0, errDirective("%s=%q: want an integer from %d to %d", key, value, lo, hi)
	}
	return n, nil
}

func durationValue(key, value string, hasValue bool) (time.Duration, error) {
	if !hasValue {
		return 0, errDirective("%s needs a value: %s=10ms", key, key)
	}
	v, err := time.ParseDuration(value)
	if err != nil || v < 0 {
		return 0, errDirective("%s=%q: want a non-negative Go duration such as 10ms", key, value)
	}
	return v, nil
}
