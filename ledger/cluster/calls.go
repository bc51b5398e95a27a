package cluster

import (
	"errors"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// The call records the nodes shipped (Shipper), read as the ledger reads
// its own: the same on every node, within the half second shipping takes.

// Calls pages through an account's call records, newest first (in the
// order they reached PostgreSQL: one node's in its own order); before is
// the cursor (0: from the newest), next the cursor of the following page
// (0: none).
func (a *Authority) Calls(account string, f ledger.CallFilter, before uint64, limit int) ([]*ledger.CallRecord, uint64, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	if before == 0 || before > math.MaxInt64 {
		before = math.MaxInt64
	}
	where, args := callFilter(f, "account = $1 AND id < $2", account, int64(before))
	rows, err := a.pool.Query(ctx, `SELECT id, record FROM tg_calls WHERE `+where+` ORDER BY id DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return nil, 0, err
	}
	calls, ids, err := collectCalls(rows)
	if err != nil || len(calls) <= limit {
		return calls, 0, err
	}
	return calls[:limit], uint64(ids[limit-1]), nil
}

// CallsByTime pages through every account's call records whose time is in
// [sinceNanos, untilNanos), newest first, from cursor on.
func (a *Authority) CallsByTime(sinceNanos, untilNanos int64, cursor ledger.CallCursor, limit int) ([]*ledger.CallRecord, ledger.CallCursor, bool, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	var next ledger.CallCursor
	where := "time >= $1 AND time < $2"
	args := []any{sinceNanos, untilNanos}
	if cursor != (ledger.CallCursor{}) {
		where += " AND (time, id) <= ($3, $4)"
		args = append(args, cursor.TimeNanos, int64(min(cursor.Seq, math.MaxInt64)))
	}
	rows, err := a.pool.Query(ctx, `SELECT id, record FROM tg_calls WHERE `+where+` ORDER BY time DESC, id DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return nil, next, false, err
	}
	calls, ids, err := collectCalls(rows)
	if err != nil || len(calls) <= limit {
		return calls, next, false, err
	}
	next = ledger.CallCursor{TimeNanos: calls[limit].TimeNanos, Seq: uint64(ids[limit])}
	return calls[:limit], next, true, nil
}

// CallByRequestID returns a call's record, nil when no node has shipped
// one (yet).
func (a *Authority) CallByRequestID(requestID string) (*ledger.CallRecord, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	var record []byte
	err := a.pool.QueryRow(ctx, `SELECT record FROM tg_calls WHERE request_id = $1`, requestID).Scan(&record)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ledger.DecodeCallRecord(record)
}

// callFilter adds f's conditions to where (whose arguments are args).
func callFilter(f ledger.CallFilter, where string, args ...any) (string, []any) {
	add := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + " $" + strconv.Itoa(len(args))
	}
	if f.SinceNanos != 0 {
		add("time >=", f.SinceNanos)
	}
	if f.UntilNanos != 0 {
		add("time <", f.UntilNanos)
	}
	if f.KeyID != "" {
		add("key_id =", f.KeyID)
	}
	if f.Outcome != "" {
		add("outcome =", f.Outcome)
	}
	if f.Model != "" {
		args = append(args, f.Model)
		n := "$" + strconv.Itoa(len(args))
		where += " AND (model = " + n + " OR model_id = " + n + ")"
	}
	return where, args
}

func collectCalls(rows pgx.Rows) ([]*ledger.CallRecord, []int64, error) {
	var calls []*ledger.CallRecord
	var ids []int64
	var id int64
	var record []byte
	_, err := pgx.ForEachRow(rows, []any{&id, &record}, func() error {
		c, err := ledger.DecodeCallRecord(record)
		calls, ids = append(calls, c), append(ids, id)
		return err
	})
	return calls, ids, err
}

// PruneCalls removes the shipped call records older than beforeNanos (the
// charges statements read are kept) and returns how many.
func (a *Authority) PruneCalls(beforeNanos int64) (int64, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	tag, err := a.pool.Exec(ctx, `DELETE FROM tg_calls WHERE time < $1`, beforeNanos)
	return tag.RowsAffected(), err
}
