package views

import (
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
)

// Statement is an account's money over a period: the opening balance, what
// came in and went out by kind (charges by model), the closing balance.
// Its figures come from the ledger (ledger.Statement): entries by time,
// from the latest snapshot before the period.
type Statement struct {
	AccountID      string          `json:"account_id"`
	From           Time            `json:"from"`
	To             Time            `json:"to"`
	OpeningBalance Amount          `json:"opening_balance"`
	TopUps         Amount          `json:"topups"`
	Charges        []ChargeSummary `json:"charges"`
	Adjustments    Amount          `json:"adjustments"`
	Expiries       Amount          `json:"expiries"`
	ClosingBalance Amount          `json:"closing_balance"`
}

// ChargeSummary is what one model's calls cost over a statement's period.
type ChargeSummary struct {
	// Model is the catalogue's model ID ("unknown" for calls settled
	// without one).
	Model string `json:"model"`
	Calls int64  `json:"calls"`
	tokens.Counts
	Amount Amount `json:"amount"`
}

// StatementSource computes an account's statement: the ledger, or in
// cluster mode PostgreSQL's authority.
type StatementSource interface {
	Statement(account string, fromNanos, toNanos int64) (ledger.Statement, error)
}

// NewStatement computes the statement of account for [from, to), charges
// sorted by model.
func NewStatement(l StatementSource, account string, from, to int64) (Statement, error) {
	v := Statement{AccountID: account, From: Time(from), To: Time(to)}
	s, err := l.Statement(account, from, to)
	if err != nil {
		return v, err
	}
	v.OpeningBalance, v.TopUps, v.Adjustments = Amount(s.Opening), Amount(s.TopUps), Amount(s.Adjustments)
	v.Expiries, v.ClosingBalance = Amount(s.Expiries), Amount(s.Closing())
	v.Charges = []ChargeSummary{}
	for model, m := range s.ByModel {
		if model == "" {
			model = "unknown"
		}
		v.Charges = append(v.Charges, ChargeSummary{Model: model, Calls: m.Calls, Counts: m.Counts, Amount: Amount(m.Amount)})
	}
	slices.SortFunc(v.Charges, func(a, b ChargeSummary) int { return strings.Compare(a.Model, b.Model) })
	return v, nil
}

// csvPageSize is how many call records one read of the log returns while
// WriteCallsCSV walks an account's calls.
const csvPageSize = 1000

// csvColumns are a call record's fields as the customer sees them, in the
// order of the call record's definition.
var csvColumns = []string{"request_id", "account_id", "key_id", "time", "model", "status", "outcome", "input_tokens", "output_tokens",
	"cache_creation_input_tokens", "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens", "cache_read_input_tokens",
	"web_search_requests", "held", "charged", "usage_estimated", "source_ip_digest", "duration_ms", "ttfb_ms"}

// adminCSVColumns follow csvColumns in an operator's export.
var adminCSVColumns = []string{"upstream", "upstream_request_id", "upstream_cost"}

// CallSource pages through an account's call records: the ledger, or in
// cluster mode PostgreSQL's authority.
type CallSource interface {
	Calls(account string, f ledger.CallFilter, before uint64, limit int) ([]*ledger.CallRecord, uint64, error)
}

// CSVFileName is the file name a statement's CSV is offered under.
func CSVFileName(account string) string { return "calls-" + account + ".csv" }

// WriteCallsCSV writes account's calls that ended in [from, to) as CSV, a
// header row first; admin adds the upstream columns; the front comes last
// (a column added after the others, so existing readers keep working). It stops at the
// first error, which it returns (the rows before it are written).
func WriteCallsCSV(w io.Writer, l CallSource, account string, from, to int64, admin bool) error {
	cw := csv.NewWriter(w)
	header := slices.Concat(csvColumns, []string{"front"})
	if admin {
		header = slices.Concat(csvColumns, adminCSVColumns, []string{"front"})
	}
	_ = cw.Write(header)
	for before := uint64(0); ; {
		calls, next, err := l.Calls(account, ledger.CallFilter{SinceNanos: from, UntilNanos: to}, before, csvPageSize)
		if err != nil {
			cw.Flush()
			return err
		}
		for _, c := range calls {
			_ = cw.Write(csvRow(c, admin))
		}
		if next == 0 {
			break
		}
		before = next
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(c *ledger.CallRecord, admin bool) []string {
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	row := []string{c.RequestID, c.AccountID, c.KeyID, time.Unix(0, c.TimeNanos).UTC().Format(time.RFC3339Nano), c.Model,
		strconv.Itoa(c.Status), c.Outcome.String(), i64(c.InputTokens), i64(c.OutputTokens), i64(c.CacheCreationInputTokens),
		i64(c.CacheCreation5mInputTokens), i64(c.CacheCreation1hInputTokens), i64(c.CacheReadInputTokens), i64(c.WebSearchRequests),
		money.Format(c.Held), money.Format(c.Charged), strconv.FormatBool(c.UsageEstimated), c.SourceIPDigest,
		i64(c.DurationMs), i64(c.TTFBMs)}
	if admin {
		row = append(row, c.Upstream, c.UpstreamRequestID, money.Format(c.UpstreamCost))
	}
	return append(row, c.Front.String())
}
