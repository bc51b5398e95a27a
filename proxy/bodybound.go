package proxy

import (
	"errors"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// Request bodies in flight are bounded gateway-wide (Config.
// MaxBodyBytesInFlight): many concurrent large uploads could otherwise take
// the process's memory, since each is read whole before it is inspected. A
// call reserves its Content-Length (or a first step when the body is
// chunked) before it reads anything, grows the reservation as a chunked body
// outgrows it, and gives it back once the body has been sent upstream.

// bodyReadStep is the first reservation of a body of unknown length, and the
// least it grows by.
const bodyReadStep = 64 << 10

var (
	errBodyBytesInFlight = errors.New("proxy: request-body bytes in flight exceed the gateway's bound")
	bodyBytesRefused     = metrics.NewCounter(`tollgate_body_bytes_refusals_total`)
)

// reserveBody reserves what c's request body will need: its Content-Length,
// or a first step when the length is unknown (chunked).
func (g *Gateway) reserveBody(c *call, contentLength int) bool {
	n := int64(bodyReadStep)
	if contentLength >= 0 {
		n = int64(contentLength) + 1 // +1: the read that sees the end
	}
	return g.growBodySlot(c, n)
}

// growBodySlot raises c's reservation to n bytes, if the bound allows.
func (g *Gateway) growBodySlot(c *call, n int64) bool {
	d := n - c.bodySlot
	if d <= 0 {
		return true
	}
	if g.bodyBytes.Add(d) > g.cfg.MaxBodyBytesInFlight {
		g.bodyBytes.Add(-d)
		bodyBytesRefused.Inc()
		return false
	}
	c.bodySlot = n
	return true
}

// releaseBodySlot gives c's reservation back.
func (g *Gateway) releaseBodySlot(c *call) {
	if c.bodySlot > 0 {
		g.bodyBytes.Add(-c.bodySlot)
		c.bodySlot = 0
	}
}

// bodyBytesRefusal is the 503 of a body the bound has no room for.
func (g *Gateway) bodyBytesRefusal(ctx *fasthttp.RequestCtx) refusal {
	ctx.Response.Header.Set("retry-after", strconv.Itoa(1))
	return refuse(fasthttp.StatusServiceUnavailable, views.OverloadedError, "the gateway is receiving too many request bodies at once; try again shortly")
}

// nextBodyCapacity is the capacity to grow a request-body buffer of capacity
// have to: the declared length (plus one byte, to read the end), or double,
// at least bodyReadStep, never beyond one byte over the limit.
func nextBodyCapacity(have, contentLength, limit int) int {
	want := max(2*have, have+bodyReadStep)
	if contentLength >= have {
		want = contentLength + 1
	}
	return min(want, limit+1)
}
