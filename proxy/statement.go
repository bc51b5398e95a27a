package proxy

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
	"github.com/valyala/fasthttp"
)

// A statement's figures come from the ledger (ledger.Statement): entries
// by time, from the latest snapshot before the period.

type statementView struct {
	AccountID      string          `json:"account_id"`
	From           timestamp       `json:"from"`
	To             timestamp       `json:"to"`
	OpeningBalance amount          `json:"opening_balance"`
	TopUps         amount          `json:"topups"`
	Charges        []chargeSummary `json:"charges"`
	Adjustments    amount          `json:"adjustments"`
	Expiries       amount          `json:"expiries"`
	ClosingBalance amount          `json:"closing_balance"`
}

type chargeSummary struct {
	// Model is the catalogue's model ID ("unknown" for calls settled
	// without one).
	Model string `json:"model"`
	Calls int64  `json:"calls"`
	tokens.Counts
	Amount amount `json:"amount"`
}

// statementPageSize is how many call records one read of the log returns
// while a CSV statement walks an account's calls.
const statementPageSize = 1000

// statement computes the statement of account for [from, to).
func (g *Gateway) statement(account string, from, to int64) (statementView, error) {
	v := statementView{AccountID: account, From: timestamp(from), To: timestamp(to)}
	s, err := g.ledger.Statement(account, from, to)
	if err != nil {
		return v, err
	}
	v.OpeningBalance, v.TopUps, v.Adjustments = amount(s.Opening), amount(s.TopUps), amount(s.Adjustments)
	v.Expiries, v.ClosingBalance = amount(s.Expiries), amount(s.Closing())
	v.Charges = []chargeSummary{}
	for model, m := range s.ByModel {
		if model == "" {
			model = "unknown"
		}
		v.Charges = append(v.Charges, chargeSummary{Model: model, Calls: m.Calls, Counts: m.Counts, Amount: amount(m.Amount)})
	}
	slices.SortFunc(v.Charges, func(a, b chargeSummary) int { return strings.Compare(a.Model, b.Model) })
	return v, nil
}

// parsePeriod reads from and to (RFC 3339; to defaults to now, from to the
// beginning).
func parsePeriod(ctx *fasthttp.RequestCtx) (int64, int64, error) {
	var from, to int64 = 0, time.Now().UnixNano()
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &from}, {"to", &to}} {
		if v := ctx.QueryArgs().Peek(p.name); len(v) > 0 {
			t, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %q is not an RFC 3339 time", p.name, v)
			}
			*p.dst = t.UnixNano()
		}
	}
	if to < from {
		return 0, 0, fmt.Errorf("to is before from")
	}
	return from, to, nil
}

// serveStatement answers a statement request for account, as JSON or, with
// format=csv, as the period's call records.
func (g *Gateway) serveStatement(ctx *fasthttp.RequestCtx, account string, admin bool) {
	from, to, err := parsePeriod(ctx)
	if err != nil {
		badRequest(ctx, err)
		return
	}
	if _, err := g.ledger.Settings(account); err != nil {
		ledgerError(ctx, err)
		return
	}
	if string(ctx.QueryArgs().Peek("format")) == "csv" {
		g.writeCallsCSV(ctx, account, from, to, admin)
		return
	}
	s, err := g.statement(account, from, to)
	if err != nil {
		g.logger.Printf("cannot compute a statement: %s", err)
		writeError(ctx, fasthttp.StatusInternalServerError, errAPI, "cannot compute the statement")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, s)
}

// csvColumns are section 4's call record fields, in its order.
var csvColumns = []string{"request_id", "account_id", "key_id", "time", "model", "status", "outcome", "input_tokens", "output_tokens",
	"cache_creation_input_tokens", "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens", "cache_read_input_tokens",
	"web_search_requests", "held", "charged", "usage_estimated", "source_ip_digest", "duration_ms", "ttfb_ms"}

var adminCSVColumns = []string{"upstream", "upstream_request_id", "upstream_cost"}

func (g *Gateway) writeCallsCSV(ctx *fasthttp.RequestCtx, account string, from, to int64, admin bool) {
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="calls-`+account+`.csv"`)
	w := csv.NewWriter(ctx)
	header := csvColumns
	if admin {
		header = slices.Concat(csvColumns, adminCSVColumns)
	}
	_ = w.Write(header)
	var before uint64
	for {
		calls, next, err := g.ledger.Calls(account, ledger.CallFilter{SinceNanos: from, UntilNanos: to}, before, statementPageSize)
		if err != nil {
			g.logger.Printf("cannot list calls for a statement: %s", err)
			break
		}
		for _, c := range calls {
			row := []string{c.RequestID, c.AccountID, c.KeyID, time.Unix(0, c.TimeNanos).UTC().Format(time.RFC3339Nano), c.Model,
				strconv.Itoa(c.Status), c.Outcome.String(), i64(c.InputTokens), i64(c.OutputTokens), i64(c.CacheCreationInputTokens),
				i64(c.CacheCreation5mInputTokens), i64(c.CacheCreation1hInputTokens), i64(c.CacheReadInputTokens), i64(c.WebSearchRequests),
				money.Format(c.Held), money.Format(c.Charged), strconv.FormatBool(c.UsageEstimated), c.SourceIPDigest,
				i64(c.DurationMs), i64(c.TTFBMs)}
			if admin {
				row = append(row, c.Upstream, c.UpstreamRequestID, money.Format(c.UpstreamCost))
			}
			_ = w.Write(row)
		}
		if next == 0 {
			break
		}
		before = next
	}
	w.Flush()
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

type expiringCredit struct {
	Kind      string    `json:"kind"`
	Amount    amount    `json:"amount"`
	ExpiresAt timestamp `json:"expires_at"`
}

type expiringAccount struct {
	AccountID string           `json:"account_id"`
	Email     string           `json:"email"`
	Amount    amount           `json:"amount"`
	ExpiresAt timestamp        `json:"expires_at"`
	Credits   []expiringCredit `json:"credits"`
}

// adminExpiring is GET /admin/v1/expiring?within=720h: the accounts with
// credit expiring inside the window, soonest first.
func (g *Gateway) adminExpiring(ctx *fasthttp.RequestCtx) {
	within := 30 * 24 * time.Hour
	if v := ctx.QueryArgs().Peek("within"); len(v) > 0 {
		d, err := time.ParseDuration(string(v))
		if err != nil || d <= 0 {
			badRequest(ctx, fmt.Errorf("within: %q is not a positive duration such as \"720h\"", v))
			return
		}
		within = d
	}
	now := time.Now().UnixNano()
	limit := now + int64(within)
	var out []expiringAccount
	g.ledger.Accounts(func(a ledger.AccountInfo) {
		var ea *expiringAccount
		for _, c := range a.Credits {
			if c.ExpiresAtNanos == 0 || c.ExpiresAtNanos > limit || c.Remaining <= 0 {
				continue
			}
			if ea == nil {
				ea = &expiringAccount{AccountID: a.ID, Email: a.Email, ExpiresAt: timestamp(c.ExpiresAtNanos)}
			}
			ea.Amount += amount(c.Remaining)
			ea.Credits = append(ea.Credits, expiringCredit{Kind: c.Credit.String(), Amount: amount(c.Remaining), ExpiresAt: timestamp(c.ExpiresAtNanos)})
		}
		if ea != nil {
			out = append(out, *ea)
		}
	})
	slices.SortFunc(out, func(a, b expiringAccount) int {
		if a.ExpiresAt != b.ExpiresAt {
			return int(a.ExpiresAt - b.ExpiresAt)
		}
		return strings.Compare(a.AccountID, b.AccountID)
	})
	writeJSON(ctx, fasthttp.StatusOK, newList(out, ""))
}
