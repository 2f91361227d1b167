//! What every subcommand of the binary shares: flag parsers, logging, the shutdown signal
//! and the data directory's store.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_store::Store;
use vantage_store_postgres::PostgresStore;
use vantage_store_sqlite::{Durability, SqliteStore};

use crate::DataDir;

/// How many checks a probe agent runs at once at most (`--max-in-flight`,
/// `--probe-max-in-flight`): its error names the range.
pub fn in_flight_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536)
}

pub fn parse_location(s: &str) -> Result<String, String> {
    if Location::is_valid_name(s) {
        Ok(s.to_owned())
    } else {
        Err("a location name is 1-63 letters, digits, '-', '_' or '.'".to_owned())
    }
}

pub fn parse_region(s: &str) -> Result<RegionCode, String> {
    s.parse().map_err(|_| {
        let codes: Vec<&str> = RegionCode::ALL.iter().map(|r| r.code()).collect();
        format!("not a region code; use one of {}", codes.join(", "))
    })
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VANTAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The store a process works on.
pub enum OpenedStore {
    /// `vantage.db` in the data directory.
    Sqlite(SqliteStore),
    /// A PostgreSQL database (`--store postgres://…`).
    Postgres(PostgresStore),
}

impl OpenedStore {
    pub fn into_shared(self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => Arc::new(s),
            Self::Postgres(s) => Arc::new(s),
        }
    }
}

/// Whether `place` names a PostgreSQL database rather than a data directory.
pub fn is_postgres_url(place: &str) -> bool {
    place.starts_with("postgres://") || place.starts_with("postgresql://")
}

/// Opens the store `data` names: PostgreSQL when `--store` gives a `postgres://` URL, else
/// the data directory's SQLite file (creating the directory if needed).
pub fn open_store(data: &DataDir, durability: Durability) -> anyhow::Result<OpenedStore> {
    match data.store.as_deref() {
        Some(url) if is_postgres_url(url) => Ok(OpenedStore::Postgres(PostgresStore::open_with(
            url,
            data.store_ca_file.as_deref(),
        )?)),
        Some(other) => anyhow::bail!(
            "--store {:?} is not a postgres:// URL (leave --store out for the SQLite file in the \
             data directory)",
            other.split('@').next_back().unwrap_or_default()
        ),
        None => {
            create_private_dir(&data.data_dir)?;
            Ok(OpenedStore::Sqlite(SqliteStore::open(
                &data.data_dir.join("vantage.db"),
                durability,
            )?))
        }
    }
}

pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// How an agent or an edge reaches its controllers.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// A controller (`vantage serve`), e.g. `https://vantage.example:8080`; repeatable (or
    /// comma-separated): one is used at a time, and the next when it does not answer.
    #[arg(
        long = "controller",
        env = "VANTAGE_CONTROLLER",
        value_delimiter = ',',
        required = true
    )]
    pub controllers: Vec<String>,
    /// CA certificate (PEM) that signs the controllers' certificates, for a private PKI.
    #[arg(long, env = "VANTAGE_CONTROLLER_CA_FILE")]
    pub controller_ca_file: Option<std::path::PathBuf>,
}

impl ControllerArgs {
    /// The CA file's bytes, when one is given.
    pub fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.controller_ca_file
            .as_ref()
            .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
            .transpose()
    }
}
