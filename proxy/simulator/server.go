package simulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/valyala/fasthttp"
)

// Defaults of Config's zero fields.
const (
	// DefaultMaxBodySize is Anthropic's Messages API body limit, 32 MiB.
	DefaultMaxBodySize = 32 << 20
	// DefaultMaxHang bounds hang=headers, hang_after, delay and ttfb.
	DefaultMaxHang = 10 * time.Minute
	// DefaultShutdownTimeout bounds Shutdown.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long (Serve only).
	DefaultIdleTimeout = 90 * time.Second
	// maxIdleWorkerDuration is how long Serve's idle fasthttp workers live;
	// it also bounds how long the worker pool's cleaner outlives Shutdown.
	maxIdleWorkerDuration = time.Second
)

// ErrShutdown is returned by Serve after Shutdown.
var ErrShutdown = errors.New("simulator: shut down")

// Config configures a Simulator. The zero value is a working simulator that
// accepts any credential.
type Config struct {
	// APIKey, when not empty, is the one upstream credential the simulator
	// accepts: a request must carry it as x-api-key or as Authorization:
	// Bearer, and every one of the two that is present must equal it; other
	// requests get Anthropic's 401 authentication_error. Empty accepts any
	// credential or none.
	APIKey string

	// EventDelay is the default pause between two consecutive events of a
	// stream (a non-streaming reply waits the sum over the events it would
	// have streamed). The delay=D directive overrides it. Zero: no pause.
	EventDelay time.Duration

	// MaxBodySize is the largest request body, in bytes; a larger one gets 413
	// request_too_large (refused by Serve's server before the body is read).
	// Zero: DefaultMaxBodySize.
	MaxBodySize int

	// MaxHang bounds every wait a request can ask for: hang=headers and
	// hang_after end after it even if the client stays, and delay or ttfb
	// directives above it are refused with 400. Zero: DefaultMaxHang.
	MaxHang time.Duration

	// ShutdownTimeout bounds how long Shutdown waits for connections and
	// streams to end. Zero: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// RequireVersion answers requests without an anthropic-version header
	// with 400, as api.anthropic.com does. Off by default so that plain curl
	// lines work against the simulator.
	RequireVersion bool

	// ModelAliases maps a requested model to the model the reply names (the
	// API answers the alias claude-haiku-4-5 with claude-haiku-4-5-20251001).
	// Models not in the map are echoed unchanged. Nil: DefaultModelAliases();
	// an empty, non-nil map echoes every model unchanged.
	ModelAliases map[string]string

	// OnRequest, when set, is called synchronously with a copy of every
	// request before it is answered, from the handler's goroutine; tests use
	// it to see exactly what reached the upstream. It must be safe for
	// concurrent use.
	OnRequest func(RequestInfo)

	// Logger receives the errors of Serve's fasthttp server. Nil: discarded.
	Logger fasthttp.Logger

	// Mode is ModeAnthropic (empty too: Anthropic's Messages API) or
	// ModeBedrock (Bedrock's InvokeModel API for Claude; see bedrock.go).
	Mode string
	// AWSCredentials, in Bedrock mode, are the one key pair whose SigV4
	// signatures (service bedrock) the simulator accepts, checked with the
	// AWS SDK's signer; APIKey is then the Bedrock API key accepted as a
	// bearer token instead. With neither set, any credential or none is
	// accepted. TestAWSCredentials are the fixed test pair.
	AWSCredentials aws.Credentials
	// AWSRegion, when set, is the only region a Bedrock-mode signature may
	// be scoped to.
	AWSRegion string
}

// RequestInfo is a copy of one request as the simulator received it.
type RequestInfo struct {
	// Method is the HTTP method.
	Method string
	// Path is the request path, without the query string.
	Path string
	// Query is the raw query string, without '?'.
	Query string
	// Header holds every request header line, keys canonicalized.
	Header http.Header
	// Body is a copy of the request body.
	Body []byte
}

// DefaultModelAliases returns a new copy of the simulator's default alias
// table: the first-party aliases that have a dated model ID, mapped to it.
// Aliases of models without a dated ID (claude-opus-4-6 and later) are
// their own ID and are echoed unchanged.
func DefaultModelAliases() map[string]string {
	return map[string]string{
		"claude-haiku-4-5":         "claude-haiku-4-5-20251001",
		"claude-sonnet-4-5":        "claude-sonnet-4-5-20250929",
		"claude-opus-4-5":          "claude-opus-4-5-20251101",
		"claude-opus-4-1":          "claude-opus-4-1-20250805",
		"claude-opus-4-0":          "claude-opus-4-20250514",
		"claude-sonnet-4-0":        "claude-sonnet-4-20250514",
		"claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
		"claude-3-5-haiku-latest":  "claude-3-5-haiku-20241022",
	}
}

// Stats is a snapshot of a Simulator's counters.
type Stats struct {
	Requests    int64 // every request the handler saw
	Messages    int64 // POST /v1/messages, valid or not, streaming or not
	Streams     int64 // of Messages, valid ones that asked for "stream": true
	CountTokens int64 // POST /v1/messages/count_tokens
	NotFound    int64 // answered 404 (unknown route or method)
	Rejected    int64 // answered 400, 401 or 413 by the simulator's own checks
	Injected    int64 // answered with a directive's failure: status, json_error_200, hang, garbage or a *_after fault
	Completed   int64 // replies delivered whole: a stream to message_stop, a JSON body, a token count
	ClientGone  int64 // streams and hangs ended because the client went away
	InFlight    int64 // requests being answered now, streams and hangs included
}

// Simulator is Anthropic's Messages API with deterministic, request-derived
// replies and failures selected by directives in the request (see the
// package comment). It is safe for concurrent use.
type Simulator struct {
	cfg     Config
	proto   protocol // Config.Mode's wire form
	aliases map[string]string
	server  *fasthttp.Server
	done    chan struct{} // closed by Shutdown: every wait ends

	mu struct {
		sync.Mutex
		closed    bool           // no request may start, no listener may be served
		running   int            // requests being answered, streams and hangs included
		listeners []net.Listener // given to Serve; closed by Shutdown
	}

	requests, messages, streams, countTokens, notFound atomic.Int64
	rejected, injected, completed, clientGone          atomic.Int64

	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns a Simulator configured by cfg (zero fields take their defaults).
func New(cfg Config) *Simulator {
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.MaxHang <= 0 {
		cfg.MaxHang = DefaultMaxHang
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	aliases := cfg.ModelAliases
	if aliases == nil {
		aliases = DefaultModelAliases()
	} else {
		aliases = maps.Clone(aliases)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger{}
	}
	s := &Simulator{cfg: cfg, proto: protocolOf(cfg.Mode), aliases: aliases, done: make(chan struct{})}
	s.server = &fasthttp.Server{
		Handler:               s.Handler,
		ErrorHandler:          s.errorHandler,
		MaxRequestBodySize:    cfg.MaxBodySize,
		IdleTimeout:           DefaultIdleTimeout,
		MaxIdleWorkerDuration: maxIdleWorkerDuration,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                logger,
	}
	return s
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// Serve serves the simulator on ln until Shutdown; it may be called for
// several listeners. It returns nil after Shutdown, ErrShutdown if called
// after it, or the listener's permanent error.
func (s *Simulator) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrShutdown
	}
	// Shutdown closes ln itself: fasthttp's Shutdown misses a listener
	// whose Serve has not registered it yet.
	s.mu.listeners = append(s.mu.listeners, ln)
	s.mu.Unlock()
	return s.server.Serve(ln)
}

// Shutdown stops the simulator: listeners close, every delay, hang and
// stream ends at once (streams without message_stop), idle connections
// close, and Shutdown waits, at most Config.ShutdownTimeout, for every
// connection and stream goroutine to finish. Later calls return the first
// call's result. Requests arriving meanwhile get 503 overloaded_error (in
// Bedrock mode, ServiceUnavailableException).
func (s *Simulator) Shutdown() error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		listeners := s.mu.listeners
		s.mu.listeners = nil
		s.mu.Unlock()
		close(s.done)
		for _, ln := range listeners {
			_ = ln.Close() // fasthttp closes them too; the second close's error means nothing
		}

		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		var err error
		if serr := s.server.ShutdownWithContext(ctx); errors.Is(serr, context.DeadlineExceeded) {
			err = fmt.Errorf("cannot close the simulator's connections within %s: %w", s.cfg.ShutdownTimeout, serr)
		}
		for {
			n := s.running()
			if n == 0 {
				break
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("cannot shut down the simulator within %s: %d requests still running", s.cfg.ShutdownTimeout, n)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	return Stats{
		Requests:    s.requests.Load(),
		Messages:    s.messages.Load(),
		Streams:     s.streams.Load(),
		CountTokens: s.countTokens.Load(),
		NotFound:    s.notFound.Load(),
		Rejected:    s.rejected.Load(),
		Injected:    s.injected.Load(),
		Completed:   s.completed.Load(),
		ClientGone:  s.clientGone.Load(),
		InFlight:    int64(s.running()),
	}
}

// enter registers a request being answered; it reports false once Shutdown
// has begun. Every true enter is matched by one leave.
func (s *Simulator) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	s.mu.running++
	return true
}

func (s *Simulator) leave() {
	s.mu.Lock()
	s.mu.running--
	n := s.mu.running
	s.mu.Unlock()
	if n < 0 {
		panic(fmt.Sprintf("BUG: simulator running count is %d", n))
	}
}

func (s *Simulator) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.running
}

// Handler is the simulator's fasthttp.RequestHandler, usable in any fasthttp
// server. It answers POST /v1/messages and POST /v1/messages/count_tokens
// (in Bedrock mode, POST /model/{modelId}/invoke and
// /model/{modelId}/invoke-with-response-stream), and 404 for anything else.
func (s *Simulator) Handler(ctx *fasthttp.RequestCtx) {
	s.requests.Add(1)
	reqID := s.startResponse(&ctx.Response.Header)
	if !s.enter() {
		s.writeShuttingDown(ctx, reqID)
		return
	}
	if !s.serve(ctx, reqID) {
		s.leave()
	}
}

// serve answers one request: the mode's own checks, then the directives'
// faults or the reply. It reports whether it handed the request's leave
// over to a stream writer.
func (s *Simulator) serve(ctx *fasthttp.RequestCtx, reqID string) (handedOff bool) {
	if s.cfg.OnRequest != nil {
		s.cfg.OnRequest(requestInfo(ctx))
	}
	var req *request
	var model string
	var ok bool
	if s.cfg.Mode == ModeBedrock {
		req, model, ok = s.acceptBedrock(ctx)
	} else {
		req, model, ok = s.acceptAnthropic(ctx, reqID)
	}
	if !ok {
		return false
	}
	return s.answer(ctx, reqID, req, model)
}

// startResponse returns a new request ID and sets the headers every
// response carries on h.
func (s *Simulator) startResponse(h *fasthttp.ResponseHeader) (reqID string) {
	reqID = s.proto.newRequestID()
	setHeaders(h, s.proto.headers(reqID))
	return reqID
}

func (s *Simulator) resolveModel(model string) string {
	if m, ok := s.aliases[model]; ok {
		return m
	}
	return model
}

// errorHandler answers the errors fasthttp's server detects before the
// handler runs.
func (s *Simulator) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	s.requests.Add(1)
	s.rejected.Add(1)
	reqID := s.startResponse(&ctx.Response.Header)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		s.proto.writeTooLarge(ctx, reqID)
		return
	}
	s.proto.writeMalformed(ctx, reqID)
}

// writeShuttingDown answers a request that Shutdown ended or refused, and
// closes its connection.
func (s *Simulator) writeShuttingDown(ctx *fasthttp.RequestCtx, reqID string) {
	ctx.SetConnectionClose()
	s.proto.writeUnavailable(ctx, reqID)
}

// requestInfo copies what RequestInfo needs out of ctx.
func requestInfo(ctx *fasthttp.RequestCtx) RequestInfo {
	h := make(http.Header)
	for k, v := range ctx.Request.Header.All() {
		h.Add(string(k), string(v))
	}
	return RequestInfo{
		Method: string(ctx.Method()),
		Path:   string(ctx.Path()),
		Query:  string(ctx.URI().QueryString()),
		Header: h,
		Body:   append([]byte(nil), ctx.PostBody()...),
	}
}
