package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/notify"
)

// Config is what the admin API needs of the gateway.
type Config struct {
	Ledger *ledger.Ledger
	// Books decides accounts, keys and money: nil for Ledger itself; in
	// cluster mode, PostgreSQL's authority (ledger/cluster). Backups and
	// the operators' console use Ledger either way.
	Books Books
	// Catalogue returns the catalogue in force (it changes on reload).
	Catalogue func() *meter.Catalogue
	// Token is the admin token every route but /healthz and /readyz needs;
	// MetricsToken ("" for none) is also accepted by /metrics.
	Token, MetricsToken string
	// KeepCreditOnClose keeps a closed account's credit (frozen with it)
	// instead of forfeiting it by an adjustment.
	KeepCreditOnClose bool
	// DisputeWindow bounds how old a call an adjustment may name (default
	// 30 days).
	DisputeWindow time.Duration
	// Backup writes a copy of the data directory to dir (nil: backups are
	// not configured, and POST /admin/v1/backup answers 501).
	Backup func(dir string, includeIPDigestKey bool) error
	// Ready says why the gateway cannot take holds (nil error: it can).
	Ready func() error
	// Access holds the operators and their tokens (nil: the admin token
	// alone).
	Access *access.Store
	// Users are the consoles' users (nil: no consoles); invitation links
	// start with CustomerConsoleURL or OperatorConsoleURL (such as
	// "http://127.0.0.1:8080").
	Users                                  access.UserStore
	CustomerConsoleURL, OperatorConsoleURL string
	// Notifier keeps the notification settings and the outbox (nil:
	// notifications are off, and their routes answer 501).
	Notifier *notify.Notifier
	// Console serves the operators' console under /console/ (nil: none).
	Console http.Handler
	// TLS, when set, serves the API over TLS.
	TLS    *tls.Config
	Logger *log.Logger
}

// Books is where accounts, keys, top-ups and adjustments are decided and
// read: a *ledger.Ledger, or cluster mode's *cluster.Authority, which has
// the same methods and errors.
type Books interface {
	CreateAccount(spec ledger.AccountSpec) (ledger.AccountInfo, error)
	Account(id string) (ledger.AccountInfo, error)
	UpdateAccount(id string, p ledger.AccountPatch) (ledger.AccountInfo, error)
	SetFrozen(id string, frozen bool, actor string) error
	CloseAccount(id, actor string) (info ledger.AccountInfo, closed bool, err error)
	TopUp(r ledger.TopUpRequest) (e ledger.Entry, created bool, err error)
	Adjust(r ledger.AdjustRequest) (e ledger.Entry, created bool, err error)
	Adjustment(idempotencyKey string) (ledger.Entry, bool)
	Entries(account string, before uint64, limit int) ([]ledger.Entry, bool, error)
	Statement(account string, fromNanos, toNanos int64) (ledger.Statement, error)
	CallByRequestID(requestID string) (*ledger.CallRecord, error)
	Calls(account string, f ledger.CallFilter, before uint64, limit int) ([]*ledger.CallRecord, uint64, error)
	CallsByTime(sinceNanos, untilNanos int64, cursor ledger.CallCursor, limit int) ([]*ledger.CallRecord, ledger.CallCursor, bool, error)
	// Accounts calls fn with every account (an error only from a database).
	Accounts(fn func(ledger.AccountInfo)) error
	Dispute(id string) (ledger.Dispute, bool)
	Disputes(account string, state *ledger.DisputeState) []ledger.Dispute
	AcceptDispute(id string, refund int64, note, actor string) (ledger.Dispute, error)
	RejectDispute(id, reason, actor string) (ledger.Dispute, error)
	CreateKeyWithin(k ledger.Key, q ledger.KeyQuota) (*ledger.Key, error)
	Key(id string) *ledger.Key
	Keys(account string) []*ledger.Key
	UpdateKey(id string, p ledger.KeyPatch) (*ledger.Key, error)
	RevokeKey(id string) error
}

// Limits of the admin listener: generous for operators' scripts, bounded
// for anything else that reaches it.
const (
	maxBodyBytes      = 1 << 20
	maxHeaderBytes    = 64 << 10
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 5 * time.Minute // backups and CPU profiles take a while
	idleTimeout       = time.Minute
)

// Server serves the admin API.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	http  *http.Server
	token [sha256.Size]byte
	// metricsToken is the digest of Config.MetricsToken (zero when unset).
	metricsToken [sha256.Size]byte
}

// New returns a Server for cfg; it refuses a Config without a token.
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("no admin token")
	}
	if cfg.DisputeWindow == 0 {
		cfg.DisputeWindow = 30 * 24 * time.Hour
	}
	if cfg.Books == nil {
		cfg.Books = cfg.Ledger
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), token: sha256.Sum256([]byte(cfg.Token))}
	if cfg.MetricsToken != "" {
		s.metricsToken = sha256.Sum256([]byte(cfg.MetricsToken))
	}
	for _, r := range routes {
		s.mux.Handle(r.method+" "+r.pattern, s.handler(r))
	}
	if cfg.Console != nil {
		s.mux.Handle("/console/", cfg.Console)
	}
	s.mux.HandleFunc("/", s.noRoute)
	s.http = &http.Server{
		Handler:           http.MaxBytesHandler(s.mux, maxBodyBytes),
		TLSConfig:         cfg.TLS,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          cfg.Logger,
	}
	return s, nil
}

// Serve serves the admin API on ln until Shutdown, over TLS when
// Config.TLS is set; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits for running requests
// until ctx ends, then closes the connections that are left.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return s.http.Close()
	}
	return nil
}

// ServeHTTP serves one request (for tests and for embedding the API in
// another server).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.http.Handler.ServeHTTP(w, r) }

// caller is who a request comes from: the actor its changes are recorded
// under and its role.
type caller struct {
	actor string
	role  access.Role
}

// authenticate finds who presents the request's bearer token: the admin
// token (role admin, actor "admin"), an operator's token (its role, actor
// "op:<id>"), or, when acceptMetricsToken, the metrics token (reads only).
// The admin and metrics tokens are compared in constant time, as SHA-256
// digests so the length does not leak either; operator tokens are looked up
// by their hash.
func (s *Server) authenticate(r *http.Request, acceptMetricsToken bool) (caller, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		return caller{}, false
	}
	given := sha256.Sum256([]byte(token))
	switch {
	case subtle.ConstantTimeCompare(given[:], s.token[:]) == 1:
		return caller{actor: adminActor, role: access.RoleAdmin}, true
	case acceptMetricsToken && s.cfg.MetricsToken != "" && subtle.ConstantTimeCompare(given[:], s.metricsToken[:]) == 1:
		return caller{actor: "metrics", role: access.RoleSupport}, true
	case s.cfg.Access != nil:
		if o, ok := s.cfg.Access.Authenticate([]byte(token)); ok {
			return caller{actor: "op:" + o.ID, role: o.Role}, true
		}
	}
	return caller{}, false
}
