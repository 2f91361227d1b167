//! The catalog in one SQLite file: WAL journal, versioned migrations, one transaction per
//! command.
//!
//! Objects are stored as JSON documents of the core model, one table per kind, with the
//! columns that carry a uniqueness rule (zone names, token digests, user e-mails) pulled out
//! so SQLite enforces them even against another process writing the same file.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use vantage_core::catalog::Change;
use vantage_core::health::engine::Event;
use vantage_core::health::{Location, LocationState, ProbeKey};
use vantage_core::{AccountId, Timestamp};
use vantage_store::rows::{self, RowWrite};
use vantage_store::{
    Delivery, EventFilter, Export, NewDelivery, OutboxRow, Pruned, Retention, Store, StoreError,
    PENDING_PER_DESTINATION,
};

/// Schema migrations, in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE accounts (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE zones (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
     CREATE TABLE monitors (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE pools (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE load_balancers (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE tokens (id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
     CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);",
    // 2: health — each location's latest verdict per probe target, and the event history.
    "CREATE TABLE location_states (target TEXT NOT NULL, location TEXT NOT NULL, doc TEXT NOT NULL,
                                   PRIMARY KEY (target, location));
     CREATE TABLE health_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                                 pool TEXT NOT NULL, doc TEXT NOT NULL);
     CREATE INDEX health_events_at ON health_events (at);
     CREATE INDEX health_events_pool ON health_events (pool, at);",
    // 3: notifications — webhook destinations, policies, and the outbox of deliveries.
    "CREATE TABLE webhooks (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE policies (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL,
                          policy TEXT NOT NULL, policy_name TEXT NOT NULL, webhook TEXT NOT NULL,
                          payload TEXT NOT NULL, created_at INTEGER NOT NULL,
                          attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
                          last_attempt INTEGER, delivered_at INTEGER,
                          failed INTEGER NOT NULL DEFAULT 0, last_error TEXT);
     CREATE INDEX outbox_due ON outbox (delivered_at, failed, next_at);
     CREATE INDEX outbox_account ON outbox (account, seq);",
    // 4: bounded storage — pending notifications counted per destination.
    "CREATE INDEX outbox_pending ON outbox (webhook, delivered_at, failed);",
    // 5: monitor groups.
    "CREATE TABLE monitor_groups (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
];

pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A commit survives the process being killed (WAL `synchronous=NORMAL`); a power loss may
    /// lose the last commits but never corrupts the file.
    Process,
    /// A commit survives power loss too (`synchronous=FULL`: an fsync per commit).
    Power,
}

/// Refuses an empty store file: SQLite would take it as a new store, and a fresh bootstrap
/// would silently orphan every token of the lost one.
fn refuse_empty(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => Err(StoreError::Unusable(format!(
            "the store {} is empty (0 bytes): it was truncated or never written. Restore it from \
             a backup, or delete it to start a new store (with new tokens)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Makes the store and its WAL files private (0600): they hold webhook secrets and token
/// digests. Done right after opening, before anything secret can be written.
fn restrict(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for file in [
            path.to_path_buf(),
            path.with_file_name(format!("{name}-wal")),
            path.with_file_name(format!("{name}-shm")),
        ] {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Unusable(format!(
                        "restricting {} to its owner: {e}",
                        file.display()
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let unusable = |e: rusqlite::Error| {
            StoreError::Unusable(format!("cannot open the store {}: {e}", path.display()))
        };
        refuse_empty(path)?;
        let conn = Connection::open_with_flags(path, flags).map_err(unusable)?;
        restrict(path)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(unusable)? {
            return Err(StoreError::Unusable(format!(
                "the store {} is read-only for this process; every write would fail. \
                 Fix its ownership or permissions (it must be writable by the user running Vantage)",
                path.display()
            )));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unusable)?;
        // The first real read: a file that is not SQLite fails here, before anything is written.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(unusable)?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > SCHEMA_VERSION {
            return Err(StoreError::Unusable(format!(
                "the store {} has schema version {version}, newer than this Vantage understands ({SCHEMA_VERSION}); \
                 run a newer Vantage or restore a backup",
                path.display()
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unusable)?;
        restrict(path)?;
        let sync = match durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(unusable)?;
        let mut store = Self {
            conn: Mutex::new(conn),
        };
        store
            .migrate(version)
            .map_err(|e| StoreError::Unusable(format!("migrating {}: {e}", path.display())))?;
        Ok(store)
    }

    fn migrate(&mut self, from: usize) -> Result<(), StoreError> {
        let conn = self
            .conn
            .get_mut()
            .map_err(|_| StoreError::Io("store lock poisoned".into()))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(io)?;
            tx.execute_batch(sql).map_err(io)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(io)?;
            tx.commit().map_err(io)?;
        }
        Ok(())
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Io("store lock poisoned".into()))?;
        f(&mut conn)
    }
}

fn write(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<usize, StoreError> {
    let sql = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => io(e),
    };
    // Zones, tokens and users carry a column that SQLite keeps unique across processes.
    let (kind, id, text) = match rows::encode(change)? {
        RowWrite::Delete { kind, id } => {
            return tx
                .execute(&format!("DELETE FROM {kind} WHERE id = ?1"), params![id])
                .map_err(sql)
        }
        RowWrite::Put { kind, id, text } => (kind, id, text),
    };
    let unique = match change {
        Change::PutZone(z) => Some(("name", z.name.clone())),
        Change::PutToken(t) => Some(("digest", hex_digest(&t.digest.0))),
        Change::PutUser(u) => Some(("email", u.email.clone())),
        _ => None,
    };
    match unique {
        Some((column, value)) => tx.execute(
            &format!(
                "INSERT INTO {kind} (id, {column}, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET {column} = excluded.{column}, doc = excluded.doc"
            ),
            params![id, value, text],
        ),
        None => tx.execute(
            &format!(
                "INSERT INTO {kind} (id, doc) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc"
            ),
            params![id, text],
        ),
    }
    .map_err(sql)
}

fn query_deliveries(
    conn: &Connection,
    tail: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT seq, account, policy, policy_name, webhook, payload, created_at, attempts,
                delivered_at, failed, last_error, last_attempt FROM outbox {tail}"
    );
    let mut stmt = conn.prepare(&sql).map_err(io)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                [
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ],
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<i64>>(11)?,
            ))
        })
        .map_err(io)?;
    let mut out = Vec::new();
    for row in rows {
        let (
            seq,
            [account, policy, policy_name, webhook, payload],
            at,
            attempts,
            delivered,
            failed,
            last_error,
            last_attempt,
        ) = row.map_err(io)?;
        let id = |s: &str| {
            StoreError::Io(format!(
                "outbox row {seq} holds an invalid identifier {s:?}"
            ))
        };
        out.push(Delivery {
            seq,
            item: NewDelivery {
                account: account.parse().map_err(|_| id(&account))?,
                policy: policy.parse().map_err(|_| id(&policy))?,
                policy_name,
                webhook: webhook.parse().map_err(|_| id(&webhook))?,
                payload,
                at: Timestamp::from_unix_micros(at),
            },
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            delivered_at: delivered.map(Timestamp::from_unix_micros),
            failed: failed != 0,
            last_error,
            last_attempt: last_attempt.map(Timestamp::from_unix_micros),
        });
    }
    Ok(out)
}

fn hex_digest(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Vec<Change>, StoreError> {
        self.with_conn(|conn| {
            let mut out = Vec::new();
            for table in vantage_store::KINDS {
                let mut stmt = conn
                    .prepare(&format!("SELECT id, doc FROM {table} ORDER BY id"))
                    .map_err(io)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(io)?;
                for row in rows {
                    let (id, text) = row.map_err(io)?;
                    out.push(rows::decode_object(table, &id, &text)?);
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(io)?;
            for change in changes {
                write(&tx, change)?;
            }
            tx.commit().map_err(io)
        })
    }

    fn load_health(&self) -> Result<Vec<(ProbeKey, Location, LocationState)>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT target, location, doc FROM location_states")
                .map_err(io)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                let (target, location, doc) = row.map_err(io)?;
                out.push(rows::decode_state(&target, &location, &doc)?);
            }
            Ok(out)
        })
    }

    fn record_health(
        &self,
        states: &[(ProbeKey, Location, LocationState)],
        events: &[Event],
        alerts: &[NewDelivery],
    ) -> Result<usize, StoreError> {
        if states.is_empty() && events.is_empty() && alerts.is_empty() {
            return Ok(0);
        }
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(io)?;
            for (key, location, state) in states {
                tx.execute(
                    "INSERT INTO location_states (target, location, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT(target, location) DO UPDATE SET doc = excluded.doc",
                    rows::encode_state(key, location, state)?,
                )
                .map_err(io)?;
            }
            for e in events {
                tx.execute(
                    "INSERT INTO health_events (at, pool, doc) VALUES (?1, ?2, ?3)",
                    params![
                        e.at.unix_micros(),
                        e.pool.to_string(),
                        rows::encode_event(e)?
                    ],
                )
                .map_err(io)?;
            }
            let mut left_out = 0;
            for a in alerts {
                let inserted = tx
                    .execute(
                        "INSERT INTO outbox (account, policy, policy_name, webhook, payload,
                                             created_at, next_at)
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6
                         WHERE (SELECT COUNT(*) FROM outbox WHERE webhook = ?4
                                AND delivered_at IS NULL AND failed = 0) < ?7",
                        params![
                            a.account.to_string(),
                            a.policy.to_string(),
                            a.policy_name,
                            a.webhook.to_string(),
                            a.payload,
                            a.at.unix_micros(),
                            i64::try_from(PENDING_PER_DESTINATION).unwrap_or(i64::MAX)
                        ],
                    )
                    .map_err(io)?;
                left_out += usize::from(inserted == 0);
            }
            tx.commit().map_err(io)?;
            Ok(left_out)
        })
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with_conn(|conn| {
            query_deliveries(
                conn,
                "WHERE seq IN (SELECT MIN(seq) FROM outbox
                               WHERE delivered_at IS NULL AND failed = 0 AND next_at <= ?1
                               GROUP BY webhook)
                 ORDER BY seq LIMIT ?2",
                params![now.unix_micros(), i64::try_from(limit).unwrap_or(i64::MAX)],
            )
        })
    }

    fn prune(
        &self,
        retention: &Retention,
        now: Timestamp,
        live: &dyn Fn(&ProbeKey) -> bool,
        forgotten: &[Location],
    ) -> Result<Pruned, StoreError> {
        let before = now.unix_micros().saturating_sub(retention.max_age_micros);
        let keep = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(io)?;
            let events = tx
                .execute(
                    "DELETE FROM health_events WHERE at < ?1 OR seq <= (
                         SELECT seq FROM health_events ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                    params![before, keep],
                )
                .map_err(io)?;
            // Only finished deliveries: a pending one is still owed to its receiver.
            let deliveries = tx
                .execute(
                    "DELETE FROM outbox WHERE (delivered_at IS NOT NULL OR failed = 1) AND (
                         COALESCE(last_attempt, created_at) < ?1 OR seq <= (
                             SELECT seq FROM outbox WHERE delivered_at IS NOT NULL OR failed = 1
                             ORDER BY seq DESC LIMIT 1 OFFSET ?2))",
                    params![before, keep],
                )
                .map_err(io)?;
            let mut dead: Vec<String> = Vec::new();
            {
                let mut stmt = tx
                    .prepare("SELECT DISTINCT target FROM location_states")
                    .map_err(io)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(io)?;
                for row in rows {
                    let target = row.map_err(io)?;
                    let key: ProbeKey = rows::decode_target(&target)?;
                    if !live(&key) {
                        dead.push(target);
                    }
                }
            }
            let mut states = 0;
            for target in &dead {
                states += tx
                    .execute("DELETE FROM location_states WHERE target = ?1", [target])
                    .map_err(io)?;
            }
            for location in forgotten {
                states += tx
                    .execute(
                        "DELETE FROM location_states WHERE location = ?1",
                        [rows::encode_location(location)?],
                    )
                    .map_err(io)?;
            }
            tx.commit().map_err(io)?;
            Ok(Pruned {
                events,
                deliveries,
                states,
            })
        })
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let pages: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(io)?;
            let size: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(io)?;
            Ok(u64::try_from(pages.saturating_mul(size)).unwrap_or(0))
        })
    }

    fn delivery_attempted(
        &self,
        seq: i64,
        at: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            match outcome {
                Ok(()) => conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt = ?2, delivered_at = ?2,
                                       last_error = NULL WHERE seq = ?1",
                    params![seq, at.unix_micros()],
                ),
                Err((error, next)) => conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt = ?2, last_error = ?3,
                                       next_at = COALESCE(?4, next_at), failed = ?5 WHERE seq = ?1",
                    params![
                        seq,
                        at.unix_micros(),
                        error,
                        next.map(|t| t.unix_micros()),
                        i64::from(next.is_none())
                    ],
                ),
            }
            .map(|_| ())
            .map_err(io)
        })
    }

    fn deliveries(&self, account: AccountId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with_conn(|conn| {
            query_deliveries(
                conn,
                "WHERE account = ?1 ORDER BY seq DESC LIMIT ?2",
                params![
                    account.to_string(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
            )
        })
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<(i64, Event)>, StoreError> {
        self.with_conn(|conn| {
            let mut sql =
                String::from("SELECT seq, doc FROM health_events WHERE at >= ?1 AND at <= ?2");
            if let Some(pools) = &filter.pools {
                let list: Vec<String> = pools.iter().map(|p| format!("'{p}'")).collect();
                sql.push_str(&format!(" AND pool IN ({})", list.join(",")));
            }
            sql.push_str(" ORDER BY seq DESC LIMIT ?3");
            let since = filter.since.map_or(i64::MIN, |t| t.unix_micros());
            let until = filter.until.map_or(i64::MAX, |t| t.unix_micros());
            let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare(&sql).map_err(io)?;
            let rows = stmt
                .query_map(params![since, until, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, text) = row.map_err(io)?;
                out.push((seq, rows::decode_event(seq, &text)?));
            }
            out.reverse();
            Ok(out)
        })
    }

    fn export(&self) -> Result<Export, StoreError> {
        let objects = self.load()?;
        let states = self.load_health()?;
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT seq, doc FROM health_events ORDER BY seq")
                .map_err(io)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(io)?;
            let mut events = Vec::new();
            for row in rows {
                let (seq, text) = row.map_err(io)?;
                events.push((seq, rows::decode_event(seq, &text)?));
            }
            let deliveries = query_deliveries(conn, "ORDER BY seq", [])?;
            let mut stmt = conn
                .prepare("SELECT next_at FROM outbox ORDER BY seq")
                .map_err(io)?;
            let next: Vec<i64> = stmt
                .query_map([], |r| r.get(0))
                .map_err(io)?
                .collect::<Result<_, _>>()
                .map_err(io)?;
            let outbox = deliveries
                .into_iter()
                .zip(next)
                .map(|(delivery, next_at)| OutboxRow {
                    delivery,
                    next_at: Timestamp::from_unix_micros(next_at),
                })
                .collect();
            Ok(Export {
                objects,
                states,
                events,
                outbox,
            })
        })
    }

    fn import(&self, data: &Export) -> Result<(), StoreError> {
        let writes = data
            .objects
            .iter()
            .map(|c| Ok((rows::encode(c)?, c)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(io)?;
            for table in vantage_store::tables() {
                let n: i64 = tx
                    .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                    .map_err(io)?;
                if n > 0 {
                    return Err(StoreError::Conflict(format!(
                        "the target store is not empty ({table} holds {n} rows)"
                    )));
                }
            }
            for (_, change) in &writes {
                write(&tx, change)?;
            }
            for (key, location, state) in &data.states {
                tx.execute(
                    "INSERT INTO location_states (target, location, doc) VALUES (?1, ?2, ?3)",
                    rows::encode_state(key, location, state)?,
                )
                .map_err(io)?;
            }
            for (seq, e) in &data.events {
                tx.execute(
                    "INSERT INTO health_events (seq, at, pool, doc) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        seq,
                        e.at.unix_micros(),
                        e.pool.to_string(),
                        rows::encode_event(e)?
                    ],
                )
                .map_err(io)?;
            }
            for r in &data.outbox {
                let d = &r.delivery;
                tx.execute(
                    "INSERT INTO outbox (seq, account, policy, policy_name, webhook, payload,
                                         created_at, attempts, next_at, last_attempt, delivered_at,
                                         failed, last_error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        d.seq,
                        d.item.account.to_string(),
                        d.item.policy.to_string(),
                        d.item.policy_name,
                        d.item.webhook.to_string(),
                        d.item.payload,
                        d.item.at.unix_micros(),
                        i64::from(d.attempts),
                        r.next_at.unix_micros(),
                        d.last_attempt.map(Timestamp::unix_micros),
                        d.delivered_at.map(Timestamp::unix_micros),
                        i64::from(d.failed),
                        d.last_error
                    ],
                )
                .map_err(io)?;
            }
            tx.commit().map_err(io)
        })
    }

    fn counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        self.with_conn(|conn| {
            vantage_store::tables()
                .map(|table| {
                    let n: i64 = conn
                        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                        .map_err(io)?;
                    Ok((table, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }

    fn external_version(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let v: i64 = conn
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .map_err(io)?;
            Ok(v as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_store::contract::account;

    #[test]
    fn newer_schema_and_garbage_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        drop(SqliteStore::open(&path, Durability::Process).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStore::open(&path, Durability::Process).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");

        let junk = dir.path().join("junk.db");
        std::fs::write(
            &junk,
            b"this is not a database, it is a text file with enough bytes to look like a header",
        )
        .unwrap();
        let before = std::fs::read(&junk).unwrap();
        assert!(matches!(
            SqliteStore::open(&junk, Durability::Process),
            Err(StoreError::Unusable(_))
        ));
        assert_eq!(std::fs::read(&junk).unwrap(), before);
    }

    #[test]
    fn an_empty_file_is_refused_and_a_store_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let err = SqliteStore::open(&empty, Durability::Process).unwrap_err();
        assert!(err.to_string().contains("empty (0 bytes)"), "{err}");
        assert_eq!(
            std::fs::metadata(&empty).unwrap().len(),
            0,
            "left untouched"
        );

        let path = dir.path().join("v.db");
        let s = SqliteStore::open(&path, Durability::Process).unwrap();
        s.commit(&[Change::PutAccount(account(1))]).unwrap();
        for file in ["v.db", "v.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        drop(s);
        // A store made readable by others (by a restore, say) is made private again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(SqliteStore::open(&path, Durability::Process).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    use vantage_store::contract;

    fn open(path: &Path) -> SqliteStore {
        SqliteStore::open(path, Durability::Process).unwrap()
    }

    #[test]
    fn commits_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        contract::commits_survive_reopen(&open(&path), &|| Box::new(open(&path)));
    }

    #[test]
    fn a_failed_commit_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        contract::a_failed_commit_writes_nothing(&open(&dir.path().join("v.db")));
    }

    #[test]
    fn storage_is_bounded_and_one_destination_cannot_hide_another() {
        let dir = tempfile::tempdir().unwrap();
        contract::storage_is_bounded_and_one_destination_cannot_hide_another(&open(
            &dir.path().join("v.db"),
        ));
    }

    #[test]
    fn failed_deliveries_wait_and_give_up() {
        let dir = tempfile::tempdir().unwrap();
        contract::failed_deliveries_wait_and_give_up(&open(&dir.path().join("v.db")));
    }

    #[test]
    fn reports_its_size() {
        let dir = tempfile::tempdir().unwrap();
        contract::reports_its_size(&open(&dir.path().join("v.db")));
    }

    #[test]
    fn export_and_import_carry_everything() {
        let dir = tempfile::tempdir().unwrap();
        contract::export_and_import_carry_everything(
            &open(&dir.path().join("a.db")),
            &open(&dir.path().join("b.db")),
        );
    }

    #[test]
    fn external_version_sees_other_connections_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        contract::external_version_sees_other_connections_only(&open(&path), &open(&path));
    }
}
