package console

import (
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/wal"
)

// fixture is both consoles on a real ledger and WAL in a temporary
// directory, served by httptest servers (the browser test in cmd/tollgate
// drives them in Chromium; these check the rules one by one).
type fixture struct {
	t                  testing.TB
	led                *ledger.Ledger
	users              *access.Users
	store              *flakyUsers // users, as the consoles reach them
	ops                *access.Store
	customer, operator *httptest.Server
}

func newFixture(t testing.TB, tls bool) *fixture {
	t.Helper()
	w, err := wal.Open(t.TempDir(), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	led, err := ledger.Open(w, ledger.Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := meter.LoadCatalogue("../../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	users, err := access.OpenUsers(w)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := access.Open(w.States, w.SetState)
	if err != nil {
		t.Fatal(err)
	}
	logger := log.New(io.Discard, "", 0)
	f := &fixture{t: t, led: led, users: users, store: &flakyUsers{UserStore: users}, ops: ops}
	catalogue := func() *meter.Catalogue { return cat }
	served := func(now time.Time) []*meter.Model {
		var out []*meter.Model
		for _, m := range cat.Models() {
			if m.Available(now) {
				out = append(out, m)
			}
		}
		return out
	}
	retirement := func(m *meter.Model, _ time.Time) time.Time { return m.Retires }
	cust := NewCustomer(CustomerConfig{Users: f.store, Books: led, Served: served, Retirement: retirement, MaxKeys: 2,
		AccountDefaults: ledger.Limits{RPM: 100, TPM: 0, Concurrency: 8}, Logger: logger})
	op := NewOperator(OperatorConfig{Users: f.store, Operators: ops, Books: led, Catalogue: catalogue,
		Ready: func() error { return nil }, Logger: logger})
	if tls {
		f.customer, f.operator = httptest.NewTLSServer(cust), httptest.NewTLSServer(op)
	} else {
		f.customer, f.operator = httptest.NewServer(cust), httptest.NewServer(op)
	}
	t.Cleanup(func() { f.customer.Close(); f.operator.Close() })
	if _, err := led.CreateAccount(ledger.AccountSpec{ID: "acme", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	return f
}

// flakyUsers is a store whose sign-in lookups fail while failing is set,
// as PostgreSQL's do while it fails over (cluster mode).
type flakyUsers struct {
	access.UserStore
	failing atomic.Bool
}

var errUnreachable = errors.New("the store is unreachable")

func (u *flakyUsers) SessionUser(token string) (access.User, bool, error) {
	if u.failing.Load() {
		return access.User{}, false, errUnreachable
	}
	return u.UserStore.SessionUser(token)
}

func (u *flakyUsers) UserByEmail(realm access.Realm, email string) (access.User, bool, error) {
	if u.failing.Load() {
		return access.User{}, false, errUnreachable
	}
	return u.UserStore.UserByEmail(realm, email)
}

// TestUnreadableStore: while the users cannot be read, pages answer 503
// and keep the session's cookie, and sign-ins answer 503 without counting
// against the person; once the store is back, the same session works.
func TestUnreadableStore(t *testing.T) {
	f := newFixture(t, false)
	ada := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	if st := ada.signIn("ada@acme.test", "right password"); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	f.store.failing.Store(true)
	resp, err := ada.c.Get(ada.base + "/console/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("a page while the store is unreachable: %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	bob := f.newPerson(f.customer, access.RealmCustomer, "", "", "")
	for range 2 * FailuresPerUser {
		if st := bob.signIn("ada@acme.test", "right password"); st != http.StatusServiceUnavailable {
			t.Fatalf("a sign-in while the store is unreachable: %d", st)
		}
	}
	f.store.failing.Store(false)
	if st, _ := ada.get("/console/overview"); st != http.StatusOK {
		t.Fatalf("the session after the store came back: %d", st)
	}
	if st := bob.signIn("ada@acme.test", "right password"); st != http.StatusSeeOther {
		t.Fatalf("a sign-in after the store came back: %d (the failures counted against the person)", st)
	}
}

// person is someone with a browser's cookie jar on one console.
type person struct {
	t    testing.TB
	base string
	c    *http.Client
}

// newPerson makes a user of realm for subject with password and a client
// that keeps cookies but does not follow redirects.
func (f *fixture) newPerson(srv *httptest.Server, realm access.Realm, subject, email, password string) *person {
	f.t.Helper()
	if email != "" {
		token, _, err := f.users.Invite(realm, subject, email, "test")
		if err != nil {
			f.t.Fatal(err)
		}
		hash, err := access.HashPassword(password)
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.users.Accept(token, hash); err != nil {
			f.t.Fatal(err)
		}
	}
	jar, _ := cookiejar.New(nil)
	c := new(http.Client)
	*c = *srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &person{t: f.t, base: srv.URL, c: c}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get answers path's status and body.
func (p *person) get(path string) (int, string) {
	p.t.Helper()
	resp, err := p.c.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post submits a form as the page at from would (with its CSRF token).
func (p *person) post(from, path string, form url.Values) (int, string) {
	p.t.Helper()
	_, page := p.get(from)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		p.t.Fatalf("no form token on %s", from)
	}
	form.Set("csrf", m[1])
	return p.postRaw(path, form)
}

func (p *person) postRaw(path string, form url.Values) (int, string) {
	p.t.Helper()
	resp, err := p.c.PostForm(p.base+path, form)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *person) signIn(email, password string) int {
	p.t.Helper()
	st, _ := p.post("/console/signin", "/console/signin", url.Values{"email": {email}, "password": {password}})
	return st
}

// TestSignInThrottledAndCookies: five wrong passwords lock the user out for
// the window, the right one included; a session cookie is HttpOnly,
// SameSite=Strict and, over TLS, Secure.
func TestSignInThrottledAndCookies(t *testing.T) {
	f := newFixture(t, true)
	ada := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	for range FailuresPerUser {
		if st := ada.signIn("ada@acme.test", "wrong password"); st != http.StatusUnauthorized {
			t.Fatalf("a wrong password: %d", st)
		}
	}
	if st := ada.signIn("ada@acme.test", "right password"); st != http.StatusTooManyRequests {
		t.Fatalf("the right password past the limit: %d", st)
	}
	f.newPerson(f.customer, access.RealmCustomer, "acme", "bob@acme.test", "bobs password")
	raw := setCookieOf(t, f, "BOB@acme.test", "bobs password")
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Secure", "Path=/console/"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("the session cookie lacks %s: %s", attr, raw)
		}
	}
}

func mustGet(t *testing.T, p *person, path string) string {
	t.Helper()
	st, body := p.get(path)
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	}
	return body
}

// setCookieOf signs in and returns the session's Set-Cookie header.
func setCookieOf(t *testing.T, f *fixture, email, password string) string {
	t.Helper()
	p := f.newPerson(f.customer, access.RealmCustomer, "", "", "")
	_, page := p.get("/console/signin")
	form := url.Values{"email": {email}, "password": {password}, "csrf": {csrfField.FindStringSubmatch(page)[1]}}
	resp, err := p.c.PostForm(p.base+"/console/signin", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "tg_session=") {
			return h
		}
	}
	t.Fatalf("no session cookie set (%d)", resp.StatusCode)
	return ""
}

// TestFormsNeedTheirSession: a form without the token, with another
// session's token or with none is refused 403; signing out everywhere
// ends the other sessions too.
func TestFormsNeedTheirSession(t *testing.T) {
	f := newFixture(t, false)
	a1 := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	a2 := f.newPerson(f.customer, access.RealmCustomer, "", "", "")
	a1.signIn("ada@acme.test", "right password")
	a2.signIn("ada@acme.test", "right password")
	other := csrfField.FindStringSubmatch(mustGet(t, a2, "/console/keys"))[1]
	for _, form := range []url.Values{{"name": {"x"}}, {"name": {"x"}, "csrf": {other}}, {"name": {"x"}, "csrf": {""}}} {
		if st, _ := a1.postRaw("/console/keys", form); st != http.StatusForbidden {
			t.Fatalf("a forged form %v: %d", form, st)
		}
	}
	if st, _ := a1.post("/console/keys", "/console/signout-everywhere", url.Values{}); st != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", st)
	}
	if st, _ := a2.get("/console/keys"); st != http.StatusSeeOther {
		t.Fatalf("the other session still works: %d", st)
	}
}

// TestCustomerKeyRules: CONTRACT §0's rules for keys customers make.
func TestCustomerKeyRules(t *testing.T) {
	f := newFixture(t, false)
	ada := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	ada.signIn("ada@acme.test", "right password")
	st, body := ada.post("/console/keys", "/console/keys", url.Values{"name": {"too fast"}, "rpm": {"101"}})
	if st != http.StatusBadRequest || !strings.Contains(body, "rpm: at most the account&#39;s 100") {
		t.Fatalf("a limit above the account's: %d %s", st, body)
	}
	if st, _ := ada.post("/console/keys", "/console/keys", url.Values{"name": {"inherits"}, "tpm": {"999999"}}); st != http.StatusCreated {
		t.Fatalf("a limit under an unlimited account's: %d", st)
	}
	if st, _ := ada.post("/console/keys", "/console/keys", url.Values{"name": {"second"}}); st != http.StatusCreated {
		t.Fatalf("second key: %d", st)
	}
	if st, _ := ada.post("/console/keys", "/console/keys", url.Values{"name": {"third"}}); st != http.StatusConflict {
		t.Fatalf("a key beyond the most: %d", st)
	}
	for _, k := range f.led.Keys("acme") {
		if k.Name == "second" && (k.Limits != ledger.Limits{}) {
			t.Fatalf("a key without limits got %+v", k.Limits)
		}
	}
	// Another account's key and call are not there for ada.
	if _, err := f.led.CreateAccount(ledger.AccountSpec{ID: "other", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	k, err := f.led.CreateKey(ledger.Key{ID: "key_other", AccountID: "other", Name: "theirs", Hash: [32]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ada.post("/console/keys", "/console/keys/"+k.ID+"/revoke", url.Values{}); st != http.StatusNotFound {
		t.Fatalf("revoking another account's key: %d", st)
	}
}

// TestOperatorRoles: the console enforces the roles as the admin API does.
func TestOperatorRoles(t *testing.T) {
	f := newFixture(t, false)
	for _, o := range []access.Operator{{ID: "fin", Role: access.RoleFinance}, {ID: "sup", Role: access.RoleSupport}} {
		if _, err := f.ops.CreateOperator(o); err != nil {
			t.Fatal(err)
		}
	}
	fin := f.newPerson(f.operator, access.RealmOperator, "fin", "fin@platform.test", "finance password")
	sup := f.newPerson(f.operator, access.RealmOperator, "sup", "sup@platform.test", "support password")
	fin.signIn("fin@platform.test", "finance password")
	sup.signIn("sup@platform.test", "support password")
	topUp := url.Values{"amount": {"5"}, "order_id": {"o-1"}}
	if st, _ := sup.post("/console/accounts/acme", "/console/accounts/acme/topup", topUp); st != http.StatusForbidden {
		t.Fatalf("support topped up: %d", st)
	}
	if st, body := fin.post("/console/accounts/acme", "/console/accounts/acme/topup", topUp); st != http.StatusOK || !strings.Contains(body, `id="available">5<`) {
		t.Fatalf("finance's top-up: %d", st)
	}
	if st, _ := fin.post("/console/accounts/acme", "/console/accounts/acme/freeze", url.Values{}); st != http.StatusForbidden {
		t.Fatalf("finance froze an account: %d", st)
	}
	if e, _, _ := f.led.Entries("acme", 0, 1); len(e) != 1 || e[0].Actor != "op:fin" {
		t.Fatalf("the top-up's actor: %+v", e)
	}
	disabled := true
	if _, err := f.ops.UpdateOperator("fin", nil, &disabled); err != nil {
		t.Fatal(err)
	}
	if st, _ := fin.get("/console/accounts"); st != http.StatusSeeOther {
		t.Fatalf("a disabled operator's session still works: %d", st)
	}
}

// TestSessionsStayInTheirRealm: a customer's session presented to the
// operators' console (account and operator sharing an ID) is refused.
func TestSessionsStayInTheirRealm(t *testing.T) {
	f := newFixture(t, false)
	if _, err := f.ops.CreateOperator(access.Operator{ID: "acme", Role: access.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	ada := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	ada.signIn("ada@acme.test", "right password")
	u, _ := url.Parse(ada.base)
	var token string
	for _, c := range ada.c.Jar.Cookies(u) {
		if c.Name == "tg_session" {
			token = c.Value
		}
	}
	req, _ := http.NewRequest("GET", f.operator.URL+"/console/accounts", nil)
	req.AddCookie(&http.Cookie{Name: "tg_op_session", Value: token})
	resp, err := (&http.Client{CheckRedirect: ada.c.CheckRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a customer's session on the operators' console: %d", resp.StatusCode)
	}
}

// TestParallelGuessesThrottled: guesses sent at once still count before
// their hashes, so no more than the limit are tried.
func TestParallelGuessesThrottled(t *testing.T) {
	f := newFixture(t, false)
	f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 30 {
		p := f.newPerson(f.customer, access.RealmCustomer, "", "", "")
		_, page := p.get("/console/signin")
		form := url.Values{"email": {"ada@acme.test"}, "password": {"wrong password"}, "csrf": {csrfField.FindStringSubmatch(page)[1]}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := p.postRaw("/console/signin", form)
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusUnauthorized] != FailuresPerUser || counts[http.StatusTooManyRequests] != 30-FailuresPerUser {
		t.Fatalf("answers to 30 parallel guesses: %v", counts)
	}
}

// TestAccountsPaging: the list's Next link leads to the next page.
func TestAccountsPaging(t *testing.T) {
	f := newFixture(t, false)
	for i := range 60 {
		if _, err := f.led.CreateAccount(ledger.AccountSpec{ID: fmt.Sprintf("acct-%02d", i), Email: "x@y.z", Limits: ledger.DefaultLimits}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ops.CreateOperator(access.Operator{ID: "olga", Role: access.RoleSupport}); err != nil {
		t.Fatal(err)
	}
	olga := f.newPerson(f.operator, access.RealmOperator, "olga", "olga@platform.test", "olga password")
	olga.signIn("olga@platform.test", "olga password")
	page1 := mustGet(t, olga, "/console/accounts?q=acct&sort=id")
	next := regexp.MustCompile(`href="/console/accounts\?([^"]+)">Next`).FindStringSubmatch(page1)
	if next == nil || !strings.Contains(page1, "Page 1 of 2") {
		t.Fatalf("no Next link on page 1")
	}
	page2 := mustGet(t, olga, "/console/accounts?"+html.UnescapeString(next[1]))
	if !strings.Contains(page2, "Page 2 of 2") || !strings.Contains(page2, "acct-59") || strings.Contains(page2, "acct-00<") {
		t.Fatalf("the Next link did not lead to page 2")
	}
}

// TestConsoleBounds: a user's requests are paced (429 past the minute's
// budget), and making and revoking keys in a loop ends (409).
func TestConsoleBounds(t *testing.T) {
	f := newFixture(t, false)
	ada := f.newPerson(f.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	ada.signIn("ada@acme.test", "right password")
	for i := range keysMadeFactor * 2 { // MaxKeys is 2 in the fixture
		st, _ := ada.post("/console/keys", "/console/keys", url.Values{"name": {fmt.Sprint("k", i)}})
		if st != http.StatusCreated {
			t.Fatalf("key %d: %d", i, st)
		}
		for _, k := range f.led.Keys("acme") {
			if !k.Revoked {
				f.led.RevokeKey(k.ID)
			}
		}
	}
	if st, _ := ada.post("/console/keys", "/console/keys", url.Values{"name": {"one more"}}); st != http.StatusConflict {
		t.Fatalf("a key past the keys made: %d", st)
	}
	statuses := map[int]int{}
	for range pagesPerMinute {
		st, _ := ada.get("/console/prices")
		statuses[st]++
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("%d requests in a minute were all served: %v", pagesPerMinute+2*keysMadeFactor*2, statuses)
	}
}
