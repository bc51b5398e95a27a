package cluster

import (
	"context"
	"errors"
	"log"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/ledger"
)

// Shipper copies a node's settlements (each call's charge, catalogue model
// and token counts) and call records from its WAL to PostgreSQL, so that
// statements and call lists read the same on every node. The WAL is the outbox: the cursor (the last
// record shipped) is written in the transaction that ships, a record is
// shipped once, and the log keeps what is not shipped yet across
// checkpoints (the caller hands Cursor to wal.Log.SetRetention). While
// PostgreSQL is away nothing is lost, only late.
type Shipper struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	node   string
	logger *log.Logger
	cursor atomic.Uint64
}

// shipBatch bounds the rows one transaction ships.
const shipBatch = 2000

// NewShipper returns node's shipper, its cursor read from PostgreSQL.
func NewShipper(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, node string, logger *log.Logger) (*Shipper, error) {
	s := &Shipper{pool: pool, ledger: l, node: node, logger: logger}
	var seq int64
	err := pool.QueryRow(ctx, `SELECT seq FROM tg_shipped WHERE node = $1`, node).Scan(&seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	s.cursor.Store(uint64(seq))
	return s, nil
}

// Cursor is the last WAL record shipped.
func (s *Shipper) Cursor() uint64 { return s.cursor.Load() }

// Run ships every half second until ctx ends, then once more.
func (s *Shipper) Run(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.shipLogged(final)
			cancel()
			return
		case <-tick.C:
			s.shipLogged(ctx)
		}
	}
}

func (s *Shipper) shipLogged(ctx context.Context) {
	for {
		n, err := s.Ship(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Printf("cluster: shipping settlements: %v (retried)", err)
			}
			return
		}
		if n < shipBatch {
			return
		}
	}
}

// errBatchFull stops reading the log once a batch is full.
var errBatchFull = errors.New("batch full")

// Ship ships the settlements and call records after the cursor, at most
// shipBatch of them, and returns how many.
func (s *Shipper) Ship(ctx context.Context) (int, error) {
	after := s.cursor.Load()
	// Only what is synced: a settlement a crash could still undo must not
	// reach PostgreSQL, nor the cursor pass it (its sequence number would
	// be used again).
	upto, err := s.ledger.Durable()
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	last, err := s.ledger.Shippable(after, upto, func(e ledger.Entry) error {
		if b.Len() >= shipBatch {
			return errBatchFull
		}
		t := &e.Tokens
		b.Queue(`INSERT INTO tg_charges (request_id, account, time, model, charged, input_tokens, output_tokens,
			cache_creation_input_tokens, cache_creation_5m_input_tokens, cache_creation_1h_input_tokens,
			cache_read_input_tokens, web_search_requests, node)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`,
			e.RequestID, e.Account, e.TimeNanos, e.ModelID, e.Charged, t.InputTokens, t.OutputTokens, t.CacheCreationInputTokens,
			t.CacheCreation5mInputTokens, t.CacheCreation1hInputTokens, t.CacheReadInputTokens, t.WebSearchRequests, s.node)
		return nil
	}, func(c *ledger.CallRecord, encoded []byte) error {
		if b.Len() >= shipBatch {
			return errBatchFull
		}
		b.Queue(`INSERT INTO tg_calls (request_id, account, key_id, time, model, model_id, outcome, record, node)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			c.RequestID, c.AccountID, c.KeyID, c.TimeNanos, c.Model, c.ModelID, c.Outcome.String(), encoded, s.node)
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return 0, err
	}
	if last == after {
		return 0, nil
	}
	shipped := b.Len()
	b.Queue(`INSERT INTO tg_shipped (node, seq) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET seq = $2`, s.node, int64(last))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return 0, err
	}
	s.cursor.Store(last)
	return shipped, nil
}
