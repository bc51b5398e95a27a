package proxy

import (
	"net"
	"syscall"
)

// clientGone reports whether the client already closed its connection, by
// peeking at the socket without blocking and without consuming anything (a
// pipelined next request stays where it is). A non-streaming reply uses it to
// record a client that left while the upstream was working as
// client_disconnected; writing the reply would not tell, since the kernel
// accepts the first write to a half-closed socket.
func clientGone(conn net.Conn) bool {
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
	gone := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// 0 bytes: the client closed (FIN); ECONNRESET and the like: it
		// reset; EAGAIN: nothing to read, so still there.
		gone = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		return true
	})
	return gone
}
