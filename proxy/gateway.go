package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

const hdrRequestID = "request-id"

// Gateway is Tollgate's HTTP front: the client API (Anthropic-compatible)
// and the admin API, each on its own fasthttp server, over one ledger and
// one catalogue. It is safe for concurrent use.
type Gateway struct {
	cfg       Config
	ledger    *ledger.Ledger
	catalogue atomic.Pointer[meter.Catalogue]
	upstreams []*upstream.Upstream
	drains    *ants.Pool
	logger    *log.Logger

	clientServer *fasthttp.Server

	// active holds the calls from their hold to their end (count_tokens
	// requests from their upstream exchange), streaming, waiting for
	// headers, buffering a reply or draining, so that shutdown can cut them
	// all off when its grace period runs out.
	active struct {
		sync.Mutex
		calls map[string]*call // by request ID
	}
	// shuttingDown is set when the grace period ran out: calls cut off from
	// then on end as recovered; stopping is closed then.
	shuttingDown atomic.Bool
	stopping     chan struct{}
	// inflight counts calls from hold to settlement, drains included.
	inflight sync.WaitGroup
	// diskLow refuses new holds while the data directory is short of space.
	diskLow atomic.Bool
	// bodyBytes is the request-body bytes reserved by calls (bodybound.go).
	bodyBytes atomic.Int64

	keyLimits, accountLimits *limitTable
	// limitShare is how many nodes share each key's and account's limits
	// (cluster mode; 0 or 1: this gateway applies them whole).
	limitShare atomic.Int64

	hmacPool sync.Pool
	callPool sync.Pool
}

// New returns a gateway over l serving the models of cat. logger receives
// operational messages (never bodies, keys or client addresses).
func New(cfg Config, l *ledger.Ledger, cat *meter.Catalogue, logger *log.Logger) (*Gateway, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("invalid gateway config: %w", err)
	}
	g := &Gateway{cfg: cfg, ledger: l, logger: logger, stopping: make(chan struct{})}
	g.catalogue.Store(cat)
	for _, uc := range cfg.Upstreams {
		u, err := upstream.New(uc, g.cfg.ConnectTimeout, g.stopping)
		if err != nil {
			return nil, err
		}
		g.upstreams = append(g.upstreams, u)
	}
	pool, err := ants.NewPool(cfg.DrainWorkers, ants.WithNonblocking(true), ants.WithPanicHandler(func(p any) {
		logger.Printf("BUG: panic in a drain: %v", p)
	}))
	if err != nil {
		return nil, fmt.Errorf("cannot create the drain pool: %w", err)
	}
	g.drains = pool
	g.active.calls = map[string]*call{}
	g.keyLimits, g.accountLimits = newLimitTable(), newLimitTable()
	key := cfg.IPDigestKey
	g.hmacPool.New = func() any { return &digester{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 64)} }
	g.callPool.New = func() any { return new(call) }
	g.clientServer = &fasthttp.Server{
		Handler:                       g.serveClient,
		ErrorHandler:                  g.serveClientError,
		Name:                          "tollgate",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		MaxRequestBodySize:            cfg.MaxRequestBodyBytes,
		StreamRequestBody:             true,
		ReadTimeout:                   cfg.ClientHeaderTimeout,
		HeaderReceived:                g.headerReceived,
		WriteTimeout:                  cfg.TotalTimeout + time.Minute,
		IdleTimeout:                   cfg.ClientIdleTimeout,
		Concurrency:                   cfg.Concurrency,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		ReadBufferSize:                16 << 10,
		Logger:                        logger,
	}
	return g, nil
}

// headerReceived gives a request whose headers are in the body-read timeout
// (the header timeout ran until then).
func (g *Gateway) headerReceived(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{ReadTimeout: g.cfg.ClientReadTimeout}
}

// SetCatalogue swaps the catalogue; calls already running keep the one they
// started with.
func (g *Gateway) SetCatalogue(c *meter.Catalogue) { g.catalogue.Store(c) }

// Catalogue returns the catalogue in force.
func (g *Gateway) Catalogue() *meter.Catalogue { return g.catalogue.Load() }

// ServeClient serves the client API on ln until Shutdown: with TLS when
// Config.ClientTLS is set, and each address's connections bounded.
func (g *Gateway) ServeClient(ln net.Listener) error {
	if g.cfg.ClientTLS != nil {
		ln = tls.NewListener(ln, g.cfg.ClientTLS)
	}
	if g.cfg.MaxConnsPerIP > 0 {
		ln = newPerIPListener(ln, g.cfg.MaxConnsPerIP, g.cfg.TrustedProxies)
	}
	return g.clientServer.Serve(ln)
}

// Shutdown stops accepting connections, lets running calls finish for up to
// grace, then cuts off the rest (they settle as recovered, by the recovery
// policy) and waits until every call has settled.
func (g *Gateway) Shutdown(grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- g.clientServer.Shutdown() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(grace):
		g.shuttingDown.Store(true)
		close(g.stopping)
		g.abortActive()
		err = <-done
	}
	g.inflight.Wait()
	g.drains.Release()
	return err
}

// abortActive cuts off every streaming call's upstream read.
func (g *Gateway) abortActive() {
	g.active.Lock()
	defer g.active.Unlock()
	for _, c := range g.active.calls {
		c.abortUpstream()
	}
}

func (g *Gateway) track(c *call) {
	g.active.Lock()
	g.active.calls[c.requestID] = c
	g.active.Unlock()
}

func (g *Gateway) untrack(c *call) {
	g.active.Lock()
	delete(g.active.calls, c.requestID)
	g.active.Unlock()
}

// Live reports whether the call of requestID is still running (from its
// hold to its settlement, drains included): the hold sweeper leaves its
// hold alone, whatever its age.
func (g *Gateway) Live(requestID string) bool {
	g.active.Lock()
	_, ok := g.active.calls[requestID]
	g.active.Unlock()
	return ok
}

// serveClientError answers requests fasthttp could not read: too large,
// malformed or too slow.
func (g *Gateway) serveClientError(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.SetBytesV(hdrRequestID, ids.AppendRequestID(nil))
	var tooLarge bool
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		tooLarge = true
	}
	switch {
	case tooLarge:
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, views.RequestTooLarge,
			fmt.Sprintf("request body exceeds the limit of %d bytes", g.cfg.MaxRequestBodyBytes))
	case upstream.IsTimeout(err):
		writeError(ctx, fasthttp.StatusRequestTimeout, views.InvalidRequestError, "request not received in time")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, "malformed HTTP request")
	}
	ctx.SetConnectionClose()
}

// ipDigest appends the hex HMAC-SHA-256 of the client's address, taken from
// X-Forwarded-For only when the peer is a trusted proxy.
func (g *Gateway) appendIPDigest(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	ip := clientIP(ctx, g.cfg.TrustedProxies)
	d := g.hmacPool.Get().(*digester)
	d.h.Reset()
	d.buf = ip.AppendTo(d.buf[:0])
	d.h.Write(d.buf)
	d.buf = d.h.Sum(d.buf[:0])
	for _, b := range d.buf {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	g.hmacPool.Put(d)
	return dst
}

// digester is a pooled HMAC with its scratch buffer.
type digester struct {
	h   hash.Hash
	buf []byte
}
