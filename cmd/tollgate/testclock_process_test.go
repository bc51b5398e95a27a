package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/notify"
)

// TestNoticesThroughTheWeeks walks a gift's life through a gateway built
// with the testclock tag, its clock moved by a file: the 30-day and 7-day
// reminders and the expiry reach the account's webhook, in order, signed,
// from the real process's jobs and notifier.
func TestNoticesThroughTheWeeks(t *testing.T) {
	skipProcessTestIfShort(t)
	bin := filepath.Join(t.TempDir(), "tollgate-testclock")
	if out, err := exec.Command("go", "build", "-tags", "testclock", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build with the testclock tag: %s\n%s", err, out)
	}
	var mu sync.Mutex
	var types []string
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !notify.Verify(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body) {
			t.Errorf("a delivery does not verify: %s", body)
		}
		var p struct{ Type string }
		json.Unmarshal(body, &p)
		types = append(types, p.Type)
	}))
	defer recv.Close()
	seen := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(types) >= n
		}
	}

	cfgDir, clockFile := t.TempDir(), filepath.Join(t.TempDir(), "clock")
	for _, f := range []string{"tollgate.yaml", "models.yaml"} {
		b, err := os.ReadFile("../../configs/" + f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "allow_networks: []", "allow_networks: [127.0.0.0/8]", 1)
		s = strings.Replace(s, "expiry_interval: 1m", "expiry_interval: 200ms", 1)
		os.WriteFile(filepath.Join(cfgDir, f), []byte(s), 0o600)
	}
	setClock := func(offset string) {
		t.Helper()
		if err := os.WriteFile(clockFile, []byte(offset), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setClock("0s")
	p := startGatewayBin(t, bin, []string{"TOLLGATE_TEST_CLOCK=" + clockFile}, t.TempDir(), "--config", filepath.Join(cfgDir, "tollgate.yaml"))
	p.adminDo("POST", "/admin/v1/accounts", `{"id":"acme"}`)
	_, settings := p.adminDo("PUT", "/admin/v1/accounts/acme/notifications", `{"webhook_url":"`+recv.URL+`"}`)
	mu.Lock()
	secret, _ = settings["webhook_secret"].(string)
	mu.Unlock()
	expires := time.Now().Add(40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if st, out := p.adminDo("POST", "/admin/v1/accounts/acme/topups", `{"amount":"5","order_id":"gift-1","kind":"gift","expires_at":"`+expires+`"}`); st != 201 {
		t.Fatalf("gift: %d %v", st, out)
	}
	waitFor(t, 15*time.Second, "topup.received", seen(1))
	setClock("264h") // 29 days left
	waitFor(t, 15*time.Second, "the 30-day reminder", seen(2))
	setClock("816h") // 6 days left
	waitFor(t, 15*time.Second, "the 7-day reminder", seen(3))
	setClock("984h") // a day past the expiry
	waitFor(t, 15*time.Second, "credit.expired", seen(4))
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(types, " "); got != "topup.received credit.expiring credit.expiring credit.expired" {
		t.Fatalf("the notices: %s", got)
	}
}
