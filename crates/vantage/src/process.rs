//! What every subcommand of the binary shares: flag parsers, logging, the shutdown signal
//! and the data directory's store.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_store_sqlite::{Durability, SqliteStore};

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

/// Opens the data directory's store, creating the directory if needed.
pub fn open_store(dir: &Path, durability: Durability) -> anyhow::Result<SqliteStore> {
    create_private_dir(dir)?;
    Ok(SqliteStore::open(&dir.join("vantage.db"), durability)?)
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
