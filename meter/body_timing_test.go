package meter

import (
	"encoding/json"
	"strconv"
	"testing"
)

func benchMessage(textBytes int) []byte {
	return []byte(`{"id":"msg_014aLUQSouuj3wj2qP3ThkWw","type":"message","role":"assistant","model":"claude-opus-4-5-20251101","content":[{"type":"text","text":` +
		strconv.Quote(textOf(englishParagraph, textBytes)) + `}],"stop_reason":"end_turn","stop_sequence":null,` +
		`"usage":{"input_tokens":3,"cache_creation_input_tokens":22175,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":22175,"ephemeral_1h_input_tokens":0},"output_tokens":612,"service_tier":"standard","inference_geo":"not_available"}}`)
}

func BenchmarkObserveMessage(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KB", 700}, {"100KB", 100 << 10}} {
		body := benchMessage(size.bytes)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var o Observer
			for b.Loop() {
				o.Reset(0)
				if err := o.ObserveMessage(body); err != nil || o.Result().Usage.OutputTokens != 612 {
					b.Fatalf("unexpected result %+v, %v", o.Result().Usage, err)
				}
			}
		})
		// Baseline: encoding/json into the one field needed.
		b.Run(size.name+"-encoding-json", func(b *testing.B) {
			var m struct {
				Usage struct {
					OutputTokens int64 `json:"output_tokens"`
				} `json:"usage"`
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := json.Unmarshal(body, &m); err != nil || m.Usage.OutputTokens != 612 {
					b.Fatalf("unexpected result %+v, %v", m, err)
				}
			}
		})
	}
}
