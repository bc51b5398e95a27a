package cluster

import (
	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// Statement computes an account's statement for [fromNanos, toNanos) from
// PostgreSQL: top-ups, adjustments and expiries from the journal, charges
// from the settlements the nodes shipped (Shipper), so every node answers
// the same (once the nodes have shipped: within a second). Balances are
// credit minus charges, as in the ledger's statements.
func (a *Authority) Statement(account string, fromNanos, toNanos int64) (ledger.Statement, error) {
	s := ledger.Statement{ByModel: map[string]*ledger.ModelCharges{}}
	ctx, cancel := a.ctx()
	defer cancel()
	err := pgx.BeginTxFunc(ctx, a.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var before, chargedBefore, expired int64
		err := tx.QueryRow(ctx, `SELECT
			  coalesce(sum(amount) FILTER (WHERE time < $2), 0)::bigint,
			  coalesce(sum(amount) FILTER (WHERE kind = 'topup' AND time >= $2 AND time < $3), 0)::bigint,
			  coalesce(sum(amount) FILTER (WHERE kind = 'adjust' AND time >= $2 AND time < $3), 0)::bigint,
			  coalesce(sum(amount) FILTER (WHERE kind = 'expire' AND time >= $2 AND time < $3), 0)::bigint
			FROM tg_journal WHERE account = $1 AND kind IN ('topup', 'adjust', 'expire')`, account, fromNanos, toNanos).
			Scan(&before, &s.TopUps, &s.Adjustments, &expired)
		if err != nil {
			return err
		}
		s.Expiries = -expired
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(charged), 0)::bigint FROM tg_charges WHERE account = $1 AND time < $2`,
			account, fromNanos).Scan(&chargedBefore); err != nil {
			return err
		}
		s.Opening = before - chargedBefore
		rows, err := tx.Query(ctx, `SELECT model, count(*), sum(input_tokens)::bigint, sum(output_tokens)::bigint,
			  sum(cache_creation_input_tokens)::bigint, sum(cache_creation_5m_input_tokens)::bigint,
			  sum(cache_creation_1h_input_tokens)::bigint, sum(cache_read_input_tokens)::bigint,
			  sum(web_search_requests)::bigint, sum(charged)::bigint
			FROM tg_charges WHERE account = $1 AND time >= $2 AND time < $3 GROUP BY model`, account, fromNanos, toNanos)
		if err != nil {
			return err
		}
		var model string
		var m ledger.ModelCharges
		t := &m.Counts
		_, err = pgx.ForEachRow(rows, []any{&model, &m.Calls, &t.InputTokens, &t.OutputTokens, &t.CacheCreationInputTokens,
			&t.CacheCreation5mInputTokens, &t.CacheCreation1hInputTokens, &t.CacheReadInputTokens, &t.WebSearchRequests, &m.Amount}, func() error {
			copied := m
			s.ByModel[model] = &copied
			s.Charges += m.Amount
			return nil
		})
		return err
	})
	return s, err
}
