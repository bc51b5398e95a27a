package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/wal"
)

// Channels of a destination.
const (
	Webhook = "webhook"
	Email   = "email"
)

// dispatch starts the deliveries that are due: for each destination not
// busy, not disabled and past its backoff, its next event.
func (n *Notifier) dispatch(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now().UnixNano()
	for _, d := range n.sortedDests() {
		if d.busy || n.inFlight[d.ID] || !n.delivering(d) || d.NextAt > now {
			continue // one delivery at a time per destination, even one dropped and made again
		}
		e := n.nextFor(d)
		if e == nil {
			continue
		}
		select {
		case n.sem <- struct{}{}:
		default:
			return // every deliverer is busy: the next step goes on
		}
		d.busy, n.inFlight[d.ID] = true, true
		n.running.Add(1)
		go func() {
			defer func() { <-n.sem; n.running.Done() }()
			a := Attempt{EventID: e.ID, At: n.cfg.Now().UnixNano(), Error: "internal error"}
			defer func() {
				if p := recover(); p != nil { // a delivery's fault stays the delivery's
					n.cfg.Logger.Printf("notify: panic delivering %s to %s: %v", e.ID, d.ID, p)
				}
				n.finish(d, e, a)
			}()
			a = n.deliver(ctx, d, e)
		}()
	}
}

// delivering reports whether d is in service: not disabled, and not an
// email destination waiting for an SMTP server to be configured.
func (n *Notifier) delivering(d *destination) bool {
	return !d.Disabled && (d.Channel != Email || n.mailer != nil)
}

// nextFor is d's next event: a replay an operator asked for, else the
// first event after its cursor that is d's (passing over the others).
func (n *Notifier) nextFor(d *destination) *Event {
	for len(d.Replays) > 0 {
		if e := n.byID[d.Replays[0]]; e != nil {
			return e
		}
		d.Replays = d.Replays[1:]
	}
	i, _ := slices.BinarySearchFunc(n.events, d.Cursor+1, func(e *Event, order uint64) int { return cmpOrder(e.Order, order) })
	for ; i < len(n.events); i++ {
		if e := n.events[i]; n.isFor(d, e) {
			return e
		}
		d.Cursor = n.events[i].Order
	}
	return nil
}

func cmpOrder(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isFor reports whether e goes to d: the platform's destinations get every
// event; an account's get its own and the platform-wide ones, of the types
// its settings ask for.
func (n *Notifier) isFor(d *destination, e *Event) bool {
	if d.Account == "" {
		return true
	}
	s := n.settings[d.Account]
	return s != nil && (e.Account == d.Account || e.Account == "") && s.wants(e.Type)
}

// deliver sends e to d once.
func (n *Notifier) deliver(ctx context.Context, d *destination, e *Event) Attempt {
	n.mu.Lock()
	s := n.settings[d.Account]
	var settings Settings
	if s != nil {
		settings = *s
	}
	n.mu.Unlock()
	now := n.cfg.Now()
	a := Attempt{EventID: e.ID, At: now.UnixNano()}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var err error
	switch {
	case s == nil:
		err = errors.New("no settings")
	case d.Channel == Webhook:
		body, _ := sonic.Marshal(payloadOf(e, d))
		client := n.http
		if d.Account == "" {
			client = n.platformHTTP
		}
		a.Status, err = postWebhook(ctx, client, settings.WebhookURL, e.ID, now, settings.signingSecrets(now), body)
	default:
		to := *e
		if to.Account == "" {
			to.Account = d.Account
		}
		err = n.mailer.send(ctx, &to, settings.Language, settings.Emails)
	}
	a.OK = err == nil
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// payload is what a webhook receives.
type payload struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Account   string            `json:"account,omitempty"`
	Data      map[string]string `json:"data"`
}

func payloadOf(e *Event, d *destination) payload {
	p := payload{ID: e.ID, Type: e.Type, Timestamp: e.Time, Account: e.Account, Data: e.Data}
	if p.Account == "" && d.Account != "" {
		p.Account = d.Account
	}
	return p
}

// finish records attempt a of e on d, in d as now stored, and saves it.
func (n *Notifier) finish(d *destination, e *Event, a Attempt) {
	defer n.Wake()
	deliveries(d.Channel, a.OK).Inc()
	err := n.coordinated(func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		d.busy = false
		delete(n.inFlight, d.ID)
		// The destination as now stored: another process's change (a
		// replay asked for, in cluster mode) may have been read meanwhile.
		cur := n.dests[d.ID]
		if cur == nil || cur.Channel != d.Channel {
			return nil // its settings dropped it while it delivered
		}
		n.recordAttempt(cur, e, a)
		return n.saveDest(cur)
	})
	if err != nil {
		n.cfg.Logger.Printf("notify: cannot record a delivery of %s to %s: %s", e.ID, d.ID, err)
		n.mu.Lock()
		d.busy = false
		delete(n.inFlight, d.ID)
		n.mu.Unlock()
	}
}

// recordAttempt notes attempt a of e on d: a delivery moves d past e; a
// failure backs off (5 s doubling, at most 10 min apart, with jitter)
// and, failing for DisableAfter, disables d and alerts the operators.
func (n *Notifier) recordAttempt(d *destination, e *Event, a Attempt) {
	d.Log = append(d.Log, a)
	if len(d.Log) > maxAttemptsShown {
		d.Log = d.Log[len(d.Log)-maxAttemptsShown:]
	}
	now := n.cfg.Now().UnixNano()
	if a.OK {
		if len(d.Replays) > 0 && d.Replays[0] == e.ID {
			d.Replays = d.Replays[1:]
		} else {
			d.Cursor = max(d.Cursor, e.Order) // a destination made again meanwhile starts later
		}
		d.Attempts, d.NextAt, d.FailingSince = 0, 0, 0
	} else {
		d.Attempts++
		if d.FailingSince == 0 {
			d.FailingSince = now
		}
		d.NextAt = now + int64(backoff(d.Attempts))
		if time.Duration(now-d.FailingSince) >= n.cfg.DisableAfter {
			d.Disabled = true
			destinationsDisabled.Inc()
			n.cfg.Logger.Printf("ALERT notify: destination %s disabled after failing since %s: %s (enable it with POST /admin/v1/notifications/destinations/%s/enable)",
				d.ID, time.Unix(0, d.FailingSince).UTC().Format(time.RFC3339), a.Error, d.ID)
		}
	}
}

// backoff is the wait before retry number attempts.
func backoff(attempts int) time.Duration {
	d := backoffMax
	if attempts < 12 {
		d = min(backoffMax, backoffBase<<(attempts-1))
	}
	return d - time.Duration(rand.Int64N(int64(d/10)+1))
}

func (n *Notifier) saveDest(d *destination) error {
	b, err := sonic.Marshal(d)
	if err != nil {
		return err
	}
	return n.save(wal.State{Name: destPrefix + d.ID, Value: b})
}

// prune drops events every destination has passed and older than retain.
func (n *Notifier) prune() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	floor := n.order
	for _, d := range n.dests {
		if !n.delivering(d) {
			continue // a disabled destination, or email without SMTP, holds nothing back
		}
		floor = min(floor, d.Cursor)
		for _, id := range d.Replays {
			if e := n.byID[id]; e != nil {
				floor = min(floor, e.Order-1)
			}
		}
	}
	old := n.cfg.Now().Add(-retain)
	var dels []wal.State
	keep := 0
	for keep < len(n.events) && n.events[keep].Order <= floor && n.events[keep].Time.Before(old) {
		dels = append(dels, wal.State{Name: eventName(n.events[keep].Order)})
		keep++
	}
	for id, until := range n.once {
		if until < n.cfg.Now().UnixNano() {
			dels = append(dels, wal.State{Name: oncePrefix + id})
		}
	}
	if len(dels) == 0 {
		return nil
	}
	if err := n.save(dels...); err != nil {
		return fmt.Errorf("cannot prune the outbox: %w", err)
	}
	for _, e := range n.events[:keep] {
		delete(n.byID, e.ID)
	}
	n.events = n.events[keep:]
	for id, until := range n.once {
		if until < n.cfg.Now().UnixNano() {
			delete(n.once, id)
		}
	}
	return nil
}
