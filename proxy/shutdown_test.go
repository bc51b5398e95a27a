package proxy_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
)

// ledgerCall reads a call record from the ledger (the admin API is down
// once the gateway shut down).
func (h *harness) ledgerCall(requestID string) *ledger.CallRecord {
	h.t.Helper()
	c, err := h.led.CallByRequestID(requestID)
	if err != nil || c == nil {
		h.t.Fatalf("no call record for %s: %v", requestID, err)
	}
	return c
}

// readRest reads a stream to its end and returns its events.
func readRest(t *testing.T, r interface{ ReadString(byte) (string, error) }) []sseEvent {
	t.Helper()
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			break
		}
	}
	return parseSSE(t, []byte(b.String()))
}

// TestShutdownGraceful: a call running when shutdown begins finishes within
// the grace period and is settled; new connections are refused.
func TestShutdownGraceful(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	body := messagesBody("alpha beta gamma delta [[sim:delay=40ms,words=20]]", 100, true)
	conn, r, resp := h.rawStream(a.Key, body)
	defer conn.Close()
	first := readEvents(t, r, 1)
	if first[0].Name != "message_start" {
		t.Fatalf("unexpected first event %q", first[0].Name)
	}
	done := make(chan error, 1)
	go func() { done <- h.shutdown(10 * time.Second) }()
	rest := readRest(t, r)
	if len(rest) == 0 || rest[len(rest)-1].Name != "message_stop" {
		t.Fatalf("unexpected end of a stream running at shutdown; got %v; want it to finish", eventNames(rest))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unexpected Shutdown error: %s", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Shutdown did not return")
	}
	c := h.ledgerCall(resp.Header.Get("request-id"))
	if c.Outcome != ledger.OutcomeOK || c.Charged != haikuPrice(expectedUsage(t, body)) {
		t.Fatalf("unexpected record; got outcome %s charged %d; want ok, %d", c.Outcome, c.Charged, haikuPrice(expectedUsage(t, body)))
	}
	if c2, err := net.DialTimeout("tcp", h.clientAddr, time.Second); err == nil {
		c2.Close()
		t.Fatalf("unexpected connection accepted after shutdown")
	}
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("unexpected open holds after shutdown: %+v", open)
	}
}

// TestShutdownGraceExpired: a call still running when the grace period runs
// out is cut off with an appended error event and ends as recovered, by the
// recovery policy (void by default: nothing charged).
func TestShutdownGraceExpired(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	body := messagesBody("alpha beta gamma delta [[sim:delay=100ms,words=40]]", 100, true)
	conn, r, resp := h.rawStream(a.Key, body)
	defer conn.Close()
	readEvents(t, r, 4)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.shutdown(300 * time.Millisecond) }()
	rest := readRest(t, r)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Shutdown did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("unexpected shutdown time %s; want about the 300ms grace", d)
	}
	id := resp.Header.Get("request-id")
	c := h.ledgerCall(id)
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("unexpected open holds after shutdown: %+v", open)
	}
	if c.Outcome != ledger.OutcomeRecovered {
		t.Fatalf("unexpected outcome; got %s; want recovered", c.Outcome)
	}
	hresp := &http.Response{Header: http.Header{"Request-Id": []string{id}}}
	checkAppendedError(t, hresp, rest, "api_error")
	if c.Charged != 0 {
		t.Fatalf("unexpected charge of a call recovered by the void policy; got %d; want 0", c.Charged)
	}
	info, err := h.led.Account(a.ID)
	if err != nil || info.Available != a.TopUps || info.Charged != 0 {
		t.Fatalf("unexpected account after the recovery; got %+v, %v; want nothing charged", info, err)
	}
}

// TestRecoverOpenHolds: holds found open at start (after a crash) end by the
// recovery policy with a call record of outcome recovered.
func TestRecoverOpenHolds(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	commit, err := h.led.Hold(a.ID, "req_crashed0000000000000001", a.KeyID, 5_000_000)
	if err == nil {
		err = commit.Wait()
	}
	if err != nil {
		t.Fatalf("cannot take a hold: %s", err)
	}
	n, err := h.g.RecoverOpenHolds()
	if err != nil || n != 1 {
		t.Fatalf("unexpected RecoverOpenHolds; got %d, %v; want 1, nil", n, err)
	}
	c := h.adminCall("req_crashed0000000000000001")
	if c == nil {
		t.Fatalf("no call record for the recovered hold")
	}
	h.checkVoided(a, c, "recovered", 0)
	if b := h.balance(a); b.Available != a.TopUps || b.Held != 0 {
		t.Fatalf("unexpected balance; got %+v; want %d available", b, a.TopUps)
	}
}
