package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy/notify"
)

// The customer's notification settings: where the account's notices go.

type notificationsData struct {
	Settings notify.Settings
	Types    []string
	// Emails and LowBalance are the form's fields as shown.
	Emails, LowBalance string
	// Secret is a webhook secret just made, shown this once.
	Secret       string
	Destinations []notify.DestinationView
}

func (c *customer) notifications(w http.ResponseWriter, r *http.Request) {
	c.renderNotifications(w, r, http.StatusOK, page{}, "")
}

func (c *customer) renderNotifications(w http.ResponseWriter, r *http.Request, status int, p page, secret string) {
	if c.cfg.Notifier == nil {
		c.fail(w, r, http.StatusNotFound, "Notifications are not enabled on this platform.")
		return
	}
	account := accountOf(r)
	s := c.cfg.Notifier.Settings(account)
	p.Title, p.Nav = "Notifications", "notifications"
	p.Data = notificationsData{Settings: s, Types: notify.Types, Emails: strings.Join(s.Emails, ", "), LowBalance: money.Format(s.LowBalance),
		Secret: secret, Destinations: c.cfg.Notifier.Destinations(account)}
	c.render(w, r, status, "c_notifications.html", p)
}

// saveNotifications keeps the form's settings; the first webhook URL gets
// a secret, shown this once.
func (c *customer) saveNotifications(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Notifier == nil {
		c.fail(w, r, http.StatusNotFound, "Notifications are not enabled on this platform.")
		return
	}
	f := r.PostForm
	s := notify.Settings{WebhookURL: strings.TrimSpace(f.Get("webhook_url")), Language: strings.TrimSpace(f.Get("language"))}
	for _, e := range strings.Split(f.Get("emails"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			s.Emails = append(s.Emails, e)
		}
	}
	for _, t := range f["events"] {
		if slices.Contains(notify.Types, t) {
			s.Events = append(s.Events, t)
		}
	}
	if len(s.Events) == len(notify.Types) {
		s.Events = nil // every type, including those to come
	}
	low, err := money.Parse(strings.TrimSpace(f.Get("low_balance")))
	if err != nil && strings.TrimSpace(f.Get("low_balance")) != "" {
		c.renderNotifications(w, r, http.StatusBadRequest, page{Problem: "low_balance: credits, such as 5 or 2.50"}, "")
		return
	}
	s.LowBalance = low
	_, secret, err := c.cfg.Notifier.SetSettings(accountOf(r), s)
	if err != nil {
		c.renderNotifications(w, r, http.StatusBadRequest, page{Problem: strings.TrimPrefix(err.Error(), "notify: invalid settings: ")}, "")
		return
	}
	notice := "Saved."
	if secret != "" {
		notice = "Saved. Copy the webhook's signing secret now: it is shown only this once."
	}
	c.renderNotifications(w, r, http.StatusOK, page{Notice: notice}, secret)
}

func (c *customer) rotateSecret(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Notifier == nil {
		c.fail(w, r, http.StatusNotFound, "Notifications are not enabled on this platform.")
		return
	}
	secret, err := c.cfg.Notifier.RotateSecret(accountOf(r))
	if err != nil {
		c.renderNotifications(w, r, http.StatusBadRequest, page{Problem: "Set a webhook URL first."}, "")
		return
	}
	c.renderNotifications(w, r, http.StatusOK, page{Notice: "New secret made; the old one keeps signing for 24 hours. Copy it now: it is shown only this once."}, secret)
}
