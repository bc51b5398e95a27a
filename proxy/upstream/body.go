package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/coarseclock"
	"github.com/valyala/fasthttp"
)

// Body reads one upstream response body off its pooled connection:
// sized (Content-Length), chunked, or until the connection closes. The read
// deadline is min(now + idle, total), refreshed from the coarse clock when
// it has moved by a sixteenth of idle, so a silent upstream and an overlong
// call both end in a timeout error without a clock read and a deadline
// system call per Read. Once the body has been read to its end the
// connection goes back to the pool; otherwise close drops it.
//
// A chunked Read returns every chunk already buffered, up to len(p), not
// only the first: the client side writes (and flushes) once per Read, so
// events that arrived together leave together, in one write. It never waits
// for more once it has bytes: a chunk still on its way is left for the
// next Read, so coalescing adds no latency.
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
	// crlfPending is set when a chunk's data has been read but not the CRLF
	// that ends it.
	crlfPending bool
	idle        time.Duration
	total       time.Time
	// deadlineSetAt is when the read deadline was last set (coarse clock,
	// Unix nanoseconds; 0: not since SetDeadlines or start).
	deadlineSetAt int64
	aborted       atomic.Bool
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
	b.chunked, b.untilClose, b.remaining, b.done, b.crlfPending = false, false, 0, false, false
	b.idle, b.total, b.deadlineSetAt = 0, time.Time{}, 0
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
	b.idle, b.total, b.deadlineSetAt = idle, total, 0
}

// Read reads the body; io.EOF at its end.
func (b *Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.c == nil || b.aborted.Load() {
		return 0, ErrAborted
	}
	if err := b.refreshDeadline(); err != nil {
		return 0, err
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
		return b.readChunks(br, p)
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

// refreshDeadline moves the read deadline to min(now + idle, total) when
// the coarse clock has moved by a sixteenth of idle since it was last set:
// the silence that times out is then between idle - idle/16 - the clock's
// period and idle.
func (b *Body) refreshDeadline() error {
	if b.idle <= 0 {
		return nil
	}
	now := coarseclock.Nanos()
	if b.deadlineSetAt != 0 && now-b.deadlineSetAt < int64(b.idle/16) {
		return nil
	}
	d := time.Unix(0, now).Add(b.idle)
	if !b.total.IsZero() && b.total.Before(d) {
		d = b.total
	}
	b.deadlineSetAt = now
	return b.c.SetReadDeadline(d)
}

// readChunks reads chunked data into p: the first chunk's bytes waiting
// for the network if need be, then only what is already buffered.
func (b *Body) readChunks(br *bufio.Reader, p []byte) (n int, err error) {
	for n < len(p) {
		wait := n == 0 // until bytes arrive; after that, nothing blocks
		if b.crlfPending {
			if !wait && !crlfBuffered(br) {
				break
			}
			if err := expectCRLF(br); err != nil {
				return n, err
			}
			b.crlfPending = false
		}
		if b.remaining == 0 {
			if !wait && !chunkHeadBuffered(br) {
				break
			}
			size, err := readChunkSize(br)
			if err != nil {
				return n, err
			}
			if size == 0 {
				return n, b.end(br, n)
			}
			b.remaining = size
		}
		want := min(int64(len(p)-n), b.remaining)
		if !wait {
			want = min(want, int64(br.Buffered()))
		}
		if want == 0 {
			break
		}
		k, err := br.Read(p[n : n+int(want)])
		n += k
		b.remaining -= int64(k)
		b.crlfPending = b.remaining == 0
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// end reads the trailer after the last chunk and marks the body done; io.EOF
// when the Read that found it returned no bytes.
func (b *Body) end(br *bufio.Reader, n int) error {
	if err := skipTrailer(br); err != nil {
		return err
	}
	b.done = true
	if n == 0 {
		return io.EOF
	}
	return nil
}

// chunkHeadBuffered reports whether the next chunk-size line is buffered
// whole, and for the last chunk (size 0) the empty line ending the body
// too, so that reading them cannot wait for the network.
func chunkHeadBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	if size, err := parseChunkSize(buf[:i+1]); err != nil || size > 0 {
		return true // a bad line fails now, without waiting
	}
	rest := buf[i+1:]
	return bytes.HasPrefix(rest, []byte("\r\n")) || bytes.HasPrefix(rest, []byte("\n"))
}

// crlfBuffered reports whether the line end after a chunk's data is
// buffered.
func crlfBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(min(2, br.Buffered()))
	return len(buf) == 2 || (len(buf) == 1 && buf[0] == '\n')
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

// readChunkSize reads a chunk-size line and returns the size.
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
	return parseChunkSize(line)
}

// parseChunkSize parses a chunk-size line (hex digits, then extensions or
// the line end), at most 15 digits and maxChunkLine bytes.
func parseChunkSize(line []byte) (int64, error) {
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
