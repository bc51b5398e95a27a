package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Check verifies the cluster's books in PostgreSQL: for every account,
// conservation (top-ups + adjustments - expired = credit left - debt +
// charged) and a journal whose entries sum to the account's totals, and no
// lease that reports more usage than it ever states net. It returns every
// violation found, joined.
func (a *Authority) Check(ctx context.Context) error {
	var problems []error
	rows, err := a.pool.Query(ctx, `
		SELECT a.id, a.topped_up, a.adjusted, a.expired, a.charged, a.debt,
		  coalesce((SELECT sum(remaining) FROM tg_credits c WHERE c.account = a.id), 0)::bigint,
		  coalesce((SELECT sum(amount) FROM tg_journal j WHERE j.account = a.id AND kind = 'topup'), 0)::bigint,
		  coalesce((SELECT sum(amount) FROM tg_journal j WHERE j.account = a.id AND kind = 'adjust'), 0)::bigint,
		  coalesce((SELECT sum(amount) FROM tg_journal j WHERE j.account = a.id AND kind = 'expire'), 0)::bigint,
		  coalesce((SELECT sum(amount) FROM tg_journal j WHERE j.account = a.id AND kind = 'usage'), 0)::bigint,
		  coalesce((SELECT sum(reported) FROM tg_leases l WHERE l.account = a.id), 0)::bigint
		FROM tg_accounts a`)
	if err != nil {
		return err
	}
	var id string
	var toppedUp, adjusted, expired, charged, debt, left, jTopUp, jAdjust, jExpire, jUsage, reported int64
	_, err = pgx.ForEachRow(rows, []any{&id, &toppedUp, &adjusted, &expired, &charged, &debt, &left, &jTopUp, &jAdjust, &jExpire, &jUsage, &reported}, func() error {
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Errorf("account %q: "+format, append([]any{id}, args...)...))
		}
		if toppedUp+adjusted-expired != left-debt+charged {
			bad("top-ups %d + adjustments %d - expired %d != credit left %d - debt %d + charged %d", toppedUp, adjusted, expired, left, debt, charged)
		}
		if jTopUp != toppedUp || jAdjust != adjusted || -jExpire != expired || -jUsage != charged {
			bad("journal sums (top-ups %d, adjustments %d, expiries %d, usage %d) differ from the totals (%d, %d, %d, %d)",
				jTopUp, jAdjust, -jExpire, -jUsage, toppedUp, adjusted, expired, charged)
		}
		if reported != charged {
			bad("the leases report %d charged, the account %d", reported, charged)
		}
		return nil
	})
	return errors.Join(append(problems, err)...)
}
