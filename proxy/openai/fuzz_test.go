package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// The fuzz targets check what must hold for any input, and that nothing
// panics. `go test` replays the seeds and the corpus in testdata/fuzz.

// FuzzTranslateRequest: a body is translated or refused with a
// *RequestError; a translation is valid UTF-8 JSON with a model, a
// max_tokens of at least 1 and at least one message, appended to dst.
func FuzzTranslateRequest(f *testing.F) {
	for _, c := range requestCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, opts, err := TranslateRequest([]byte("dst"), body, 1024)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("unexpected error for %q: %v; want a *RequestError with a message", body, err)
			}
			if string(out) != "dst" {
				t.Fatalf("unexpected output %q with an error; want dst unchanged", out)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("dst")) {
			t.Fatalf("unexpected output %q; want it appended to dst", out)
		}
		out = out[len("dst"):]
		var req struct {
			Model     string            `json:"model"`
			MaxTokens int64             `json:"max_tokens"`
			Messages  []json.RawMessage `json:"messages"`
		}
		if !utf8.Valid(out) || json.Unmarshal(out, &req) != nil {
			t.Fatalf("unexpected translation of %q: %q is not valid UTF-8 JSON", body, out)
		}
		if req.Model == "" || req.Model != opts.Model || req.MaxTokens < 1 || len(req.Messages) == 0 {
			t.Fatalf("unexpected translation of %q: %s (options %+v); want a model, max_tokens and messages", body, out, opts)
		}
	})
}

// FuzzStream: a Stream writes only complete `data: …\n\n` lines of JSON (or
// [DONE]), nothing after [DONE] or an error, and the same output however
// the input is split.
func FuzzStream(f *testing.F) {
	for _, fx := range streams(f) {
		f.Add(fx.data, uint16(len(fx.data)/2), true)
		f.Add(bytes.ReplaceAll(fx.data, []byte("\n"), []byte("\r")), uint16(len(fx.data)/3), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, usage bool) {
		opts := Options{Model: "m", Stream: true, IncludeUsage: usage}
		whole := translate(data, opts, len(data)+1)
		checkChunks(t, whole)
		at := int(split) % (len(data) + 1)
		var s Stream
		s.Reset(opts, created)
		got := s.Append(s.Append(nil, data[:at]), data[at:])
		if !bytes.Equal(got, whole) {
			t.Fatalf("unexpected output split at %d;\ngot  %q\nwant %q", at, got, whole)
		}
		if got := translate(data, opts, 1); !bytes.Equal(got, whole) {
			t.Fatalf("unexpected output fed byte by byte;\ngot  %q\nwant %q", got, whole)
		}
	})
}
