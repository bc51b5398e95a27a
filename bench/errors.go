package bench

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Error kinds of failed calls, the keys of LoadResult.Errors. Besides
// these, a reply with a status other than 200 counts as "status_NNN".
const (
	// ErrKindTimeout: no complete reply within LoadConfig.Timeout.
	ErrKindTimeout = "timeout"
	// ErrKindConnect: the connection could not be opened (refused,
	// no free port, too many open files).
	ErrKindConnect = "connect"
	// ErrKindConnection: the connection broke (reset, closed early)
	// before the reply was complete.
	ErrKindConnection = "connection"
	// ErrKindStreamError: the stream carried an `event: error`, such as
	// the gateway appends when it has to end a stream itself.
	ErrKindStreamError = "stream_error"
	// ErrKindTruncated: the stream ended cleanly but without message_stop.
	ErrKindTruncated = "truncated"
	// ErrKindTooLarge: the reply exceeded MaxReplyBytes.
	ErrKindTooLarge = "too_large"
	// ErrKindNotStarted: open loop only, a call whose intended start fell
	// within the run but that could not start before the run ended
	// because every in-flight slot was busy: the target fell behind the
	// arrival rate by that many calls.
	ErrKindNotStarted = "not_started"
	// ErrKindOther: any other client-side error.
	ErrKindOther = "other"
)

// statusKind is the error kind of a reply with an unexpected status.
func statusKind(status int) string {
	if status < 100 || status > 999 {
		return ErrKindOther
	}
	return "status_" + strconv.Itoa(status)
}

// transportKind classifies an error from sending a request or reading its
// reply. Timeouts are checked first: a read deadline surfaces as a net
// error with Timeout() true, possibly wrapped.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrNoFreeConns), errors.As(err, &ne) && ne.Timeout():
		return ErrKindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE):
		return ErrKindConnect
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return ErrKindConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		if oe.Op == "dial" {
			return ErrKindConnect
		}
		return ErrKindConnection
	}
	return ErrKindOther
}
