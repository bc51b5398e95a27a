package notify

import (
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
)

// The event types (CONTRACT §0 and docs/notifications.md).
const (
	TopUpReceived   = "topup.received"
	CreditExpiring  = "credit.expiring"
	CreditExpired   = "credit.expired"
	BalanceLow      = "balance.low"
	PriceScheduled  = "price.scheduled"
	ModelRetiring   = "model.retiring"
	AccountFrozen   = "account.frozen"
	AccountUnfrozen = "account.unfrozen"
	AccountClosed   = "account.closed"
	DisputeOpened   = "dispute.opened"
	DisputeResolved = "dispute.resolved"
	KeyCreated      = "key.created"
	KeyRevoked      = "key.revoked"
)

// Types lists every event type, in the order the documentation gives.
var Types = []string{TopUpReceived, CreditExpiring, CreditExpired, BalanceLow, PriceScheduled, ModelRetiring,
	AccountFrozen, AccountUnfrozen, AccountClosed, DisputeOpened, DisputeResolved, KeyCreated, KeyRevoked}

// Event is one notice: a stable ID (a receiver dedupes on it), a type, a
// time, the account ("" for platform-wide notices such as prices) and a
// small body, amounts as the contract's decimal strings.
type Event struct {
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Time    time.Time         `json:"time"`
	Account string            `json:"account,omitempty"`
	Data    map[string]string `json:"data"`
	// Order is the event's place in the outbox (delivery order).
	Order uint64 `json:"order"`
}

func credits(n int64) string { return money.Format(n) }

func timeOf(nanos int64) string { return time.Unix(0, nanos).UTC().Format(time.RFC3339) }

// eventsOf are the events a ledger change tells of (none for most: holds,
// settlements and calls notify nothing by themselves).
func eventsOf(c ledger.Change) []Event {
	ev := func(typ string, data map[string]string) Event {
		return Event{ID: "evt_" + strconv.FormatUint(c.Seq, 10), Type: typ, Time: time.Unix(0, c.TimeNanos).UTC(), Account: c.Account, Data: data}
	}
	switch c.Kind {
	case ledger.ChangeEntry:
		e := c.Entry
		switch e.Kind {
		case ledger.EntryTopUp:
			d := map[string]string{"amount": credits(e.Amount), "credit": e.Credit.String(), "order_id": e.OrderID, "available": credits(e.AvailableAfter)}
			if e.ExpiresAtNanos != 0 {
				d["expires_at"] = timeOf(e.ExpiresAtNanos)
			}
			return []Event{ev(TopUpReceived, d)}
		case ledger.EntryExpire:
			return []Event{ev(CreditExpired, map[string]string{"amount": credits(-e.Amount), "credit": e.Credit.String(),
				"expired_at": timeOf(e.ExpiresAtNanos), "available": credits(e.AvailableAfter)})}
		}
	case ledger.ChangeFreeze:
		return []Event{ev(AccountFrozen, map[string]string{})}
	case ledger.ChangeUnfreeze:
		return []Event{ev(AccountUnfrozen, map[string]string{})}
	case ledger.ChangeClose:
		return []Event{ev(AccountClosed, map[string]string{})}
	case ledger.ChangeKeyCreate:
		return []Event{ev(KeyCreated, map[string]string{"key_id": c.KeyID, "name": c.KeyName})}
	case ledger.ChangeKeyRevoke:
		return []Event{ev(KeyRevoked, map[string]string{"key_id": c.KeyID})}
	case ledger.ChangeDisputeFile:
		d := c.Dispute
		return []Event{ev(DisputeOpened, map[string]string{"dispute_id": d.ID, "request_id": d.RequestID, "reason": d.Reason})}
	case ledger.ChangeDisputeResolve:
		d := c.Dispute
		return []Event{ev(DisputeResolved, map[string]string{"dispute_id": d.ID, "state": d.State.String(), "refund": credits(d.Refund), "resolution": d.Resolution})}
	}
	return nil
}

// catalogueEvent is the platform-wide event of a catalogue notice.
func catalogueEvent(n meter.CatalogueNotice, now time.Time) Event {
	at := n.At.UTC().Format(time.RFC3339)
	e := Event{ID: "cat_" + n.Kind + "_" + n.Model + "_" + n.Upstream + "_" + at, Type: n.Kind, Time: now.UTC(), Data: map[string]string{"model": n.Model, "effective_at": at}}
	if n.Kind == ModelRetiring {
		e.Data = map[string]string{"model": n.Model, "retires_at": at, "successor": n.Successor}
		if n.Upstream != "" {
			e.Data["upstream"] = n.Upstream
		}
	} else {
		e.Data["input"], e.Data["output"] = credits(n.Prices.Input), credits(n.Prices.Output)
		e.Data["cache_write_5m"], e.Data["cache_write_1h"], e.Data["cache_read"] = credits(n.Prices.CacheWrite5m), credits(n.Prices.CacheWrite1h), credits(n.Prices.CacheRead)
	}
	return e
}
