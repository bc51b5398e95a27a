package admin

import (
	"net/http"
	"runtime/debug"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// access says which token a route needs.
type access uint8

const (
	public      access = iota
	adminOnly          // the admin token
	metricsRead        // the admin token or the metrics token
)

// route is one route of the admin API. pattern is written as OpenAPI and
// net/http both write paths ({name} matches one segment, read with
// r.PathValue); docs/openapi.yaml describes every route of this table.
type route struct {
	method, pattern string
	access          access
	handle          func(s *Server, w http.ResponseWriter, r *http.Request)
}

var routes = []route{
	{"GET", "/healthz", public, (*Server).healthz},
	{"GET", "/readyz", public, (*Server).readyz},
	{"GET", "/metrics", metricsRead, (*Server).metrics},
	{"POST", "/admin/v1/accounts", adminOnly, (*Server).createAccount},
	{"GET", "/admin/v1/accounts/{id}", adminOnly, (*Server).getAccount},
	{"PATCH", "/admin/v1/accounts/{id}", adminOnly, (*Server).patchAccount},
	{"POST", "/admin/v1/accounts/{id}/topups", adminOnly, (*Server).topUp},
	{"POST", "/admin/v1/accounts/{id}/keys", adminOnly, (*Server).createKey},
	{"GET", "/admin/v1/accounts/{id}/keys", adminOnly, (*Server).listKeys},
	{"POST", "/admin/v1/accounts/{id}/freeze", adminOnly, (*Server).freeze},
	{"POST", "/admin/v1/accounts/{id}/unfreeze", adminOnly, (*Server).unfreeze},
	{"POST", "/admin/v1/accounts/{id}/close", adminOnly, (*Server).closeAccount},
	{"GET", "/admin/v1/accounts/{id}/entries", adminOnly, (*Server).entries},
	{"GET", "/admin/v1/accounts/{id}/statement", adminOnly, (*Server).statement},
	{"PATCH", "/admin/v1/keys/{key_id}", adminOnly, (*Server).patchKey},
	{"DELETE", "/admin/v1/keys/{key_id}", adminOnly, (*Server).revokeKey},
	{"GET", "/admin/v1/calls", adminOnly, (*Server).calls},
	{"POST", "/admin/v1/adjustments", adminOnly, (*Server).adjust},
	{"GET", "/admin/v1/expiring", adminOnly, (*Server).expiring},
	{"GET", "/admin/v1/disputes", adminOnly, (*Server).disputes},
	{"GET", "/admin/v1/disputes/{dispute_id}", adminOnly, (*Server).dispute},
	{"POST", "/admin/v1/disputes/{dispute_id}/accept", adminOnly, (*Server).acceptDispute},
	{"POST", "/admin/v1/disputes/{dispute_id}/reject", adminOnly, (*Server).rejectDispute},
	{"GET", "/admin/v1/models", adminOnly, (*Server).models},
	{"POST", "/admin/v1/backup", adminOnly, (*Server).backup},
	{"GET", "/debug/pprof/{profile}", adminOnly, (*Server).profile},
}

// panicsRecovered is shared with the client API's recoveries.
var panicsRecovered = metrics.GetOrCreateCounter(`tollgate_panics_recovered_total`)

// handler wraps a route: a request ID on every answer, the route's token,
// and a panic answered 500 (when nothing was written yet) and logged with
// the request ID and stack, the listener serving on.
func (s *Server) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := string(ids.AppendRequestID(nil))
		w.Header().Set("request-id", id)
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				panicsRecovered.Inc()
				s.cfg.Logger.Printf("admin: panic in %s %s (request %s): %v\n%s", rt.method, rt.pattern, id, p, debug.Stack())
				if !tw.wrote {
					writeError(tw, http.StatusInternalServerError, views.APIError, "internal error")
				}
			}
		}()
		if rt.access != public && !s.authorized(r, rt.access == metricsRead) {
			writeError(tw, http.StatusUnauthorized, views.AuthenticationError, "missing or invalid admin token")
			return
		}
		rt.handle(s, tw, r)
	})
}

// noRoute answers a request no route matched: 405 when the path is a
// route's under another method (to a caller with the admin token, 401 to
// others), 404 otherwise.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("request-id", string(ids.AppendRequestID(nil)))
	for _, rt := range routes {
		if rt.method == r.Method {
			continue
		}
		other := r.Clone(r.Context())
		other.Method = rt.method
		if _, pattern := s.mux.Handler(other); pattern != "/" {
			if !s.authorized(r, false) {
				writeError(w, http.StatusUnauthorized, views.AuthenticationError, "missing or invalid admin token")
				return
			}
			writeError(w, http.StatusMethodNotAllowed, views.InvalidRequestError, "method "+r.Method+" not allowed on "+r.URL.Path)
			return
		}
	}
	writeError(w, http.StatusNotFound, views.NotFoundError, "no such route: "+r.Method+" "+r.URL.Path)
}

// trackingWriter remembers whether an answer has begun, so a recovered
// panic answers only when it has not.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(status int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(status)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController (which pprof's profiles use to
// extend the write deadline) the connection's writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := sonic.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot encode the response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers an error in the contract's shape, with the request
// ID of the request-id header.
func writeError(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(views.AppendError(nil, typ, message, w.Header().Get("request-id")))
}

// badRequest answers 400 invalid_request_error with err's message.
func badRequest(w http.ResponseWriter, err error) {
	writeError(w, http.StatusBadRequest, views.InvalidRequestError, err.Error())
}

// ledgerError answers an error from the ledger with its status.
func ledgerError(w http.ResponseWriter, err error) {
	status, typ, message := views.LedgerError(err)
	writeError(w, status, typ, message)
}
