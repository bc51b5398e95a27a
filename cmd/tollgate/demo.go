package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/admin"
)

const (
	demoAccount = "demo"
	demoKeyName = "demo"
	demoCredit  = 10 * money.NanosPerCredit
)

// demoInfo is what the demo prints about the running gateway.
type demoInfo struct {
	// client and admin are the APIs' base URLs.
	client, admin string
	// token is the admin token; it is printed only when tokenGenerated
	// (TOLLGATE_ADMIN_TOKEN was unset), never echoed from the environment.
	token          string
	tokenGenerated bool
	// users and operators are the consoles' (nil when the consoles are
	// off): the demo invites a customer and an operator.
	users     access.UserStore
	operators *access.Store
}

// runDemo sets up what `make run` shows: the demo account (created and
// credited once), a fresh demo key (the previous one revoked: keys are
// stored only as hashes, so an old secret cannot be shown again), and the
// commands to try.
func runDemo(w io.Writer, g *proxy.Gateway, info demoInfo) error {
	l := g.Ledger()
	if _, err := l.CreateAccount(ledger.AccountSpec{ID: demoAccount, Email: "demo@example.com", Limits: ledger.DefaultLimits}); err != nil && !errors.Is(err, ledger.ErrAccountExists) {
		return err
	}
	if _, _, err := l.TopUp(ledger.TopUpRequest{Account: demoAccount, Amount: demoCredit, OrderID: "demo-initial-credit", Credit: ledger.CreditPaid, Actor: "demo"}); err != nil {
		return err
	}
	for _, k := range l.Keys(demoAccount) {
		if k.Name == demoKeyName && !k.Revoked {
			if err := l.RevokeKey(k.ID); err != nil {
				return err
			}
		}
	}
	secret, _, err := admin.MintKey(g.Ledger(), ledger.Key{AccountID: demoAccount, Name: demoKeyName, Limits: ledger.DefaultLimits})
	if err != nil {
		return err
	}
	consoles, err := demoInvitations(info)
	if err != nil {
		return err
	}
	token := "$TOLLGATE_ADMIN_TOKEN (as you set it)"
	if info.tokenGenerated {
		token = info.token + " (generated: TOLLGATE_ADMIN_TOKEN was not set)"
	}
	fmt.Fprintf(w, `
Tollgate is ready.
  client API    %[1]s
  admin API     %[2]s
  admin token   %[3]s
  demo key      %[4]s   (account %[5]q)

Stream a reply:
  curl -sN %[1]s/v1/messages -H "x-api-key: %[4]s" -H "anthropic-version: 2023-06-01" -H "content-type: application/json" -d '{"model":"claude-haiku-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Hello from Tollgate"}]}'

See the balance go down:
  curl -s %[1]s/v1/balance -H "x-api-key: %[4]s"
%[6]s
`, info.client, info.admin, token, secret, demoAccount, consoles)
	return nil
}

// Who the demo invites to the consoles.
const (
	demoOperator      = "demo-operator"
	demoOperatorEmail = "operator@example.com"
	demoCustomerEmail = "demo@example.com"
)

// demoInvitations invites a user of the demo account and an operator (made
// once, role admin) to the consoles, and says where to go; each run makes
// new links (a link works once), which set the password again.
func demoInvitations(info demoInfo) (string, error) {
	if info.users == nil {
		return "", nil
	}
	if _, err := info.operators.CreateOperator(access.Operator{ID: demoOperator, Email: demoOperatorEmail, Role: access.RoleAdmin}); err != nil && !errors.Is(err, access.ErrExists) {
		return "", err
	}
	_, customer, _, err := admin.Invite(context.Background(), info.users, nil, access.RealmCustomer, demoAccount, demoCustomerEmail, "demo", info.client)
	if err != nil {
		return "", err
	}
	_, operator, _, err := admin.Invite(context.Background(), info.users, nil, access.RealmOperator, demoOperator, demoOperatorEmail, "demo", info.admin)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`
The consoles (each link sets a password once, within 7 days; make run prints new ones):
  customers   %s/console/   as %s:  %s
  operators   %s/console/   as %s:  %s
`, info.client, demoCustomerEmail, customer, info.admin, demoOperatorEmail, operator), nil
}
