package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bytedance/sonic"
	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// Disputes, as the ledger's (ledger/disputes.go), in PostgreSQL: filed on
// any node, resolved on any node, and an acceptance's refund posted in the
// same transaction as the outcome.

const disputeColumns = `id, account, request_id, reason, filed_at, state, resolution, resolved_by, resolved_at, refund, adjustment_id`

func scanDispute(r pgx.Row) (ledger.Dispute, error) {
	var d ledger.Dispute
	var state int16
	var adjustment int64
	err := r.Scan(&d.ID, &d.AccountID, &d.RequestID, &d.Reason, &d.FiledAt, &state, &d.Resolution, &d.ResolvedBy,
		&d.ResolvedAt, &d.Refund, &adjustment)
	d.State, d.AdjustmentID = ledger.DisputeState(state), uint64(adjustment)
	return d, err
}

// FileDispute records d as an open dispute filed now. A repeat of the same
// dispute returns the first (created false); a second dispute of one call,
// or another dispute under a used ID, is ledger.ErrDisputeExists.
func (a *Authority) FileDispute(d ledger.Dispute) (ledger.Dispute, bool, error) {
	if err := errors.Join(ledger.ValidID("dispute ID", d.ID), ledger.ValidID("request_id", d.RequestID), ledger.ValidText("reason", d.Reason)); err != nil {
		return d, false, err
	}
	if d.Reason == "" {
		return d, false, fmt.Errorf("%w: reason is required", ledger.ErrInvalid)
	}
	change, err := sonic.Marshal(ledger.Change{Kind: ledger.ChangeDisputeFile, Account: d.AccountID, TimeNanos: time.Now().UnixNano(),
		Dispute: &ledger.Dispute{ID: d.ID, AccountID: d.AccountID, RequestID: d.RequestID, Reason: d.Reason}})
	if err != nil {
		return d, false, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	// One statement: the dispute and its outbox row, or neither.
	row := a.pool.QueryRow(ctx, `WITH filed AS (INSERT INTO tg_disputes (id, account, request_id, reason, filed_at)
		SELECT $1, id, $3, $4, tg_now() FROM tg_accounts WHERE id = $2
		ON CONFLICT DO NOTHING RETURNING `+disputeColumns+`),
		told AS (INSERT INTO tg_outbox (change) SELECT $5 FROM filed)
		SELECT `+disputeColumns+` FROM filed`, d.ID, d.AccountID, d.RequestID, d.Reason, change)
	filed, err := scanDispute(row)
	if err == nil {
		return filed, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return d, false, err
	}
	if _, err := a.Account(d.AccountID); err != nil {
		return d, false, err
	}
	prev, found, err := a.dispute(ctx, a.pool, "id = $1", d.ID)
	switch {
	case err != nil:
		return d, false, err
	case found && (prev.AccountID != d.AccountID || prev.RequestID != d.RequestID || prev.Reason != d.Reason):
		return d, false, fmt.Errorf("%w: ID %q", ledger.ErrDisputeExists, d.ID)
	case found:
		return prev, false, nil
	}
	return d, false, fmt.Errorf("%w: call %q is disputed already", ledger.ErrDisputeExists, d.RequestID)
}

// AcceptDispute credits refund to the disputed account by an adjustment
// whose idempotency key is the dispute's ID and marks the dispute accepted,
// in one transaction. A retry returns the dispute as accepted; accepting a
// rejected dispute is ledger.ErrDisputeResolved.
func (a *Authority) AcceptDispute(id string, refund int64, note, actor string) (ledger.Dispute, error) {
	return a.resolve(id, ledger.DisputeAccepted, actor, func(ctx context.Context, tx pgx.Tx, d *ledger.Dispute) error {
		if refund <= 0 {
			return fmt.Errorf("%w: the refund must be positive", ledger.ErrInvalid)
		}
		b, err := adjustBook(ctx, tx, &ledger.AdjustRequest{Account: d.AccountID, Amount: refund,
			Reason: "dispute " + id + " accepted", RequestID: d.RequestID, IdempotencyKey: id, Actor: actor})
		if err != nil {
			return err
		}
		entries, err := b.save(ctx, tx)
		if errors.Is(err, errDuplicate) {
			return fmt.Errorf("%w: an adjustment already used the dispute's ID %q as its idempotency key", ledger.ErrIdempotencyConflict, id)
		}
		if err != nil {
			return err
		}
		d.Resolution, d.Refund, d.AdjustmentID = note, refund, entries[len(entries)-1].ID
		return nil
	})
}

// RejectDispute marks the dispute rejected for reason (required). A retry
// returns it; rejecting an accepted dispute is ledger.ErrDisputeResolved.
func (a *Authority) RejectDispute(id, reason, actor string) (ledger.Dispute, error) {
	if reason == "" {
		return ledger.Dispute{}, fmt.Errorf("%w: a rejection needs a reason", ledger.ErrInvalid)
	}
	return a.resolve(id, ledger.DisputeRejected, actor, func(_ context.Context, _ pgx.Tx, d *ledger.Dispute) error {
		d.Resolution = reason
		return nil
	})
}

// resolve locks dispute id and, when it is open, applies outcome (which
// fills in the resolution) and records the state; a dispute already in
// state is returned as it is (a retry).
func (a *Authority) resolve(id string, state ledger.DisputeState, actor string, outcome func(ctx context.Context, tx pgx.Tx, d *ledger.Dispute) error) (ledger.Dispute, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	var d ledger.Dispute
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		var found bool
		var err error
		if d, found, err = a.dispute(ctx, tx, "id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		switch {
		case !found:
			return fmt.Errorf("%w: %q", ledger.ErrUnknownDispute, id)
		case d.State == state:
			return nil
		case d.State != ledger.DisputeOpen:
			return fmt.Errorf("%w: %q was %s", ledger.ErrDisputeResolved, id, d.State)
		}
		if err := errors.Join(ledger.ValidText("actor", actor), outcome(ctx, tx, &d), ledger.ValidText("resolution", d.Resolution)); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `UPDATE tg_disputes SET state = $2, resolution = $3, resolved_by = $4, resolved_at = tg_now(),
			refund = $5, adjustment_id = $6 WHERE id = $1 RETURNING `+disputeColumns,
			id, int16(state), d.Resolution, actor, d.Refund, int64(d.AdjustmentID))
		if d, err = scanDispute(row); err != nil {
			return err
		}
		return insertChange(ctx, tx, ledger.Change{Kind: ledger.ChangeDisputeResolve, Account: d.AccountID, TimeNanos: time.Now().UnixNano(), Dispute: &d})
	})
	return d, err
}

// Dispute returns dispute id.
func (a *Authority) Dispute(id string) (ledger.Dispute, bool) {
	ctx, cancel := a.ctx()
	defer cancel()
	d, found, err := a.dispute(ctx, a.pool, "id = $1", id)
	return d, found && err == nil
}

// Disputes returns the disputes of account ("" for every account) in state
// (nil for every state), oldest first.
func (a *Authority) Disputes(account string, state *ledger.DisputeState) []ledger.Dispute {
	ctx, cancel := a.ctx()
	defer cancel()
	where, args := "($1 = '' OR account = $1)", []any{account}
	if state != nil {
		where += " AND state = $2"
		args = append(args, int16(*state))
	}
	rows, err := a.pool.Query(ctx, `SELECT `+disputeColumns+` FROM tg_disputes WHERE `+where+` ORDER BY filed_at, id`, args...)
	if err != nil {
		return nil
	}
	list, _ := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Dispute, error) { return scanDispute(r) })
	return list
}

func (a *Authority) dispute(ctx context.Context, q querier, where, id string) (ledger.Dispute, bool, error) {
	d, err := scanDispute(q.QueryRow(ctx, `SELECT `+disputeColumns+` FROM tg_disputes WHERE `+where, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	return d, err == nil, err
}
