//! The catalog on a PostgreSQL server: the same row documents and guarantees as the SQLite
//! store (versioned migrations, one transaction per command, nothing half-written), for
//! installations that keep their state on a database their operators already run and make
//! highly available (Patroni, a managed service, streaming replication).
//!
//! One connection, owned by a thread of its own: the `Store` trait is synchronous and its
//! callers are blocking threads, while the `postgres` client drives its own small runtime,
//! which must never run inside one of Tokio's. Jobs go to that thread and answers come back.
//! A connection that breaks (the server restarted, failed over) is dropped and made again on
//! the next job; the job that saw it break fails with `StoreError::Io`, changing nothing.
#![forbid(unsafe_code)]

mod migrations;
pub mod testing;

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;
use vantage_core::catalog::Change;
use vantage_core::health::engine::{Event, LocationContact};
use vantage_core::health::{Decided, Location, LocationState, ProbeKey};
use vantage_core::routing::PoolRtt;
use vantage_core::{AccountId, PoolId, Timestamp};
use vantage_store::rows::{self, RowWrite};
use vantage_store::{
    Delivery, EventFilter, Export, External, Lease, NewDelivery, OutboxRow, Pruned, Retention,
    Store, StoreError, PENDING_PER_DESTINATION,
};

pub use migrations::SCHEMA_VERSION;

/// The advisory lock every controller holds, shared, for as long as it runs on a database, and
/// `vantage store copy` takes exclusively (so it never copies from or into a database a
/// controller is using). The number is arbitrary and fixed: "vantage" in ASCII.
const CONTROLLER_LOCK: i64 = 0x0076_616e_7461_6765;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    jobs: mpsc::Sender<Job>,
    /// Commits this store made (each moves the catalog head by one), so `external_version`
    /// moves for other writers' commits only.
    own_commits: AtomicU64,
    /// Where it connects, without the password (for messages).
    shown: String,
    /// How to connect again (the listener for change notifications has its own connection);
    /// boxed, being large and rarely used.
    connect: Box<(Config, MakeRustlsConnect)>,
    /// Set when the store is dropped: its listener stops.
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The server process of the store's connection ([`Connection::own_pid`]).
    own_pid: std::sync::Arc<AtomicI32>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.shown)
            .finish_non_exhaustive()
    }
}

/// The connection thread's state.
struct Connection {
    config: Config,
    /// TLS as the URL's `sslmode` asks (`prefer`, the default, uses it when the server offers
    /// it; `require` insists), verifying the server's certificate and name against the Mozilla
    /// roots and any `ca_file` given.
    tls: MakeRustlsConnect,
    client: Option<Client>,
    /// How this process holds [`CONTROLLER_LOCK`], if it does (taken again after a reconnect).
    controller: Option<LockMode>,
    /// The judge lease as this process last saw it: health is written only under it.
    fence: Fence,
    /// Statements prepared on this connection (gone with it).
    prepared: std::collections::HashMap<&'static str, postgres::Statement>,
    /// The server process of this connection (0 while there is none): its own notifications
    /// are not news to this store.
    own_pid: std::sync::Arc<AtomicI32>,
}

impl Connection {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            self.own_pid.store(0, Ordering::SeqCst);
            let mut client = self
                .config
                .connect(self.tls.clone())
                .map_err(|e| StoreError::Io(format!("connecting to PostgreSQL: {}", chain(&e))))?;
            if let Some(mode) = self.controller {
                if !try_lock(&mut client, mode)? {
                    return Err(StoreError::Io(
                        "reconnected to PostgreSQL, but the database is being copied; \
                         this controller does not write meanwhile"
                            .into(),
                    ));
                }
            }
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .map_err(pg)?
                .get(0);
            self.own_pid.store(pid, Ordering::SeqCst);
            self.client = Some(client);
            self.prepared.clear();
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Io("no connection".into()))
    }

    /// The client and `sql` prepared on it (once per connection: a prepared statement runs
    /// in one round trip).
    fn prepared(
        &mut self,
        sql: &'static str,
    ) -> Result<(&mut Client, postgres::Statement), StoreError> {
        self.client()?;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Io("no connection".into()))?;
        let statement = match self.prepared.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql).map_err(pg)?;
                self.prepared.insert(sql, s.clone());
                s
            }
        };
        Ok((client, statement))
    }
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// A health write refused because this process does not hold the judge lease.
fn deposed() -> StoreError {
    StoreError::Conflict(
        "this controller does not hold the judge lease: another one judges health now".into(),
    )
}

/// Whether this process may write health.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fence {
    /// The lease was never asked for (the CLI, tests of the store alone): no check.
    Unasked,
    /// Held under this holder and epoch: checked inside every health write.
    Holding { holder: String, epoch: i64 },
    /// Another controller holds it: health writes are refused.
    Deposed,
}

/// Controllers share the database; a copy has it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockMode {
    Shared,
    Exclusive,
}

fn try_lock(client: &mut Client, mode: LockMode) -> Result<bool, StoreError> {
    let sql = match mode {
        LockMode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
        LockMode::Exclusive => "SELECT pg_try_advisory_lock($1)",
    };
    client
        .query_one(sql, &[&CONTROLLER_LOCK])
        .map(|r| r.get(0))
        .map_err(pg)
}

/// An error and its causes, as one line (a TLS failure's reason is in its source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A PostgreSQL error as the store reports it: a broken uniqueness rule is a conflict with a
/// concurrent writer; anything else failed and changed nothing.
fn pg(e: postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict(e.to_string());
    }
    if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) {
        let detail = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
        return StoreError::Conflict(detail);
    }
    match e.as_db_error() {
        Some(db) => StoreError::Io(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Io(format!("PostgreSQL: {}", chain(&e))),
    }
}

/// `postgres://user:secret@host/db` without the secret.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".into(),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// brings its schema up to date. A database with a newer schema than this Vantage
    /// understands is refused, untouched.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, None)
    }

    /// [`PostgresStore::open`], trusting the CA certificates in the PEM file `ca_file` (a
    /// private PKI, or a managed service's CA) besides the Mozilla roots.
    pub fn open_with(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self, StoreError> {
        let shown = without_password(url);
        let mut config: Config = url.parse().map_err(|e| {
            StoreError::Unusable(format!(
                "the store URL {shown} is not a PostgreSQL URL: {e}"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("vantage");
        let tls = tls_config(ca_file).map_err(|e| StoreError::Unusable(format!("{shown}: {e}")))?;
        let mut connection = Connection {
            config: config.clone(),
            tls: tls.clone(),
            client: None,
            controller: None,
            fence: Fence::Unasked,
            prepared: std::collections::HashMap::new(),
            own_pid: std::sync::Arc::default(),
        };
        let own_pid = std::sync::Arc::clone(&connection.own_pid);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("vantage-postgres".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut connection);
                }
            })
            .map_err(|e| StoreError::Unusable(format!("starting the store's thread: {e}")))?;
        let store = Self {
            jobs,
            own_commits: AtomicU64::new(0),
            shown,
            connect: Box::new((config, tls)),
            closed: std::sync::Arc::default(),
            own_pid,
        };
        // Connecting and migrating happen on the store's thread too, so opening is safe from
        // any thread, async or not.
        store
            .call(|conn| migrations::migrate(conn.client()?))
            .map_err(|e| StoreError::Unusable(format!("{}: {e}", store.shown)))?;
        Ok(store)
    }

    /// Claims the database for this process alone (`vantage store copy`), for as long as it
    /// runs: refused, naming the reason, while any `vantage serve` uses it. (The CLI does not
    /// claim: it commits beside running controllers, as with SQLite.)
    pub fn claim_controller(&self) -> Result<(), StoreError> {
        self.lock(LockMode::Exclusive)
    }

    /// Joins the controllers serving this database (`vantage serve`): any number may, taking
    /// turns judging health by the lease; a copy is refused meanwhile.
    pub fn join_controllers(&self) -> Result<(), StoreError> {
        self.lock(LockMode::Shared)
    }

    fn lock(&self, mode: LockMode) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        self.call(move |conn| {
            let client = conn.client()?;
            if !try_lock(client, mode)? {
                return Err(StoreError::Unusable(match mode {
                    LockMode::Exclusive => format!("a `vantage serve` is running on {shown}"),
                    LockMode::Shared => format!("{shown} is being copied; start when that ends"),
                }));
            }
            conn.controller = Some(mode);
            Ok(())
        })
    }

    /// Commits in one round trip: the catalog head moves, every row is written; with
    /// `expected`, only if the head is still there.
    fn commit_expecting(
        &self,
        changes: &[Change],
        expected: Option<i64>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let (mut kinds, mut ids, mut docs, mut uniq_cols, mut uniq_vals) =
            (vec![], vec![], vec![], vec![], vec![]);
        for change in changes {
            let (kind, id, doc) = match rows::encode(change)? {
                RowWrite::Put { kind, id, text } => (kind, id, Some(text)),
                RowWrite::Delete { kind, id } => (kind, id, None),
            };
            let (column, value) = unique_column(change).unzip();
            kinds.push(kind.to_owned());
            ids.push(id);
            docs.push(doc);
            uniq_cols.push(column.map(str::to_owned));
            uniq_vals.push(value);
        }
        self.call(move |conn| {
            let (client, commit) =
                conn.prepared("SELECT vantage_commit($1, $2, $3, $4, $5, $6)")?;
            client
                .query_one(
                    &commit,
                    &[&expected, &kinds, &ids, &docs, &uniq_cols, &uniq_vals],
                )
                .map_err(pg)?;
            Ok(())
        })?;
        self.own_commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the connection to the server is encrypted (TLS).
    pub fn tls_in_use(&self) -> Result<bool, StoreError> {
        self.call(|conn| {
            conn.client()?
                .query_one(
                    "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                )
                .map(|r| r.get(0))
                .map_err(pg)
        })
    }

    /// Runs `f` on the connection thread. A job that finds the connection broken drops it, so
    /// the next job connects again.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let out = f(conn);
            if conn.client.as_ref().is_some_and(Client::is_closed) {
                conn.client = None;
            }
            let _ = tx.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Io("the store's connection thread stopped".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Io("the store's connection thread stopped".into()))?
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.call(move |conn| {
            let mut tx = conn.client()?.transaction().map_err(pg)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(pg)?;
            Ok(out)
        })
    }
}

fn micros(t: Timestamp) -> i64 {
    t.unix_micros()
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Zones, tokens and users carry a column the database keeps unique for every writer.
fn unique_column(change: &Change) -> Option<(&'static str, String)> {
    match change {
        Change::PutZone(z) => Some(("name", z.name.clone())),
        Change::PutToken(t) => Some(("digest", hex::encode(t.digest.0))),
        Change::PutUser(u) => Some(("email", u.email.clone())),
        _ => None,
    }
}

fn write(tx: &mut Transaction<'_>, row: RowWrite, change: &Change) -> Result<(), StoreError> {
    let (kind, id, text) = match row {
        RowWrite::Delete { kind, id } => {
            tx.execute(&format!("DELETE FROM {kind} WHERE id = $1"), &[&id])
                .map_err(pg)?;
            return Ok(());
        }
        RowWrite::Put { kind, id, text } => (kind, id, text),
    };
    match unique_column(change) {
        Some((column, value)) => tx.execute(
            &format!(
                "INSERT INTO {kind} (id, {column}, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET {column} = excluded.{column}, doc = excluded.doc"
            ),
            &[&id, &value, &text],
        ),
        None => tx.execute(
            &format!(
                "INSERT INTO {kind} (id, doc) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
            ),
            &[&id, &text],
        ),
    }
    .map(|_| ())
    .map_err(pg)
}

/// A `SELECT seq, doc FROM health_events` row.
fn event(row: &postgres::Row) -> Result<(i64, Event), StoreError> {
    let (seq, text): (i64, String) = (row.get(0), row.get(1));
    Ok((seq, rows::decode_event(seq, &text)?))
}

const DELIVERY_COLUMNS: &str = "seq, account, policy, policy_name, webhook, payload, created_at,
    attempts, delivered_at, failed, last_error, last_attempt";

fn delivery(row: &postgres::Row) -> Result<Delivery, StoreError> {
    let seq: i64 = row.get(0);
    fn id<T: std::str::FromStr>(seq: i64, text: String) -> Result<T, StoreError> {
        text.parse().map_err(|_| {
            StoreError::Io(format!(
                "outbox row {seq} holds an invalid identifier {text:?}"
            ))
        })
    }
    Ok(Delivery {
        seq,
        item: NewDelivery {
            account: id(seq, row.get(1))?,
            policy: id(seq, row.get(2))?,
            policy_name: row.get(3),
            webhook: id(seq, row.get(4))?,
            payload: row.get(5),
            at: Timestamp::from_unix_micros(row.get(6)),
        },
        attempts: u32::try_from(row.get::<_, i32>(7)).unwrap_or(0),
        delivered_at: row
            .get::<_, Option<i64>>(8)
            .map(Timestamp::from_unix_micros),
        failed: row.get(9),
        last_error: row.get(10),
        last_attempt: row
            .get::<_, Option<i64>>(11)
            .map(Timestamp::from_unix_micros),
    })
}

/// Rows by key, the last of each key kept, in the order of their last appearance: one
/// statement may not write a row twice (`ON CONFLICT DO UPDATE`).
fn latest_per_key<K: std::hash::Hash + Eq + Clone, V>(rows: Vec<(K, V)>) -> Vec<(K, V)> {
    let last: std::collections::HashMap<K, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    rows.into_iter()
        .enumerate()
        .filter(|(i, (k, _))| last[k] == *i)
        .map(|(_, row)| row)
        .collect()
}

/// Three columns of rows, as arrays for `unnest`: many rows in one statement.
struct Columns<A, B, C>(Vec<A>, Vec<B>, Vec<C>);

impl<A, B, C> Columns<A, B, C> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<A, B, C> FromIterator<(A, B, C)> for Columns<A, B, C> {
    fn from_iter<I: IntoIterator<Item = (A, B, C)>>(rows: I) -> Self {
        let mut columns = Columns(Vec::new(), Vec::new(), Vec::new());
        for (a, b, c) in rows {
            columns.0.push(a);
            columns.1.push(b);
            columns.2.push(c);
        }
        columns
    }
}

impl Store for PostgresStore {
    fn on_external_change(&self, wake: Box<dyn Fn(External) + Send + Sync>) {
        let (config, tls) = (*self.connect).clone();
        let closed = std::sync::Arc::clone(&self.closed);
        let own_pid = std::sync::Arc::clone(&self.own_pid);
        // A connection of its own, LISTENing; remade a second after it breaks. Every
        // (re)connection wakes the caller once, for what was committed while not listening.
        let listen = move || {
            while !closed.load(Ordering::Acquire) {
                if let Ok(mut client) = config.connect(tls.clone()) {
                    if client
                        .batch_execute("LISTEN vantage_catalog; LISTEN vantage_verdicts")
                        .is_ok()
                    {
                        wake(External::Catalog);
                        wake(External::Verdicts);
                        while !closed.load(Ordering::Acquire) {
                            let next = client
                                .notifications()
                                .timeout_iter(Duration::from_secs(1))
                                .next();
                            match next {
                                Ok(Some(n)) if n.channel() == "vantage_verdicts" => {
                                    wake(External::Verdicts);
                                }
                                // This store's own commit: it knows, and a look at the head
                                // would queue behind its next write for nothing.
                                Ok(Some(n)) if n.process_id() == own_pid.load(Ordering::SeqCst) => {
                                }
                                Ok(Some(_)) => wake(External::Catalog),
                                Ok(None) if !client.is_closed() => {}
                                _ => break,
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        };
        let _ = std::thread::Builder::new()
            .name("vantage-postgres-listen".into())
            .spawn(listen);
    }

    fn load(&self) -> Result<Vec<Change>, StoreError> {
        self.transaction(|tx| {
            let mut out = Vec::new();
            for kind in vantage_store::KINDS {
                for row in tx
                    .query(&format!("SELECT id, doc FROM {kind} ORDER BY id"), &[])
                    .map_err(pg)?
                {
                    let (id, text): (String, String) = (row.get(0), row.get(1));
                    out.push(rows::decode_object(kind, &id, &text)?);
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.commit_expecting(changes, None)
    }

    fn commit_at(&self, changes: &[Change], seen: u64) -> Result<(), StoreError> {
        // `seen` counts other writers' commits; the head counts this store's too.
        let own = self.own_commits.load(Ordering::SeqCst);
        let expected = i64::try_from(seen.wrapping_add(own)).unwrap_or(i64::MAX);
        self.commit_expecting(changes, Some(expected))
    }

    fn fences_commits(&self) -> bool {
        true
    }

    fn external_version(&self) -> Result<u64, StoreError> {
        let head: i64 = self.call(|conn| {
            conn.client()?
                .query_one("SELECT version FROM catalog_head", &[])
                .map(|r| r.get(0))
                .map_err(pg)
        })?;
        Ok(u64::try_from(head)
            .unwrap_or(0)
            .wrapping_sub(self.own_commits.load(Ordering::SeqCst)))
    }

    fn load_health(&self) -> Result<Vec<(ProbeKey, Location, LocationState)>, StoreError> {
        self.call(|conn| {
            let mut out = Vec::new();
            for row in conn
                .client()?
                .query("SELECT target, location, doc FROM location_states", &[])
                .map_err(pg)?
            {
                let (target, location, doc): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                out.push(rows::decode_state(&target, &location, &doc)?);
            }
            Ok(out)
        })
    }

    fn states_since(&self, seq: i64) -> Result<(i64, Vec<vantage_store::StoredState>), StoreError> {
        self.call(move |conn| {
            let mut next = seq;
            let mut out = Vec::new();
            for row in conn
                .client()?
                .query(
                    "SELECT target, location, doc, seq FROM location_states WHERE seq > $1
                     ORDER BY seq",
                    &[&seq],
                )
                .map_err(pg)?
            {
                let (target, location, doc, at): (String, String, String, i64) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                out.push(rows::decode_state(&target, &location, &doc)?);
                next = next.max(at);
            }
            Ok((next, out))
        })
    }

    fn judge_lease(
        &self,
        holder: &str,
        address: &str,
        lease_micros: i64,
    ) -> Result<Lease, StoreError> {
        let (holder, address) = (holder.to_owned(), address.to_owned());
        self.call(move |conn| {
            // Taken when free or lapsed, renewed when ours; the epoch grows whenever the
            // holder changes or the lease lapsed in between (so a fence from before a lapse
            // never matches again).
            let taken = conn
                .client()?
                .query_opt(
                    "UPDATE judge_lease SET
                         epoch = CASE WHEN holder = $1 AND expires_at > clock_timestamp()
                                      THEN epoch ELSE epoch + 1 END,
                         holder = $1, address = $2,
                         expires_at = clock_timestamp() + $3::bigint * interval '1 microsecond'
                     WHERE holder = $1 OR expires_at <= clock_timestamp()
                     RETURNING epoch",
                    &[&holder, &address, &lease_micros],
                )
                .map_err(pg)?;
            if let Some(row) = taken {
                let epoch: i64 = row.get(0);
                conn.fence = Fence::Holding {
                    holder: holder.clone(),
                    epoch,
                };
                return Ok(Lease::Held { epoch });
            }
            conn.fence = Fence::Deposed;
            let row = conn
                .client()?
                .query_one("SELECT holder, address FROM judge_lease", &[])
                .map_err(pg)?;
            Ok(Lease::Other {
                holder: row.get(0),
                address: row.get(1),
            })
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
        let states = latest_per_key(
            states
                .iter()
                .map(|(k, l, s)| rows::encode_state(k, l, s).map(|(t, l, d)| ((t, l), d)))
                .collect::<Result<Vec<_>, StoreError>>()?,
        );
        let states: Columns<_, _, _> = states.into_iter().map(|((t, l), d)| (t, l, d)).collect();
        let events: Columns<_, _, _> = events
            .iter()
            .map(|e| Ok((micros(e.at), e.pool.to_string(), rows::encode_event(e)?)))
            .collect::<Result<_, StoreError>>()?;
        let alerts = alerts.to_vec();
        self.call(move |conn| {
            let fence = conn.fence.clone();
            let mut tx = conn.client()?.transaction().map_err(pg)?;
            fenced(&mut tx, &fence)?;
            // One statement each, whatever the number of rows: a round trip per row made
            // ingestion cost the judge's connection most of its time.
            if !states.is_empty() {
                tx.execute(
                    "INSERT INTO location_states (target, location, doc)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                     ON CONFLICT (target, location)
                     DO UPDATE SET doc = excluded.doc, seq = nextval('state_seq')",
                    &[&states.0, &states.1, &states.2],
                )
                .map_err(pg)?;
            }
            if !events.is_empty() {
                // Rows are numbered in the order given (unnest keeps it).
                tx.execute(
                    "INSERT INTO health_events (at, pool, doc)
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
                    &[&events.0, &events.1, &events.2],
                )
                .map_err(pg)?;
            }
            let mut left_out = 0;
            for a in &alerts {
                let inserted = tx
                    .execute(
                        "INSERT INTO outbox (account, policy, policy_name, webhook, payload,
                                             created_at, next_at)
                         SELECT $1, $2, $3, $4, $5, $6, $6
                         WHERE (SELECT COUNT(*) FROM outbox WHERE webhook = $4
                                AND delivered_at IS NULL AND NOT failed) < $7",
                        &[
                            &a.account.to_string(),
                            &a.policy.to_string(),
                            &a.policy_name,
                            &a.webhook.to_string(),
                            &a.payload,
                            &micros(a.at),
                            &limit(PENDING_PER_DESTINATION),
                        ],
                    )
                    .map_err(pg)?;
                left_out += usize::from(inserted == 0);
            }
            tx.commit().map_err(pg)?;
            Ok(left_out)
        })
    }

    fn publish_verdicts(&self, changed: &[Decided], removed: &[PoolId]) -> Result<(), StoreError> {
        if changed.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let changed = latest_per_key(
            changed
                .iter()
                .map(|d| Ok((d.pool.to_string(), rows::encode_decided(d)?)))
                .collect::<Result<Vec<_>, StoreError>>()?,
        );
        let changed: (Vec<String>, Vec<String>) = changed.into_iter().unzip();
        let removed: Vec<String> = removed.iter().map(ToString::to_string).collect();
        self.call(move |conn| {
            let fence = conn.fence.clone();
            let mut tx = conn.client()?.transaction().map_err(pg)?;
            fenced(&mut tx, &fence)?;
            if !changed.0.is_empty() {
                tx.execute(
                    "INSERT INTO pool_verdicts (pool, seq, doc)
                     SELECT p, nextval('verdict_seq'), d FROM unnest($1::text[], $2::text[]) AS t(p, d)
                     ON CONFLICT (pool) DO UPDATE SET seq = excluded.seq, doc = excluded.doc",
                    &[&changed.0, &changed.1],
                )
                .map_err(pg)?;
            }
            if !removed.is_empty() {
                tx.execute(
                    "DELETE FROM pool_verdicts WHERE pool = ANY($1)",
                    &[&removed],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)
        })
    }

    fn verdicts_since(&self, seq: i64) -> Result<(i64, Vec<Decided>), StoreError> {
        self.call(move |conn| {
            let mut next = seq;
            let mut out = Vec::new();
            for row in conn
                .client()?
                .query(
                    "SELECT pool, seq, doc FROM pool_verdicts WHERE seq > $1 ORDER BY seq",
                    &[&seq],
                )
                .map_err(pg)?
            {
                let (pool, at, doc): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
                out.push(rows::decode_decided(&pool, &doc)?);
                next = next.max(at);
            }
            Ok((next, out))
        })
    }

    fn due_deliveries(&self, now: Timestamp, max: usize) -> Result<Vec<Delivery>, StoreError> {
        self.call(move |conn| {
            conn.client()?
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM outbox
                         WHERE seq IN (SELECT MIN(seq) FROM outbox
                                       WHERE delivered_at IS NULL AND NOT failed AND next_at <= $1
                                       GROUP BY webhook)
                           AND (claimed_until IS NULL OR claimed_until <= $1)
                         ORDER BY seq LIMIT $2"
                    ),
                    &[&micros(now), &limit(max)],
                )
                .map_err(pg)?
                .iter()
                .map(delivery)
                .collect()
        })
    }

    fn claim_delivery(
        &self,
        seq: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.call(move |conn| {
            let claimed = conn
                .client()?
                .execute(
                    "UPDATE outbox SET claimed_until = $3
                     WHERE seq = $1 AND delivered_at IS NULL AND NOT failed
                       AND (claimed_until IS NULL OR claimed_until <= $2)",
                    &[&seq, &micros(now), &micros(until)],
                )
                .map_err(pg)?;
            Ok(claimed == 1)
        })
    }

    fn delivery_attempted(
        &self,
        seq: i64,
        at: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError> {
        self.call(move |conn| {
            let client = conn.client()?;
            match outcome {
                Ok(()) => client.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt = $2,
                                       delivered_at = $2, last_error = NULL, claimed_until = NULL
                     WHERE seq = $1",
                    &[&seq, &micros(at)],
                ),
                Err((error, next)) => client.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt = $2, last_error = $3,
                                       next_at = COALESCE($4, next_at), failed = $5,
                                       claimed_until = NULL WHERE seq = $1",
                    &[
                        &seq,
                        &micros(at),
                        &error,
                        &next.map(micros),
                        &next.is_none(),
                    ],
                ),
            }
            .map(|_| ())
            .map_err(pg)
        })
    }

    fn deliveries(&self, account: AccountId, max: usize) -> Result<Vec<Delivery>, StoreError> {
        self.call(move |conn| {
            conn.client()?
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE account = $1
                         ORDER BY seq DESC LIMIT $2"
                    ),
                    &[&account.to_string(), &limit(max)],
                )
                .map_err(pg)?
                .iter()
                .map(delivery)
                .collect()
        })
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<(i64, Event)>, StoreError> {
        let since = filter.since.map_or(i64::MIN, micros);
        let until = filter.until.map_or(i64::MAX, micros);
        let pools: Option<Vec<String>> = filter
            .pools
            .as_ref()
            .map(|p| p.iter().map(ToString::to_string).collect());
        let max = limit(filter.limit);
        self.call(move |conn| {
            let mut out = conn
                .client()?
                .query(
                    "SELECT seq, doc FROM health_events
                     WHERE at >= $1 AND at <= $2 AND ($3::text[] IS NULL OR pool = ANY($3))
                     ORDER BY seq DESC LIMIT $4",
                    &[&since, &until, &pools, &max],
                )
                .map_err(pg)?
                .iter()
                .map(event)
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.reverse();
            Ok(out)
        })
    }

    fn prune(
        &self,
        retention: &Retention,
        now: Timestamp,
        live: &dyn Fn(&ProbeKey) -> bool,
        forgotten: &[Location],
    ) -> Result<Pruned, StoreError> {
        // Which targets are dead is the caller's to say, on the caller's thread.
        let targets: Vec<String> = self.call(|conn| {
            Ok(conn
                .client()?
                .query("SELECT DISTINCT target FROM location_states", &[])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        let mut dead = Vec::new();
        for target in targets {
            if !live(&rows::decode_target(&target)?) {
                dead.push(target);
            }
        }
        let forgotten = forgotten
            .iter()
            .map(rows::encode_location)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let before = now.unix_micros().saturating_sub(retention.max_age_micros);
        let keep = limit(retention.max_rows);
        self.transaction(move |tx| {
            let events = tx
                .execute(
                    "DELETE FROM health_events WHERE at < $1 OR seq <= (
                         SELECT seq FROM health_events ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                    &[&before, &keep],
                )
                .map_err(pg)?;
            // Only finished deliveries: a pending one is still owed to its receiver.
            let deliveries = tx
                .execute(
                    "DELETE FROM outbox WHERE (delivered_at IS NOT NULL OR failed) AND (
                         COALESCE(last_attempt, created_at) < $1 OR seq <= (
                             SELECT seq FROM outbox WHERE delivered_at IS NOT NULL OR failed
                             ORDER BY seq DESC LIMIT 1 OFFSET $2))",
                    &[&before, &keep],
                )
                .map_err(pg)?;
            let states = tx
                .execute(
                    "DELETE FROM location_states WHERE target = ANY($1) OR location = ANY($2)",
                    &[&dead, &forgotten],
                )
                .map_err(pg)?;
            let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Pruned {
                events: count(events),
                deliveries: count(deliveries),
                states: count(states),
            })
        })
    }

    fn export(&self) -> Result<Export, StoreError> {
        let objects = self.load()?;
        let states = self.load_health()?;
        let (events, outbox) = self.transaction(|tx| {
            let events = tx
                .query("SELECT seq, doc FROM health_events ORDER BY seq", &[])
                .map_err(pg)?
                .iter()
                .map(event)
                .collect::<Result<Vec<_>, StoreError>>()?;
            let outbox = tx
                .query(
                    &format!("SELECT {DELIVERY_COLUMNS}, next_at FROM outbox ORDER BY seq"),
                    &[],
                )
                .map_err(pg)?
                .iter()
                .map(|row| {
                    Ok(OutboxRow {
                        delivery: delivery(row)?,
                        next_at: Timestamp::from_unix_micros(row.get(12)),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok((events, outbox))
        })?;
        Ok(Export {
            objects,
            states,
            events,
            outbox,
        })
    }

    fn import(&self, data: &Export) -> Result<(), StoreError> {
        let writes = data
            .objects
            .iter()
            .map(|c| Ok((rows::encode(c)?, c.clone())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let states = data
            .states
            .iter()
            .map(|(k, l, s)| rows::encode_state(k, l, s))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = data
            .events
            .iter()
            .map(|(seq, e)| {
                Ok((
                    *seq,
                    micros(e.at),
                    e.pool.to_string(),
                    rows::encode_event(e)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let outbox = data.outbox.clone();
        self.transaction(move |tx| {
            for table in vantage_store::tables() {
                let n: i64 = tx
                    .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                    .map_err(pg)?
                    .get(0);
                if n > 0 {
                    return Err(StoreError::Conflict(format!(
                        "the target store is not empty ({table} holds {n} rows)"
                    )));
                }
            }
            if !writes.is_empty() {
                tx.execute("UPDATE catalog_head SET version = version + 1", &[])
                    .map_err(pg)?;
            }
            for (row, change) in writes {
                write(tx, row, &change)?;
            }
            for (target, location, doc) in &states {
                tx.execute(
                    "INSERT INTO location_states (target, location, doc) VALUES ($1, $2, $3)",
                    &[target, location, doc],
                )
                .map_err(pg)?;
            }
            for (seq, at, pool, doc) in &events {
                tx.execute(
                    "INSERT INTO health_events (seq, at, pool, doc) VALUES ($1, $2, $3, $4)",
                    &[seq, at, pool, doc],
                )
                .map_err(pg)?;
            }
            for r in &outbox {
                let d = &r.delivery;
                tx.execute(
                    "INSERT INTO outbox (seq, account, policy, policy_name, webhook, payload,
                                         created_at, attempts, next_at, last_attempt, delivered_at,
                                         failed, last_error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    &[
                        &d.seq,
                        &d.item.account.to_string(),
                        &d.item.policy.to_string(),
                        &d.item.policy_name,
                        &d.item.webhook.to_string(),
                        &d.item.payload,
                        &micros(d.item.at),
                        &i32::try_from(d.attempts).unwrap_or(i32::MAX),
                        &micros(r.next_at),
                        &d.last_attempt.map(micros),
                        &d.delivered_at.map(micros),
                        &d.failed,
                        &d.last_error,
                    ],
                )
                .map_err(pg)?;
            }
            // New rows continue after the copied ones.
            for table in ["health_events", "outbox"] {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'seq'),
                                       COALESCE((SELECT MAX(seq) FROM {table}), 1),
                                       (SELECT MAX(seq) FROM {table}) IS NOT NULL)"
                    ),
                    &[],
                )
                .map_err(pg)?;
            }
            Ok(())
        })?;
        if !data.objects.is_empty() {
            self.own_commits.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn shared_secret(&self, name: &str, proposed: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (name, proposed) = (name.to_owned(), proposed.to_vec());
        self.call(move |conn| {
            let client = conn.client()?;
            client
                .execute(
                    "INSERT INTO installation_secrets (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &[&name, &proposed],
                )
                .map_err(pg)?;
            let row = client
                .query_one(
                    "SELECT value FROM installation_secrets WHERE name = $1",
                    &[&name],
                )
                .map_err(pg)?;
            Ok(Some(row.get(0)))
        })
    }

    fn publish_contacts(&self, contacts: &[(Location, LocationContact)]) -> Result<(), StoreError> {
        self.publish_document("contacts", rows::encode_contacts(contacts)?)
    }

    fn contacts(&self) -> Result<Vec<(Location, LocationContact)>, StoreError> {
        self.document("contacts")?
            .map_or_else(|| Ok(Vec::new()), |d| rows::decode_contacts(&d))
    }

    fn publish_rtts(&self, rtts: &[(PoolId, PoolRtt)]) -> Result<(), StoreError> {
        self.publish_document("pool_rtts", rows::encode_rtts(rtts)?)
    }

    fn rtts(&self) -> Result<Vec<(PoolId, PoolRtt)>, StoreError> {
        self.document("pool_rtts")?
            .map_or_else(|| Ok(Vec::new()), |d| rows::decode_rtts(&d))
    }

    fn counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        self.transaction(|tx| {
            vantage_store::tables()
                .map(|table| {
                    let n: i64 = tx
                        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                        .map_err(pg)?
                        .get(0);
                    Ok((table, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            let bytes: i64 = conn
                .client()?
                .query_one("SELECT pg_database_size(current_database())", &[])
                .map(|r| r.get(0))
                .map_err(pg)?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
    }
}

/// Fails with [`deposed`] unless this connection may write health now: never asked for the
/// lease (one controller alone), or holding it under the epoch it was given. `FOR SHARE`: a
/// controller taking the lease over waits for this transaction to end, and a write under a
/// lapsed or lost lease finds no row.
fn fenced(tx: &mut Transaction<'_>, fence: &Fence) -> Result<(), StoreError> {
    match fence {
        Fence::Unasked => Ok(()),
        Fence::Deposed => Err(deposed()),
        Fence::Holding { holder, epoch } => {
            let held = tx
                .query_opt(
                    "SELECT 1 FROM judge_lease WHERE holder = $1 AND epoch = $2
                     AND expires_at > clock_timestamp() FOR SHARE",
                    &[holder, epoch],
                )
                .map_err(pg)?;
            held.map(|_| ()).ok_or_else(deposed)
        }
    }
}

impl PostgresStore {
    /// Writes the judge's document `name` for its followers, fenced as health writes are.
    fn publish_document(&self, name: &'static str, doc: String) -> Result<(), StoreError> {
        self.call(move |conn| {
            let fence = conn.fence.clone();
            let mut tx = conn.client()?.transaction().map_err(pg)?;
            fenced(&mut tx, &fence)?;
            tx.execute(
                "INSERT INTO judge_documents (name, doc) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                &[&name, &doc],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)
        })
    }

    /// The judge's document `name` as last published.
    fn document(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        self.call(move |conn| {
            Ok(conn
                .client()?
                .query_opt("SELECT doc FROM judge_documents WHERE name = $1", &[&name])
                .map_err(pg)?
                .map(|r| r.get(0)))
        })
    }
}
