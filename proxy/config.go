package proxy

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Config is the gateway's runtime configuration. cmd/tollgate fills it from
// configs/tollgate.yaml and flags; every field documents its default, which
// setDefaults applies to zero values.
type Config struct {
	// Upstreams are the providers calls are forwarded to. At least one is
	// required, at most 16; names are unique. A call goes to the upstreams
	// that serve its model, ordered by Priority and Weight (route.go).
	Upstreams []upstream.Config

	// StickyRouting keeps an account on one upstream among upstreams of
	// equal priority (chosen by a hash of the account, in proportion to the
	// weights) so that its prompt caches keep hitting; false spreads every
	// call by weight on its own. Default false.
	StickyRouting bool
	// UpstreamMaxFailures is how many failures in a row (connection errors,
	// 429, 5xx, 529, errors about the platform's account) take an upstream
	// out of service for UpstreamBackoff. Default 3.
	UpstreamMaxFailures int
	// UpstreamBackoff is how long an upstream stays out of service. Default 30s.
	UpstreamBackoff time.Duration

	// MaxRequestBodyBytes bounds a request body; larger ones get 413 before
	// they are read in full. Default 32 MiB (Anthropic's limit).
	MaxRequestBodyBytes int
	// MaxResponseBodyBytes bounds a non-streaming upstream reply and an
	// upstream error body. Default 64 MiB.
	MaxResponseBodyBytes int
	// MaxEventBytes bounds one SSE event the meter buffers; larger events are
	// forwarded but not read. Default 1 MiB.
	MaxEventBytes int

	// ConnectTimeout bounds connecting to an upstream. Default 10s.
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait for a streaming reply's headers.
	// Default 60s.
	FirstByteTimeout time.Duration
	// FirstByteTimeoutNonStreaming bounds the wait for a non-streaming reply.
	// Default 600s.
	FirstByteTimeoutNonStreaming time.Duration
	// IdleTimeout bounds the silence between two reads of a streamed reply.
	// Default 120s.
	IdleTimeout time.Duration
	// TotalTimeout bounds a whole call. Default 30 minutes.
	TotalTimeout time.Duration
	// DrainTimeout bounds draining an upstream after the client left.
	// Default 5 minutes.
	DrainTimeout time.Duration

	// ClientHeaderTimeout bounds reading a client's request headers, from
	// its first byte, against slow clients. Default 10s.
	ClientHeaderTimeout time.Duration
	// ClientReadTimeout bounds reading a client's request body once its
	// headers are in. Default 60s.
	ClientReadTimeout time.Duration
	// ClientIdleTimeout bounds a keep-alive connection's wait for its next
	// request. Default 120s.
	ClientIdleTimeout time.Duration
	// MaxConnsPerIP bounds a client address's connections. Default 1024;
	// -1 means unlimited.
	MaxConnsPerIP int
	// MaxBodyBytesInFlight bounds the request-body bytes all calls read at
	// once; a call that finds no room gets 503 overloaded_error. At least
	// MaxRequestBodyBytes. Default 256 MiB (cmd/tollgate sizes it for the
	// machine).
	MaxBodyBytesInFlight int64
	// Concurrency bounds the connections served at once. Default 65536.
	Concurrency int

	// HoldMaxOutputTokens caps max_tokens in the hold (0: no cap). Default 0.
	HoldMaxOutputTokens int64
	// DefaultWebSearchUses is what the hold assumes for a web_search tool
	// without max_uses. Default 10.
	DefaultWebSearchUses int64

	// DisconnectPolicy is what happens when a client leaves mid-stream:
	// "drain" (default: read the upstream to its final usage, in a bounded
	// pool) or "abort" (stop it and estimate).
	DisconnectPolicy string
	// DrainWorkers bounds the drains in flight; when all are busy, a
	// disconnected call is aborted and estimated. Default 256.
	DrainWorkers int
	// RecoveryPolicy ends holds found open at start and calls cut off by the
	// shutdown grace period: "void" (default: charge nothing) or
	// "charge_hold" (charge the hold).
	RecoveryPolicy string

	// DeniedBetas are anthropic-beta values refused with 400.
	DeniedBetas []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// IPDigestKey keys the HMAC of client addresses in call records.
	IPDigestKey []byte

	// Console serves the customers' console under /console/ (nil: none).
	Console fasthttp.RequestHandler

	// Credit lends credit from outside the ledger (cluster mode's leases);
	// nil: the ledger's balance is all there is.
	Credit CreditSource

	// DefaultKeyLimits and DefaultAccountLimits apply where a key or account
	// says "default" (-1). 0 means unlimited.
	DefaultKeyLimits, DefaultAccountLimits Limits
	// CountTokensRPM is each key's own requests-per-minute bucket for
	// count_tokens (its RPM limit, when lower, applies there too). Default
	// 600; -1 means unlimited.
	CountTokensRPM int64
	// ReadRPM is each key's requests-per-minute bucket for the read routes
	// (balance, calls, statement). Default 600; -1 means unlimited.
	ReadRPM int64

	// DisputeWindow is how old a call a customer may still dispute (POST
	// /v1/disputes). Default 30 days.
	DisputeWindow time.Duration

	// ClientTLS, when set, serves the client API over TLS (certificates
	// through GetCertificate, so that they can be replaced while serving);
	// nil serves plain HTTP.
	ClientTLS *tls.Config
}

// Limits are request, token and concurrency limits; 0 means unlimited.
type Limits struct {
	RPM, TPM, Concurrency int64
}

// Disconnect and recovery policies.
const (
	PolicyDrain      = "drain"
	PolicyAbort      = "abort"
	PolicyVoid       = "void"
	PolicyChargeHold = "charge_hold"
)

func (c *Config) setDefaults() error {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	defInt(&c.MaxRequestBodyBytes, 32<<20)
	defInt(&c.MaxResponseBodyBytes, 64<<20)
	defInt(&c.MaxEventBytes, 1<<20)
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.FirstByteTimeout, 60*time.Second)
	def(&c.FirstByteTimeoutNonStreaming, 600*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.TotalTimeout, 30*time.Minute)
	def(&c.DrainTimeout, 5*time.Minute)
	def(&c.ClientHeaderTimeout, 10*time.Second)
	def(&c.DisputeWindow, 30*24*time.Hour)
	def(&c.ClientReadTimeout, 60*time.Second)
	defInt(&c.MaxConnsPerIP, 1024)
	if c.MaxBodyBytesInFlight == 0 {
		c.MaxBodyBytesInFlight = 256 << 20
	}
	if c.MaxBodyBytesInFlight < int64(c.MaxRequestBodyBytes)+1 {
		return fmt.Errorf("request-body bytes in flight (%d) must be above the body limit (%d)", c.MaxBodyBytesInFlight, c.MaxRequestBodyBytes)
	}
	defInt64 := func(p *int64, d int64) {
		if *p == 0 {
			*p = d
		}
	}
	defInt64(&c.CountTokensRPM, 600)
	defInt64(&c.ReadRPM, 600)
	def(&c.ClientIdleTimeout, 120*time.Second)
	defInt(&c.Concurrency, 65536)
	defInt(&c.DrainWorkers, 256)
	if c.DefaultWebSearchUses == 0 {
		c.DefaultWebSearchUses = 10
	}
	if c.DisconnectPolicy == "" {
		c.DisconnectPolicy = PolicyDrain
	}
	if c.RecoveryPolicy == "" {
		c.RecoveryPolicy = PolicyVoid
	}
	if c.DisconnectPolicy != PolicyDrain && c.DisconnectPolicy != PolicyAbort {
		return fmt.Errorf("disconnect policy %q: want drain or abort", c.DisconnectPolicy)
	}
	if c.RecoveryPolicy != PolicyVoid && c.RecoveryPolicy != PolicyChargeHold {
		return fmt.Errorf("recovery policy %q: want void or charge_hold", c.RecoveryPolicy)
	}
	if len(c.Upstreams) == 0 {
		return fmt.Errorf("no upstream configured")
	}
	if len(c.Upstreams) > upstream.MaxRoutes {
		return fmt.Errorf("%d upstreams configured: at most %d", len(c.Upstreams), upstream.MaxRoutes)
	}
	defInt(&c.UpstreamMaxFailures, 3)
	def(&c.UpstreamBackoff, 30*time.Second)
	names := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if names[u.Name] {
			return fmt.Errorf("upstream name %q is used twice", u.Name)
		}
		names[u.Name] = true
		if err := u.SetDefaults(); err != nil {
			return err
		}
	}
	if len(c.IPDigestKey) == 0 {
		return fmt.Errorf("no IP digest key")
	}
	return nil
}

// CreditSource lends the gateway's ledger credit held elsewhere: in cluster
// mode, PostgreSQL's, by leases (ledger/cluster); and reads what every node
// shares there.
type CreditSource interface {
	// Ensure makes at least need nano-credits available to account in the
	// ledger. It fails with a *ledger.InsufficientError when the account
	// has not that much (402); any other error is 503.
	Ensure(account string, need int64) error
	SharedBooks
}

// SharedBooks is what the customer's read routes and disputes use: the
// ledger, or in cluster mode what every node shares (PostgreSQL's balance,
// statements, call records and disputes), so that a customer reads the same
// from every node.
type SharedBooks interface {
	Account(id string) (ledger.AccountInfo, error)
	Statement(account string, fromNanos, toNanos int64) (ledger.Statement, error)
	Calls(account string, f ledger.CallFilter, before uint64, limit int) ([]*ledger.CallRecord, uint64, error)
	CallByRequestID(requestID string) (*ledger.CallRecord, error)
	FileDispute(d ledger.Dispute) (ledger.Dispute, bool, error)
	Dispute(id string) (ledger.Dispute, bool)
	Disputes(account string, state *ledger.DisputeState) []ledger.Dispute
}
