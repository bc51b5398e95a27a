package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/pgtest"
	"github.com/tollgate/tollgate/ledger"
)

// BenchmarkLeaseGrant measures a lease renewal that grants credit (one
// PostgreSQL transaction: the account locked, usage charged, the lease
// written, committed on the primary and a synchronous standby), as a call
// that waits for a grant sees it: p50 and p99 in the metrics.
func BenchmarkLeaseGrant(b *testing.B) {
	pg := pgtest.StartPrimary(b)
	pg.StartStandby("s1")
	pool := connectTB(b, pg)
	auth := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := auth.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := auth.TopUp(ledger.TopUpRequest{Account: "acct", Amount: 1 << 60, OrderID: "o", Credit: ledger.CreditPaid}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r := leaseReport{node: "n", account: "acct", want: oneCredit, floor: 1, ttl: 10 * time.Second, sharePercent: 25}
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		g, err := auth.renew(ctx, r)
		if err != nil || g.granted != oneCredit {
			b.Fatalf("grant %+v: %v", g, err)
		}
		latencies = append(latencies, time.Since(start))
		r.net += g.granted
		r.charged += oneCredit / 2
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}
