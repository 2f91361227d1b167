//! The schema, in versioned steps. `vantage_schema` records how many have run; a database
//! that records more than this build knows is refused untouched. Starting processes migrate
//! under a transaction-scoped advisory lock, so two never run the same step.

use postgres::Client;
use vantage_store::StoreError;

use crate::pg;

/// Schema migrations, in order. The row documents are `vantage_store::rows` (version 1).
const MIGRATIONS: &[&str] = &[
    // 1: the first schema, the SQLite store's four steps in one. Documents are kept as the
    // exact text written (a probe target's and a location's text are keys).
    "CREATE TABLE catalog_head (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
                                version BIGINT NOT NULL);
     INSERT INTO catalog_head (version) VALUES (0);
     CREATE TABLE accounts (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
     CREATE TABLE tokens (id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
     CREATE TABLE zones (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
     CREATE TABLE monitors (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE pools (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE load_balancers (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE webhooks (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE policies (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE location_states (target TEXT NOT NULL, location TEXT NOT NULL,
                                   doc TEXT NOT NULL, PRIMARY KEY (target, location));
     CREATE INDEX location_states_location ON location_states (location);
     CREATE TABLE health_events (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL,
                                 pool TEXT NOT NULL, doc TEXT NOT NULL);
     CREATE INDEX health_events_at ON health_events (at);
     CREATE INDEX health_events_pool ON health_events (pool, at);
     CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, policy TEXT NOT NULL,
                          policy_name TEXT NOT NULL, webhook TEXT NOT NULL, payload TEXT NOT NULL,
                          created_at BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                          next_at BIGINT NOT NULL, last_attempt BIGINT, delivered_at BIGINT,
                          failed BOOLEAN NOT NULL DEFAULT FALSE, last_error TEXT);
     CREATE INDEX outbox_due ON outbox (delivered_at, failed, next_at);
     CREATE INDEX outbox_account ON outbox (account, seq);
     CREATE INDEX outbox_pending ON outbox (webhook, delivered_at, failed);",
    // 2: a catalog commit in one statement (one round trip, atomic as any single statement):
    // moves the head and writes every row. With `expected`, only if the head is still there
    // (else SQLSTATE 40001, nothing written: another writer committed first). A row with no
    // document is a deletion; a unique column (zone name, token digest, user e-mail) comes
    // with its value.
    "CREATE FUNCTION vantage_commit(expected BIGINT, kinds TEXT[], ids TEXT[], docs TEXT[],
                                    uniq_cols TEXT[], uniq_vals TEXT[]) RETURNS BIGINT AS $$
     DECLARE
         i INTEGER;
         v BIGINT;
     BEGIN
         SELECT version INTO v FROM catalog_head FOR UPDATE;
         IF expected IS NOT NULL AND v <> expected THEN
             RAISE EXCEPTION 'the catalog changed under this write (version % is not %)', v, expected
                 USING ERRCODE = '40001';
         END IF;
         UPDATE catalog_head SET version = version + 1 RETURNING version INTO v;
         FOR i IN 1 .. COALESCE(array_length(kinds, 1), 0) LOOP
             IF docs[i] IS NULL THEN
                 EXECUTE format('DELETE FROM %I WHERE id = $1', kinds[i]) USING ids[i];
             ELSIF uniq_cols[i] IS NULL THEN
                 EXECUTE format('INSERT INTO %I (id, doc) VALUES ($1, $2)
                                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc', kinds[i])
                     USING ids[i], docs[i];
             ELSE
                 EXECUTE format('INSERT INTO %I (id, %I, doc) VALUES ($1, $2, $3)
                                 ON CONFLICT (id) DO UPDATE SET %I = excluded.%I, doc = excluded.doc',
                                kinds[i], uniq_cols[i], uniq_cols[i], uniq_cols[i])
                     USING ids[i], uniq_vals[i], docs[i];
             END IF;
         END LOOP;
         RETURN v;
     END
     $$ LANGUAGE plpgsql;",
    // 3: a notification claimed for one attempt by one process, until this time.
    "ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;",
    // 4: monitor groups.
    "CREATE TABLE monitor_groups (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
    // 5: the judge lease among controllers sharing the database: one row, its holder, how to
    // reach it, an epoch that grows with every change of holder, and when it lapses (the
    // database's clock decides, so controllers' clocks need not agree).
    "CREATE TABLE judge_lease (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
                               holder TEXT NOT NULL, address TEXT NOT NULL,
                               epoch BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
     INSERT INTO judge_lease (holder, address, epoch, expires_at) VALUES ('', '', 0, 'epoch');",
    // 6: every move of the catalog head (a command's commit, an import) is said on the
    // `vantage_catalog` channel, delivered when its transaction commits: controllers
    // listening reload at once instead of at their next look at the head, which stays the
    // truth (a notification missed while disconnected is caught up from it).
    "CREATE FUNCTION vantage_notify_catalog() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('vantage_catalog', NEW.version::text);
         RETURN NEW;
     END
     $$ LANGUAGE plpgsql;
     CREATE TRIGGER vantage_catalog_moved AFTER UPDATE ON catalog_head
         FOR EACH ROW EXECUTE FUNCTION vantage_notify_catalog();",
    // 7: the judge's published verdicts, one row per pool, each numbered by its latest
    // change: followers read what changed after the number they last saw, woken by the
    // `vantage_verdicts` channel (once per publication, when it commits).
    "CREATE SEQUENCE verdict_seq;
     CREATE TABLE pool_verdicts (pool TEXT PRIMARY KEY, seq BIGINT NOT NULL, doc TEXT NOT NULL);
     CREATE INDEX pool_verdicts_by_seq ON pool_verdicts (seq);
     CREATE FUNCTION vantage_notify_verdicts() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('vantage_verdicts', '');
         RETURN NULL;
     END
     $$ LANGUAGE plpgsql;
     CREATE TRIGGER vantage_verdicts_published AFTER INSERT OR UPDATE ON pool_verdicts
         FOR EACH STATEMENT EXECUTE FUNCTION vantage_notify_verdicts();",
    // 8: location states numbered by their latest write, so that followers read only what
    // changed since they last looked.
    "CREATE SEQUENCE state_seq;
     ALTER TABLE location_states ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('state_seq');
     CREATE INDEX location_states_by_seq ON location_states (seq);",
    // 9: secrets every controller must agree on (the affinity cookies' key), by name. Held
    // as the data directory's file would be: readable only by whoever may read the database.
    "CREATE TABLE installation_secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);",
    // 10: what else the judge publishes for its followers, one document each by name: every
    // probe location's last contact (agents talk to the judge, so only it hears from all of
    // them) and the pools' RTTs dynamic latency steers by (kept in the judge's memory).
    "CREATE TABLE judge_documents (name TEXT PRIMARY KEY, doc TEXT NOT NULL);",
];

pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// "vantage-migrate" as a lock number.
const MIGRATION_LOCK: i64 = 0x0076_6d69_6772_6174;

pub(crate) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS vantage_schema (
             only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
             version INTEGER NOT NULL)",
    )
    .map_err(pg)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM vantage_schema", &[])
        .map_err(pg)?
        .map_or(0, |r| r.get(0));
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unusable(format!(
            "the database has schema version {version}, newer than this Vantage understands \
             ({SCHEMA_VERSION}); run a newer Vantage or restore a backup"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql).map_err(pg)?;
        let done = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO vantage_schema (version) VALUES ($1)
             ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
            &[&done],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)
}
