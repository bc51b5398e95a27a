package notify

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"time"
)

// Settings say where an account's notices go (the platform's settings,
// under account "", say where every notice goes).
type Settings struct {
	// Emails receive the notices by email (when SMTP is configured).
	Emails []string `json:"emails"`
	// WebhookURL receives them signed (Standard Webhooks).
	WebhookURL string `json:"webhook_url"`
	// Secrets sign webhook deliveries, newest first: after a rotation the
	// old one signs too until RetiresAt, so a receiver can switch over.
	Secrets []Secret `json:"secrets,omitempty"`
	// Events are the types delivered (empty: every type).
	Events []string `json:"events"`
	// LowBalance is the available balance (nano-credits) under which
	// balance.low is sent, once per crossing (0: never).
	LowBalance int64 `json:"low_balance"`
	// Language picks the email templates ("" is English).
	Language string `json:"language"`
}

// Secret is a webhook signing secret ("whsec_" and base64, as Standard
// Webhooks write them).
type Secret struct {
	Value     string `json:"value"`
	RetiresAt int64  `json:"retires_at,omitempty"`
}

// RotationOverlap is how long an old webhook secret keeps signing after a
// rotation.
const RotationOverlap = 24 * time.Hour

// ErrInvalid marks settings that cannot be kept (400).
var ErrInvalid = errors.New("notify: invalid settings")

// check refuses settings that cannot be delivered to.
func (s *Settings) check() error {
	if len(s.Emails) > 10 {
		return fmt.Errorf("%w: emails: at most 10", ErrInvalid)
	}
	for _, e := range s.Emails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || len(e) > 254 {
			return fmt.Errorf("%w: emails: %.64q is not a plain address", ErrInvalid, e)
		}
	}
	if s.WebhookURL != "" {
		u, err := url.Parse(s.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(s.WebhookURL) > 2048 {
			return fmt.Errorf("%w: webhook_url: an http(s) URL without credentials", ErrInvalid)
		}
	}
	for i, t := range s.Events {
		if !slices.Contains(Types, t) || slices.Contains(s.Events[:i], t) {
			return fmt.Errorf("%w: events: unknown or repeated type %.64q", ErrInvalid, t)
		}
	}
	if s.LowBalance < 0 {
		return fmt.Errorf("%w: low_balance: not negative", ErrInvalid)
	}
	if s.Language != "" && !languageCode.MatchString(s.Language) {
		return fmt.Errorf("%w: language: a code such as en or pt-BR", ErrInvalid)
	}
	return nil
}

// wants reports whether the settings ask for events of typ.
func (s *Settings) wants(typ string) bool {
	return len(s.Events) == 0 || slices.Contains(s.Events, typ)
}

// signingSecrets are the secrets in force at now.
func (s *Settings) signingSecrets(now time.Time) []string {
	var out []string
	for _, x := range s.Secrets {
		if x.RetiresAt == 0 || now.UnixNano() < x.RetiresAt {
			out = append(out, x.Value)
		}
	}
	return out
}

// rotate makes a new secret, keeping the current one for RotationOverlap;
// older ones end now (two secrets at most sign, however often rotated).
func (s *Settings) rotate(now time.Time) string {
	b := make([]byte, 24)
	rand.Read(b)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(b)
	next := []Secret{{Value: secret}}
	if len(s.Secrets) > 0 { // the one in force, which the newest always is
		previous := s.Secrets[0]
		previous.RetiresAt = now.Add(RotationOverlap).UnixNano()
		next = append(next, previous)
	}
	s.Secrets = next
	return secret
}
