package notify

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/wal"
)

// What the admin API (and the consoles) do with the notifier: settings,
// secrets, the outbox and its destinations, replays.

// ErrUnknown is an unknown event or destination (404).
var ErrUnknown = errors.New("notify: unknown event or destination")

// Settings returns the account's settings ("" for the platform's), without
// the secrets' values.
func (n *Notifier) Settings(account string) Settings {
	n.refresh()
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.settings[account]; s != nil {
		return s.public()
	}
	return Settings{}
}

// public is s without the secrets' values (their hints stay).
func (s *Settings) public() Settings {
	out := *s
	out.Secrets = nil
	for _, x := range s.Secrets {
		out.Secrets = append(out.Secrets, Secret{Value: x.Value[:min(len(x.Value), 10)] + "…", RetiresAt: x.RetiresAt})
	}
	return out
}

// SetSettings replaces the account's settings ("" for the platform's);
// the secrets stay. The first webhook URL gets a secret, returned this
// once (else ""). A new destination starts with the events to come.
func (n *Notifier) SetSettings(account string, s Settings) (Settings, string, error) {
	if err := s.check(); err != nil {
		return Settings{}, "", err
	}
	secret := ""
	err := n.coordinated(func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		if cur := n.settings[account]; cur != nil {
			s.Secrets = cur.Secrets
		}
		if s.WebhookURL != "" && len(s.Secrets) == 0 {
			secret = s.rotate(n.cfg.Now())
		}
		return n.saveSettings(account, &s)
	})
	if err != nil {
		return Settings{}, "", err
	}
	return s.public(), secret, nil
}

// RotateSecret gives the account's webhook (the platform's for "") a new
// secret, returned this once; the old one signs too for RotationOverlap.
func (n *Notifier) RotateSecret(account string) (string, error) {
	var secret string
	err := n.coordinated(func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		cur := n.settings[account]
		if cur == nil || cur.WebhookURL == "" {
			return fmt.Errorf("%w: no webhook to sign for", ErrInvalid)
		}
		s := *cur
		s.Secrets = slices.Clone(cur.Secrets)
		secret = s.rotate(n.cfg.Now())
		return n.saveSettings(account, &s)
	})
	return secret, err
}

// saveSettings keeps s and the destinations it implies, in one write.
func (n *Notifier) saveSettings(account string, s *Settings) error {
	b, err := sonic.Marshal(s)
	if err != nil {
		return err
	}
	name := settingsName + account
	if account == "" {
		name = platformName
	}
	puts := []wal.State{{Name: name, Value: b}}
	var made []*destination
	var dropped []string
	for _, ch := range []string{Webhook, Email} {
		id := destID(account, ch)
		want := ch == Webhook && s.WebhookURL != "" || ch == Email && len(s.Emails) > 0 && account != ""
		switch d := n.dests[id]; {
		case want && d != nil && d.Disabled && changedURL(n.settings[account], s, ch):
			again := *d // a new address gets a new chance
			again.Disabled, again.FailingSince, again.Attempts, again.NextAt = false, 0, 0, 0
			db, _ := sonic.Marshal(&again)
			puts, made = append(puts, wal.State{Name: destPrefix + id, Value: db}), append(made, &again)
		case want && d == nil:
			d = &destination{ID: id, Account: account, Channel: ch, Cursor: n.order}
			db, _ := sonic.Marshal(d)
			puts, made = append(puts, wal.State{Name: destPrefix + id, Value: db}), append(made, d)
		case !want && d != nil:
			puts, dropped = append(puts, wal.State{Name: destPrefix + id}), append(dropped, id)
		}
	}
	if err := n.save(puts...); err != nil {
		return err
	}
	n.settings[account] = s
	for _, d := range made {
		n.dests[d.ID] = d
	}
	for _, id := range dropped {
		delete(n.dests, id)
	}
	return nil
}

func changedURL(old, s *Settings, channel string) bool {
	return channel == Webhook && (old == nil || old.WebhookURL != s.WebhookURL)
}

// destID names a destination: "platform:webhook", "account:acme:email"
// (one path segment of the admin API).
func destID(account, channel string) string {
	if account == "" {
		return "platform:" + channel
	}
	return "account:" + account + ":" + channel
}

// Events lists the outbox's events of account ("" for all), newest first,
// at most limit.
func (n *Notifier) Events(account string, limit int) []Event {
	n.refresh()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Event
	for i := len(n.events) - 1; i >= 0 && len(out) < limit; i-- {
		if e := n.events[i]; account == "" || e.Account == account || e.Account == "" {
			out = append(out, *e)
		}
	}
	return out
}

// DestinationView is a destination as operators see it.
type DestinationView struct {
	ID           string    `json:"id"`
	Account      string    `json:"account"`
	Channel      string    `json:"channel"`
	Pending      int       `json:"pending"`
	Attempts     int       `json:"attempts"`
	NextAt       int64     `json:"next_attempt_at"`
	FailingSince int64     `json:"failing_since"`
	Disabled     bool      `json:"disabled"`
	Log          []Attempt `json:"attempts_log"`
}

// Destinations lists the destinations (of account, or all for ""), with
// how many events each has still to deliver and its recent attempts.
func (n *Notifier) Destinations(account string) []DestinationView {
	n.refresh()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []DestinationView
	for _, d := range n.sortedDests() {
		if account != "" && d.Account != account {
			continue
		}
		v := DestinationView{ID: d.ID, Account: d.Account, Channel: d.Channel, Attempts: d.Attempts, NextAt: d.NextAt,
			FailingSince: d.FailingSince, Disabled: d.Disabled, Log: slices.Clone(d.Log), Pending: len(d.Replays)}
		i, _ := slices.BinarySearchFunc(n.events, d.Cursor+1, func(e *Event, order uint64) int { return cmpOrder(e.Order, order) })
		for _, e := range n.events[i:] {
			if n.isFor(d, e) {
				v.Pending++
			}
		}
		out = append(out, v)
	}
	return out
}

// Replay delivers event id again to each of its destinations, ahead of
// their queues (a receiver sees the same webhook-id: it dedupes).
func (n *Notifier) Replay(id string) (int, error) {
	defer n.Wake()
	count := 0
	err := n.coordinated(func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		e := n.byID[id]
		if e == nil {
			return fmt.Errorf("%w: event %q", ErrUnknown, id)
		}
		for _, d := range n.sortedDests() {
			if !n.isFor(d, e) || slices.Contains(d.Replays, id) {
				continue
			}
			d.Replays = append(d.Replays, id)
			if err := n.saveDest(d); err != nil {
				return err
			}
			count++
		}
		return nil
	})
	return count, err
}

// Enable puts a disabled destination back in service, retrying at once.
func (n *Notifier) Enable(id string) error {
	defer n.Wake()
	return n.coordinated(func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		d := n.dests[id]
		if d == nil {
			return fmt.Errorf("%w: destination %q", ErrUnknown, id)
		}
		d.Disabled, d.NextAt, d.FailingSince, d.Attempts = false, 0, 0, 0
		return n.saveDest(d)
	})
}
