package meter

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// benchRequest builds a realistic agentic request body of about size bytes:
// a cached system prompt, tools, and alternating turns of prose, code, tool
// calls and tool results.
func benchRequest(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":8192,"stream":true,"system":[{"type":"text","text":"You are a careful coding assistant.","cache_control":{"type":"ephemeral"}}],`)
	b.WriteString(`"tools":[{"name":"read_file","description":"Read a file from the repository","input_schema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}],"messages":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		switch i % 3 {
		case 0:
			b.WriteString(`{"role":"user","content":[{"type":"text","text":` + strconv.Quote(textOf(englishParagraph, 300)) + `}]}`)
		case 1:
			b.WriteString(`{"role":"assistant","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"toolu_` + strconv.Itoa(i) + `","name":"read_file","input":{"path":"ledger/shard.go"}}]}`)
		case 2:
			b.WriteString(`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_` + strconv.Itoa(i-1) + `","content":` + strconv.Quote(textOf(codeParagraph, 600)) + `}]}`)
		}
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkInspectRequest(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KB", 1 << 10}, {"100KB", 100 << 10}, {"2MB", 2 << 20}} {
		body := benchRequest(size.bytes)
		b.Run(size.name, func(b *testing.B) {
			var r Request
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := InspectRequest(body, &r); err != nil {
					b.Fatalf("unexpected error: %s", err)
				}
			}
		})
		// Baseline: encoding/json's validation alone, which any decoder pays.
		b.Run(size.name+"-json.Valid", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatalf("unexpected invalid body")
				}
			}
		})
	}
}

func TestBenchRequest(t *testing.T) {
	var r Request
	for _, size := range []int{1 << 10, 100 << 10, 2 << 20} {
		body := benchRequest(size)
		if err := InspectRequest(body, &r); err != nil {
			t.Fatalf("unexpected error for the %d-byte body: %s", size, err)
		}
		if len(body) < size*3/4 || len(body) > size*5/4 || r.Messages == 0 {
			t.Fatalf("unexpected body of %d bytes for %d: %+v", len(body), size, r)
		}
	}
}
