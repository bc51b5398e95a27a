package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/tollgate/tollgate/internal/money"
)

// xss is typed into every field a person can type; pages must show it as
// text. A dialog opened by it fails the test.
const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`

// browser is one person's headless Chromium tab (its own cookies).
type browser struct {
	t   *testing.T
	ctx context.Context
	// shots is where screenshots go ("" for none).
	shots string
}

// chromiumPath finds Debian's chromium; without it the test is skipped,
// unless TOLLGATE_REQUIRE_BROWSER is set (CI sets it: it never skips).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TOLLGATE_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium found and TOLLGATE_REQUIRE_BROWSER is set (apt-get install chromium)")
	}
	t.Skip("SKIP: no chromium; the console's browser tests did not run (apt-get install chromium, or make browser)")
	return ""
}

// newBrowser starts a browser of its own (so its cookies are its own),
// stopped when the test ends.
func newBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start chromium: %s", err)
	}
	// A dialog can only come from script that typed text smuggled in.
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			t.Errorf("a page ran script from typed text: dialog %q", ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &browser{t: t, ctx: ctx, shots: shots}
}

// bounded is the browser's context with a bound for one step.
func (b *browser) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 15*time.Second)
}

// do runs actions, failing the test with the page's text on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatal(what, err)
	}
}

func (b *browser) fatal(what string, err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
	b.t.Fatalf("%s: %s (at %s: %.500s)", what, err, loc, body)
}

// text is the visible text of the first element sel (CSS) matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fatal("read "+sel, err)
	}
	return strings.TrimSpace(s)
}

// submit fills a form's fields (name → value) and submits it by its
// submit button, waiting for the page the form leads to.
func (b *browser) submit(form string, fields map[string]string) {
	b.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for name, v := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(form+` [name="`+name+`"]`), v))
	}
	b.do("fill "+form, actions...)
	b.follow(form + ` button[type="submit"]`)
}

// follow clicks sel (a link or a submit button) and waits for the page it
// leads to.
func (b *browser) follow(sel string) {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.fatal("click "+sel, err)
	}
	b.do("wait for the page", chromedp.WaitReady(chromedp.CSS("main h1")))
}

// open loads u and waits for its heading.
func (b *browser) open(u string) {
	b.t.Helper()
	b.do("open "+u, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("main h1")))
}

// shot saves a full-page screenshot as name.png when screenshots are on.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	ctx, cancel := b.bounded()
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatal("screenshot", err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), img, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// fetchText fetches path from the page (with its cookies, as a form
// would) and returns the status and body.
func (b *browser) fetchText(path, method, body string) (int, string) {
	b.t.Helper()
	init := `{method: ` + strconv.Quote(method) + `, redirect: "manual"}`
	if method == "POST" {
		init = `{method: "POST", redirect: "manual", headers: {"content-type": "application/x-www-form-urlencoded"}, body: ` + strconv.Quote(body) + `}`
	}
	ctx, cancel := b.bounded()
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](`fetch(`+strconv.Quote(path)+`, `+init+`).then(async r => [r.status, await r.text()])`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.fatal("fetch "+path, err)
	}
	return int(out[0].(float64)), out[1].(string)
}

// TestConsoleInBrowser drives both consoles in headless Chromium against
// `tollgate serve` on its simulator, as an operator and a customer use
// them: invitations, sign-in, an account topped up, a key made, a call
// through the official SDK seen in the log with its exact charge, a CSV
// statement that matches, a dispute accepted and its credit seen; then a
// revoked key refused, forged forms refused, a closed account's user
// kept out, and every typed field shown escaped. With
// TOLLGATE_SCREENSHOTS=dir it saves each page's screenshot there (make
// screenshots refreshes docs/console).
func TestConsoleInBrowser(t *testing.T) {
	skipProcessTestIfShort(t)
	shots := os.Getenv("TOLLGATE_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := startGateway(t, t.TempDir())
	adminURL, clientURL := "http://"+p.admin, "http://"+p.client

	// The operator: made and invited through the admin API, signs in.
	if st, out := p.adminDo("POST", "/admin/v1/operators", `{"id":"olga","email":"olga@platform.test","role":"admin"}`); st != 201 {
		t.Fatalf("cannot create operator: %d %v", st, out)
	}
	st, inv := p.adminDo("POST", "/admin/v1/operators/olga/invitations", `{}`)
	if st != 201 || !strings.HasPrefix(inv["link"].(string), adminURL+"/console/invite?token=tgi-") {
		t.Fatalf("operator invitation: %d %v", st, inv)
	}
	op := newBrowser(t, shots)
	op.open(inv["link"].(string))
	op.shot("invitation")
	op.submit("form", map[string]string{"password": "olga-secret-1", "confirm": "olga-secret-1"})
	if h := op.text("main h1"); h != "Accounts" {
		t.Fatalf("the operator did not land on the accounts: %q", h)
	}

	// The operator creates an account, tops it up and invites a user.
	op.submit("#create-account", map[string]string{"id": "acme", "email": "billing@acme.test"})
	op.submit("#topup", map[string]string{"amount": "10", "order_id": "order-1"})
	if got := op.text("#available"); got != "10" {
		t.Fatalf("available after the top-up: %q", got)
	}
	op.submit("#invite", map[string]string{"email": "ada@acme.test"})
	link := op.text("#invite-link")
	op.shot("operator-account")

	// The customer accepts, signs in, makes a key.
	cu := newBrowser(t, shots)
	cu.open(link)
	cu.submit("form", map[string]string{"password": "ada-secret-12", "confirm": "ada-secret-12"})
	if got := cu.text("#available"); got != "10" {
		t.Fatalf("the customer's overview shows %q available", got)
	}
	cu.open(clientURL + "/console/keys")
	cu.submit("form.card", map[string]string{"name": "ci " + xss, "rpm": "60"})
	key := cu.text("#new-key")
	if !strings.HasPrefix(key, "tg-") || !strings.Contains(cu.text("table"), "ci "+xss) {
		t.Fatalf("no key shown, or its name not shown as typed: %q", key)
	}
	cu.shot("customer-keys")

	// A call through the official SDK with that key.
	requestID := sdkCall(t, clientURL, key)
	cu.open(clientURL + "/console/calls")
	if !strings.Contains(cu.text("#calls"), requestID) {
		t.Fatalf("the call log does not show %s", requestID)
	}
	cu.shot("customer-calls")
	cu.open(clientURL + "/console/calls/" + requestID)
	charged := mustCredits(t, cu.text("#charged"))
	if charged <= 0 {
		t.Fatalf("charged %d", charged)
	}
	cu.shot("customer-call")
	cu.open(clientURL + "/console/overview")
	if got := mustCredits(t, cu.text("#available")); got != 10_000_000_000-charged {
		t.Fatalf("available %d after a call charged %d", got, charged)
	}
	cu.shot("customer-overview")

	// The statement's CSV, downloaded with the customer's session, sums to
	// the admin API's statement, to the nano-credit.
	today := time.Now().UTC().Format(time.DateOnly)
	status, body := cu.fetchText("/console/statement.csv?from="+today+"&to="+today, "GET", "")
	if status != 200 {
		t.Fatalf("statement CSV: %d %.300s", status, body)
	}
	if sum := csvCharged(t, body); sum != charged {
		t.Fatalf("the CSV's charges sum to %d; the call was charged %d", sum, charged)
	}
	from := time.Now().UTC().Truncate(24 * time.Hour)
	_, stmt := p.adminDo("GET", "/admin/v1/accounts/acme/statement?from="+url.QueryEscape(from.Format(time.RFC3339))+"&to="+url.QueryEscape(from.Add(24*time.Hour).Format(time.RFC3339)), "")
	if got := adminCharges(t, stmt); got != charged {
		t.Fatalf("the admin statement's charges are %d, the console's call %d", got, charged)
	}
	cu.open(clientURL + "/console/statement")
	cu.shot("customer-statement")
	cu.open(clientURL + "/console/prices")
	if prices := cu.text("#prices"); !strings.Contains(prices, "Retires on 2027-01-22; move to claude-opus-5-5") {
		t.Fatalf("the prices page does not show Opus 4.5's retirement and successor")
	}
	cu.shot("customer-prices")

	// The customer disputes the call from its page; the operator accepts.
	cu.open(clientURL + "/console/calls/" + requestID)
	cu.follow("#dispute-link")
	cu.submit("form.card", map[string]string{"reason": "wrong answer " + xss})
	if !strings.Contains(cu.text("#disputes"), "wrong answer "+xss) {
		t.Fatalf("the dispute's reason is not shown as typed: %q", cu.text("#disputes"))
	}
	cu.shot("customer-disputes")
	cu.open(clientURL + "/console/notifications")
	cu.submit("#notification-settings", map[string]string{"emails": "ada@acme.test", "low_balance": "2", "webhook_url": "https://hooks.acme.test/tollgate"})
	if !strings.HasPrefix(cu.text("#webhook-secret"), "whsec_") {
		t.Fatalf("no webhook secret shown: %s", cu.text("main"))
	}
	if _, n := p.adminDo("GET", "/admin/v1/accounts/acme/notifications", ""); n["low_balance"] != "2" || n["webhook_url"] != "https://hooks.acme.test/tollgate" {
		t.Fatalf("the settings as the admin API sees them: %v", n)
	}
	cu.shot("customer-notifications")
	op.open(adminURL + "/console/notifications")
	if !strings.Contains(op.text("#destinations"), "account:acme:webhook") || !strings.Contains(op.text("#events"), "topup.received") {
		t.Fatalf("the operators' notifications page: %s", op.text("main"))
	}
	op.shot("operator-notifications")
	op.open(adminURL + "/console/disputes")
	op.shot("operator-disputes")
	op.submit("form.accept", map[string]string{"note": "sorry " + xss})
	if !strings.Contains(op.text("main"), "accepted") {
		t.Fatalf("no acceptance: %s", op.text("main"))
	}
	cu.open(clientURL + "/console/disputes")
	if state := cu.text("#disputes td.state"); state != "accepted" {
		t.Fatalf("the customer sees the dispute %q", state)
	}
	cu.open(clientURL + "/console/overview")
	if got := cu.text("#available"); got != "10" {
		t.Fatalf("after the refund the customer sees %q available", got)
	}
	op.open(adminURL + "/console/health")
	op.shot("operator-health")
	op.open(adminURL + "/console/accounts")
	op.shot("operator-accounts")

	// Forged forms: no CSRF token, a wrong one, a token from another
	// session; and no session at all.
	for _, form := range []string{"name=forged", "name=forged&csrf=AAAA"} {
		if st, _ := cu.fetchText("/console/keys", "POST", form); st != http.StatusForbidden {
			t.Fatalf("a forged form (%s) got %d", form, st)
		}
	}
	refuseWithoutSession(t, clientURL)

	// The customer revokes the key (a confirmation page first); the SDK is
	// refused with it.
	cu.open(clientURL + "/console/keys")
	if n := strings.Count(cu.text("table"), today); n != 2 {
		t.Fatalf("the key's created and last-used times: %d of today's dates in %q", n, cu.text("table"))
	}
	cu.follow("a.danger")
	cu.submit("form.card", nil)
	if err := sdkCallErr(clientURL, key); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a revoked key's call: %v", err)
	}

	// The operator closes the account; its user is out and cannot sign in.
	op.open(adminURL + "/console/accounts/acme")
	op.follow("#close-link")
	op.submit("form.card", nil)
	if got := op.text("#state"); got != "closed" {
		t.Fatalf("the account is %q after closing", got)
	}
	cu.open(clientURL + "/console/overview")
	if h := cu.text("main h1"); h != "Sign in" {
		t.Fatalf("a closed account's user still sees %q", h)
	}
	cu.submit("form", map[string]string{"email": "ada@acme.test", "password": "ada-secret-12"})
	if !strings.Contains(cu.text(".problem"), "no longer in force") {
		t.Fatalf("a closed account's user signing in sees %q", cu.text("main"))
	}
}

// refuseWithoutSession: without a session cookie pages send to the sign-in
// and forms are refused.
func refuseWithoutSession(t *testing.T, base string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/console"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != base+"/console/" {
			t.Fatalf("%s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, err := c.Get(base + "/console/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin" {
		t.Fatalf("a page without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(base+"/console/keys", url.Values{"name": {"x"}, "csrf": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a form without a session: %d", resp.StatusCode)
	}
}

func sdkClient(base, key string) anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL(base), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// sdkCall makes one streamed call with the official SDK and returns its
// request ID.
func sdkCall(t *testing.T, base, key string) string {
	t.Helper()
	id, err := sdkCallID(base, key)
	if err != nil {
		t.Fatal(err)
	}
	// The call record is written at settlement, just after the stream.
	time.Sleep(200 * time.Millisecond)
	return id
}

// sdkCallID makes one streamed call with the official SDK and returns its
// request ID.
func sdkCallID(base, key string) (string, error) {
	var resp *http.Response
	client := sdkClient(base, key)
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-haiku-4-5", MaxTokens: 200,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello from the console test"))},
	}, option.WithResponseInto(&resp))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		return "", fmt.Errorf("SDK call: %w", err)
	}
	id := resp.Header.Get("request-id")
	if id == "" {
		return "", errors.New("no request-id")
	}
	return id, nil
}

func sdkCallErr(base, key string) error {
	client := sdkClient(base, key)
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-haiku-4-5", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
	})
	return err
}

func mustCredits(t *testing.T, s string) int64 {
	t.Helper()
	v, err := money.Parse(strings.Fields(s)[0])
	if err != nil {
		t.Fatalf("not credits: %q", s)
	}
	return v
}

// csvCharged sums the charged column of a calls CSV.
func csvCharged(t *testing.T, body string) int64 {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("bad CSV (%v): %.300s", err, body)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "charged" {
			col = i
		}
	}
	var sum int64
	for _, r := range rows[1:] {
		sum += mustCredits(t, r[col])
	}
	return sum
}

// adminCharges sums the charges of an admin API statement.
func adminCharges(t *testing.T, stmt map[string]any) int64 {
	t.Helper()
	var sum int64
	charges, _ := stmt["charges"].([]any)
	for _, c := range charges {
		sum += mustCredits(t, c.(map[string]any)["amount"].(string))
	}
	return sum
}
