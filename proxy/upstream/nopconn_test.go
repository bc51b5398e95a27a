package upstream

import (
	"net"
	"time"
)

// nopConn is a net.Conn whose deadlines do nothing, for reading bodies from
// memory in tests.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }
func (nopConn) Close() error                    { return nil }
