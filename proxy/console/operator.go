package console

import (
	"log"
	"net/http"

	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/notify"
)

// OperatorConfig is what the operators' console needs of the gateway.
type OperatorConfig struct {
	Users     access.UserStore
	Operators *access.Store
	Books     Books
	Catalogue func() *meter.Catalogue
	// KeepCreditOnClose keeps a closed account's credit instead of
	// forfeiting it (policies.closed_account_credit).
	KeepCreditOnClose bool
	// CustomerConsoleURL starts the invitation links for customers.
	CustomerConsoleURL string
	// Notifier mails invitations where email is configured and shows the
	// notifications' outbox (nil: notifications are off).
	Notifier *notify.Notifier
	// SignInAttempts counts failed sign-ins per user (nil: this process
	// counts them itself).
	SignInAttempts access.Attempts
	// Ready says why the gateway cannot take holds (nil: it can); Health
	// gives the headline figures of the health page.
	Ready  func() error
	Health func() []Figure
	Logger *log.Logger
}

// Figure is one headline figure of the health page.
type Figure struct {
	Name, Value string
}

// operator is the operators' console.
type operator struct {
	*site
	cfg OperatorConfig
}

// NewOperator returns the operators' console, to serve under /console/ on
// the admin listener.
func NewOperator(cfg OperatorConfig) http.Handler {
	o := &operator{cfg: cfg}
	o.site = newSite(access.RealmOperator, cfg.Users, "tg_op_session", o.admit, funcs(), cfg.Logger)
	o.site.roleOf = o.roleOf
	if cfg.SignInAttempts != nil {
		o.site.byUser = cfg.SignInAttempts
	}
	o.handle("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/accounts", http.StatusSeeOther)
	})
	o.handle("GET /console/accounts", o.accounts)
	o.allow(access.Manage, "POST /console/accounts", o.createAccount)
	o.handle("GET /console/accounts/{id}", o.account)
	o.allow(access.Money, "POST /console/accounts/{id}/topup", o.topUp)
	o.allow(access.Money, "POST /console/accounts/{id}/adjust", o.adjust)
	o.allow(access.Manage, "POST /console/accounts/{id}/freeze", o.freeze)
	o.allow(access.Manage, "POST /console/accounts/{id}/unfreeze", o.unfreeze)
	o.allow(access.Manage, "GET /console/accounts/{id}/close", o.confirmClose)
	o.allow(access.Manage, "POST /console/accounts/{id}/close", o.closeAccount)
	o.allow(access.Manage, "POST /console/accounts/{id}/invite", o.invite)
	o.handle("GET /console/disputes", o.disputes)
	o.allow(access.Disputes, "POST /console/disputes/{dispute_id}/accept", o.acceptDispute)
	o.allow(access.Disputes, "POST /console/disputes/{dispute_id}/reject", o.rejectDispute)
	o.handle("GET /console/health", o.health)
	if cfg.Notifier != nil {
		o.handle("GET /console/notifications", o.notifications)
		o.allow(access.Manage, "POST /console/notifications/events/{event_id}/replay", o.replay)
		o.allow(access.Manage, "POST /console/notifications/destinations/{destination_id}/enable", o.enable)
	}
	return o.site
}

// admit lets in the users of operators in force.
func (o *operator) admit(u access.User) (bool, error) {
	op, ok := o.cfg.Operators.Operator(u.Subject)
	return ok && !op.Disabled, nil
}

func (o *operator) roleOf(u access.User) access.Role {
	op, _ := o.cfg.Operators.Operator(u.Subject)
	return op.Role
}

// allow registers a page that needs right; other roles get 403.
func (o *operator) allow(right access.Right, pattern string, h http.HandlerFunc) {
	o.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		if role := o.roleOf(userOf(r)); !role.Allows(right) {
			o.fail(w, r, http.StatusForbidden, "Your role ("+string(role)+") may not do this.")
			return
		}
		h(w, r)
	})
}

// actorOf is who a change is recorded as: the operator, as the admin
// API's operator tokens are.
func actorOf(r *http.Request) string { return "op:" + userOf(r).Subject }
