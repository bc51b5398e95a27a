package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// tollgateBin is the tollgate binary built once for the process tests.
var tollgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-bin")
	if err != nil {
		panic(err)
	}
	tollgateBin = filepath.Join(dir, "tollgate")
	out, err := exec.Command("go", "build", "-o", tollgateBin, ".").CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("cannot build tollgate: %s\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipProcessTestIfShort skips a test that runs tollgate as a process under
// -short: the race-detector pass of make test uses it, since a process-level
// suite runs once (in the child, the race detector sees nothing anyway).
func skipProcessTestIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: runs once, without -short")
	}
}

// lockedBuffer is a bytes.Buffer the process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Bytes() []byte { return []byte(b.String()) }

// gatewayProcess is `tollgate serve` running as a real process on loopback.
type gatewayProcess struct {
	t              *testing.T
	cmd            *exec.Cmd
	client, admin  string
	token          string
	stdout, stderr lockedBuffer
	dataDir        string
	exited         chan error
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startGateway(t *testing.T, dataDir string, extraArgs ...string) *gatewayProcess {
	t.Helper()
	return startGatewayBin(t, tollgateBin, nil, dataDir, extraArgs...)
}

// startGatewayBin starts bin serve with env added to the test's and waits
// until its admin API is ready.
func startGatewayBin(t *testing.T, bin string, env []string, dataDir string, extraArgs ...string) *gatewayProcess {
	t.Helper()
	env = append([]string{"TOLLGATE_ADMIN_TOKEN=test-admin-token", "PATH=" + os.Getenv("PATH")}, env...)
	return runGateway(t, bin, dataDir, env, func(client, admin string) []string {
		return append([]string{"serve", "--data-dir", dataDir, "--listen", client, "--admin-listen", admin, "--config", "../../configs/tollgate.yaml"}, extraArgs...)
	}, func(p *gatewayProcess) bool {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(p.stderr.String(), "started:")
	})
}

// runGateway starts a gateway process with env and args(client, admin) on
// two free addresses and waits until ready says so. The addresses are
// found free and then bound by the gateway, so another process may take
// one in between: such a start is tried again on new addresses.
func runGateway(t *testing.T, bin, dataDir string, env []string, args func(client, admin string) []string, ready func(*gatewayProcess) bool) *gatewayProcess {
	t.Helper()
	skipProcessTestIfShort(t)
	for attempt := 1; ; attempt++ {
		p := &gatewayProcess{t: t, client: freeAddr(t), admin: freeAddr(t), token: "test-admin-token", dataDir: dataDir, exited: make(chan error, 1)}
		p.cmd = exec.Command(bin, args(p.client, p.admin)...)
		p.cmd.Env = env
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.exited <- p.cmd.Wait() }()
		err := p.waitReady(ready)
		if err == nil {
			t.Cleanup(func() {
				p.cmd.Process.Kill()
				<-p.exited
			})
			return p
		}
		if attempt == 3 || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("%s\n%s", err, p.stderr.String())
		}
	}
}

// waitReady polls ready for 20 s; an error says the process exited or
// was not ready in time (and is then stopped).
func (p *gatewayProcess) waitReady(ready func(*gatewayProcess) bool) error {
	for deadline := time.Now().Add(20 * time.Second); !ready(p); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("gateway exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			return errors.New("gateway not ready in time")
		}
	}
	return nil
}

func (p *gatewayProcess) adminDo(method, path, body string) (int, map[string]any) {
	p.t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// metrics is GET /metrics on the admin listener: its status and body.
func (p *gatewayProcess) metrics() (int, string) {
	req, _ := http.NewRequest("GET", "http://"+p.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *gatewayProcess) setupAccount(id, credit string) string {
	p.t.Helper()
	if st, out := p.adminDo("POST", "/admin/v1/accounts", `{"id":"`+id+`"}`); st != 201 {
		p.t.Fatalf("cannot create account: %d %v", st, out)
	}
	if st, out := p.adminDo("POST", "/admin/v1/accounts/"+id+"/topups", `{"amount":"`+credit+`","order_id":"o-`+id+`","kind":"paid"}`); st != 201 {
		p.t.Fatalf("cannot top up: %d %v", st, out)
	}
	st, out := p.adminDo("POST", "/admin/v1/accounts/"+id+"/keys", `{"name":"test"}`)
	if st != 201 {
		p.t.Fatalf("cannot create key: %d %v", st, out)
	}
	return out["key"].(string)
}

// stream starts a streaming call and returns the response; the caller reads it.
func (p *gatewayProcess) stream(key, text string) *http.Response {
	p.t.Helper()
	body := `{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"` + text + `"}]}`
	req, _ := http.NewRequest("POST", "http://"+p.client+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp
}

func runVerifyOn(t *testing.T, dataDir string) string {
	t.Helper()
	out, err := exec.Command(tollgateBin, "verify", "--data-dir", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("verify failed: %s\n%s", err, out)
	}
	return string(out)
}

// TestServeShutdownLetsCallsFinish sends SIGTERM while a slow stream runs: the
// call completes and settles, the process exits 0, and verify passes.
func TestServeShutdownLetsCallsFinish(t *testing.T) {
	dataDir := t.TempDir()
	p := startGateway(t, dataDir)
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Count slowly please [[sim:delay=50ms,words=20]]")
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "event: message_start\n" {
		t.Fatalf("unexpected first line %q", line)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if !bytes.Contains(rest, []byte("event: message_stop")) {
		t.Fatalf("the running call was cut off by shutdown:\n%s", rest)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("unexpected exit: %v\n%s", err, p.stderr.String())
		}
		p.exited <- nil
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway did not exit after SIGTERM")
	}
	out := runVerifyOn(t, dataDir)
	if !strings.Contains(out, "open holds 0") {
		t.Fatalf("holds left open after a clean shutdown:\n%s", out)
	}
}

// TestServeRecoversOpenHoldsAfterKill kills the gateway with SIGKILL while a
// stream runs, restarts it, and checks that the open hold was voided with a
// call record of outcome recovered and nothing charged.
func TestServeRecoversOpenHoldsAfterKill(t *testing.T) {
	dataDir := t.TempDir()
	p := startGateway(t, dataDir)
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Hang on [[sim:hang_after=2]]")
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "event: message_start\n" {
		t.Fatalf("unexpected first line %q", line)
	}
	requestID := resp.Header.Get("request-id")
	p.cmd.Process.Kill()
	<-p.exited
	p.exited <- nil
	resp.Body.Close()

	p2 := startGateway(t, dataDir)
	st, out := p2.adminDo("GET", "/admin/v1/calls?request_id="+requestID, "")
	data, _ := out["data"].([]any)
	if st != 200 || len(data) != 1 {
		t.Fatalf("no call record for the recovered call: %d %v\n%s", st, out, p2.stderr.String())
	}
	rec := data[0].(map[string]any)
	if rec["outcome"] != "recovered" || rec["charged"] != "0" {
		t.Fatalf("unexpected recovered call record: %v", rec)
	}
	_, acct := p2.adminDo("GET", "/admin/v1/accounts/acme", "")
	if acct["available"] != "10" || acct["held"] != "0" {
		t.Fatalf("the recovered hold must be released in full: %v", acct)
	}
	if !strings.Contains(p2.stderr.String(), "recovered 1 open holds") {
		t.Fatalf("the start line must report the recovery:\n%s", p2.stderr.String())
	}
}

// TestServeRequiresAdminToken: serve refuses to start without the token.
func TestServeRequiresAdminToken(t *testing.T) {
	cmd := exec.Command(tollgateBin, "serve", "--data-dir", t.TempDir(), "--config", "../../configs/tollgate.yaml")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TOLLGATE_ADMIN_TOKEN") {
		t.Fatalf("serve started without an admin token: %v\n%s", err, out)
	}
}

// TestConfigUnknownKey: an unknown key fails, naming the key and its line.
func TestConfigUnknownKey(t *testing.T) {
	_, err := parseConfig([]byte("listen: a:1\nadmin_listen: b:2\nupstreams: [{name: x, base_url: 'http://x'}]\nwal:\n  modee: sync\n"))
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "modee") {
		t.Fatalf("unexpected error for an unknown key: %v", err)
	}
}

// TestShippedConfigLoads: configs/tollgate.yaml and the embedded copy load.
func TestShippedConfigLoads(t *testing.T) {
	for _, path := range []string{"../../configs/tollgate.yaml", "missing.yaml"} {
		fc, err := loadConfig(path, path == "missing.yaml")
		if err != nil {
			t.Fatalf("cannot load %s: %s", path, err)
		}
		if _, err := loadCatalogue(fc); err != nil {
			t.Fatalf("cannot load the catalogue of %s: %s", path, err)
		}
	}
}

// TestNoSecretsStored makes calls through a gateway process, then checks that
// no key secret and no raw client address appears in the data directory or
// the logs.
func TestNoSecretsStored(t *testing.T) {
	dataDir := t.TempDir()
	p := startGateway(t, dataDir)
	key := p.setupAccount("acme", "10")
	for range 3 {
		resp := p.stream(key, "Hello there")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p.exited <- nil
	secrets := map[string]string{"key secret": key, "key secret body": key[len("tg-"):], "client address": "127.0.0.1", "admin token": p.token}
	check := func(where string, data []byte) {
		for what, s := range secrets {
			if what == "client address" && where != "logs" && bytes.Contains(data, []byte(s)) {
				t.Fatalf("%s found in %s", what, where)
			}
			if what != "client address" && bytes.Contains(data, []byte(s)) {
				t.Fatalf("%s found in %s", what, where)
			}
		}
	}
	err := filepath.Walk(dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		check(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("logs", p.stderr.Bytes())
	check("logs", p.stdout.Bytes())
}

// TestServeReloadsCatalogueOnSIGHUP: a valid new catalogue takes effect
// (here: a model retired), an invalid one is refused and the old one kept.
func TestServeReloadsCatalogueOnSIGHUP(t *testing.T) {
	cfgDir := t.TempDir()
	for _, f := range []string{"tollgate.yaml", "models.yaml"} {
		b, err := os.ReadFile("../../configs/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	models := filepath.Join(cfgDir, "models.yaml")
	original, _ := os.ReadFile(models)
	p := startGateway(t, t.TempDir(), "--config", filepath.Join(cfgDir, "tollgate.yaml"))
	key := p.setupAccount("acme", "10")
	status := func() int {
		resp := p.stream(key, "Hello")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	hup := func(want string) {
		t.Helper()
		p.cmd.Process.Signal(syscall.SIGHUP)
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.stderr.String(), want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", want, p.stderr.String())
			}
		}
	}
	if s := status(); s != 200 {
		t.Fatalf("unexpected status before the reload: %d", s)
	}
	os.WriteFile(models, []byte("models:\n  - id: broken\n    colour: red\n"), 0o600)
	hup("keeping the old catalogue")
	if s := status(); s != 200 {
		t.Fatalf("an invalid catalogue must leave the old one in force; got %d", s)
	}
	// Retiring a model at once breaks the notice period: refused, unless
	// the catalogue carries an override, which is recorded.
	retired := strings.Replace(string(original), "    display_name: Claude Haiku 4.5\n", "    display_name: Claude Haiku 4.5\n    retires: 2000-01-01\n", 1)
	os.WriteFile(models, []byte(retired), 0o600)
	hup("retirement on 2000-01-01 is less than 14 days away")
	if s := status(); s != 200 {
		t.Fatalf("a retirement without notice must leave the old catalogue in force; got %d", s)
	}
	os.WriteFile(models, []byte(strings.Replace(retired, "\nas_of:", "\nnotice_override: \"the upstream withdrew it\"\nas_of:", 1)), 0o600)
	hup("catalogue reloaded")
	if s := status(); s != 404 {
		t.Fatalf("a model retired by the new catalogue must answer 404; got %d", s)
	}
	changes, err := os.ReadFile(filepath.Join(p.dataDir, catalogueChangesFile))
	if err != nil || !strings.Contains(string(changes), `override="the upstream withdrew it"`) || strings.Count(string(changes), "accepted") != 2 {
		t.Fatalf("the changes log:\n%s (%v)", changes, err)
	}
}

// TestAcceptCatalogue: a fresh data directory and the embedded default are
// never refused; a price change within 14 days is, until a new override;
// the same override text does not cover the next change.
func TestAcceptCatalogue(t *testing.T) {
	dir := t.TempDir()
	logger := log.New(io.Discard, "", 0)
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	original, err := os.ReadFile("../../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	accept := func(raw string, embedded bool) error {
		t.Helper()
		cat, err := meter.ParseCatalogue([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return acceptCatalogue(dir, cat, []byte(raw), embedded, now, nil, logger)
	}
	if err := accept(string(original), false); err != nil {
		t.Fatalf("a fresh data directory refused: %s", err)
	}
	cut := strings.Replace(string(original), `input: "1"`, `input: "0.90"`, 1)
	if cut == string(original) {
		t.Fatal("no price to cut in the catalogue")
	}
	if err := accept(cut, false); err == nil || !strings.Contains(err.Error(), "less than 14 days' notice") {
		t.Fatalf("a price cut without override: %v", err)
	}
	if err := accept(cut, true); err != nil {
		t.Fatalf("the embedded default refused: %s", err)
	}
	overridden := strings.Replace(string(original), "\nas_of:", "\nnotice_override: \"upstream cut\"\nas_of:", 1)
	if err := accept(overridden, false); err != nil {
		t.Fatalf("an override refused: %s", err)
	}
	again := strings.Replace(overridden, `input: "1"`, `input: "0.80"`, 1)
	if err := accept(again, false); err == nil {
		t.Fatal("a stale override covered a new change")
	}
}

// TestBackupStartsAGateway: POST /admin/v1/backup while the gateway runs
// writes a copy that `serve --data-dir` starts from, with the same money.
func TestBackupStartsAGateway(t *testing.T) {
	p := startGateway(t, t.TempDir())
	key := p.setupAccount("acme", "10")
	resp := p.stream(key, "Hello")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, before := p.adminDo("GET", "/admin/v1/accounts/acme", "")
	backup := filepath.Join(t.TempDir(), "backup")
	if st, out := p.adminDo("POST", "/admin/v1/backup", `{"dir":"`+backup+`"}`); st != 201 {
		t.Fatalf("backup failed: %d %v", st, out)
	}
	if st, _ := p.adminDo("POST", "/admin/v1/backup", `{"dir":"`+backup+`"}`); st != 409 {
		t.Fatalf("a backup over an existing directory must be refused; got %d", st)
	}
	out := runVerifyOn(t, backup)
	if !strings.Contains(out, "accounts   1") {
		t.Fatalf("unexpected verify of the backup:\n%s", out)
	}
	p2 := startGateway(t, backup)
	_, after := p2.adminDo("GET", "/admin/v1/accounts/acme", "")
	if after["available"] != before["available"] {
		t.Fatalf("the backup's balance differs: %v vs %v", after, before)
	}
}
