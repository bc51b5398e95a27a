package cluster

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// schema is the cluster's tables. Times are Unix nanoseconds by
// PostgreSQL's clock (tg_now), amounts nano-credits, as in the ledger.
//
// version orders changes to accounts and keys for the nodes' mirrors: every
// write of them takes versionLock first, so versions are handed out in
// commit order and a mirror that has read version v has read every change
// before it.
const schema = `
CREATE OR REPLACE FUNCTION tg_now() RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint $$;
CREATE SEQUENCE IF NOT EXISTS tg_version;
CREATE TABLE IF NOT EXISTS tg_accounts (
  id          text PRIMARY KEY,
  email       text NOT NULL,
  multiplier  bigint NOT NULL,
  rpm         bigint NOT NULL,
  tpm         bigint NOT NULL,
  concurrency bigint NOT NULL,
  frozen      boolean NOT NULL DEFAULT false,
  created_at  bigint NOT NULL,
  closed_at   bigint NOT NULL DEFAULT 0,
  debt        bigint NOT NULL DEFAULT 0,
  topped_up   bigint NOT NULL DEFAULT 0,
  adjusted    bigint NOT NULL DEFAULT 0,
  expired     bigint NOT NULL DEFAULT 0,
  charged     bigint NOT NULL DEFAULT 0,
  version     bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_accounts_version ON tg_accounts (version);
CREATE TABLE IF NOT EXISTS tg_keys (
  id           text PRIMARY KEY,
  account      text NOT NULL REFERENCES tg_accounts (id),
  hash         bytea NOT NULL UNIQUE,
  name         text NOT NULL,
  hint         text NOT NULL,
  rpm          bigint NOT NULL,
  tpm          bigint NOT NULL,
  concurrency  bigint NOT NULL,
  spend_limit  bigint NOT NULL,
  spend_period bigint NOT NULL,
  expires_at   bigint NOT NULL,
  models       text[] NOT NULL,
  revoked      boolean NOT NULL DEFAULT false,
  created_at   bigint NOT NULL,
  version      bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_keys_version ON tg_keys (version);
CREATE INDEX IF NOT EXISTS tg_keys_account ON tg_keys (account);
CREATE TABLE IF NOT EXISTS tg_credits (
  id         bigserial PRIMARY KEY,
  account    text NOT NULL REFERENCES tg_accounts (id),
  credit     smallint NOT NULL,
  expires_at bigint NOT NULL,
  remaining  bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_credits_account ON tg_credits (account) WHERE remaining > 0;
CREATE TABLE IF NOT EXISTS tg_journal (
  id              bigserial PRIMARY KEY,
  account         text NOT NULL REFERENCES tg_accounts (id),
  time            bigint NOT NULL,
  kind            text NOT NULL,
  amount          bigint NOT NULL,
  available_after bigint NOT NULL,
  order_id        text UNIQUE,
  idempotency_key text UNIQUE,
  request_id      text NOT NULL DEFAULT '',
  reason          text NOT NULL DEFAULT '',
  actor           text NOT NULL DEFAULT '',
  credit          smallint NOT NULL DEFAULT 0,
  expires_at      bigint NOT NULL DEFAULT 0,
  node            text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tg_journal_account ON tg_journal (account, id);
CREATE TABLE IF NOT EXISTS tg_leases (
  account    text NOT NULL REFERENCES tg_accounts (id),
  node       text NOT NULL,
  granted    bigint NOT NULL DEFAULT 0,
  reported   bigint NOT NULL DEFAULT 0,
  expires_at bigint NOT NULL DEFAULT 0,
  renewals   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (account, node)
);
CREATE INDEX IF NOT EXISTS tg_leases_node ON tg_leases (node);
CREATE TABLE IF NOT EXISTS tg_charges (
  request_id                     text PRIMARY KEY,
  account                        text NOT NULL,
  time                           bigint NOT NULL,
  model                          text NOT NULL,
  charged                        bigint NOT NULL,
  input_tokens                   bigint NOT NULL,
  output_tokens                  bigint NOT NULL,
  cache_creation_input_tokens    bigint NOT NULL,
  cache_creation_5m_input_tokens bigint NOT NULL,
  cache_creation_1h_input_tokens bigint NOT NULL,
  cache_read_input_tokens        bigint NOT NULL,
  web_search_requests            bigint NOT NULL,
  node                           text NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_charges_account ON tg_charges (account, time);
CREATE TABLE IF NOT EXISTS tg_calls (
  id         bigserial PRIMARY KEY,
  request_id text NOT NULL UNIQUE,
  account    text NOT NULL,
  key_id     text NOT NULL,
  time       bigint NOT NULL,
  model      text NOT NULL,
  model_id   text NOT NULL,
  outcome    text NOT NULL,
  record     bytea NOT NULL,
  node       text NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_calls_account ON tg_calls (account, id);
CREATE INDEX IF NOT EXISTS tg_calls_time ON tg_calls (time, id);
CREATE TABLE IF NOT EXISTS tg_disputes (
  id            text PRIMARY KEY,
  account       text NOT NULL REFERENCES tg_accounts (id),
  request_id    text NOT NULL UNIQUE,
  reason        text NOT NULL,
  filed_at      bigint NOT NULL,
  state         smallint NOT NULL DEFAULT 0,
  resolution    text NOT NULL DEFAULT '',
  resolved_by   text NOT NULL DEFAULT '',
  resolved_at   bigint NOT NULL DEFAULT 0,
  refund        bigint NOT NULL DEFAULT 0,
  adjustment_id bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tg_disputes_account ON tg_disputes (account, filed_at);
CREATE TABLE IF NOT EXISTS tg_states (
  name  text PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS tg_nodes (
  id      text PRIMARY KEY,
  seen_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS tg_outbox (
  id       bigserial PRIMARY KEY,
  seq      bigint UNIQUE,
  added_at bigint NOT NULL DEFAULT tg_now(),
  change   bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_outbox_unstamped ON tg_outbox (id) WHERE seq IS NULL;
CREATE INDEX IF NOT EXISTS tg_outbox_added ON tg_outbox (added_at);
CREATE TABLE IF NOT EXISTS tg_outbox_seq (value bigint NOT NULL);
INSERT INTO tg_outbox_seq SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM tg_outbox_seq);
CREATE TABLE IF NOT EXISTS tg_notify_version (value bigint NOT NULL);
INSERT INTO tg_notify_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM tg_notify_version);
CREATE TABLE IF NOT EXISTS tg_shipped (
  node text PRIMARY KEY,
  seq  bigint NOT NULL
);
`

// Advisory lock keys: one serialises schema changes between nodes starting
// at once, the other the writes of accounts and keys (see schema).
const (
	schemaLock  = 0x7467_0001
	versionLock = 0x7467_0002
)

// changeChannel is the LISTEN/NOTIFY channel a write of accounts or keys
// signals, so mirrors pull it at once rather than at their next poll;
// statesChannel the one a write of shared states (States) signals.
const (
	changeChannel = "tollgate_changes"
	statesChannel = "tollgate_states"
)

// Migrate creates the cluster's tables when they are missing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", schemaLock); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", schemaLock) //nolint:errcheck // the session ends with the connection anyway
	if _, err := conn.Exec(ctx, schema); err != nil {
		return fmt.Errorf("cluster: creating the schema: %w", err)
	}
	return nil
}
