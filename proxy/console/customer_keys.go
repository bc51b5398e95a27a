package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/admin"
)

// The customer's keys: list, create (the secret shown once), revoke.

type keysData struct {
	Keys []*ledger.Key
	// LastUsed is when each key's newest call among the account's latest
	// lastUseScan calls ended (absent: none there).
	LastUsed map[string]int64
	// Secret is a key just made, shown this once.
	Secret string
	// Account are the account's limits in force, what a key's limits
	// default to and may not exceed.
	Account ledger.Limits
	Max     int
	Form    keyForm
}

// keyForm is the create form as typed, shown again with a problem.
type keyForm struct {
	Name, RPM, TPM, Concurrency, SpendLimit, Expires string
}

func (c *customer) keys(w http.ResponseWriter, r *http.Request) {
	c.renderKeys(w, r, http.StatusOK, page{}, "", keyForm{})
}

func (c *customer) renderKeys(w http.ResponseWriter, r *http.Request, status int, p page, secret string, f keyForm) {
	account := accountOf(r)
	st, err := c.cfg.Books.Account(account)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "Your account was not found.")
		return
	}
	p.Title, p.Nav = "API keys", "keys"
	keys := c.cfg.Books.Keys(account)
	p.Data = keysData{Keys: keys, LastUsed: c.lastUsed(account, len(keys)), Secret: secret, Account: c.inForce(st.Limits), Max: c.cfg.MaxKeys, Form: f}
	c.render(w, r, status, "c_keys.html", p)
}

// lastUseScan bounds the calls read to find when keys were last used.
const lastUseScan = 5000

// lastUsed reads the account's newest calls until each of its keys has
// been seen or lastUseScan calls were read: the ledger keeps no
// last-used time per key (it would be a write per call).
func (c *customer) lastUsed(account string, keys int) map[string]int64 {
	seen := map[string]int64{}
	before := uint64(0)
	for read := 0; read < lastUseScan && len(seen) < keys; {
		calls, next, err := c.cfg.Books.Calls(account, ledger.CallFilter{}, before, 500)
		if err != nil {
			c.logger.Printf("console: cannot read calls: %s", err)
			break
		}
		for _, call := range calls {
			if _, ok := seen[call.KeyID]; !ok {
				seen[call.KeyID] = call.TimeNanos
			}
		}
		read += len(calls)
		if next == 0 {
			break
		}
		before = next
	}
	return seen
}

// inForce resolves an account's "default" limits to the configured ones.
func (c *customer) inForce(l ledger.Limits) ledger.Limits {
	pick := func(v, def int64) int64 {
		if v < 0 {
			return def
		}
		return v
	}
	d := c.cfg.AccountDefaults
	return ledger.Limits{RPM: pick(l.RPM, d.RPM), TPM: pick(l.TPM, d.TPM), Concurrency: pick(l.Concurrency, d.Concurrency)}
}

func (c *customer) createKey(w http.ResponseWriter, r *http.Request) {
	account := accountOf(r)
	f := keyForm{Name: r.PostForm.Get("name"), RPM: r.PostForm.Get("rpm"), TPM: r.PostForm.Get("tpm"), Concurrency: r.PostForm.Get("concurrency"),
		SpendLimit: r.PostForm.Get("spend_limit"), Expires: r.PostForm.Get("expires")}
	st, err := c.cfg.Books.Account(account)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "Your account was not found.")
		return
	}
	k, err := c.keyOf(account, f, c.inForce(st.Limits))
	if err != nil {
		c.renderKeys(w, r, http.StatusBadRequest, page{Problem: err.Error()}, "", f)
		return
	}
	if len(c.cfg.Books.Keys(account)) >= keysMadeFactor*c.cfg.MaxKeys {
		problem := fmt.Sprintf("The account has made %d keys, revoked ones included, the most the console makes; an operator can make more.", keysMadeFactor*c.cfg.MaxKeys)
		c.renderKeys(w, r, http.StatusConflict, page{Problem: problem}, "", f)
		return
	}
	if c.activeKeys(account) >= c.cfg.MaxKeys {
		problem := fmt.Sprintf("The account has %d active keys, the most it may have; revoke one first.", c.cfg.MaxKeys)
		c.renderKeys(w, r, http.StatusConflict, page{Problem: problem}, "", f)
		return
	}
	// The checks above word the common case; this one holds when two
	// requests (or two nodes) create keys for the account at once.
	secret, _, err := admin.MintKeyWithin(c.cfg.Books, k, ledger.KeyQuota{Active: c.cfg.MaxKeys, Made: keysMadeFactor * c.cfg.MaxKeys})
	if err != nil {
		c.renderKeys(w, r, http.StatusConflict, page{Problem: "The key was not created: " + err.Error()}, "", f)
		return
	}
	c.renderKeys(w, r, http.StatusCreated, page{Notice: "Key created. Copy its secret now: it is shown only this once."}, secret, keyForm{})
}

// keysMadeFactor bounds the keys an account's users can make, revoked
// ones included, to this many times its active keys: every key stays in
// the ledger, so making and revoking in a loop must end.
const keysMadeFactor = 10

// keyOf checks a create form against the contract's rules for keys that
// customers make: a limit left out leaves the key no limit of its own (the
// account's apply), 0 means none, a limit above the account's is refused
// naming the field.
func (c *customer) keyOf(account string, f keyForm, acct ledger.Limits) (ledger.Key, error) {
	k := ledger.Key{AccountID: account, Name: strings.TrimSpace(f.Name)}
	if k.Name == "" || len(k.Name) > 128 {
		return k, errors.New("name: give the key a name of at most 128 characters")
	}
	var errs []error
	limit := func(field, s string, account int64, into *int64) {
		v, err := atoiOr(strings.TrimSpace(s), 0)
		switch {
		case err != nil || v < 0:
			errs = append(errs, fmt.Errorf("%s: a whole number, 0 or more", field))
		case account > 0 && v > account:
			errs = append(errs, fmt.Errorf("%s: at most the account's %d", field, account))
		}
		*into = v
	}
	limit("rpm", f.RPM, acct.RPM, &k.Limits.RPM)
	limit("tpm", f.TPM, acct.TPM, &k.Limits.TPM)
	limit("concurrency", f.Concurrency, acct.Concurrency, &k.Limits.Concurrency)
	if s := strings.TrimSpace(f.SpendLimit); s != "" {
		v, err := money.Parse(s)
		if err != nil || v < 0 {
			errs = append(errs, errors.New("spend_limit: credits per 30 days, such as 25 or 12.50"))
		}
		k.SpendLimit, k.SpendPeriod = v, 30*24*time.Hour
	}
	if s := strings.TrimSpace(f.Expires); s != "" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || !t.After(time.Now()) {
			errs = append(errs, errors.New("expires: a date after today (YYYY-MM-DD)"))
		}
		k.ExpiresAtNanos = t.UnixNano()
	}
	return k, errors.Join(errs...)
}

func (c *customer) activeKeys(account string) int {
	n, now := 0, time.Now().UnixNano()
	for _, k := range c.cfg.Books.Keys(account) {
		if !k.Revoked && (k.ExpiresAtNanos == 0 || k.ExpiresAtNanos > now) {
			n++
		}
	}
	return n
}

// ownKey is the signed-in account's key of the path, if it is theirs.
func (c *customer) ownKey(r *http.Request) *ledger.Key {
	k := c.cfg.Books.Key(r.PathValue("key_id"))
	if k == nil || k.AccountID != accountOf(r) {
		return nil
	}
	return k
}

func (c *customer) confirmRevoke(w http.ResponseWriter, r *http.Request) {
	k := c.ownKey(r)
	if k == nil {
		c.fail(w, r, http.StatusNotFound, "No such key.")
		return
	}
	c.render(w, r, http.StatusOK, "c_revoke.html", page{Title: "Revoke a key", Nav: "keys", Data: k})
}

func (c *customer) revokeKey(w http.ResponseWriter, r *http.Request) {
	k := c.ownKey(r)
	if k == nil {
		c.fail(w, r, http.StatusNotFound, "No such key.")
		return
	}
	if err := c.cfg.Books.RevokeKey(k.ID); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "The key was not revoked: "+err.Error())
		return
	}
	c.renderKeys(w, r, http.StatusOK, page{Notice: "Key " + k.Name + " revoked: it stops working now."}, "", keyForm{})
}
