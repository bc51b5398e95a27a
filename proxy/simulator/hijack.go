package simulator

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// hijackJob is a response the simulator writes on the raw connection:
// hang=headers (reply nil: nothing is ever written), a stream that ends in
// hang_after or truncate_after, or a split stream. fasthttp's stream writer
// cannot do those: it writes through a pipe that another goroutine copies
// to the connection, so it can neither close the connection right after its
// last byte, nor notice a silent client going away, nor keep write
// boundaries (the copier merges what the pipe holds into one chunk). Here
// each flush is one HTTP chunk, so a client sees split's pieces exactly.
type hijackJob struct {
	reqID string
	reply *reply
	dir   directives
}

// needsHijack reports whether d's stream must be written on the raw
// connection: hang_after, truncate_after and split (see hijackJob).
func (d *directives) needsHijack() bool {
	return d.fault == faultHang || d.fault == faultTruncate || d.split != 0
}

// hijack hands the connection to serveHijacked once the handler returns;
// fasthttp writes no response of its own and closes the connection after.
func (s *Simulator) hijack(ctx *fasthttp.RequestCtx, job *hijackJob) {
	ctx.SetConnectionClose()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { s.serveHijacked(c, job) })
}

// serveHijacked runs on fasthttp's hijack goroutine: hang=headers waits
// with nothing written; a stream is written as HTTP/1.1 chunks and ended by
// endStream.
func (s *Simulator) serveHijacked(c net.Conn, job *hijackJob) {
	defer c.Close() // fasthttp closes it too, unless the server keeps hijacked connections
	if !s.enter() {
		return
	}
	defer s.leave()
	gone, unwatch := s.watch(c)
	defer unwatch()

	if job.reply == nil {
		s.countHang(s.wait(s.cfg.MaxHang, gone))
		return
	}
	if _, err := c.Write(appendStreamHead(nil, job.reqID, s.proto)); err != nil {
		s.countHang(endClientGone)
		return
	}
	sw := s.newStreamWriter(&chunkWriter{c: c}, job.reply, &job.dir)
	s.endStream(sw, s.play(sw, job.reply, &job.dir, gone), &job.dir, gone)
}

// watch starts the two watchers of a hijacked connection: a reader that
// closes gone when the client leaves (a read returning an error), and a
// monitor that sets a past deadline on Shutdown, unblocking any read or
// write. unwatch stops both and waits for them.
func (s *Simulator) watch(c net.Conn) (gone <-chan struct{}, unwatch func()) {
	left := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var b [512]byte
		for {
			// Bytes after the request (a pipelined request) are dropped: the
			// connection closes after this response anyway.
			if _, err := c.Read(b[:]); err != nil {
				close(left)
				return
			}
		}
	}()
	stop := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		select {
		case <-s.done:
			_ = c.SetDeadline(time.Now())
		case <-stop:
		}
	}()
	return left, func() {
		close(stop)
		<-monitorDone
		_ = c.SetReadDeadline(time.Now())
		<-readerDone
	}
}

// appendStreamHead appends the status line and headers of a streamed reply
// written on a hijacked connection: the headers fasthttp would send, chunked,
// with Connection: close.
func appendStreamHead(b []byte, reqID string, p protocol) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, p.streamHeaders())
	b = appendHeaders(b, p.headers(reqID))
	return append(b, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"...)
}

// appendHeaders appends each key-value pair of kvs as a header line.
func appendHeaders(b []byte, kvs [][2]string) []byte {
	for _, kv := range kvs {
		b = append(b, kv[0]...)
		b = append(b, ": "...)
		b = append(b, kv[1]...)
		b = append(b, "\r\n"...)
	}
	return b
}

// chunkWriter is a sink on a raw connection: each Flush sends what was
// written since the last one as one HTTP/1.1 chunk, in one write.
type chunkWriter struct {
	c   net.Conn
	buf []byte // written, not yet flushed
	out []byte // the chunk being sent
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *chunkWriter) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.out = strconv.AppendInt(w.out[:0], int64(len(w.buf)), 16)
	w.out = append(w.out, "\r\n"...)
	w.out = append(w.out, w.buf...)
	w.out = append(w.out, "\r\n"...)
	w.buf = w.buf[:0]
	_, err := w.c.Write(w.out)
	return err
}

// end ends the chunked body with the last, empty chunk.
func (w *chunkWriter) end() error {
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := w.c.Write([]byte("0\r\n\r\n"))
	return err
}
