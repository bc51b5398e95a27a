package proxy

import (
	"net"
	"syscall"
)

// clientProbe tells whether a client already closed its connection, by
// peeking at the socket without blocking and without consuming anything (a
// pipelined next request stays where it is). A reply whose end arrives
// before anything was written to the client uses it to record a client that
// left while the upstream was working as client_disconnected; writing the
// reply would not tell, since the kernel accepts the first write to a
// half-closed socket. A call keeps one, so the peek's callback is made once
// per pooled call rather than per use (one allocation remains: the raw
// connection net hands out).
type clientProbe struct {
	gone  bool
	buf   [1]byte
	check func(fd uintptr) bool
}

// clientGone reports whether the client of conn has gone.
func (p *clientProbe) clientGone(conn net.Conn) bool {
	// Wrappers (TLS, the per-address bound) give their socket back.
	for {
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = w.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	if p.check == nil {
		p.check = p.peek
	}
	p.gone = false
	_ = rc.Read(p.check)
	return p.gone
}

// peek is the raw read callback: 0 bytes means the client closed (FIN);
// ECONNRESET and the like, that it reset; EAGAIN, that it is still there.
func (p *clientProbe) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.gone = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
	return true
}
