package proxy

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// perIPListener bounds the connections each client address holds open on
// the client listener (Config.MaxConnsPerIP), so that one address cannot
// take every connection the server accepts. Trusted proxies are exempt: a
// load balancer in front carries every client's connections. It replaces
// fasthttp's own MaxConnsPerIP, whose connection wrapper hides the socket
// that clientGone peeks at; this one's connections give it back (NetConn,
// like tls.Conn). With TLS it wraps the TLS listener, so that its refusal
// is an HTTPS answer.
type perIPListener struct {
	net.Listener
	max    int
	exempt []netip.Prefix
	mu     struct {
		sync.Mutex
		conns map[netip.Addr]int
	}
}

var perIPRefused = metrics.NewCounter(`tollgate_client_conns_per_ip_refusals_total`)

func newPerIPListener(ln net.Listener, max int, exempt []netip.Prefix) *perIPListener {
	l := &perIPListener{Listener: ln, max: max, exempt: exempt}
	l.mu.conns = map[netip.Addr]int{}
	return l
}

// Accept returns the next connection whose address is within its bound; a
// connection over it is answered 429 and closed.
func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteAddr(c)
		if isTrusted(ip, l.exempt) {
			return c, nil
		}
		l.mu.Lock()
		n := l.mu.conns[ip]
		if n >= l.max {
			l.mu.Unlock()
			perIPRefused.Inc()
			go refuseConn(c)
			continue
		}
		l.mu.conns[ip] = n + 1
		l.mu.Unlock()
		pc := perIPConn{Conn: c, l: l, ip: ip}
		if tc, ok := c.(*tls.Conn); ok {
			// Keep the TLS connection visible to fasthttp (RequestCtx.IsTLS).
			return &perIPTLSConn{Conn: tc, counted: &pc}, nil
		}
		return &pc, nil
	}
}

func (l *perIPListener) release(ip netip.Addr) {
	l.mu.Lock()
	if n := l.mu.conns[ip] - 1; n > 0 {
		l.mu.conns[ip] = n
	} else {
		delete(l.mu.conns, ip)
	}
	l.mu.Unlock()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// refusing bounds the refusals in flight (each holds a descriptor and a
// goroutine for up to a second): past it, connections over their bound are
// closed unanswered.
var refusing = make(chan struct{}, 256)

// refuseConn answers a connection over its address's bound with 429
// rate_limit_error in the contract's shape, with a request ID of its own,
// and closes it. On a TLS listener the connection is already the TLS one,
// so the answer goes out after the handshake (and the request).
func refuseConn(c net.Conn) {
	select {
	case refusing <- struct{}{}:
		defer func() { <-refusing }()
	default:
		c.Close()
		return
	}
	id := ids.AppendRequestID(nil)
	body := views.AppendError(nil, views.RateLimitError, "too many connections from this address", b2s(id))
	resp := make([]byte, 0, 256+len(body))
	resp = append(resp, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nrequest-id: "...)
	resp = append(resp, id...)
	resp = append(resp, "\r\nContent-Length: "...)
	resp = strconv.AppendInt(resp, int64(len(body)), 10)
	resp = append(append(resp, "\r\n\r\n"...), body...)
	// The request's first bytes are awaited (briefly) before the answer:
	// one sent before the request may be taken by an HTTP client for a
	// stray response on an idle connection and dropped. After it, the
	// write side is closed and what the client still sends is read away,
	// so closing does not reset the connection under the answer.
	var buf [4096]byte
	_ = c.SetDeadline(time.Now().Add(250 * time.Millisecond))
	_, _ = c.Read(buf[:])
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(resp); err == nil {
		if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			for n := 0; n < 64<<10; {
				m, err := c.Read(buf[:])
				if n += m; err != nil {
					break
				}
			}
		}
	}
	_ = c.Close()
}

// perIPConn is a connection counted against its address.
type perIPConn struct {
	net.Conn
	l      *perIPListener
	ip     netip.Addr
	closed atomic.Bool
}

func (c *perIPConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
	return c.Conn.Close()
}

// NetConn returns the underlying connection.
func (c *perIPConn) NetConn() net.Conn { return c.Conn }

// perIPTLSConn is a counted TLS connection: it is a *tls.Conn to fasthttp,
// and gives its count back when closed.
type perIPTLSConn struct {
	*tls.Conn
	counted *perIPConn
}

func (c *perIPTLSConn) Close() error { return c.counted.Close() }
