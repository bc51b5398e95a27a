package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/notify"
)

// hookReceiver is the platform's webhook endpoint: it checks each
// signature and keeps the events by webhook-id, counting repeats.
type hookReceiver struct {
	t       *testing.T
	mu      sync.Mutex
	secret  string
	types   map[string]string // webhook-id → event type, in arrival order below
	order   []string
	repeats int
	srv     *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, types: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		id := r.Header.Get("webhook-id")
		if h.secret == "" || !notify.Verify(h.secret, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body) {
			t.Errorf("a webhook with a bad signature: %s %s", id, body)
		}
		if _, seen := h.types[id]; seen {
			h.repeats++
		} else {
			typ, _, _ := strings.Cut(strings.SplitN(string(body), `"type":"`, 2)[1], `"`)
			h.types[id] = typ
			h.order = append(h.order, typ)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.order...)
}

// TestClusterNotifications: with two nodes, the platform's webhook set
// through one node is told, once each and in order, of the changes made
// through either (a top-up on node 0, a freeze on node 1, a key); the
// outbox reads the same on both nodes; when the node that delivers is
// killed, the other takes the role over and delivers what follows.
func TestClusterNotifications(t *testing.T) {
	c := newTestCluster(t, 2, func(cfg string) string {
		return strings.Replace(cfg, "platform_allow_networks: []", `platform_allow_networks: ["127.0.0.0/8"]`, 1)
	})
	hook := newHookReceiver(t)
	st, out := c.nodes[1].adminDo("PUT", "/admin/v1/notifications/platform", `{"webhook_url":"`+hook.srv.URL+`/hook"}`)
	if st != 200 || out["webhook_secret"] == nil {
		t.Fatalf("platform settings on node 1: %d %v", st, out)
	}
	hook.mu.Lock()
	hook.secret = out["webhook_secret"].(string)
	hook.mu.Unlock()

	c.nodes[0].setupAccount("acct", "10")
	if st, out := c.nodes[1].adminDo("POST", "/admin/v1/accounts/acct/freeze", ``); st/100 != 2 {
		t.Fatalf("freeze on node 1: %d %v", st, out)
	}
	want := []string{"topup.received", "key.created", "account.frozen"}
	eventually(t, 10*time.Second, "the webhook told of the changes made through both nodes", func() bool {
		return strings.Join(hook.got(), " ") == strings.Join(want, " ")
	}, c.nodes...)
	if a, b := outboxIDs(t, c.nodes[0]), outboxIDs(t, c.nodes[1]); a != b || strings.Count(a, "evt_") != 3 {
		t.Fatalf("the outbox on node 0: %s; on node 1: %s; want the same three events", a, b)
	}

	leader, other := c.nodes[0], c.nodes[1]
	if strings.Contains(c.nodes[1].stderr.String(), "this node delivers the notifications") {
		leader, other = c.nodes[1], c.nodes[0]
	}
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	_ = leader.waitExit(5 * time.Second)
	if st, out := other.adminDo("POST", "/admin/v1/accounts/acct/unfreeze", ``); st/100 != 2 {
		t.Fatalf("unfreeze: %d %v", st, out)
	}
	want = append(want, "account.unfrozen")
	took := eventually(t, 15*time.Second, "the other node delivering once the first was killed", func() bool {
		return strings.Join(hook.got(), " ") == strings.Join(want, " ")
	}, other)
	t.Logf("the notifier's role passed on and delivered %s after the kill", took.Round(time.Millisecond))
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.repeats != 0 {
		t.Logf("%d deliveries repeated (at least once: a delivery in flight when its node died)", hook.repeats)
	}
}

// outboxIDs lists the IDs of the outbox's events as node n shows them.
func outboxIDs(t *testing.T, n *gatewayProcess) string {
	t.Helper()
	st, out := n.adminDo("GET", "/admin/v1/notifications/events", "")
	if st != 200 {
		t.Fatalf("the outbox on %s: %d %v", n.admin, st, out)
	}
	var ids []string
	for _, e := range out["data"].([]any) {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	return strings.Join(ids, " ")
}
