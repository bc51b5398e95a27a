package console

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tollgate/tollgate/proxy/access"
)

// The sign-in, invitation and sign-out pages both consoles share.

type signInData struct{ Email string }

func (s *site) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin.html", page{Title: "Sign in"})
}

// signIn checks an email and password. Every refusal reads the same and
// takes as long (an unknown email costs a hash too), and attempts count
// against the user and the address before the hash: past the limit both
// are refused until the window ends, the right password included.
func (s *site) signIn(w http.ResponseWriter, r *http.Request) {
	email, pw := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
	again := page{Title: "Sign in", Data: signInData{Email: email}}
	if len(email) > maxEmailBytes {
		again.Data, again.Problem = signInData{}, "Wrong email or password."
		s.render(w, r, http.StatusUnauthorized, "signin.html", again)
		return
	}
	userKey := emailKey(email)
	// The address first: a flood from one address cannot grow the users'
	// table past its own limit.
	byAddr, ok, _ := s.byAddress.Take(addressKey(s.addressOf(r)))
	if !ok {
		again.Problem = "Too many failed attempts. Try again in 15 minutes."
		s.render(w, r, http.StatusTooManyRequests, "signin.html", again)
		return
	}
	byUser, ok, err := s.byUser.Take(userKey)
	if !ok || err != nil {
		s.byAddress.Refund(byAddr)
		status := http.StatusTooManyRequests
		again.Problem = "Too many failed attempts. Try again in 15 minutes."
		if err != nil {
			s.logger.Printf("console: sign-in: %s", err)
			again.Problem, status = "Cannot sign in now. Try again in a moment.", http.StatusServiceUnavailable
		}
		s.render(w, r, status, "signin.html", again)
		return
	}
	u, ok, err := s.check(email, pw)
	admitted := ok
	if ok && err == nil {
		admitted, err = s.admit(u)
	}
	switch {
	case err != nil: // no hashing slot, or the data unreadable: not the person's failure
		s.byUser.Refund(byUser)
		s.byAddress.Refund(byAddr)
		again.Problem = "Too many sign-ins at once. Try again in a moment."
		if !errors.Is(err, access.ErrBusy) {
			s.logger.Printf("console: sign-in: %s", err)
			again.Problem = "Cannot sign in now. Try again in a moment."
		}
		s.render(w, r, http.StatusServiceUnavailable, "signin.html", again)
	case ok && !admitted:
		again.Problem = "This sign-in is no longer in force (the account is closed or the operator disabled)."
		s.render(w, r, http.StatusForbidden, "signin.html", again)
	case !ok:
		again.Problem = "Wrong email or password."
		s.render(w, r, http.StatusUnauthorized, "signin.html", again)
	default:
		s.byUser.Forget(userKey)
		s.byAddress.Refund(byAddr)
		s.startSession(w, r, u)
	}
}

// addressKey is what an address's attempts are counted under: the address,
// or for IPv6 its /64 (one subscriber's block, all of it theirs to use).
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Unmap().Is4() {
		return addr
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// maxEmailBytes is the longest email address (RFC 5321's path limit).
const maxEmailBytes = 254

// emailKey is what a user's attempts are counted under: a digest, so the
// table's keys are small whatever was typed.
func emailKey(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return string(h[:16])
}

// check verifies email's password in the site's realm; an unknown email
// costs a hash as well.
func (s *site) check(email, pw string) (access.User, bool, error) {
	u, found, err := s.users.UserByEmail(s.realm, email)
	if err != nil {
		return u, false, err
	}
	if !found || u.Password == "" {
		return u, false, access.WasteHash(pw)
	}
	ok, err := access.VerifyPassword(u.Password, pw)
	return u, ok, err
}

func (s *site) startSession(w http.ResponseWriter, r *http.Request, u access.User) {
	token, err := s.users.StartSession(u.ID, u.Password)
	if errors.Is(err, access.ErrPasswordChanged) {
		s.fail(w, r, http.StatusConflict, "The password changed while you signed in. Sign in with the new one.")
		return
	}
	if err != nil {
		s.logger.Printf("console: cannot start a session: %s", err)
		s.fail(w, r, http.StatusServiceUnavailable, "Cannot sign in now; try again shortly.")
		return
	}
	s.setCookie(w, r, s.cookie, token, access.SessionLifetime)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

type inviteData struct {
	Token string
	Email string
}

func (s *site) invitePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	inv, ok := s.users.Invitation(token)
	if !ok || inv.Realm != s.realm {
		s.fail(w, r, http.StatusNotFound, "This invitation is unknown, used or expired. Ask for a new one.")
		return
	}
	s.render(w, r, http.StatusOK, "invite.html", page{Title: "Set your password", Data: inviteData{Token: token, Email: inv.Email}})
}

// acceptInvite sets the invited user's password and signs them in.
func (s *site) acceptInvite(w http.ResponseWriter, r *http.Request) {
	token, pw := r.PostForm.Get("token"), r.PostForm.Get("password")
	inv, ok := s.users.Invitation(token)
	if !ok || inv.Realm != s.realm {
		s.fail(w, r, http.StatusNotFound, "This invitation is unknown, used or expired. Ask for a new one.")
		return
	}
	problem := ""
	if err := access.CheckPassword(pw); err != nil {
		problem = "A password has 10 to 256 characters."
	} else if pw != r.PostForm.Get("confirm") {
		problem = "The two passwords differ."
	}
	if problem != "" {
		s.render(w, r, http.StatusBadRequest, "invite.html", page{Title: "Set your password", Problem: problem, Data: inviteData{Token: token, Email: inv.Email}})
		return
	}
	hash, err := access.HashPassword(pw)
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, "Too many sign-ins at once. Try again in a moment.")
		return
	}
	u, err := s.users.Accept(token, hash)
	if errors.Is(err, access.ErrUnknown) || errors.Is(err, access.ErrExists) || errors.Is(err, access.ErrTooMany) {
		s.fail(w, r, http.StatusConflict, "This invitation cannot be used: "+err.Error())
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if admitted, err := s.admit(u); err != nil {
		s.unavailable(w, r, err)
		return
	} else if !admitted {
		s.fail(w, r, http.StatusForbidden, "This sign-in is no longer in force (the account is closed or the operator disabled).")
		return
	}
	s.startSession(w, r, u)
}

func (s *site) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookie); err == nil {
		if err := s.users.EndSession(c.Value); err != nil {
			s.logger.Printf("console: cannot end a session: %s", err)
		}
	}
	s.clearCookie(w, r)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

func (s *site) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	if err := s.users.EndSessions(userOf(r).ID); err != nil {
		s.logger.Printf("console: cannot end sessions: %s", err)
		s.fail(w, r, http.StatusServiceUnavailable, "Cannot sign out everywhere now; try again shortly.")
		return
	}
	s.clearCookie(w, r)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
