package admin

import (
	"context"
	"net/http"
	"runtime/debug"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// credential says who may call a route: anyone, the holders of the admin
// token and of operator tokens (by their role's rights), or those plus the
// metrics token.
type credential uint8

const (
	public      credential = iota
	operator               // the admin token, or an operator token whose role has the route's right
	metricsRead            // as operator, or the metrics token
)

// route is one route of the admin API. pattern is written as OpenAPI and
// net/http both write paths ({name} matches one segment, read with
// r.PathValue); docs/openapi.yaml describes every route of this table.
type route struct {
	method, pattern string
	credential      credential
	right           access.Right
	handle          func(s *Server, w http.ResponseWriter, r *http.Request)
}

var routes = []route{
	{"GET", "/healthz", public, access.Read, (*Server).healthz},
	{"GET", "/readyz", public, access.Read, (*Server).readyz},
	{"GET", "/metrics", metricsRead, access.Read, (*Server).metrics},
	{"POST", "/admin/v1/accounts", operator, access.Manage, (*Server).createAccount},
	{"GET", "/admin/v1/accounts/{id}", operator, access.Read, (*Server).getAccount},
	{"PATCH", "/admin/v1/accounts/{id}", operator, access.Manage, (*Server).patchAccount},
	{"POST", "/admin/v1/accounts/{id}/topups", operator, access.Money, (*Server).topUp},
	{"POST", "/admin/v1/accounts/{id}/keys", operator, access.Manage, (*Server).createKey},
	{"GET", "/admin/v1/accounts/{id}/keys", operator, access.Read, (*Server).listKeys},
	{"POST", "/admin/v1/accounts/{id}/freeze", operator, access.Manage, (*Server).freeze},
	{"POST", "/admin/v1/accounts/{id}/unfreeze", operator, access.Manage, (*Server).unfreeze},
	{"POST", "/admin/v1/accounts/{id}/close", operator, access.Manage, (*Server).closeAccount},
	{"POST", "/admin/v1/accounts/{id}/invitations", operator, access.Manage, (*Server).inviteCustomer},
	{"GET", "/admin/v1/accounts/{id}/users", operator, access.Read, (*Server).accountUsers},
	{"GET", "/admin/v1/accounts/{id}/notifications", operator, access.Read, (*Server).getNotifications},
	{"PUT", "/admin/v1/accounts/{id}/notifications", operator, access.Manage, (*Server).putNotifications},
	{"POST", "/admin/v1/accounts/{id}/notifications/rotate-secret", operator, access.Manage, (*Server).rotateWebhookSecret},
	{"GET", "/admin/v1/accounts/{id}/entries", operator, access.Read, (*Server).entries},
	{"GET", "/admin/v1/accounts/{id}/statement", operator, access.Read, (*Server).statement},
	{"PATCH", "/admin/v1/keys/{key_id}", operator, access.Manage, (*Server).patchKey},
	{"DELETE", "/admin/v1/keys/{key_id}", operator, access.Manage, (*Server).revokeKey},
	{"GET", "/admin/v1/calls", operator, access.Read, (*Server).calls},
	{"POST", "/admin/v1/adjustments", operator, access.Money, (*Server).adjust},
	{"GET", "/admin/v1/expiring", operator, access.Read, (*Server).expiring},
	{"GET", "/admin/v1/disputes", operator, access.Read, (*Server).disputes},
	{"GET", "/admin/v1/disputes/{dispute_id}", operator, access.Read, (*Server).dispute},
	{"POST", "/admin/v1/disputes/{dispute_id}/accept", operator, access.Disputes, (*Server).acceptDispute},
	{"POST", "/admin/v1/disputes/{dispute_id}/reject", operator, access.Disputes, (*Server).rejectDispute},
	{"GET", "/admin/v1/notifications/platform", operator, access.Read, (*Server).getNotifications},
	{"PUT", "/admin/v1/notifications/platform", operator, access.Manage, (*Server).putNotifications},
	{"POST", "/admin/v1/notifications/platform/rotate-secret", operator, access.Manage, (*Server).rotateWebhookSecret},
	{"GET", "/admin/v1/notifications/events", operator, access.Read, (*Server).notificationEvents},
	{"POST", "/admin/v1/notifications/events/{event_id}/replay", operator, access.Manage, (*Server).replayEvent},
	{"GET", "/admin/v1/notifications/destinations", operator, access.Read, (*Server).notificationDestinations},
	{"POST", "/admin/v1/notifications/destinations/{destination_id}/enable", operator, access.Manage, (*Server).enableDestination},
	{"GET", "/admin/v1/models", operator, access.Read, (*Server).models},
	{"POST", "/admin/v1/operators", operator, access.Manage, (*Server).createOperator},
	{"GET", "/admin/v1/operators", operator, access.Manage, (*Server).listOperators},
	{"PATCH", "/admin/v1/operators/{operator_id}", operator, access.Manage, (*Server).patchOperator},
	{"POST", "/admin/v1/operators/{operator_id}/tokens", operator, access.Manage, (*Server).mintOperatorToken},
	{"GET", "/admin/v1/operators/{operator_id}/tokens", operator, access.Manage, (*Server).listOperatorTokens},
	{"POST", "/admin/v1/operators/{operator_id}/invitations", operator, access.Manage, (*Server).inviteOperator},
	{"DELETE", "/admin/v1/operator-tokens/{token_id}", operator, access.Manage, (*Server).revokeOperatorToken},
	{"POST", "/admin/v1/backup", operator, access.Manage, (*Server).backup},
	{"GET", "/debug/pprof/{profile}", operator, access.Manage, (*Server).profile},
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
		if rt.credential != public {
			who, ok := s.authenticate(r, rt.credential == metricsRead)
			switch {
			case !ok:
				writeError(tw, http.StatusUnauthorized, views.AuthenticationError, "missing or invalid admin token")
				return
			case !who.role.Allows(rt.right):
				writeError(tw, http.StatusForbidden, views.PermissionError, "the "+string(who.role)+" role may not "+rt.method+" "+rt.pattern)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), actorKey{}, who))
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
			if _, ok := s.authenticate(r, false); !ok {
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
