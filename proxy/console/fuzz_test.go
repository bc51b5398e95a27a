package console

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy/access"
)

// FuzzConsoles sends whatever method, path, form and cookie to both
// consoles, signed in or not: no panic (a 500 page would show one), no
// answer but a page, a redirect or an error page, and nothing a person
// typed comes back unescaped.
func FuzzConsoles(f *testing.F) {
	for _, seed := range []struct{ method, path, form string }{
		{"GET", "/console/", ""},
		{"POST", "/console/signin", "email=a%40b.c&password=x"},
		{"POST", "/console/keys", "name=<script>&rpm=-1&tpm=9999999999999999999999&expires=2000-13-45"},
		{"GET", "/console/calls?from=2026-99-01&cursor=zzz&outcome=<b>", ""},
		{"GET", "/console/statement.csv?from=1900-01-01&to=2999-01-01", ""},
		{"POST", "/console/disputes", "request_id=%00&reason=" + strings.Repeat("x", 3000)},
		{"POST", "/console/accounts/acme/topup", "amount=1e9&kind=gift&expires=x"},
		{"POST", "/console/accounts/acme/adjust", "amount=-0.000000001&reason=%E2%80%AE"},
		{"GET", "/console/accounts?sort=spend&page=-5&q=%ff", ""},
		{"POST", "/console/notifications", "emails=a,b,,&webhook_url=file:///etc/passwd&low_balance=-3&events=bogus"},
		{"GET", "/console/calls/..%2f..%2fadmin", ""},
	} {
		f.Add(seed.method, seed.path, seed.form, true)
	}
	fx := newFixture(f, false)
	for _, srv := range []*httptest.Server{fx.customer, fx.operator} { // the fuzzer's pace is no user's
		srv.Config.Handler.(*site).pace = newThrottle(math.MaxInt32, time.Minute, time.Now)
	}
	ada := fx.newPerson(fx.customer, access.RealmCustomer, "acme", "ada@acme.test", "right password")
	ada.signIn("ada@acme.test", "right password")
	if _, err := fx.ops.CreateOperator(access.Operator{ID: "olga", Role: access.RoleAdmin}); err != nil {
		f.Fatal(err)
	}
	olga := fx.newPerson(fx.operator, access.RealmOperator, "olga", "olga@platform.test", "olga password")
	olga.signIn("olga@platform.test", "olga password")
	tokens := map[*person]string{}
	for _, p := range []*person{ada, olga} {
		_, page := p.get("/console/keys")
		if p == olga {
			_, page = p.get("/console/accounts")
		}
		tokens[p] = csrfField.FindStringSubmatch(page)[1]
	}
	f.Fuzz(func(t *testing.T, method, path, form string, signedIn bool) {
		if method != "GET" && method != "POST" || !strings.HasPrefix(path, "/console/") || strings.ContainsAny(path, " \r\n#") {
			return
		}
		for _, p := range []*person{ada, olga} {
			values, err := url.ParseQuery(form)
			if err != nil {
				return
			}
			values.Set("csrf", tokens[p])
			req, err := http.NewRequest(method, p.base+path, strings.NewReader(values.Encode()))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			c := p.c
			if !signedIn {
				c = &http.Client{CheckRedirect: p.c.CheckRedirect}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %s", method, path, err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%s %s %q: %d %.300s", method, path, form, resp.StatusCode, body.String())
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && strings.Contains(body.String(), "<script>") {
				t.Fatalf("%s %s %q: typed script came back unescaped", method, path, form)
			}
		}
	})
}
