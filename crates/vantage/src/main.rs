//! The `vantage` binary: wires the crates together. It is the only place that spawns
//! long-lived tasks or reads the environment.
#![forbid(unsafe_code)]

mod admin;
mod bootstrap;
mod check;
mod client;
mod config;
mod dataplane;
mod edge;
mod http;
mod paint;
mod process;
mod remote;
mod serve;
mod status;
mod store_copy;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc returns freed memory to the system promptly and keeps per-thread heaps small,
/// which matters with many short-lived checks across worker, writer and blocking threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "vantage",
    version,
    about = "Self-hosted global load balancer with multi-region health monitoring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DataDir {
    /// Directory holding the store (vantage.db) and the bootstrap token.
    #[arg(long, env = "VANTAGE_DATA_DIR", default_value = "./vantage-data")]
    pub data_dir: PathBuf,
    /// Keep the catalog in PostgreSQL instead: `postgres://user:password@host:port/database`
    /// (a database of its own; its schema is created and migrated at start). Without it, the
    /// SQLite file vantage.db in the data directory.
    #[arg(long, env = "VANTAGE_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// CA certificates (PEM) to trust for PostgreSQL's TLS certificate besides the Mozilla
    /// roots (a private PKI, a managed service's CA). Add `sslmode=require` to the URL to
    /// refuse a server that does not offer TLS.
    #[arg(
        long,
        env = "VANTAGE_STORE_CA_FILE",
        value_name = "PEM",
        requires = "store"
    )]
    pub store_ca_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (Cloudflare-compatible API under /client/v4) and, with
    /// --proxy-listen / --dns-listen, the data plane.
    Serve(Box<serve::ServeArgs>),
    /// Run a remote probe location that reports to a controller.
    Agent(remote::AgentArgs),
    /// Run the data plane alone (proxy and/or DNS), following one or more controllers'
    /// routing snapshots and serving the last one kept while none answers.
    Edge(Box<edge::EdgeArgs>),
    /// Manage API tokens in a data directory (works while the server runs).
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Manage accounts in a data directory.
    #[command(subcommand)]
    Account(admin::AccountCommand),
    /// Manage zones in a data directory.
    #[command(subcommand)]
    Zone(admin::ZoneCommand),
    /// Move a store: from a data directory's SQLite file to PostgreSQL, or back.
    #[command(subcommand)]
    Store(store_copy::StoreCommand),
    /// Run one health check with monitor semantics and print the verdict (exit 1 when
    /// unhealthy).
    Check(check::CheckArgs),
    /// Show every load balancer, its pools and their origins per region, with the reason for
    /// everything that is down.
    Status(status::StatusArgs),
    /// Make a running server match a declarative file (monitors, pools, load balancers,
    /// webhooks, notification policies; names are the identity).
    Apply(config::ApplyArgs),
    /// Write a running server's configuration in the format `apply` reads.
    Export(config::ExportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Agent(args) => remote::run(args),
        Command::Edge(args) => edge::run(*args),
        Command::Token(cmd) => admin::token(cmd),
        Command::Account(cmd) => admin::account(cmd),
        Command::Zone(cmd) => admin::zone(cmd),
        Command::Store(cmd) => store_copy::run(cmd),
        Command::Status(args) => status::run(args),
        Command::Apply(args) => config::apply(args),
        Command::Export(args) => config::export(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "vantage",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Check(args) => match check::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vantage: {e:#}");
            ExitCode::FAILURE
        }
    }
}
