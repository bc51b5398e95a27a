package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/notify"
)

// TestNotificationsSurviveKill: a top-up acknowledged while its webhook's
// receiver is down, then kill -9: after the restart the receiver, back,
// gets topup.received, signed with the account's secret; the admin API
// shows the destination's attempts and replays the event (same ID).
func TestNotificationsSurviveKill(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var ids []string
	down := true
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !notify.Verify(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body) {
			t.Errorf("a delivery does not verify: %s", body)
		}
		var p map[string]any
		json.Unmarshal(body, &p)
		got, ids = append(got, p), append(ids, r.Header.Get("webhook-id"))
	}))
	defer recv.Close()

	cfgDir := t.TempDir()
	for _, f := range []string{"tollgate.yaml", "models.yaml"} {
		b, err := os.ReadFile("../../configs/" + f)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "allow_networks: []", "allow_networks: [127.0.0.0/8]", 1))
		os.WriteFile(filepath.Join(cfgDir, f), b, 0o600)
	}
	dataDir := t.TempDir()
	p := startGateway(t, dataDir, "--config", filepath.Join(cfgDir, "tollgate.yaml"))
	if st, out := p.adminDo("POST", "/admin/v1/accounts", `{"id":"acme"}`); st != 201 {
		t.Fatalf("account: %d %v", st, out)
	}
	st, settings := p.adminDo("PUT", "/admin/v1/accounts/acme/notifications", `{"webhook_url":"`+recv.URL+`/hook","low_balance":"1"}`)
	if st != 200 || !strings.HasPrefix(settings["webhook_secret"].(string), "whsec_") {
		t.Fatalf("settings: %d %v", st, settings)
	}
	secret = settings["webhook_secret"].(string)
	if st, out := p.adminDo("POST", "/admin/v1/accounts/acme/topups", `{"amount":"10","order_id":"order-kill","kind":"paid"}`); st != 201 {
		t.Fatalf("top-up: %d %v", st, out)
	}
	p.cmd.Process.Kill()
	p.exited <- <-p.exited // dead; the cleanup waits on it again

	mu.Lock()
	down = false
	mu.Unlock()
	p2 := startGateway(t, dataDir, "--config", filepath.Join(cfgDir, "tollgate.yaml"))
	waitFor(t, 15*time.Second, "topup.received after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	mu.Lock()
	first := got[0]
	mu.Unlock()
	data, _ := first["data"].(map[string]any)
	if first["type"] != "topup.received" || first["account"] != "acme" || data["order_id"] != "order-kill" || data["amount"] != "10" {
		t.Fatalf("the notice: %v", first)
	}
	st, dests := p2.adminDo("GET", "/admin/v1/notifications/destinations?account=acme", "")
	if st != 200 || !strings.Contains(mustJSON(dests), `"account:acme:webhook"`) {
		t.Fatalf("destinations: %d %v", st, dests)
	}
	if st, out := p2.adminDo("POST", "/admin/v1/notifications/events/"+first["id"].(string)+"/replay", ""); st != 200 {
		t.Fatalf("replay: %d %v", st, out)
	}
	waitFor(t, 15*time.Second, "the replay", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 2 && ids[0] == ids[1]
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
