package openai

import (
	"testing"

	"github.com/bytedance/sonic"
)

// benchBody is a tool round trip with a system prompt, an image URL and
// structured output: a typical agent's request.
var benchBody = []byte(`{"model":"claude-sonnet-4-6","max_completion_tokens":2048,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},{"role":"user","content":[{"type":"text","text":"What is the weather where this photo was taken?"},{"type":"image_url","image_url":{"url":"https://example.com/photo.jpg"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"18C, sunny"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city.","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}}}],"tool_choice":"auto","temperature":0.3,"user":"user-42"}`)

func BenchmarkTranslateRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		var out []byte
		for pb.Next() {
			var err error
			out, _, err = TranslateRequest(out[:0], benchBody, 1024)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTranslateRequestBaselineMaps is the generic translation doc.go
// rejects: decode into maps and encode again, translating nothing.
func BenchmarkTranslateRequestBaselineMaps(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var v map[string]any
			if err := sonic.Unmarshal(benchBody, &v); err != nil {
				b.Fatal(err)
			}
			if _, err := sonic.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
