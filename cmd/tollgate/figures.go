package main

import (
	"strconv"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/console"
)

// headlineFigures are the operators' console's figures of the gateway now:
// what a person checks first on the health page (the metrics have the
// rest).
func (p *process) headlineFigures() []console.Figure {
	accounts, frozen := 0, 0
	p.ledger.Accounts(func(a ledger.AccountInfo) {
		accounts++
		if a.Frozen {
			frozen++
		}
	})
	return []console.Figure{
		{Name: "Accounts", Value: strconv.Itoa(accounts)},
		{Name: "Frozen accounts", Value: strconv.Itoa(frozen)},
		{Name: "Calls in flight (open holds)", Value: strconv.Itoa(len(p.ledger.OpenHolds()))},
		{Name: "WAL mode", Value: p.walMode.String()},
		{Name: "Records since checkpoint", Value: strconv.FormatUint(p.ledger.RecordsSinceCheckpoint(), 10)},
		{Name: "Up since", Value: p.started.UTC().Format(time.DateTime) + " UTC"},
	}
}
