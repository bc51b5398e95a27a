package meter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkObserver feeds the 200-event stream whole, in network-sized
// chunks and one event per Write (how an SSE upstream usually arrives).
func BenchmarkObserver(b *testing.B) {
	data := stream200()
	events := bytes.SplitAfter(data, []byte("\n\n"))
	run := func(b *testing.B, feed func(o *Observer)) {
		var o Observer
		o.Reset(0)
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			o.Reset(0)
			feed(&o)
			if o.Result().Events != 200 {
				b.Fatalf("unexpected event count %d", o.Result().Events)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/event")
	}
	b.Run("whole", func(b *testing.B) { run(b, func(o *Observer) { o.Write(data) }) })
	b.Run("chunks-1KiB", func(b *testing.B) {
		run(b, func(o *Observer) {
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1024)
				o.Write(rest[:n])
				rest = rest[n:]
			}
		})
	})
	b.Run("per-event", func(b *testing.B) {
		run(b, func(o *Observer) {
			for _, ev := range events {
				o.Write(ev)
			}
		})
	})
}

// BenchmarkObserverBaseline is the naive alternative the Observer replaces:
// bufio.Scanner lines and encoding/json into structs for every event.
func BenchmarkObserverBaseline(b *testing.B) {
	data := stream200()
	type usage struct {
		InputTokens  *int64 `json:"input_tokens"`
		OutputTokens *int64 `json:"output_tokens"`
	}
	type event struct {
		Type    string `json:"type"`
		Message *struct {
			Model string `json:"model"`
			Usage usage  `json:"usage"`
		} `json:"message"`
		Usage *usage `json:"usage"`
		Delta *struct {
			Text string `json:"text"`
		} `json:"delta"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sc := bufio.NewScanner(bytes.NewReader(data))
		n := 0
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.HasPrefix(line, []byte("data: ")) {
				continue
			}
			var ev event
			if err := json.Unmarshal(line[6:], &ev); err != nil {
				b.Fatalf("cannot decode: %s", err)
			}
			n++
		}
		if n != 200 {
			b.Fatalf("unexpected event count %d", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/event")
}

func BenchmarkObserverWriteEvent(b *testing.B) {
	var datas [][]byte
	for _, ev := range bytes.SplitAfter(stream200(), []byte("\n\n")) {
		if i := bytes.Index(ev, []byte("data: ")); i >= 0 {
			datas = append(datas, bytes.TrimSpace(ev[i+6:]))
		}
	}
	var o Observer
	b.ReportAllocs()
	for b.Loop() {
		o.Reset(0)
		for _, d := range datas {
			o.WriteEvent(d)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(datas)), "ns/event")
}
