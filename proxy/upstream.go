package proxy

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
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is one provider account calls are forwarded to, with its pool of
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
type upstream struct {
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
	mu                struct {
		sync.Mutex
		idle []*upConn
	}
}

// upConn is one pooled connection with its buffers.
type upConn struct {
	net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	lastUse time.Time
	reused  bool
}

// Buffer sizes of an upstream connection.
const (
	upReadBufferBytes  = 32 << 10
	upWriteBufferBytes = 16 << 10
)

func newUpstream(uc UpstreamConfig, cfg *Config, stopping <-chan struct{}) (*upstream, error) {
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
	up := &upstream{
		name:           uc.Name,
		kind:           uc.Kind,
		scheme:         u.Scheme,
		host:           u.Host,
		addr:           addr,
		pathPrefix:     strings.TrimSuffix(u.Path, "/"),
		apiKey:         uc.APIKey,
		connectTimeout: cfg.ConnectTimeout,
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
		up.bedrock = newBedrockAuth(uc, cfg.ConnectTimeout)
	}
	if u.Scheme == "https" {
		up.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	up.dial = func(addr string) (net.Conn, error) { return up.dialer.DialTimeout(addr, up.connectTimeout) }
	return up, nil
}

// errNoConn is a connection that could not be had within the connect
// timeout: the gateway's own pool is full, which says nothing of the
// upstream's health.
var errNoConn = errors.New("proxy: no upstream connection available")

func isPoolFull(err error) bool { return errors.Is(err, errNoConn) }

// countTokensShare: count_tokens may use one connection in this many.
const countTokensShare = 16

// takeCountSlot takes one of the connections count_tokens may use, without
// waiting; releaseCountSlot gives it back.
func (u *upstream) takeCountSlot() bool {
	select {
	case u.countSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (u *upstream) releaseCountSlot() { <-u.countSlots }

// acquire returns an idle connection or a new one, within the connect
// timeout.
func (u *upstream) acquire() (*upConn, error) {
	select {
	case u.slots <- struct{}{}:
	default:
		t := time.NewTimer(u.connectTimeout)
		select {
		case u.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, errNoConn
		case <-u.stopping:
			t.Stop()
			return nil, errAbortedUpstream
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

func (u *upstream) connect() (*upConn, error) {
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
	return &upConn{Conn: conn, br: bufio.NewReaderSize(conn, upReadBufferBytes), bw: bufio.NewWriterSize(conn, upWriteBufferBytes)}, nil
}

// release returns c to the pool when reusable, and closes it otherwise.
func (u *upstream) release(c *upConn, reusable bool) {
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

// roundTrip sends req and reads the response header into resp, all before
// firstByte; body then reads the response body. A connection that the
// server closed while it was idle is detected by nothing coming back, and
// the request is sent once more on a new connection: the server did not read
// it, so it did no work.
func (u *upstream) roundTrip(req *fasthttp.Request, resp *fasthttp.ResponseHeader, body *upstreamBody, firstByte time.Time) error {
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
var errIdleClosed = errors.New("proxy: the upstream closed an idle connection")

func (u *upstream) exchange(c *upConn, req *fasthttp.Request, resp *fasthttp.ResponseHeader, firstByte time.Time) error {
	if err := c.SetDeadline(firstByte); err != nil {
		return err
	}
	if err := req.Write(c.bw); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
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

// errFirstByteTimeout is an upstream that sent no response header in time.
var errFirstByteTimeout = &timeoutError{"the upstream did not answer in time"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Timeout() bool { return true }

// Request headers forwarded to the upstream (the Anthropic API's own); anthropic-beta
// lines are joined, x-stainless-* forwarded by prefix. Everything else, the
// client's credentials and hop-by-hop headers included, stays behind.
var forwardedRequestHeaders = [...]string{"anthropic-version", "content-type", "accept", "user-agent"}

// prepareRequest fills ureq for forwarding the client's request in ctx with
// body to u. uri is a buffer for the request URI; the extended one is
// returned.
func (u *upstream) prepareRequest(ureq *fasthttp.Request, ctx *fasthttp.RequestCtx, body, betas, uri []byte) []byte {
	ureq.Header.SetMethod(fasthttp.MethodPost)
	uri = append(uri[:0], u.pathPrefix...)
	uri = append(uri, ctx.Path()...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		uri = append(uri, '?')
		uri = append(uri, q...)
	}
	ureq.Header.SetRequestURIBytes(uri)
	ureq.Header.SetHost(u.host)
	for _, h := range forwardedRequestHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			ureq.Header.SetBytesV(h, v)
		}
	}
	if len(betas) > 0 {
		ureq.Header.SetBytesV("anthropic-beta", betas)
	}
	for k, v := range ctx.Request.Header.All() {
		if len(k) > len("x-stainless-") && bytes.EqualFold(k[:len("x-stainless-")], []byte("x-stainless-")) {
			ureq.Header.SetBytesKV(k, v)
		}
	}
	ureq.Header.Set("x-api-key", u.apiKey)
	ureq.SetBodyRaw(body)
	return uri
}

// appendBetas appends every anthropic-beta line of the request joined with
// ", " and returns the first value that is in denied, if any.
func appendBetas(dst []byte, h *fasthttp.RequestHeader, denied []string) ([]byte, string) {
	var refused string
	for k, v := range h.All() {
		if !bytes.EqualFold(k, []byte("anthropic-beta")) {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
		if refused == "" && len(denied) > 0 {
			for part := range bytes.SplitSeq(v, []byte(",")) {
				part = bytes.TrimSpace(part)
				for _, d := range denied {
					if string(part) == d {
						refused = d
					}
				}
			}
		}
	}
	return dst, refused
}
