package console

import (
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/notify"
)

// CustomerConfig is what the customers' console needs of the gateway.
type CustomerConfig struct {
	Users access.UserStore
	Books Books
	// Served lists the models the gateway serves at a time, Retirement
	// when it stops serving one (zero for never): the Prices page.
	Served     func(now time.Time) []*meter.Model
	Retirement func(m *meter.Model, now time.Time) time.Time
	// DisputeWindow is how old a call a customer may dispute.
	DisputeWindow time.Duration
	// AccountDefaults are the limits an account's "default" (-1) stands
	// for, so a key's limits can be checked against the account's.
	AccountDefaults ledger.Limits
	// SignInAttempts counts failed sign-ins per user (nil: this process
	// counts them itself).
	SignInAttempts access.Attempts
	// MaxKeys bounds an account's active keys (0: 50).
	MaxKeys int
	// Notifier keeps where the account's notices go (nil: notifications
	// are off and the page says so).
	Notifier *notify.Notifier
	Logger   *log.Logger
}

// customer is the customers' console.
type customer struct {
	*site
	cfg CustomerConfig
}

// NewCustomer returns the customers' console, to serve under /console/ on
// the client listener.
func NewCustomer(cfg CustomerConfig) http.Handler {
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 50
	}
	if cfg.DisputeWindow == 0 {
		cfg.DisputeWindow = 30 * 24 * time.Hour
	}
	c := &customer{cfg: cfg}
	c.site = newSite(access.RealmCustomer, cfg.Users, "tg_session", c.admit, funcs(), cfg.Logger)
	c.site.addressOf = forwardedAddress
	if cfg.SignInAttempts != nil {
		c.site.byUser = cfg.SignInAttempts
	}
	c.handle("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
	})
	c.handle("GET /console/overview", c.overview)
	c.handle("GET /console/keys", c.keys)
	c.handle("POST /console/keys", c.createKey)
	c.handle("GET /console/keys/{key_id}/revoke", c.confirmRevoke)
	c.handle("POST /console/keys/{key_id}/revoke", c.revokeKey)
	c.handle("GET /console/calls", c.calls)
	c.handle("GET /console/calls/{request_id}", c.call)
	c.handle("GET /console/statement", c.statement)
	c.handle("GET /console/statement.csv", c.statementCSV)
	c.handle("GET /console/statement.json", c.statementJSON)
	c.handle("GET /console/prices", c.prices)
	c.handle("GET /console/disputes", c.disputes)
	c.handle("POST /console/disputes", c.fileDispute)
	c.handle("GET /console/notifications", c.notifications)
	c.handle("POST /console/notifications", c.saveNotifications)
	c.handle("POST /console/notifications/rotate", c.rotateSecret)
	return c.site
}

// admit refuses the users of a closed or unknown account.
func (c *customer) admit(u access.User) (bool, error) {
	a, err := c.cfg.Books.Account(u.Subject)
	if errors.Is(err, ledger.ErrUnknownAccount) {
		return false, nil
	}
	return err == nil && a.ClosedAtNanos == 0, err
}

// accountOf is the signed-in user's account.
func accountOf(r *http.Request) string { return userOf(r).Subject }
