//go:build !race

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAllocationProxiedCall asserts that a whole proxied streaming call costs
// the gateway at most 2 allocations: the calls' allocations through the
// gateway minus the same client's calls straight to the upstream (which
// measures the client and the upstream themselves). The ledger is in memory
// here; the WAL's allocations happen per group commit, not per call, and are
// measured by the request-path benchmark.
func TestAllocationProxiedCall(t *testing.T) {
	f := newPathFixture(t, false)
	var req fasthttp.Request
	var resp fasthttp.Response
	measure := func(hc *fasthttp.HostClient) float64 {
		for range 50 { // warm pools and connections
			f.call(t, hc, &req, &resp)
			req.Reset()
			resp.Reset()
		}
		return testing.AllocsPerRun(500, func() {
			f.call(t, hc, &req, &resp)
			req.Reset()
			resp.Reset()
		})
	}
	direct := measure(f.direct)
	through := measure(f.client)
	if through-direct > 2 {
		t.Fatalf("unexpected allocations per proxied call; got %v (through the gateway %v, direct %v); want at most 2", through-direct, through, direct)
	}
	t.Logf("allocations per call: %v through the gateway, %v direct", through, direct)
}
