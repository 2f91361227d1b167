//! `vantage store copy`: moves everything one store holds into an empty other one (a data
//! directory's SQLite file up to PostgreSQL, or back down), then checks that every table
//! holds as many rows on both sides.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use fs4::fs_std::FileExt;
use vantage_store_sqlite::Durability;

use crate::process::{is_postgres_url, open_store, OpenedStore};
use crate::DataDir;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every object, location state, health event and notification from one store into
    /// an empty one, and verify the row counts. Stop the server on the source first.
    Copy {
        /// The source: a data directory (its vantage.db) or a postgres:// URL.
        #[arg(long)]
        from: String,
        /// The target, which must be empty: a data directory or a postgres:// URL.
        #[arg(long)]
        to: String,
        /// CA certificates (PEM) to trust for PostgreSQL's TLS certificate.
        #[arg(long, env = "VANTAGE_STORE_CA_FILE", value_name = "PEM")]
        ca_file: Option<PathBuf>,
    },
}

/// A store named on the command line: a `postgres://` URL, or a data directory.
fn open(place: &str, ca_file: Option<&PathBuf>) -> anyhow::Result<OpenedStore> {
    let data = if is_postgres_url(place) {
        DataDir {
            data_dir: PathBuf::from("."),
            store: Some(place.to_owned()),
            store_ca_file: ca_file.cloned(),
        }
    } else {
        DataDir {
            data_dir: PathBuf::from(place),
            store: None,
            store_ca_file: None,
        }
    };
    open_store(&data, Durability::Power)
}

/// A server must not run on either side: a copy of a running server's store would miss what it
/// writes meanwhile, and a server on the target would not hold in memory what arrives. Holds
/// the server's lock (the data directory's, or the database's) until dropped.
fn refuse_running(place: &str, store: &OpenedStore) -> anyhow::Result<Option<std::fs::File>> {
    match store {
        OpenedStore::Sqlite(_) => {
            let path = PathBuf::from(place).join("serve.lock");
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
                return Ok(None);
            };
            if !file.try_lock_exclusive().unwrap_or(false) {
                bail!("a `vantage serve` is running on {place}: stop it first");
            }
            Ok(Some(file))
        }
        OpenedStore::Postgres(pg) => {
            pg.claim_controller()
                .context("a `vantage serve` is running on that database: stop it first")?;
            Ok(None)
        }
    }
}

pub fn run(cmd: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Copy { from, to, ca_file } = cmd;
    // A mistyped source directory must not read as an empty store (opening would create one).
    if !is_postgres_url(&from) && !PathBuf::from(&from).join("vantage.db").is_file() {
        bail!("there is no store at {from} (no vantage.db in it): name the data directory of the server to copy");
    }
    let source = open(&from, ca_file.as_ref()).context("opening the source")?;
    let _held = refuse_running(&from, &source)?;
    let target = open(&to, ca_file.as_ref()).context("opening the target")?;
    // Nor may a server run on the target: its memory would not hold what arrives.
    let _held_target = refuse_running(&to, &target)?;
    let target = target.into_shared();
    let source = source.into_shared();
    let data = source.export().context("reading the source")?;
    target.import(&data).context("writing the target")?;
    let (before, after) = (source.counts()?, target.counts()?);
    let mut differ = Vec::new();
    for (table, n) in &before {
        let m = after.get(table).copied().unwrap_or(0);
        println!("{table:<16} {n:>10} → {m:>10}");
        if *n != m {
            differ.push(*table);
        }
    }
    if !differ.is_empty() {
        bail!(
            "the copy differs in {}: check the target before using it",
            differ.join(", ")
        );
    }
    println!("copied; every table holds as many rows on both sides");
    Ok(())
}
