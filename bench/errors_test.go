package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestTransportKind(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if got := transportKind(err); got != want {
			t.Fatalf("unexpected kind of %v; got %q; want %q", err, got, want)
		}
	}
	f(nil, "")
	f(fasthttp.ErrTimeout, ErrKindTimeout)
	f(fasthttp.ErrDialTimeout, ErrKindTimeout)
	f(fmt.Errorf("read: %w", timeoutError{}), ErrKindTimeout)
	f(&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, ErrKindTimeout)
	f(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrKindConnect)
	f(&net.OpError{Op: "dial", Err: errors.New("no route")}, ErrKindConnect)
	f(syscall.EMFILE, ErrKindConnect)
	f(&net.OpError{Op: "read", Err: syscall.ECONNRESET}, ErrKindConnection)
	f(&net.OpError{Op: "write", Err: errors.New("broken")}, ErrKindConnection)
	f(io.EOF, ErrKindConnection)
	f(io.ErrUnexpectedEOF, ErrKindConnection)
	f(fasthttp.ErrConnectionClosed, ErrKindConnection)
	f(errors.New("something else"), ErrKindOther)
}

func TestStatusKind(t *testing.T) {
	f := func(status int, want string) {
		t.Helper()
		if got := statusKind(status); got != want {
			t.Fatalf("unexpected kind of status %d; got %q; want %q", status, got, want)
		}
	}
	f(402, "status_402")
	f(502, "status_502")
	f(529, "status_529")
	f(0, ErrKindOther)
	f(1000, ErrKindOther)
}
