package console

import (
	"net/http"
	"strconv"

	"github.com/tollgate/tollgate/proxy/notify"
)

// The operators' view of notifications: every destination with its queue
// and attempts, the latest events, replays and re-enabling. The routes
// exist only when notifications are on (NewOperator).

type outboxData struct {
	Destinations []notify.DestinationView
	Events       []notify.Event
}

// outboxEvents is how many of the latest events the page lists.
const outboxEvents = 100

func (o *operator) notifications(w http.ResponseWriter, r *http.Request) {
	o.renderOutbox(w, r, http.StatusOK, page{})
}

func (o *operator) renderOutbox(w http.ResponseWriter, r *http.Request, status int, p page) {
	account := r.URL.Query().Get("account")
	p.Title, p.Nav = "Notifications", "notifications"
	p.Data = outboxData{Destinations: o.cfg.Notifier.Destinations(account), Events: o.cfg.Notifier.Events(account, outboxEvents)}
	o.render(w, r, status, "o_notifications.html", p)
}

func (o *operator) replay(w http.ResponseWriter, r *http.Request) {
	n, err := o.cfg.Notifier.Replay(r.PathValue("event_id"))
	o.outboxDone(w, r, "Event replayed to "+strconv.Itoa(n)+" destinations.", err)
}

func (o *operator) enable(w http.ResponseWriter, r *http.Request) {
	o.outboxDone(w, r, "Destination enabled: it retries at once.", o.cfg.Notifier.Enable(r.PathValue("destination_id")))
}

func (o *operator) outboxDone(w http.ResponseWriter, r *http.Request, notice string, err error) {
	if err != nil {
		o.renderOutbox(w, r, http.StatusNotFound, page{Problem: err.Error()})
		return
	}
	o.renderOutbox(w, r, http.StatusOK, page{Notice: notice})
}
