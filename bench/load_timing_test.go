package bench

import (
	"context"
	"testing"
)

// BenchmarkDirect measures the load generator against the built-in
// upstream in one process: the ceiling a gateway run can reach on this
// machine. b.N calls at concurrency 64.
func BenchmarkDirect(b *testing.B) {
	up, err := StartUpstream(UpstreamConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	b.ReportAllocs()
	b.SetBytes(int64(up.ReplyBytes()))
	b.ResetTimer()
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Requests: int64(b.N), Concurrency: 64})
	if err != nil {
		b.Fatal(err)
	}
	if r.OK != int64(b.N) {
		b.Fatalf("unexpected ok calls; got %d; want %d (errors %v)", r.OK, b.N, r.Errors)
	}
	b.ReportMetric(r.RequestsPerSec, "calls/s")
	b.ReportMetric(r.ClientCPUMsPerCall, "cpu-ms/call")
}
