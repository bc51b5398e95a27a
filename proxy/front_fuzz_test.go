package proxy_test

// Fuzz targets for the whole fronts (issue 12): arbitrary bytes as raw HTTP
// to the client listener and to the admin listener of a real gateway (real
// Pebble WAL, the simulator upstream on 127.0.0.1), over in-memory
// listeners. After every input the gateway must still serve, no hold may be
// left open once the reply is read, and no panic may have been recovered
// (a recovered panic is still a bug, logged with "BUG:").
//
// Inputs may name the fixture's secrets by placeholder, so that the checked-
// in corpus can hold real calls: $KEY (a platform key of an account with
// credit), $KEYID, $ACCOUNT and $ADMIN (the admin token).

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/wal"
	"github.com/valyala/fasthttp/fasthttputil"
)

// frontFixture is a gateway serving both fronts on in-memory listeners.
type frontFixture struct {
	g                *proxy.Gateway
	led              *ledger.Ledger
	clientLn, adminL *fasthttputil.InmemoryListener
	logs             lockedBuffer
	subst            *strings.Replacer
	key              string
}

// fuzzPeer is the client address the fronts see (the per-address bound and
// the IP digest want an IP).
var fuzzPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// newFrontFixture starts the simulator, the ledger and the gateway, with
// timeouts short enough for one input to take well under a second, and an
// account with credit and a key; everything stops at tb's cleanup.
func newFrontFixture(tb testing.TB) *frontFixture {
	tb.Helper()
	f := &frontFixture{}
	sim := simulator.New(simulator.Config{APIKey: testUpstreamKey, MaxHang: time.Second})
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("cannot listen for the simulator: %s", err)
	}
	simErr := make(chan error, 1)
	go func() { simErr <- sim.Serve(simLn) }()

	wlog, err := wal.Open(tb.TempDir(), wal.Config{})
	if err != nil {
		tb.Fatalf("cannot open the wal: %s", err)
	}
	f.led, err = ledger.Open(wlog, ledger.Config{Shards: 8})
	if err != nil {
		tb.Fatalf("cannot open the ledger: %s", err)
	}
	cat, err := meter.LoadCatalogue("../configs/models.yaml")
	if err != nil {
		tb.Fatalf("cannot load the catalogue: %s", err)
	}
	logger := log.New(&f.logs, "tollgate: ", log.Lmicroseconds)
	f.g, err = proxy.New(proxy.Config{
		Upstreams:                    []upstream.Config{{Name: "anthropic", BaseURL: "http://" + simLn.Addr().String(), APIKey: testUpstreamKey}},
		IPDigestKey:                  testIPDigestKey,
		UpstreamMaxFailures:          1 << 20, // inputs may ask the simulator for errors: keep it in service
		FirstByteTimeout:             time.Second,
		FirstByteTimeoutNonStreaming: time.Second,
		IdleTimeout:                  time.Second,
		TotalTimeout:                 3 * time.Second,
		DrainTimeout:                 time.Second,
		DisconnectPolicy:             proxy.PolicyAbort,
		ClientHeaderTimeout:          50 * time.Millisecond,
		ClientReadTimeout:            50 * time.Millisecond,
		ClientIdleTimeout:            20 * time.Millisecond,
	}, f.led, cat, logger)
	if err != nil {
		tb.Fatalf("cannot create the gateway: %s", err)
	}
	f.clientLn, f.adminL = fasthttputil.NewInmemoryListener(), fasthttputil.NewInmemoryListener()
	clientErr, adminErr := make(chan error, 1), make(chan error, 1)
	go func() { clientErr <- f.g.ServeClient(f.clientLn) }()
	adminAPI := newAdminServer(tb, f.led, f.g, logger)
	go func() { adminErr <- adminAPI.Serve(f.adminL) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := errors.Join(f.g.Shutdown(5*time.Second), adminAPI.Shutdown(ctx)); err != nil {
			tb.Errorf("unexpected Shutdown error: %s", err)
		}
		for _, c := range []chan error{clientErr, adminErr} {
			if err := <-c; err != nil {
				tb.Errorf("unexpected Serve error: %s", err)
			}
		}
		if _, err := f.led.Check(); err != nil {
			tb.Errorf("ledger invariants broken after fuzzing: %s", err)
		}
		if err := wlog.Close(); err != nil {
			tb.Errorf("unexpected wal Close error: %s", err)
		}
		if err := sim.Shutdown(); err != nil {
			tb.Errorf("unexpected simulator Shutdown error: %s", err)
		}
		<-simErr
	})

	// An account with credit and a key, through the admin front.
	var acct, key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	f.adminJSON(tb, "/admin/v1/accounts", `{}`, &acct)
	f.adminJSON(tb, "/admin/v1/accounts/"+acct.ID+"/topups", `{"amount":"1000000","order_id":"fuzz-1","kind":"paid"}`, nil)
	f.adminJSON(tb, "/admin/v1/accounts/"+acct.ID+"/keys", `{"name":"fuzz"}`, &key)
	f.key = key.Key
	f.subst = strings.NewReplacer("$KEYID", key.ID, "$KEY", key.Key, "$ACCOUNT", acct.ID, "$ADMIN", testAdminToken)
	return f
}

// adminJSON POSTs body to the admin front and decodes the 201 answer.
func (f *frontFixture) adminJSON(tb testing.TB, path, body string, out any) {
	tb.Helper()
	raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		path, testAdminToken, len(body), body)
	resp := f.exchange(f.adminL, []byte(raw), 5*time.Second, 5*time.Second)
	head, rb, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 201")) {
		tb.Fatalf("unexpected answer to POST %s: %q", path, resp)
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			tb.Fatalf("cannot decode the answer to POST %s: %s; body %q", path, err, rb)
		}
	}
}

// exchange writes input on a new connection to ln and returns what comes
// back until the server closes the connection, nothing comes for
// firstByte (before the first byte) or quiet (after it), or 10 s passed.
func (f *frontFixture) exchange(ln *fasthttputil.InmemoryListener, input []byte, firstByte, quiet time.Duration) []byte {
	conn, err := ln.DialWithLocalAddr(fuzzPeer)
	if err != nil {
		return nil
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		conn.Write(input)
	}()
	var out []byte
	buf := make([]byte, 32<<10)
	end := time.Now().Add(10 * time.Second)
	wait := firstByte
	for time.Now().Before(end) {
		d := time.Now().Add(wait)
		if d.After(end) {
			d = end
		}
		conn.SetReadDeadline(d)
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if n > 0 {
			wait = quiet
		}
		if err != nil {
			break
		}
	}
	conn.Close()
	<-written
	return out
}

// check fails the input when a panic was recovered, a hold stays open, or
// the gateway no longer answers probe with a 200.
func (f *frontFixture) check(t *testing.T, ln *fasthttputil.InmemoryListener, input []byte, probe string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.led.OpenHolds()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("unexpected open holds 5s after the reply to %q was read: %+v", trimInput(input), f.led.OpenHolds())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if logs := f.logs.String(); strings.Contains(logs, "BUG:") {
		f.logs.mu.Lock()
		f.logs.b.Reset()
		f.logs.mu.Unlock()
		t.Fatalf("a panic was recovered serving %q:\n%s", trimInput(input), logs)
	}
	if resp := f.exchange(ln, []byte(probe), 5*time.Second, time.Second); !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 ")) {
		t.Fatalf("the gateway does not serve after %q: probe answered %q", trimInput(input), trimInput(resp))
	}
	f.logs.mu.Lock()
	f.logs.b.Reset()
	f.logs.mu.Unlock()
}

func trimInput(b []byte) []byte {
	if len(b) > 512 {
		return append(b[:512:512], "..."...)
	}
	return b
}

// clientFrontSeeds are requests to the client front, valid and hostile.
func clientFrontSeeds() []string {
	call := func(body string, extra ...string) string {
		return "POST /v1/messages HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nAnthropic-Version: 2023-06-01\r\nContent-Type: application/json\r\n" +
			strings.Join(extra, "") + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	msg := func(model, text string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"max_tokens":20,"stream":%v,"messages":[{"role":"user","content":%q}]}`, model, stream, text)
	}
	return []string{
		call(msg(testModel, "Say hello twice", false)),
		call(msg(testModel, "Say hello twice", true)),
		call(`{"model":"x\"}\ny","max_tokens":1,"messages":[{"role":"user","content":"Hi"}]}`),
		call(msg(testModel, "hi [[sim:error_after=1]]", true)),
		call(msg(testModel, "hi [[sim:status=429,retry_after=7,message=org_01ABC rate limit]]", false)),
		call(`{"model":"claude-haiku-4-5","max_tokens":10,"tools":[{"type":"quantum_compute_20270101","name":"q"}],"messages":[{"role":"user","content":"hi"}]}`),
		call(msg(testModel, "keep-alive", false)) + call(msg(testModel, "pipelined", true)),
		"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nContent-Type: application/json\r\nContent-Length: 72\r\n\r\n" +
			`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}`,
		"POST /v1/messages HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{garbage\r\n5\r\nhello\r\nffffffffffffffff\r\n",
		"POST /v1/messages HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nContent-Length: 99999999999\r\n\r\n{",
		"GET /v1/balance HTTP/1.1\r\nHost: tollgate\r\nAuthorization: Bearer $KEY\r\n\r\nGET /v1/calls?limit=2&cursor=zz HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\n\r\n",
		"GET /v1/statement?from=2000-01-01T00:00:00Z&format=csv HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\n\r\n",
		"GET /v1/models/claude-haiku-4-5 HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nAnthropic-Version: 2023-06-01\r\n\r\n",
		"\x00\xff\r\n\r\n",
	}
}

// FuzzClientFront: no bytes a client sends on the client listener crash
// the gateway, leave a hold open once the reply is read, or stop it from
// serving the next client.
func FuzzClientFront(f *testing.F) {
	for _, s := range clientFrontSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte("GET /v1/models HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: $KEY\r\nX-Big: " + strings.Repeat("A", 1<<20) + "\r\n\r\n"))
	fx := newFrontFixture(f)
	probe := "GET /v1/models HTTP/1.1\r\nHost: tollgate\r\nX-Api-Key: " + fx.key + "\r\nConnection: close\r\n\r\n"
	f.Fuzz(func(t *testing.T, input []byte) {
		raw := []byte(fx.subst.Replace(string(input)))
		fx.exchange(fx.clientLn, raw, 5*time.Second, 1500*time.Millisecond)
		fx.check(t, fx.clientLn, input, probe)
	})
}

// adminFrontSeeds are requests to the admin front, valid and hostile.
func adminFrontSeeds() []string {
	req := func(method, path, body string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
	}
	return []string{
		req("GET", "/admin/v1/accounts/$ACCOUNT", ""),
		req("POST", "/admin/v1/accounts", `{"email":"a@example.com","rpm":5}`),
		req("POST", "/admin/v1/accounts/$ACCOUNT/topups", `{"amount":"25.5","order_id":"fuzz-seed","kind":"gift","expires_at":"2030-01-01T00:00:00Z"}`),
		req("POST", "/admin/v1/accounts/$ACCOUNT/keys", `{"name":"k","rpm":-1,"models":["claude-haiku-4-5"]}`),
		req("PATCH", "/admin/v1/keys/$KEYID", `{"tpm":1000}`),
		req("POST", "/admin/v1/adjustments", `{"account_id":"$ACCOUNT","amount":"-1","reason":"x\"}\ny","idempotency_key":"`+strings.Repeat("k", 300)+`"}`),
		req("GET", "/admin/v1/accounts/$ACCOUNT/entries?limit=2&cursor=%00", ""),
		req("GET", "/admin/v1/accounts/$ACCOUNT/statement?from=2000-01-01T00:00:00Z&to=2099-01-01T00:00:00Z", ""),
		req("GET", "/admin/v1/calls?limit=1000000&account=$ACCOUNT&request_id=%0a", ""),
		req("GET", "/admin/v1/expiring?within=-1h", ""),
		req("POST", "/admin/v1/accounts/$ACCOUNT/freeze", "") + req("POST", "/admin/v1/accounts/$ACCOUNT/unfreeze", ""),
		req("GET", "/metrics", ""),
		"GET /admin/v1/accounts HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer wrong\r\n\r\n",
		"POST /admin/v1/accounts HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer $ADMIN\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{\r\n0\r\n\r\n",
		"GET /a/b/c/d/e/f/g/h/i/j/k HTTP/1.1\r\nHost: admin\r\n\r\n",
	}
}

// FuzzAdminFront: no bytes sent to the admin listener, with or without the
// admin token, crash the gateway, leave a hold open, break the ledger's
// invariants, or stop it from serving.
func FuzzAdminFront(f *testing.F) {
	for _, s := range adminFrontSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte("GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Big: " + strings.Repeat("A", 1<<20) + "\r\n\r\n"))
	fx := newFrontFixture(f)
	const probe = "GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
	f.Fuzz(func(t *testing.T, input []byte) {
		raw := []byte(fx.subst.Replace(string(input)))
		if bytes.Contains(percentDecoded(raw), []byte("debug")) {
			// Go's profiles (/debug/pprof) run for seconds by design.
			t.Skip("the profiling routes are slow by design")
		}
		// The admin server's timeouts are not configurable (30 s to read a
		// request, a minute idle), so an incomplete request is not waited
		// for: its connection is closed after 250 ms of silence (a handler
		// still running then finishes on its own; the checks below and the
		// next input see its effects).
		fx.exchange(fx.adminL, raw, 250*time.Millisecond, 50*time.Millisecond)
		fx.check(t, fx.adminL, input, probe)
		if _, err := fx.led.Check(); err != nil {
			t.Fatalf("ledger invariants broken after %q: %s", trimInput(input), err)
		}
	})
}

// percentDecoded decodes %XX escapes, leaving anything else as it is.
func percentDecoded(b []byte) []byte {
	if !bytes.Contains(b, []byte("%")) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			var v [1]byte
			if _, err := hex.Decode(v[:], b[i+1:i+3]); err == nil {
				out = append(out, v[0])
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}
