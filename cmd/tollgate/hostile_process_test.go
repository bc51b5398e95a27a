package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Process tests of issue 12 (one customer cannot hurt the platform) that a
// hostile client drives: memory under concurrent large uploads and the bound
// on connections per address. The helpers here are shared with the other
// *_process_test.go files.

// gatewayConfig writes a copy of configs/tollgate.yaml into a temporary
// directory, with the catalogue by its absolute path and each setting
// changed, and returns the copy's path. settings are pairs of a dotted key
// ("timeouts.shutdown_grace") and the value to write; a key the file does
// not have fails the test, so that a renamed key cannot silently leave the
// default in force.
func gatewayConfig(t *testing.T, settings ...string) string {
	t.Helper()
	if len(settings)%2 != 0 {
		t.Fatalf("BUG: settings must come in pairs; got %q", settings)
	}
	b, err := os.ReadFile("../../configs/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	settings = append([]string{"catalogue", filepath.Join(mustAbs(t, "../../configs"), "models.yaml")}, settings...)
	for i := 0; i < len(settings); i += 2 {
		key, value := settings[i], settings[i+1]
		found := false
		var path []string
		for j, line := range lines {
			trimmed := strings.TrimLeft(line, " ")
			if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
				continue
			}
			name, _, ok := strings.Cut(trimmed, ":")
			if !ok {
				continue
			}
			indent := len(line) - len(trimmed)
			path = append(path[:min(indent/2, len(path))], name)
			if strings.Join(path, ".") == key {
				lines[j] = line[:indent] + name + ": " + value
				found = true
			}
		}
		if !found {
			t.Fatalf("configs/tollgate.yaml has no key %s", key)
		}
	}
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// launchGateway starts `tollgate serve` on loopback like startGateway, with
// exactly env besides PATH, and waits only for its start line: unlike
// startGateway it does not need /readyz to answer 200 over plain HTTP.
func launchGateway(t *testing.T, dataDir string, env []string, args ...string) *gatewayProcess {
	t.Helper()
	return runGateway(t, tollgateBin, dataDir, append([]string{"PATH=" + os.Getenv("PATH")}, env...), func(client, admin string) []string {
		return append([]string{"serve", "--data-dir", dataDir, "--listen", client, "--admin-listen", admin}, args...)
	}, func(p *gatewayProcess) bool { return strings.Contains(p.stderr.String(), "started:") })
}

// waitExit waits up to d for the process to exit and returns its error; it
// fails the test when the process is still running.
func (p *gatewayProcess) waitExit(d time.Duration) error {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		return err
	case <-time.After(d):
		p.t.Fatalf("gateway still running %s later:\n%s", d, p.stderr.String())
		return nil
	}
}

// peakRSS is the peak resident set size of process pid (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc status for the gateway: %s", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("cannot parse %q: %s", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// upload is one raw HTTP/1.1 upload of a large body: the body is written
// while the response is read, so that an answer the gateway sends before it
// read the body arrives while the body is still being written.
type upload struct {
	status int
	body   []byte
	// bodyDone tells whether the whole request body had been written when
	// the response's status line arrived.
	bodyDone bool
	err      error
}

func sendUpload(addr, key string, body []byte) upload {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return upload{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := "POST /v1/messages HTTP/1.1\r\nHost: tollgate\r\nx-api-key: " + key +
		"\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		return upload{err: err}
	}
	var written atomic.Bool
	go func() {
		for rest := body; len(rest) > 0; {
			n, err := conn.Write(rest[:min(len(rest), 256<<10)])
			if err != nil {
				return // the gateway closed the connection without reading the rest
			}
			rest = rest[n:]
		}
		written.Store(true)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return upload{err: err}
	}
	u := upload{status: resp.StatusCode, bodyDone: written.Load()}
	u.body, u.err = io.ReadAll(resp.Body)
	resp.Body.Close()
	return u
}

// TestUploadsRefusedBeforeBodyBoundMemory: 48 concurrent uploads of 16 MiB
// on a key limited to 2 calls in flight. The 2 admitted calls are read and
// forwarded (the upstream holds them for a while); the 46 others get 429
// while their bodies are still being written, and the gateway's peak RSS
// stays under 400 MiB. Before issue 12 every body was read before the
// concurrency check: 1.9 GiB.
func TestUploadsRefusedBeforeBodyBoundMemory(t *testing.T) {
	const (
		uploads  = 48
		bodySize = 16 << 20
		maxRSS   = 400 << 20
	)
	var upstreamCalls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n < bodySize { // the model may be rewritten to the upstream's ID
			http.Error(w, fmt.Sprintf(`{"type":"error","error":{"type":"invalid_request_error","message":"body of %d bytes"}}`, n), 400)
			return
		}
		upstreamCalls.Add(1)
		time.Sleep(3 * time.Second) // the two admitted calls keep their slots while the others arrive
		w.Header().Set("content-type", "application/json")
		io.WriteString(w, `{"id":"msg_test","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}`)
	}))
	defer upstream.Close()

	p := startGateway(t, t.TempDir(), "--upstream-url", upstream.URL)
	p.setupAccount("acme", "100000")
	st, out := p.adminDo("POST", "/admin/v1/accounts/acme/keys", `{"name":"two","concurrency":2}`)
	if st != 201 {
		t.Fatalf("cannot create a key limited to 2 calls: %d %v", st, out)
	}
	key := out["key"].(string)

	// A valid request, padded to 16 MiB with spaces before its closing brace.
	head := `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hello"}]`
	body := append([]byte(head), bytes.Repeat([]byte(" "), bodySize-len(head)-1)...)
	body = append(body, '}')
	if !json.Valid(body) || len(body) != bodySize {
		t.Fatalf("BUG: the padded body is not valid JSON of %d bytes", bodySize)
	}

	results := make([]upload, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = sendUpload(p.client, key, body)
		}()
	}
	wg.Wait()
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB", rss>>20)

	admitted, refused := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("upload %d: %s", i, r.err)
		case r.status == 200:
			admitted++
		case r.status == 429:
			refused++
			if r.bodyDone {
				t.Fatalf("upload %d: 429 only after the whole 16 MiB body was sent: the gateway read the body of a call it refuses", i)
			}
			var e struct {
				Error struct{ Type string } `json:"error"`
			}
			if json.Unmarshal(r.body, &e); e.Error.Type != "rate_limit_error" {
				t.Fatalf("upload %d: unexpected 429 body %s", i, r.body)
			}
		default:
			t.Fatalf("upload %d: unexpected status %d: %s", i, r.status, r.body)
		}
	}
	if admitted != 2 || refused != uploads-2 || upstreamCalls.Load() != 2 {
		t.Fatalf("unexpected admissions; got %d admitted, %d refused, %d at the upstream; want 2, %d, 2", admitted, refused, upstreamCalls.Load(), uploads-2)
	}
	if rss >= maxRSS {
		t.Fatalf("unexpected peak RSS; got %d MiB; want under %d MiB", rss>>20, maxRSS>>20)
	}
}

// TestConnsPerAddressBounded: with limits.max_conns_per_ip 2, two open
// connections are served and a third from the same address is answered 429
// rate_limit_error (in the API's error shape, with retry-after) and closed;
// once one of the two closes, a new connection is served again.
func TestConnsPerAddressBounded(t *testing.T) {
	cfg := gatewayConfig(t, "limits.max_conns_per_ip", "2")
	p := startGateway(t, t.TempDir(), "--config", cfg)
	key := p.setupAccount("acme", "10")

	// get sends GET /v1/balance on conn and reads the answer.
	get := func(conn net.Conn, br *bufio.Reader) (*http.Response, []byte, error) {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /v1/balance HTTP/1.1\r\nHost: tollgate\r\nx-api-key: "+key+"\r\n\r\n"); err != nil {
			return nil, nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b, err
	}
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", p.client)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}
	var conns []net.Conn
	for i := range 2 {
		conn, br := dial()
		if resp, b, err := get(conn, br); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d within the bound not served: %v %v %s", i+1, err, resp, b)
		}
		conns = append(conns, conn)
	}

	third, br := dial()
	third.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the third connection got no answer: %s", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 429 || e.Type != "error" || e.Error.Type != "rate_limit_error" || resp.Header.Get("retry-after") == "" {
		t.Fatalf("unexpected answer to the third connection; got %d %v %s; want 429 rate_limit_error with retry-after", resp.StatusCode, resp.Header, b)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the third connection was not closed after its 429; read %d bytes, %v", n, err)
	}

	// The bound counts open connections: closing one makes room.
	conns[0].Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conn, br := dial()
		resp, _, err := get(conn, br)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one of the two closed: %v %v", err, resp)
		}
	}
	if resp, b, err := get(conns[1], bufio.NewReader(conns[1])); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the second connection stopped being served: %v %v %s", err, resp, b)
	}
}
