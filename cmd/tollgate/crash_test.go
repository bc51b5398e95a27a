package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/simulator"
)

// TestCrashUnderLoad runs `tollgate serve` as a process under streaming calls
// and admin top-ups from many goroutines, kills it with SIGKILL at random
// moments (at least 20 times; TOLLGATE_SOAK=1 for 200), restarts it on the
// same data directory, and checks after each restart and at the end:
//   - every acknowledged top-up is there, exactly once;
//   - every call the client saw complete is settled exactly once, outcome ok,
//     at the price of its usage;
//   - holds left open by the kill are recovered (nothing held once idle);
//   - `tollgate verify` passes (conservation to the nano-credit).
//
// Checkpoints and call-record pruning run every second, so kills also land
// during both.
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills := 20
	if os.Getenv("TOLLGATE_SOAK") != "" {
		kills = 200
	}
	cfgDir := t.TempDir()
	base, err := os.ReadFile("../../configs/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"checkpoint_every_records: 1000000", "checkpoint_every_records: 200",
		"checkpoint_interval: 10m", "checkpoint_interval: 1s",
		"sweep_interval: 1m", "sweep_interval: 1s",
		"call_retention: 2160h", "call_retention: 2h",
		"catalogue: models.yaml", "catalogue: "+filepath.Join(mustAbs(t, "../../configs"), "models.yaml"),
	).Replace(string(base))
	cfgPath := filepath.Join(cfgDir, "tollgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := meter.LoadCatalogue("../../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	haiku, _ := cat.Lookup("claude-haiku-4-5")

	dataDir := t.TempDir()
	p := startGateway(t, dataDir, "--config", cfgPath)
	key := p.setupAccount("acme", "1000000")
	rng := rand.New(rand.NewPCG(7, 11))
	deadline := time.Now().Add(40 * time.Second)

	var mu sync.Mutex
	orders := map[string]bool{} // acknowledged top-ups
	type doneCall struct{ id, body string }
	var calls []doneCall // calls the client saw complete
	var stop atomic.Bool

	for run := 0; run < kills; run++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d kills within the time bound", run)
		}
		stop.Store(false)
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					text := fmt.Sprintf("run %d worker %d call %d says hello", run, w, i)
					body := `{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"` + text + `"}]}`
					id, ok := streamOnce(p, key, body)
					if ok {
						mu.Lock()
						calls = append(calls, doneCall{id, body})
						mu.Unlock()
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				order := fmt.Sprintf("o-%d-%d", run, i)
				st, err := p.tryAdminDo("POST", "/admin/v1/accounts/acme/topups", `{"amount":"1","order_id":"`+order+`","kind":"paid"}`)
				if err == nil && st == 201 {
					mu.Lock()
					orders[order] = true
					mu.Unlock()
				}
			}
		}()
		time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond)
		p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
		stop.Store(true)
		wg.Wait()

		p = startGateway(t, dataDir, "--config", cfgPath)
		if _, acct := p.adminDo("GET", "/admin/v1/accounts/acme", ""); acct["held"] != "0" {
			t.Fatalf("run %d: holds left open after recovery: %v", run, acct)
		}
	}

	// Every completed call: settled once, outcome ok, at the price of its usage.
	for _, c := range calls {
		st, out := p.adminDo("GET", "/admin/v1/calls?request_id="+c.id, "")
		data, _ := out["data"].([]any)
		if st != 200 || len(data) != 1 {
			t.Fatalf("completed call %s has no call record: %d %v", c.id, st, out)
		}
		rec := data[0].(map[string]any)
		u, err := simulator.ExpectedUsage([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		price, err := haiku.Price(meter.Usage{Counts: tokens.Counts{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens}}, time.Now(), meter.MultiplierOne)
		if err != nil {
			t.Fatal(err)
		}
		nanos, _ := money.Parse(rec["charged"].(string))
		if rec["outcome"] != "ok" || nanos != price {
			t.Fatalf("completed call %s: outcome %v charged %v; want ok at %d nano-credits", c.id, rec["outcome"], rec["charged"], price)
		}
	}
	// Every acknowledged top-up exactly once, and settlements once per call.
	seenOrders := map[string]int{}
	settles := map[string]int{}
	cursor := ""
	for {
		path := "/admin/v1/accounts/acme/entries?limit=1000"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		_, out := p.adminDo("GET", path, "")
		for _, e := range out["data"].([]any) {
			e := e.(map[string]any)
			switch e["kind"] {
			case "topup":
				seenOrders[e["order_id"].(string)]++
			case "settle", "void":
				settles[e["request_id"].(string)]++
			}
		}
		next, _ := out["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	for o := range orders {
		if seenOrders[o] != 1 {
			t.Fatalf("acknowledged top-up %s appears %d times", o, seenOrders[o])
		}
	}
	for id, n := range settles {
		if n != 1 {
			t.Fatalf("call %s ended %d times", id, n)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p.exited <- nil
	out := runVerifyOn(t, dataDir)
	if !strings.Contains(out, "open holds 0") {
		t.Fatalf("open holds after the run:\n%s", out)
	}
	t.Logf("%d kills, %d completed calls, %d acknowledged top-ups", kills, len(calls), len(orders))
}

// streamOnce makes one streaming call and reports its request ID and
// whether the client saw it complete (message_stop received).
func streamOnce(p *gatewayProcess, key, body string) (string, bool) {
	req, _ := http.NewRequest("POST", "http://"+p.client+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	return resp.Header.Get("request-id"), resp.StatusCode == 200 && bytes.Contains(b, []byte("event: message_stop"))
}

func (p *gatewayProcess) tryAdminDo(method, path, body string) (int, error) {
	req, _ := http.NewRequest(method, "http://"+p.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.token)
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, nil
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
