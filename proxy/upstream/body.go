package upstream

import (
	"bufio"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Body reads one upstream response body off its pooled connection:
// sized (Content-Length), chunked, or until the connection closes. Every
// Read gets the deadline min(now + idle, total), so a silent upstream and an
// overlong call both end in a timeout error. Once the body has been read to
// its end the connection goes back to the pool; otherwise close drops it.
//
// Read and close run on the call's goroutine. abort may run on another one
// (shutdown): it closes the connection, which interrupts a blocked Read.
type Body struct {
	u *Upstream
	c *upConn
	// live is the connection abort closes: set as soon as RoundTrip has one,
	// before the request is sent, so that a call waiting for headers can be
	// cut off too; cleared by close.
	live atomic.Pointer[upConn]
	// kind of framing, and what remains of the body or of the current chunk.
	chunked, untilClose bool
	remaining           int64
	done                bool
	reusable            bool
	idle                time.Duration
	total               time.Time
	aborted             atomic.Bool
}

// maxChunkLine bounds a chunk-size line (hex digits and extensions).
const maxChunkLine = 4096

// errBadChunk is a chunked body that breaks HTTP/1.1's framing.
var errBadChunk = errors.New("upstream: malformed chunked encoding")

// ErrAborted is an exchange or a body read cut off by Abort (shutdown).
var ErrAborted = errors.New("upstream: read aborted")

// start begins reading the body of the response h on c. It leaves live and
// aborted alone: another goroutine may be aborting.
func (b *Body) start(u *Upstream, c *upConn, h *fasthttp.ResponseHeader) {
	b.u, b.c, b.reusable = u, c, !h.ConnectionClose()
	b.chunked, b.untilClose, b.remaining, b.done = false, false, 0, false
	b.idle, b.total = 0, time.Time{}
	switch cl := h.ContentLength(); {
	case h.StatusCode() == fasthttp.StatusNoContent || h.StatusCode() == fasthttp.StatusNotModified:
		b.done = true
	case cl >= 0:
		b.remaining = int64(cl)
		b.done = cl == 0
	case cl == -1:
		b.chunked = true
	default:
		b.untilClose, b.reusable = true, false
	}
}

// SetDeadlines sets the between-reads and whole-call limits.
func (b *Body) SetDeadlines(idle time.Duration, total time.Time) {
	b.idle, b.total = idle, total
}

// Read reads the body; io.EOF at its end.
func (b *Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.c == nil || b.aborted.Load() {
		return 0, ErrAborted
	}
	if b.idle > 0 {
		d := time.Now().Add(b.idle)
		if !b.total.IsZero() && b.total.Before(d) {
			d = b.total
		}
		if err := b.c.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	br := b.c.br
	switch {
	case b.untilClose:
		n, err := br.Read(p)
		if err == io.EOF {
			b.done = true
		}
		return n, err
	case b.chunked:
		if b.remaining == 0 {
			size, err := readChunkSize(br)
			if err != nil {
				return 0, err
			}
			if size == 0 {
				if err := skipTrailer(br); err != nil {
					return 0, err
				}
				b.done = true
				return 0, io.EOF
			}
			b.remaining = size
		}
		n, err := br.Read(p[:min(int64(len(p)), b.remaining)])
		b.remaining -= int64(n)
		if b.remaining == 0 && err == nil {
			err = expectCRLF(br)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	default:
		n, err := br.Read(p[:min(int64(len(p)), b.remaining)])
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.done = true
			if err == io.EOF {
				err = nil
			}
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
}

// Close returns the connection to the pool if the body was read to its end,
// and drops it otherwise. Safe to call more than once.
func (b *Body) Close() {
	if b.c == nil {
		return
	}
	c := b.c
	b.c = nil
	b.live.Store(nil)
	b.u.release(c, b.done && b.reusable && !b.aborted.Load())
}

// Abort interrupts the exchange or the body from another goroutine: it
// closes the live connection, which fails a blocked write or read.
func (b *Body) Abort() {
	b.aborted.Store(true)
	if c := b.live.Load(); c != nil {
		c.Close()
	}
}

// Reset readies b for another call.
func (b *Body) Reset() {
	b.Close()
	b.aborted.Store(false)
}

func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		if err == bufio.ErrBufferFull {
			return 0, errBadChunk
		}
		return 0, err
	}
	if len(line) > maxChunkLine {
		return 0, errBadChunk
	}
	var size int64
	digits := 0
	for _, c := range line {
		var d int64
		switch {
		case '0' <= c && c <= '9':
			d = int64(c - '0')
		case 'a' <= c && c <= 'f':
			d = int64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = int64(c-'A') + 10
		default:
			if digits == 0 || (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t') {
				return 0, errBadChunk
			}
			return size, nil
		}
		if digits++; digits > 15 {
			return 0, errBadChunk
		}
		size = size<<4 | d
	}
	return 0, errBadChunk
}

func expectCRLF(br *bufio.Reader) error {
	c, err := br.ReadByte()
	if err == nil && c == '\r' {
		c, err = br.ReadByte()
	}
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if c != '\n' {
		return errBadChunk
	}
	return nil
}

// skipTrailer reads the trailer section after the last chunk, up to its
// empty line.
func skipTrailer(br *bufio.Reader) error {
	for range 64 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return errBadChunk
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return nil
		}
	}
	return errBadChunk
}
