package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Upstream is one provider account calls are forwarded to, with its pool of
// connections.
//
// The HTTP/1.1 protocol work is fasthttp's (Request.Write, ResponseHeader.Read);
// the connection pool and the body reader are ours, for two reasons that
// fasthttp's HostClient cannot meet. A streamed reply needs three deadlines a
// HostClient cannot express: the first byte, the silence between two reads,
// and the whole call; HostClient sets one read deadline before the headers,
// which would cut a long stream off. And HostClient's streamed response costs
// four allocations per call (closures and a wrapper), more than the
// gateway's whole budget. The pool here is small: a bounded stack of idle
// connections, a semaphore of MaxConns, dials through fasthttp's caching
// TCPDialer.
type Upstream struct {
	name   string
	kind   string
	scheme string
	host   string
	addr   string
	// pathPrefix is the base URL's path, prepended to the client's path.
	pathPrefix string
	apiKey     string
	// bedrock authenticates a bedrock upstream's requests; nil for anthropic.
	bedrock *bedrockAuth

	// priority, weight and salt order the upstreams of a call (route.go).
	priority, weight int
	salt             uint64
	health           upstreamHealth
	metrics          upstreamMetrics

	connectTimeout time.Duration
	// maxIdle is how long an idle connection is kept; below typical server
	// keep-alive timeouts, so a reused connection is rarely one the server
	// is closing.
	maxIdle time.Duration
	tls     *tls.Config
	dialer  fasthttp.TCPDialer
	// dial opens a connection (tests replace it with an in-memory one).
	dial func(addr string) (net.Conn, error)

	// stopping is closed when shutdown cuts calls off: a call waiting for a
	// connection stops waiting.
	stopping <-chan struct{}
	// slots bounds the connections in use; countSlots bounds those that
	// count_tokens requests may use, a small share of them.
	slots, countSlots chan struct{}
	// queued counts the calls waiting for a slot.
	queued atomic.Int64
	mu     struct {
		sync.Mutex
		idle []*upConn
	}
}

// upConn is one pooled connection with its read buffer.
type upConn struct {
	net.Conn
	br      *bufio.Reader
	lastUse time.Time
	reused  bool
}

// Buffer sizes of an upstream connection. The read buffer stays with its
// connection (it holds what arrived ahead of the reader), sized for a burst
// of events rather than a whole reply: a connection lives as long as a
// stream, and thousands of streams are open at once. Writing happens once
// per call, so write buffers are shared (writers) rather than kept per
// connection.
const (
	upReadBufferBytes  = 8 << 10
	upWriteBufferBytes = 16 << 10
)

// writers are the write buffers requests are sent through, taken for one
// request and given back.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upWriteBufferBytes) }}

// New returns the upstream of uc (its defaults set): connections are
// dialled within connectTimeout, and a call waiting for one stops waiting
// when stopping is closed.
func New(uc Config, connectTimeout time.Duration, stopping <-chan struct{}) (*Upstream, error) {
	u, err := url.Parse(uc.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: base URL %q must be http(s)://host[:port][/path]", uc.Name, uc.BaseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	up := &Upstream{
		name:           uc.Name,
		kind:           uc.Kind,
		scheme:         u.Scheme,
		host:           u.Host,
		addr:           addr,
		pathPrefix:     strings.TrimSuffix(u.Path, "/"),
		apiKey:         uc.APIKey,
		connectTimeout: connectTimeout,
		stopping:       stopping,
		maxIdle:        30 * time.Second,
		slots:          make(chan struct{}, uc.MaxConns),
		countSlots:     make(chan struct{}, max(1, uc.MaxConns/countTokensShare)),
		dialer:         fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute},
		priority:       uc.Priority,
		weight:         uc.Weight,
		salt:           fnv1a(uc.Name),
		metrics:        newUpstreamMetrics(uc.Name),
	}
	if uc.Kind == KindBedrock {
		up.bedrock = newBedrockAuth(uc, connectTimeout)
	}
	if u.Scheme == "https" {
		up.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	up.dial = uc.Dial
	if up.dial == nil {
		up.dial = func(addr string) (net.Conn, error) { return up.dialer.DialTimeout(addr, up.connectTimeout) }
	}
	return up, nil
}

// ErrPoolFull is a connection that could not be had: every one in use for
// the connect timeout, or the queue for them full. It is the gateway's own
// saturation, which says nothing of the upstream's health.
var ErrPoolFull = errors.New("upstream: no connection available")

// countTokensShare: count_tokens may use one connection in this many.
const countTokensShare = 16

// TakeCountSlot takes one of the connections count_tokens may use, without
// waiting; ReleaseCountSlot gives it back.
func (u *Upstream) TakeCountSlot() bool {
	select {
	case u.countSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (u *Upstream) ReleaseCountSlot() { <-u.countSlots }

// queueForSlot waits for a connection slot, within the queue's bound.
func (u *Upstream) queueForSlot() error {
	if u.queued.Add(1) > int64(cap(u.slots)) {
		u.queued.Add(-1)
		return ErrPoolFull
	}
	defer u.queued.Add(-1)
	t := time.NewTimer(u.connectTimeout)
	defer t.Stop()
	select {
	case u.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrPoolFull
	case <-u.stopping:
		return ErrAborted
	}
}

// acquire returns an idle connection or a new one. When every connection
// is in use the call queues for one, up to the connect timeout, unless as
// many calls as the pool holds are queued already: a full queue answers
// ErrPoolFull at once, so a burst beyond twice the pool is refused quickly
// rather than piling up goroutines and client connections.
func (u *Upstream) acquire() (*upConn, error) {
	select {
	case u.slots <- struct{}{}:
	default:
		if err := u.queueForSlot(); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	u.mu.Lock()
	for n := len(u.mu.idle); n > 0; n = len(u.mu.idle) {
		c := u.mu.idle[n-1]
		u.mu.idle[n-1] = nil
		u.mu.idle = u.mu.idle[:n-1]
		if now.Sub(c.lastUse) < u.maxIdle {
			u.mu.Unlock()
			c.reused = true
			return c, nil
		}
		c.Close()
	}
	u.mu.Unlock()
	c, err := u.connect()
	if err != nil {
		<-u.slots
		return nil, err
	}
	return c, nil
}

func (u *Upstream) connect() (*upConn, error) {
	conn, err := u.dial(u.addr)
	if err != nil {
		return nil, err
	}
	if u.tls != nil {
		tc := tls.Client(conn, u.tls)
		ctx, cancel := context.WithTimeout(context.Background(), u.connectTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &upConn{Conn: conn, br: bufio.NewReaderSize(conn, upReadBufferBytes)}, nil
}

// release returns c to the pool when reusable, and closes it otherwise.
func (u *Upstream) release(c *upConn, reusable bool) {
	if reusable {
		c.lastUse = time.Now()
		u.mu.Lock()
		if len(u.mu.idle) < cap(u.slots) {
			u.mu.idle = append(u.mu.idle, c)
			c = nil
		}
		u.mu.Unlock()
	}
	if c != nil {
		c.Close()
	}
	<-u.slots
}

// RoundTrip sends req and reads the response header into resp, all before
// firstByte; body then reads the response body. A connection that the
// server closed while it was idle is detected by nothing coming back, and
// the request is sent once more on a new connection: the server did not read
// it, so it did no work.
func (u *Upstream) RoundTrip(req *fasthttp.Request, resp *fasthttp.ResponseHeader, body *Body, firstByte time.Time) error {
	for attempt := 0; ; attempt++ {
		c, err := u.acquire()
		if err != nil {
			return err
		}
		body.live.Store(c)
		if body.aborted.Load() {
			c.Close() // aborted while acquiring
		}
		err = u.exchange(c, req, resp, firstByte)
		if err == nil {
			body.start(u, c, resp)
			return nil
		}
		body.live.Store(nil)
		u.release(c, false)
		if !c.reused || attempt > 0 || !errors.Is(err, errIdleClosed) {
			return err
		}
	}
}

// errIdleClosed is a reused connection that returned nothing at all.
var errIdleClosed = errors.New("upstream: the upstream closed an idle connection")

func (u *Upstream) exchange(c *upConn, req *fasthttp.Request, resp *fasthttp.ResponseHeader, firstByte time.Time) error {
	if err := c.SetDeadline(firstByte); err != nil {
		return err
	}
	if err := send(c, req); err != nil {
		return err
	}
	for {
		err := resp.Read(c.br)
		if errors.Is(err, fasthttp.ErrTimeout) {
			return errFirstByteTimeout
		}
		if err != nil {
			if c.reused && errors.Is(err, io.EOF) {
				return errIdleClosed
			}
			return err
		}
		// Skip interim 1xx responses (100 Continue and the like).
		if s := resp.StatusCode(); s < 100 || s >= 200 || s == 101 {
			return nil
		}
	}
}

// Name is the upstream's configured name (call records, metrics, logs).
func (u *Upstream) Name() string { return u.name }

// Kind is the upstream's kind: meter.UpstreamAnthropic or meter.UpstreamBedrock.
func (u *Upstream) Kind() string { return u.kind }

// IsBedrock reports whether the upstream is Claude on AWS Bedrock, whose
// requests, replies and errors have Bedrock's shapes.
func (u *Upstream) IsBedrock() bool { return u.bedrock != nil }

// IsTimeout reports whether err is a timeout (of a deadline or of ours).
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// send writes req to c through a shared write buffer.
func send(c *upConn, req *fasthttp.Request) error {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	return err
}

// errFirstByteTimeout is an upstream that sent no response header in time.
var errFirstByteTimeout = &timeoutError{"the upstream did not answer in time"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Timeout() bool { return true }

// Request headers forwarded to the upstream (the Anthropic API's own); anthropic-beta
// lines are joined, x-stainless-* forwarded by prefix. Everything else, the
// client's credentials and hop-by-hop headers included, stays behind.
var forwardedRequestHeaders = [...]string{"anthropic-version", "content-type", "accept", "user-agent"}

// PrepareRequest fills req for forwarding the client's request in ctx to
// path on an anthropic upstream u, with body and the anthropic-beta values
// betas. uri is a buffer for the request URI; the extended one is
// returned.
func (u *Upstream) PrepareRequest(req *fasthttp.Request, ctx *fasthttp.RequestCtx, path, body, betas, uri []byte) []byte {
	req.Header.SetMethod(fasthttp.MethodPost)
	uri = append(uri[:0], u.pathPrefix...)
	uri = append(uri, path...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		uri = append(uri, '?')
		uri = append(uri, q...)
	}
	req.Header.SetRequestURIBytes(uri)
	req.Header.SetHost(u.host)
	for _, h := range forwardedRequestHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			req.Header.SetBytesV(h, v)
		}
	}
	if len(betas) > 0 {
		req.Header.SetBytesV("anthropic-beta", betas)
	}
	for k, v := range ctx.Request.Header.All() {
		if len(k) > len("x-stainless-") && bytes.EqualFold(k[:len("x-stainless-")], []byte("x-stainless-")) {
			req.Header.SetBytesKV(k, v)
		}
	}
	req.Header.Set("x-api-key", u.apiKey)
	req.SetBodyRaw(body)
	return uri
}
