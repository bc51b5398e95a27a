package admin

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/tollgate/tollgate/proxy/notify"
	"github.com/tollgate/tollgate/proxy/views"
)

// Notification settings, the outbox and its destinations.

// notificationSettings is the body and answer of the settings routes;
// the webhook's secret is in the answer only when one was just made.
type notificationSettings struct {
	Emails        []string                 `json:"emails"`
	WebhookURL    string                   `json:"webhook_url"`
	WebhookSecret string                   `json:"webhook_secret,omitempty"`
	Secrets       []notify.Secret          `json:"secret_hints,omitempty"`
	Events        []string                 `json:"events"`
	LowBalance    views.Amount             `json:"low_balance"`
	Language      string                   `json:"language"`
	Destinations  []notify.DestinationView `json:"destinations"`
}

func (s *Server) notifier(w http.ResponseWriter) (*notify.Notifier, bool) {
	if s.cfg.Notifier == nil {
		writeError(w, http.StatusNotImplemented, views.APIError, "notifications are not configured")
		return nil, false
	}
	return s.cfg.Notifier, true
}

// settingsOf is the notifier and the account of a settings route ("" for
// the platform's, after checking it exists); ok is false after it answered.
func (s *Server) settingsOf(w http.ResponseWriter, r *http.Request) (n *notify.Notifier, account string, ok bool) {
	if n, ok = s.notifier(w); !ok {
		return nil, "", false
	}
	account = r.PathValue("id")
	if account == "" {
		return n, "", true
	}
	if _, err := s.cfg.Ledger.Settings(account); err != nil {
		ledgerError(w, err)
		return nil, "", false
	}
	return n, account, true
}

func (s *Server) getNotifications(w http.ResponseWriter, r *http.Request) {
	n, account, ok := s.settingsOf(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, settingsView(n, account, n.Settings(account), ""))
}

func settingsView(n *notify.Notifier, account string, st notify.Settings, secret string) notificationSettings {
	v := notificationSettings{Emails: views.OrEmpty(st.Emails), WebhookURL: st.WebhookURL, WebhookSecret: secret, Secrets: st.Secrets,
		Events: views.OrEmpty(st.Events), LowBalance: views.Amount(st.LowBalance), Language: st.Language, Destinations: []notify.DestinationView{}}
	for _, d := range n.Destinations(account) {
		if d.Account == account {
			v.Destinations = append(v.Destinations, d)
		}
	}
	return v
}

// putNotifications replaces an account's (or the platform's) settings.
func (s *Server) putNotifications(w http.ResponseWriter, r *http.Request) {
	n, account, ok := s.settingsOf(w, r)
	if !ok {
		return
	}
	var b notificationSettings
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	st, secret, err := n.SetSettings(account, notify.Settings{Emails: b.Emails, WebhookURL: b.WebhookURL, Events: b.Events,
		LowBalance: int64(b.LowBalance), Language: b.Language})
	if err != nil {
		notifyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsView(n, account, st, secret))
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	n, account, ok := s.settingsOf(w, r)
	if !ok {
		return
	}
	secret, err := n.RotateSecret(account)
	if err != nil {
		notifyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsView(n, account, n.Settings(account), secret))
}

func (s *Server) notificationEvents(w http.ResponseWriter, r *http.Request) {
	n, ok := s.notifier(w)
	if !ok {
		return
	}
	limit, err := views.ParseLimit(r.URL.Query().Get("limit"), 100, 1000)
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, views.NewList(views.OrEmpty(n.Events(r.URL.Query().Get("account"), limit)), ""))
}

func (s *Server) notificationDestinations(w http.ResponseWriter, r *http.Request) {
	n, ok := s.notifier(w)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, views.NewList(views.OrEmpty(n.Destinations(r.URL.Query().Get("account"))), ""))
}

func (s *Server) replayEvent(w http.ResponseWriter, r *http.Request) {
	n, ok := s.notifier(w)
	if !ok {
		return
	}
	count, err := n.Replay(r.PathValue("event_id"))
	if err != nil {
		notifyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"destinations": strconv.Itoa(count)})
}

func (s *Server) enableDestination(w http.ResponseWriter, r *http.Request) {
	n, ok := s.notifier(w)
	if !ok {
		return
	}
	if err := n.Enable(r.PathValue("destination_id")); err != nil {
		notifyError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func notifyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, notify.ErrInvalid):
		badRequest(w, err)
	case errors.Is(err, notify.ErrUnknown):
		writeError(w, http.StatusNotFound, views.NotFoundError, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot record the change")
	}
}
