package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"log"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Sign-in throttling: failures allowed per user and per address in a
// window before both are refused until the window ends.
const (
	FailuresPerUser    = 5
	failuresPerAddress = 20
	ThrottleWindow     = 15 * time.Minute
)

// pagesPerMinute bounds a signed-in user's requests: pages read the ledger
// (the overview sums 30 days of statements), so a loop over them is
// bounded as the client API's read routes are.
const pagesPerMinute = 300

// maxFormBytes bounds a form's body.
const maxFormBytes = 64 << 10

// site is the machinery one console shares with the other: sessions,
// CSRF, throttles, templates, headers and panic recovery. Its realm says
// which users sign in to it.
type site struct {
	realm  access.Realm
	users  access.UserStore
	mux    *http.ServeMux
	pages  map[string]*template.Template
	logger *log.Logger
	// cookie is the session cookie's name; its path is /console/.
	cookie string
	// admit says whether a signed-in user may use the console now (a
	// closed account's users and disabled operators may not); an error
	// is the books' (unreadable now), not the user's.
	admit func(access.User) (bool, error)
	// roleOf is an operator user's role (nil on the customers' console).
	roleOf func(access.User) access.Role
	// addressOf is the client's address sign-in attempts count against.
	addressOf func(*http.Request) string
	byUser    access.Attempts
	byAddress *throttle
	// pace counts each signed-in user's requests per minute.
	pace *throttle
}

// page is what every template gets.
type page struct {
	Title string
	// Nav is the menu entry to mark as the current one.
	Nav  string
	User *access.User
	// Role is an operator user's role ("" for customers).
	Role string
	CSRF string
	// Notice and Problem are a line of good or bad news above the content.
	Notice, Problem string
	Data            any
}

type userKey struct{}

func newSite(realm access.Realm, users access.UserStore, cookie string, admit func(access.User) (bool, error), funcs template.FuncMap, logger *log.Logger) *site {
	s := &site{realm: realm, users: users, mux: http.NewServeMux(), cookie: cookie, admit: admit, logger: logger,
		byUser:    newThrottle(FailuresPerUser, ThrottleWindow, time.Now),
		byAddress: newThrottle(failuresPerAddress, ThrottleWindow, time.Now), addressOf: peerAddress,
		pace: newThrottle(pagesPerMinute, time.Minute, time.Now)}
	s.pages = parsePages(funcs)
	static, _ := fs.Sub(staticFiles, "static")
	s.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /console/signin", s.signInPage)
	s.mux.HandleFunc("POST /console/signin", s.signIn)
	s.mux.HandleFunc("GET /console/invite", s.invitePage)
	s.mux.HandleFunc("POST /console/invite", s.acceptInvite)
	s.mux.HandleFunc("POST /console/signout", s.signedIn(s.signOut))
	s.mux.HandleFunc("POST /console/signout-everywhere", s.signedIn(s.signOutEverywhere))
	return s
}

// ServeHTTP answers with the console's headers, refuses a form without
// the right CSRF token, and recovers a panic with a 500 page.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logger.Printf("console: panic in %q %q: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil || !s.validCSRF(r) {
			s.fail(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Go back, reload the page and try again.")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// handle registers a page for signed-in users.
func (s *site) handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, s.signedIn(h)) }

// signedIn lets h serve only a signed-in user the console admits, sending
// anyone else to the sign-in page.
func (s *site) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookie)
		if err != nil {
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		u, ok, err := s.users.SessionUser(c.Value)
		admitted := ok && u.Realm == s.realm
		if admitted && err == nil {
			admitted, err = s.admit(u)
		}
		if err != nil { // the session may be good: keep its cookie
			s.unavailable(w, r, err)
			return
		}
		if !admitted {
			s.clearCookie(w, r)
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
		if _, ok, _ := s.pace.Take(u.ID); !ok {
			w.Header().Set("Retry-After", "60")
			s.fail(w, r, http.StatusTooManyRequests, "Too many requests in a minute. Wait a moment and reload.")
			return
		}
		h(w, r)
	}
}

// unavailable answers 503 for a store or the books that cannot be read
// now (a database failing over, in cluster mode), logging why.
func (s *site) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.logger.Printf("console: %s", err)
	w.Header().Set("Retry-After", "5")
	s.fail(w, r, http.StatusServiceUnavailable, "The console cannot reach its data now. Try again in a moment.")
}

// userOf is the signed-in user of a request served through signedIn.
func userOf(r *http.Request) access.User {
	u, _ := r.Context().Value(userKey{}).(access.User)
	return u
}

// csrfToken is the token a form of this request must carry: an HMAC of
// the session's token (or, before sign-in, of the pre-session cookie),
// so it needs no storage and dies with the session.
func (s *site) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.cookie); err == nil {
		return macOf(c.Value)
	}
	if c, err := r.Cookie(s.cookie + "_pre"); err == nil {
		return macOf(c.Value)
	}
	pre := ids.RandomBase62(32)
	s.setCookie(w, r, s.cookie+"_pre", pre, 0)
	return macOf(pre)
}

func (s *site) validCSRF(r *http.Request) bool {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		// Not signed in: the sign-in and invitation forms.
		if c, err = r.Cookie(s.cookie + "_pre"); err != nil {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(macOf(c.Value))) == 1
}

func macOf(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("tollgate console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// setCookie sets an HttpOnly, SameSite=Strict cookie on /console/, Secure
// when the console is served over TLS; maxAge 0 makes a browser-session
// cookie.
func (s *site) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (s *site) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Path: "/console/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// render answers the page template name with p, filling in the user and
// the form token.
func (s *site) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if u, ok := r.Context().Value(userKey{}).(access.User); ok {
		p.User = &u
		if s.roleOf != nil {
			p.Role = string(s.roleOf(u))
		}
	}
	p.CSRF = s.csrfToken(w, r)
	t := s.pages[name]
	if t == nil {
		panic("console: no page " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		s.logger.Printf("console: cannot render %s: %s", name, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// fail answers an error page with status and a message for people.
func (s *site) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.render(w, r, status, "error.html", page{Title: http.StatusText(status), Problem: message})
}

// peerAddress is the connection's peer: the operators' console's client
// address (the admin listener believes no forwarding header).
func peerAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// forwardedAddress is the customers' console's client address: what the
// client API resolved through trusted_proxies and put in
// views.ClientAddressHeader (it always replaces a client's own).
func forwardedAddress(r *http.Request) string {
	if a := r.Header.Get(views.ClientAddressHeader); a != "" {
		return a
	}
	return peerAddress(r)
}

// parsePages parses each page template with the layout.
func parsePages(funcs template.FuncMap) map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return pages
}

// Books is where the consoles read and change accounts, keys, money and
// disputes: the gateway's *ledger.Ledger, or in cluster mode PostgreSQL's
// *cluster.Authority, which has the same methods and errors.
type Books interface {
	admin.Books
	FileDispute(d ledger.Dispute) (ledger.Dispute, bool, error)
}
