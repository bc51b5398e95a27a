package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/console"
)

// TestClusterConsoles drives the consoles of a two-node cluster in
// headless Chromium, every step on the other node than the one before, as
// people behind a load balancer use them: an operator invited through node
// 0 sets a password on node 1 and is signed in on node 0 with that
// session; an account made and topped up on node 0's console shows its
// credit on node 1's; a customer invited on node 1 accepts on node 0, makes
// a key on node 1, calls through node 0 with the official SDK and sees the
// call on node 1; signing out everywhere on one node ends the customer's
// session on the other; the invitation used on one node is refused on the
// other; wrong passwords spread over the nodes meet one limit.
func TestClusterConsoles(t *testing.T) {
	c := newTestCluster(t, 2)
	n0, n1 := c.nodes[0], c.nodes[1]
	admin0, admin1 := "http://"+n0.admin, "http://"+n1.admin
	client0, client1 := "http://"+n0.client, "http://"+n1.client

	if st, out := n0.adminDo("POST", "/admin/v1/operators", `{"id":"olga","email":"olga@platform.test","role":"admin"}`); st != 201 {
		t.Fatalf("cannot create operator: %d %v", st, out)
	}
	eventually(t, 5*time.Second, "the operator on node 1", func() bool {
		st, _ := n1.adminDo("GET", "/admin/v1/operators/olga/tokens", "")
		return st == 200
	})
	st, inv := n0.adminDo("POST", "/admin/v1/operators/olga/invitations", `{}`)
	if st != 201 {
		t.Fatalf("operator invitation: %d %v", st, inv)
	}
	link := inv["link"].(string)
	op := newBrowser(t, "")
	op.open(strings.Replace(link, admin0, admin1, 1))
	op.submit("form", map[string]string{"password": "olga-secret-1", "confirm": "olga-secret-1"})
	if h := op.text("main h1"); h != "Accounts" {
		t.Fatalf("the operator did not land on the accounts of node 1: %q", h)
	}
	// Both nodes are on 127.0.0.1, so the browser sends node 1's session
	// cookie to node 0 as it would to any node behind one name.
	op.open(admin0 + "/console/accounts")
	if h := op.text("main h1"); h != "Accounts" {
		t.Fatalf("node 0 does not know node 1's session: %q", h)
	}
	op.submit("#create-account", map[string]string{"id": "acme", "email": "billing@acme.test"})
	op.submit("#topup", map[string]string{"amount": "10", "order_id": "order-1"})
	op.open(admin1 + "/console/accounts/acme")
	if got := op.text("#available"); got != "10" {
		t.Fatalf("node 1's console shows %q available after node 0's top-up of 10", got)
	}
	op.submit("#invite", map[string]string{"email": "ada@acme.test"})
	invite := op.text("#invite-link")

	cu := newBrowser(t, "")
	cu.open(strings.Replace(invite, client1, client0, 1))
	cu.submit("form", map[string]string{"password": "ada-secret-12", "confirm": "ada-secret-12"})
	if got := cu.text("#available"); got != "10" {
		t.Fatalf("the customer's overview on node 0 shows %q available", got)
	}
	again := newBrowser(t, "")
	again.open(invite)
	if !strings.Contains(again.text("main"), "unknown, used or expired") {
		t.Fatalf("an invitation used on node 0 is accepted again on node 1: %s", again.text("main"))
	}

	cu.open(client1 + "/console/keys")
	cu.submit("form.card", map[string]string{"name": "ci", "rpm": "60"})
	key := cu.text("#new-key")
	if !strings.HasPrefix(key, "tg-") {
		t.Fatalf("no key shown on node 1: %q", cu.text("main"))
	}
	var requestID string
	eventually(t, 5*time.Second, "a call through node 0 with the key made on node 1", func() bool {
		id, err := sdkCallID(client0, key)
		requestID = id
		return err == nil
	}, n0)
	eventually(t, 5*time.Second, "the call on node 1's console", func() bool {
		cu.open(client1 + "/console/calls")
		return strings.Contains(cu.text("#calls"), requestID)
	}, n1)
	cu.open(client1 + "/console/calls/" + requestID)
	if charged := mustCredits(t, cu.text("#charged")); charged <= 0 {
		t.Fatalf("node 1 shows the call charged %d", charged)
	}

	// A second browser signs the same customer in on node 1; signing out
	// everywhere on node 0 ends that session too.
	other := newBrowser(t, "")
	other.open(client1 + "/console/signin")
	other.submit("form", map[string]string{"email": "ada@acme.test", "password": "ada-secret-12"})
	if h := other.text("main h1"); h == "Sign in" {
		t.Fatalf("the customer cannot sign in on node 1: %s", other.text("main"))
	}
	cu.open(client0 + "/console/overview")
	cu.follow(`form[action="/console/signout-everywhere"] button`)
	other.open(client1 + "/console/overview")
	if h := other.text("main h1"); h != "Sign in" {
		t.Fatalf("after signing out everywhere on node 0, node 1 still shows %q", h)
	}

	// Wrong passwords spread over both nodes meet one limit: the right one
	// is then refused too, until the window ends.
	guess := newBrowser(t, "")
	for i := range console.FailuresPerUser {
		guess.open([]string{admin0, admin1}[i%2] + "/console/signin")
		guess.submit("form", map[string]string{"email": "olga@platform.test", "password": fmt.Sprintf("wrong guess %d", i)})
	}
	guess.open(admin1 + "/console/signin")
	guess.submit("form", map[string]string{"email": "olga@platform.test", "password": "olga-secret-1"})
	if !strings.Contains(guess.text(".problem"), "Too many failed attempts") {
		t.Fatalf("guesses spread over two nodes were not counted together: %s", guess.text("main"))
	}
}
