package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Process tests of issue 12 for what an operator sees: the simulator kept
// off addresses beyond loopback, the demo's admin token, backups without the
// IP digest key, and /readyz while the disk is low.

// TestServeRefusesSimulatorBeyondLoopback: with no ANTHROPIC_API_KEY and no
// --upstream-url, `serve --listen 0.0.0.0:PORT` refuses to start and says
// why (naming --simulator); with --simulator it starts and serves from the
// simulator. Before issue 12 it served customers from the simulator.
func TestServeRefusesSimulatorBeyondLoopback(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	env := []string{"TOLLGATE_ADMIN_TOKEN=test-admin-token"}
	args := []string{"serve", "--config", "../../configs/tollgate.yaml", "--data-dir", t.TempDir(),
		"--listen", "0.0.0.0:" + port, "--admin-listen", freeAddr(t)}
	_, out, exited := startProcess(t, env, args...)
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if exitedNow(exited, &err) {
			break
		}
		if strings.Contains(out.String(), "started:") || time.Now().After(deadline) {
			t.Fatalf("serve on 0.0.0.0 without an upstream did not refuse to start:\n%s", out.String())
		}
	}
	if err == nil || !strings.Contains(out.String(), "--simulator") || !strings.Contains(out.String(), "ANTHROPIC_API_KEY") {
		t.Fatalf("unexpected refusal; got %v\n%s\nwant a failure naming ANTHROPIC_API_KEY and --simulator", err, out.String())
	}

	// The later --listen wins over launchGateway's loopback address.
	p := launchGateway(t, t.TempDir(), env, "--config", "../../configs/tollgate.yaml", "--simulator", "--listen", "0.0.0.0:"+port)
	p.client = "127.0.0.1:" + port
	if !strings.Contains(p.stderr.String(), "SIMULATOR") {
		t.Fatalf("serve --simulator does not say it serves from the simulator:\n%s", p.stderr.String())
	}
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Hello")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("event: message_stop")) {
		t.Fatalf("serve --simulator on 0.0.0.0 does not serve: %d\n%s", resp.StatusCode, body)
	}
}

// exitedNow reports whether the process of exited has exited, with its
// error in *err, and leaves the error for startProcess's cleanup.
func exitedNow(exited chan error, err *error) bool {
	select {
	case *err = <-exited:
		exited <- *err
		return true
	default:
		return false
	}
}

// TestDemoPrintsOnlyAGeneratedAdminToken: `serve --demo` with
// TOLLGATE_ADMIN_TOKEN set never prints it; without it, it prints the token
// it generated, which the admin API then accepts.
func TestDemoPrintsOnlyAGeneratedAdminToken(t *testing.T) {
	const token = "operator-chosen-admin-token-0123456789"
	demoOutput := func(p *gatewayProcess) string {
		t.Helper()
		waitFor(t, 10*time.Second, "the demo's instructions", func() bool { return strings.Contains(p.stdout.String(), "See the balance go down") })
		return p.stdout.String()
	}

	p := launchGateway(t, t.TempDir(), []string{"TOLLGATE_ADMIN_TOKEN=" + token}, "--config", "../../configs/tollgate.yaml", "--demo")
	if out := demoOutput(p); strings.Contains(out, token) || strings.Contains(p.stderr.String(), token) {
		t.Fatalf("the demo printed the admin token the operator set:\n%s\n%s", out, p.stderr.String())
	}

	p = launchGateway(t, t.TempDir(), nil, "--config", "../../configs/tollgate.yaml", "--demo")
	out := demoOutput(p)
	_, rest, ok := strings.Cut(out, "admin token")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 || !strings.HasPrefix(fields[0], "tga-") {
		t.Fatalf("the demo did not print the admin token it generated:\n%s", out)
	}
	p.token = fields[0]
	if st, acct := p.adminDo("GET", "/admin/v1/accounts/demo", ""); st != 200 {
		t.Fatalf("the printed admin token is refused: %d %v", st, acct)
	}
	// Both consoles' invitation links work.
	for _, link := range regexp.MustCompile(`http://\S+/console/invite\?token=tgi-\S+`).FindAllString(out, -1) {
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Set your password") {
			t.Fatalf("the demo's invitation %s: %d", link, resp.StatusCode)
		}
	}
	if n := strings.Count(out, "/console/invite?token=tgi-"); n != 2 {
		t.Fatalf("the demo printed %d console invitations:\n%s", n, out)
	}
}

// TestBackupLeavesIPDigestKeyOut: POST /admin/v1/backup leaves
// ip-digest.key out unless "include_ip_digest_key" is true, refuses a
// directory inside the data directory (409), and `serve --data-dir` starts
// from either backup with the same money.
func TestBackupLeavesIPDigestKeyOut(t *testing.T) {
	dataDir := t.TempDir()
	p := startGateway(t, dataDir)
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Hello")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, before := p.adminDo("GET", "/admin/v1/accounts/acme", "")
	ipKey, err := os.ReadFile(filepath.Join(dataDir, "ip-digest.key"))
	if err != nil {
		t.Fatalf("no generated IP digest key in the data directory: %s", err)
	}

	without := filepath.Join(t.TempDir(), "backup")
	if st, out := p.adminDo("POST", "/admin/v1/backup", `{"dir":"`+without+`"}`); st != 201 {
		t.Fatalf("backup failed: %d %v", st, out)
	}
	if _, err := os.Stat(filepath.Join(without, "ip-digest.key")); !os.IsNotExist(err) {
		t.Fatalf("a default backup must leave ip-digest.key out; stat: %v", err)
	}
	with := filepath.Join(t.TempDir(), "backup")
	if st, out := p.adminDo("POST", "/admin/v1/backup", `{"dir":"`+with+`","include_ip_digest_key":true}`); st != 201 {
		t.Fatalf("backup with the IP digest key failed: %d %v", st, out)
	}
	if got, err := os.ReadFile(filepath.Join(with, "ip-digest.key")); err != nil || !bytes.Equal(got, ipKey) {
		t.Fatalf("a backup asked to include the IP digest key must carry it: %v", err)
	}

	inside := filepath.Join(dataDir, "backup")
	if st, out := p.adminDo("POST", "/admin/v1/backup", `{"dir":"`+inside+`"}`); st != 409 {
		t.Fatalf("a backup inside the data directory must be refused with 409; got %d %v", st, out)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Fatalf("the refused backup left %s behind", inside)
	}

	for _, dir := range []string{without, with} {
		if out := runVerifyOn(t, dir); !strings.Contains(out, "accounts   1") {
			t.Fatalf("unexpected verify of the backup %s:\n%s", dir, out)
		}
		p2 := startGateway(t, dir)
		if _, after := p2.adminDo("GET", "/admin/v1/accounts/acme", ""); after["available"] != before["available"] {
			t.Fatalf("the backup %s's balance differs: %v vs %v", dir, after, before)
		}
	}
	if got, err := os.ReadFile(filepath.Join(with, "ip-digest.key")); err != nil || !bytes.Equal(got, ipKey) {
		t.Fatalf("a gateway started from the backup replaced its IP digest key: %v", err)
	}
}

// TestReadyzReportsLowDisk: with wal.min_free_bytes above the free space of
// the data directory's file system, /readyz answers 503 naming the reason
// (and new calls get 503); with the default it answers 200. Before issue 12
// /readyz always answered 200.
func TestReadyzReportsLowDisk(t *testing.T) {
	readyz := func(p *gatewayProcess) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	cfg := gatewayConfig(t, "wal.min_free_bytes", "9223372036854775807")
	p := launchGateway(t, t.TempDir(), []string{"TOLLGATE_ADMIN_TOKEN=test-admin-token"}, "--config", cfg)
	if st, body := readyz(p); st != 503 || !strings.Contains(body, "free space") {
		t.Fatalf("unexpected /readyz while the disk is low; got %d %q; want 503 naming free space", st, body)
	}
	key := p.setupAccount("acme", "10")
	if resp := p.stream(key, "Hello"); resp.StatusCode != 503 {
		resp.Body.Close()
		t.Fatalf("a call while the disk is low must get 503; got %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}

	p = launchGateway(t, t.TempDir(), []string{"TOLLGATE_ADMIN_TOKEN=test-admin-token"}, "--config", "../../configs/tollgate.yaml")
	if st, body := readyz(p); st != 200 {
		t.Fatalf("unexpected /readyz with free disk; got %d %q; want 200", st, body)
	}
}
