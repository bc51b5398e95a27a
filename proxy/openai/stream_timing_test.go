package openai

import (
	"os"
	"testing"

	"github.com/tollgate/tollgate/meter"
)

// The stream benchmarks feed a real stream (text, thinking and two tool
// calls) in 512-byte reads, as the gateway's reads arrive. The baseline is
// the meter reading the same bytes, which every call pays anyway.

func benchStream(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/streams/parallel_tools.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	return data
}

func BenchmarkStream(b *testing.B) {
	data := benchStream(b)
	b.RunParallel(func(pb *testing.PB) {
		var s Stream
		var out []byte
		for pb.Next() {
			s.Reset(streamOpts, created)
			out = out[:0]
			for rest := data; len(rest) > 0; {
				n := min(512, len(rest))
				out = s.Append(out, rest[:n])
				rest = rest[n:]
			}
		}
	})
}

func BenchmarkStreamBaselineMeter(b *testing.B) {
	data := benchStream(b)
	b.RunParallel(func(pb *testing.PB) {
		var o meter.Observer
		for pb.Next() {
			o.Reset(0)
			for rest := data; len(rest) > 0; {
				n := min(512, len(rest))
				o.Write(rest[:n])
				rest = rest[n:]
			}
		}
	})
}
