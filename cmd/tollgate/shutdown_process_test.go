package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
)

// shutdownResult is what a client saw of a call cut off by shutdown.
type shutdownResult struct {
	status    int
	requestID string
	body      []byte
	err       error
}

// post sends a client API request and reads the whole answer.
func (p *gatewayProcess) post(path, key, body string) shutdownResult {
	req, _ := http.NewRequest("POST", "http://"+p.client+path, strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return shutdownResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return shutdownResult{status: resp.StatusCode, requestID: resp.Header.Get("request-id"), body: b, err: err}
}

// heldNanos is what the account holds now.
func (p *gatewayProcess) heldNanos(account string) int64 {
	p.t.Helper()
	st, acct := p.adminDo("GET", "/admin/v1/accounts/"+account, "")
	held, _ := acct["held"].(string)
	n, err := money.Parse(held)
	if st != 200 || err != nil {
		p.t.Fatalf("cannot read the account: %d %v", st, acct)
	}
	return n
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestShutdownCutsOffEveryCallKind sends SIGTERM, with a shutdown grace of
// 2 s, while one call of each kind runs: a stream mid-way (slow events), a
// non-streaming call the upstream is still working on, a call waiting for
// its headers (ttfb far beyond the grace), a drain (its client left) and a
// count_tokens request on a slow upstream. The process exits with 0 within
// grace + 5 s; the stream ends with an appended error event and the calls
// without a reply get 503; `tollgate verify` passes with no open hold; after
// a restart that has nothing left to recover, every cut-off call is recorded
// with outcome recovered and nothing charged (recovery policy void). Before
// issue 12 only streams were cut off: the process waited for the rest.
func TestShutdownCutsOffEveryCallKind(t *testing.T) {
	const grace = 2 * time.Second
	cfg := gatewayConfig(t, "timeouts.shutdown_grace", "2s")
	dataDir := t.TempDir()
	p := startGateway(t, dataDir, "--config", cfg)
	key := p.setupAccount("acme", "10")
	// slow makes the simulator take about 40 s over a reply.
	const slow = "[[sim:delay=1s,words=40]]"

	// A drain: the client leaves after the first event; the gateway notices
	// at its next write and drains the upstream in the background.
	drain := p.stream(key, "Leave early "+slow)
	drainID := drain.Header.Get("request-id")
	if line, _ := bufio.NewReader(drain.Body).ReadString('\n'); line != "event: message_start\n" {
		t.Fatalf("unexpected first line of the drained call %q", line)
	}
	drain.Body.Close()

	// A stream mid-way.
	stream := p.stream(key, "Stream slowly "+slow)
	streamID := stream.Header.Get("request-id")
	br := bufio.NewReader(stream.Body)
	if line, _ := br.ReadString('\n'); line != "event: message_start\n" {
		t.Fatalf("unexpected first line of the stream %q", line)
	}
	streamRest := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(br)
		stream.Body.Close()
		streamRest <- b
	}()

	// A non-streaming call, then a stream waiting for its headers: each
	// holds before it is forwarded.
	start := func(path, body string) chan shutdownResult {
		ch := make(chan shutdownResult, 1)
		go func() { ch <- p.post(path, key, body) }()
		return ch
	}
	before := p.heldNanos("acme")
	buffered := start("/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"Answer slowly `+slow+`"}]}`)
	waitFor(t, 5*time.Second, "the non-streaming call's hold", func() bool { return p.heldNanos("acme") > before })
	before = p.heldNanos("acme")
	headers := start("/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"Wait for it [[sim:ttfb=40s]]"}]}`)
	waitFor(t, 5*time.Second, "the header-waiting call's hold", func() bool { return p.heldNanos("acme") > before })
	counting := start("/v1/messages/count_tokens", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Count slowly [[sim:ttfb=40s]]"}]}`)
	waitFor(t, 10*time.Second, "the drain to start", func() bool {
		_, body := p.metrics()
		return strings.Contains(body, "\ntollgate_drains_started_total 1\n")
	})
	time.Sleep(300 * time.Millisecond) // count_tokens reaches the upstream

	sigterm := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.waitExit(grace + 5*time.Second)
	took := time.Since(sigterm)
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("unexpected exit after SIGTERM: %v\n%s", err, p.stderr.String())
	}
	if took < grace-100*time.Millisecond {
		t.Fatalf("running calls were cut off before the grace period ran out: exited after %s", took)
	}

	if rest := <-streamRest; !bytes.Contains(rest, []byte("event: error\n")) || bytes.Contains(rest, []byte("event: message_stop")) {
		t.Fatalf("the stream cut off by shutdown must end with an error event:\n%s", rest)
	}
	for _, c := range []struct {
		name string
		ch   chan shutdownResult
	}{{"non-streaming call", buffered}, {"call waiting for headers", headers}} {
		r := <-c.ch
		if r.err != nil || r.status != 503 || r.requestID == "" {
			t.Fatalf("%s: unexpected answer to a call cut off by shutdown; got %d %v %s; want 503", c.name, r.status, r.err, r.body)
		}
	}
	if r := <-counting; r.err != nil || r.status == 200 {
		t.Fatalf("count_tokens: unexpected answer after shutdown cut it off; got %d %v %s; want an error answer", r.status, r.err, r.body)
	}

	if out := runVerifyOn(t, dataDir); !strings.Contains(out, "open holds 0") {
		t.Fatalf("holds left open by shutdown:\n%s", out)
	}
	p2 := startGateway(t, dataDir, "--config", cfg)
	if !strings.Contains(p2.stderr.String(), "recovered 0 open holds") {
		t.Fatalf("shutdown left holds for the next start to recover:\n%s", p2.stderr.String())
	}
	if _, acct := p2.adminDo("GET", "/admin/v1/accounts/acme", ""); acct["available"] != "10" || acct["held"] != "0" {
		t.Fatalf("calls cut off by shutdown must be charged nothing: %v", acct)
	}
	st, out := p2.adminDo("GET", "/admin/v1/calls?limit=100", "")
	data, _ := out["data"].([]any)
	if st != 200 || len(data) != 4 {
		t.Fatalf("unexpected call records; got %d %v; want the 4 cut-off calls", st, out)
	}
	ids := map[string]bool{}
	for _, d := range data {
		rec := d.(map[string]any)
		if rec["outcome"] != "recovered" || rec["charged"] != "0" {
			t.Fatalf("unexpected record of a call cut off by shutdown: %v", rec)
		}
		ids[rec["request_id"].(string)] = true
	}
	if !ids[streamID] || !ids[drainID] {
		t.Fatalf("no recovered record of the stream %s or the drain %s: %v", streamID, drainID, data)
	}
}
