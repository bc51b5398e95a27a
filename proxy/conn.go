package proxy

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// upstreamConn wraps a connection to an upstream so that a streamed body gets
// the deadlines the contract asks for, which fasthttp alone cannot give: a
// read deadline set before the response headers would also cut the body off
// at the same moment.
//
// Before the headers (the header phase), fasthttp sets the read deadline
// from the request's timeout, which the gateway sets to the first-byte
// timeout. Once the headers are in, the gateway switches the connection to
// the body phase (startBody): every Read then gets the deadline
// min(now + the between-events timeout, the call's total deadline). The next
// request on the pooled connection returns it to the header phase when
// fasthttp sets its deadline again.
//
// All of this happens on the goroutine that runs the call: fasthttp sets
// deadlines inside Do, and the body is read by the call, so there is no race.
type upstreamConn struct {
	net.Conn
	// addr is the LocalAddr fasthttp records in the Response (ParseNetConn);
	// it points back here, which is how the call finds its connection.
	addr  connAddr
	idle  time.Duration // 0: header phase
	total time.Time
}

// connAddr is a net.Addr that knows its upstreamConn.
type connAddr struct {
	net.Addr
	conn *upstreamConn
}

func newUpstreamConn(c net.Conn) *upstreamConn {
	uc := &upstreamConn{Conn: c}
	uc.addr = connAddr{Addr: c.LocalAddr(), conn: uc}
	return uc
}

func (c *upstreamConn) LocalAddr() net.Addr { return &c.addr }

// SetReadDeadline is fasthttp's header-phase deadline.
func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	c.idle = 0
	return c.Conn.SetReadDeadline(t)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		d := time.Now().Add(c.idle)
		if !c.total.IsZero() && c.total.Before(d) {
			d = c.total
		}
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// startBody switches the connection that served resp to the body phase.
// It reports false when resp did not come over an upstreamConn.
func startBody(resp *fasthttp.Response, idle time.Duration, total time.Time) bool {
	a, ok := resp.LocalAddr().(*connAddr)
	if !ok || idle <= 0 {
		return false
	}
	a.conn.idle, a.conn.total = idle, total
	return true
}
