package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWebhookSafety: loopback and private destinations are refused unless
// allowed; redirects are not followed; a rotated secret signs beside the
// new one until the overlap ends.
func TestWebhookSafety(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	ctx, now := context.Background(), time.Now()
	if _, err := postWebhook(ctx, webhookClient(time.Second, nil), target.URL, "evt_1", now, nil, []byte("{}")); !errors.Is(err, errDenied) {
		t.Fatalf("loopback without an allow-list: %v", err)
	}
	allowed := webhookClient(time.Second, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if st, err := postWebhook(ctx, allowed, redirect.URL, "evt_1", now, nil, []byte("{}")); err == nil || st != http.StatusTemporaryRedirect || hits != 0 {
		t.Fatalf("a redirect was followed or taken as a delivery: %d %v (hits %d)", st, err, hits)
	}
	for _, a := range []string{"10.0.0.1", "192.168.1.1", "169.254.169.254", "::1", "0.0.0.0", "fc00::1"} {
		if checkAddr(netip.MustParseAddr(a), nil) == nil {
			t.Errorf("%s allowed by default", a)
		}
	}
	if checkAddr(netip.MustParseAddr("93.184.216.34"), nil) != nil {
		t.Error("a public address refused")
	}

	var s Settings
	s.WebhookURL = "https://example.com/hook"
	first := s.rotate(now)
	second := s.rotate(now)
	body := []byte(`{"id":"evt_1"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	header := Sign(s.signingSecrets(now), "evt_1", now.Unix(), body)
	if len(strings.Fields(header)) != 2 || !Verify(first, "evt_1", ts, header, body) || !Verify(second, "evt_1", ts, header, body) {
		t.Fatalf("during the overlap both secrets sign: %q", header)
	}
	later := now.Add(RotationOverlap + time.Minute)
	header = Sign(s.signingSecrets(later), "evt_1", later.Unix(), body)
	if Verify(first, "evt_1", strconv.FormatInt(later.Unix(), 10), header, body) {
		t.Fatal("the old secret still signs after the overlap")
	}
	if Verify(second, "evt_2", ts, header, body) {
		t.Fatal("a signature verified for another event ID")
	}
	for range 5 {
		s.rotate(now)
	}
	if len(s.Secrets) != 2 || len(strings.Fields(Sign(s.signingSecrets(now), "evt_1", now.Unix(), body))) != 2 {
		t.Fatalf("rotating again and again keeps %d secrets", len(s.Secrets))
	}
	s.Events = []string{TopUpReceived, TopUpReceived}
	if s.check() == nil {
		t.Fatal("a repeated event type was accepted")
	}
}
