//! Administration on a data directory: tokens, accounts, zones. It writes the store
//! directly (SQLite allows it while the server runs) and the server picks the change up
//! within a second, so a leaked token can be revoked without downtime.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::json;
use vantage_control::secrets::{generate_token, random_bytes};
use vantage_core::auth::{AgentBinding, Grant, Permission, Resource, TokenKind, TokenStatus};
use vantage_core::catalog::{Catalog, CatalogError, Change};
use vantage_core::choice::Choice;
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_core::zone::Overlap;
use vantage_core::{AccountId, TokenId, ZoneId};
use vantage_store::Store;
use vantage_store_sqlite::Durability;

use crate::bootstrap::new_token;
use crate::process::open_store;
use crate::{DataDir, Output};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (it is shown only this once).
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
        /// The account the token acts on. With --agent: an account whose pools the agent may
        /// probe (repeatable; none: every account).
        #[arg(long = "account", required_unless_present_any = ["agent", "edge"])]
        accounts: Vec<String>,
        /// Limit zone permissions to this zone instead of every zone of the account.
        #[arg(long)]
        zone: Option<String>,
        /// A Cloudflare permission-group name (repeatable), or `all` (not for --agent).
        #[arg(long = "permission", required_unless_present_any = ["agent", "edge"])]
        permissions: Vec<String>,
        /// A token for a probe agent (`vantage agent --token`): valid only for the agent
        /// protocol, and only as the one location --region/--location names.
        #[arg(long, conflicts_with_all = ["zone", "permissions"], requires_all = ["region", "location"])]
        agent: bool,
        /// A token for an edge (`vantage edge --token`): valid only for reading routing
        /// snapshots; the edge is listed under the token's --name.
        #[arg(long, conflicts_with_all = ["zone", "permissions", "accounts", "agent"])]
        edge: bool,
        /// With --agent: the region of the agent's location.
        #[arg(long, requires = "agent", value_parser = crate::process::parse_region)]
        region: Option<RegionCode>,
        /// With --agent: the location's name, unique in the installation while the token lives.
        #[arg(long, requires = "agent", value_parser = crate::process::parse_location)]
        location: Option<String>,
        /// RFC 3339 instant after which the token stops working.
        #[arg(long)]
        expires_on: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Revoke a token by id; it stops working within a second.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its id.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Create a zone in an account and print its id.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// Let this zone overlap (fall inside, or contain) a zone of another account:
        /// an explicit delegation by the installation operator. The API never allows it.
        #[arg(long)]
        allow_overlap: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// Prints a created object's id: alone (text), or as `{"id": …, "name": …}` (JSON).
fn print_created(output: Output, id: &str, name: &str) {
    match output {
        Output::Text => println!("{id}"),
        Output::Json => println!("{}", serde_json::json!({"id": id, "name": name})),
    }
}

fn open(data: &DataDir) -> anyhow::Result<(Arc<dyn Store>, Catalog)> {
    let store = open_store(data, Durability::Power)?.into_shared();
    let mut catalog = store.load_catalog()?;
    // The operator sets the quotas; what they create by hand is not held to them.
    catalog.set_quotas(vantage_core::catalog::Quotas::unlimited());
    Ok((store, catalog))
}

fn explain(e: CatalogError) -> anyhow::Error {
    match e {
        CatalogError::NotFound => anyhow!("not found"),
        CatalogError::Invalid(v) => anyhow!(v
            .iter()
            .map(|v| v.detail.clone())
            .collect::<Vec<_>>()
            .join("; ")),
        CatalogError::Referenced(r) => anyhow!("still referenced by {} object(s)", r.len()),
    }
}

fn commit(store: &Arc<dyn Store>, changes: Vec<Change>) -> anyhow::Result<()> {
    store.commit(&changes).context("writing the store")
}

fn parse_permissions(raw: &[String]) -> anyhow::Result<Vec<Permission>> {
    let mut out = Vec::new();
    for p in raw {
        if p == "all" {
            out.extend(Permission::ALL_PERMISSIONS);
        } else {
            let parsed = Permission::parse(p).ok_or_else(|| {
                let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                anyhow!(
                    "unknown permission {p:?}; use `all` or one of: {}",
                    names.join(", ")
                )
            })?;
            out.push(parsed);
        }
    }
    out.dedup();
    Ok(out)
}

/// The grant of an API token: `permissions` on `account`, or on one zone of it.
fn grant(
    catalog: &Catalog,
    account: &str,
    zone: Option<String>,
    permissions: &[String],
) -> anyhow::Result<Grant> {
    let account: AccountId = account
        .parse()
        .map_err(|_| anyhow!("--account is not an account id"))?;
    catalog
        .account(account)
        .ok_or_else(|| anyhow!("no account {account}"))?;
    let permissions = parse_permissions(permissions)?;
    let resource = match zone {
        None => Resource::Account(account),
        Some(z) => {
            let z: ZoneId = z.parse().map_err(|_| anyhow!("--zone is not a zone id"))?;
            match catalog.zone(z) {
                Some(found) if found.account == account => {}
                _ => bail!("no zone {z} in account {account}"),
            }
            if let Some(p) = permissions.iter().find(|p| !p.is_zone_scoped()) {
                bail!(
                    "{:?} is an account permission and cannot be limited to a zone",
                    p.as_str()
                );
            }
            Resource::Zone(z)
        }
    };
    Ok(Grant {
        resource,
        permissions,
    })
}

pub fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            data,
            name,
            accounts,
            zone,
            permissions,
            expires_on,
            output,
            agent,
            edge,
            region,
            location,
        } => {
            let (store, catalog) = open(&data)?;
            let expires_on = expires_on
                .map(|e| {
                    vantage_wire::time::parse(&e)
                        .ok_or_else(|| anyhow!("--expires-on must be an RFC 3339 time"))
                })
                .transpose()?;
            let now = vantage_control::clock::now();
            let binding = match (agent, region, location) {
                (true, Some(region), Some(name)) => {
                    let accounts = accounts
                        .iter()
                        .map(|a| {
                            a.parse()
                                .map_err(|_| anyhow!("--account {a:?} is not an account id"))
                        })
                        .collect::<anyhow::Result<Vec<AccountId>>>()?;
                    let binding = AgentBinding {
                        location: Location { region, name },
                        accounts,
                    };
                    catalog
                        .check_agent_binding(&binding, now)
                        .map_err(explain)?;
                    Some(binding)
                }
                _ => None,
            };
            let grants = if agent || edge {
                vec![]
            } else {
                let [account] = accounts.as_slice() else {
                    bail!("an API token acts on exactly one --account");
                };
                vec![grant(&catalog, account, zone, &permissions)?]
            };
            let secret = generate_token();
            let mut t = new_token(&name, &secret, grants, now, expires_on);
            if agent {
                t.kind = TokenKind::Agent;
                t.agent = binding;
            }
            if edge {
                t.kind = TokenKind::Edge;
            }
            let rendered = vantage_wire::token::render(&t);
            commit(&store, vec![Change::PutToken(t)])?;
            match output {
                Output::Text => println!("{secret}"),
                Output::Json => {
                    let mut v = rendered;
                    v["value"] = json!(secret);
                    println!("{v}");
                }
            }
        }
        TokenCommand::List { data, output } => {
            let (_, catalog) = open(&data)?;
            let tokens: Vec<_> = catalog.tokens().map(vantage_wire::token::render).collect();
            match output {
                Output::Json => println!("{}", serde_json::Value::Array(tokens)),
                Output::Text => {
                    println!("{:<32}  {:<8}  {:<27}  NAME", "ID", "STATUS", "ISSUED");
                    for t in catalog.tokens() {
                        println!(
                            "{:<32}  {:<8}  {:<27}  {}",
                            t.id,
                            t.status.as_str(),
                            vantage_wire::time::format(t.issued_on),
                            t.name
                        );
                    }
                }
            }
        }
        TokenCommand::Revoke { data, id } => {
            let (store, catalog) = open(&data)?;
            let id: TokenId = id.parse().map_err(|_| anyhow!("not a token id"))?;
            let mut t = catalog
                .token(id)
                .ok_or_else(|| anyhow!("no token {id}"))?
                .clone();
            t.status = TokenStatus::Revoked;
            t.modified_on = vantage_control::clock::now();
            commit(&store, vec![Change::PutToken(t)])?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

pub fn account(cmd: AccountCommand) -> anyhow::Result<()> {
    let AccountCommand::Create { data, name, output } = cmd;
    let (store, catalog) = open(&data)?;
    let id = AccountId::from_bytes(random_bytes());
    let changes = catalog
        .create_account(id, name.clone(), vantage_control::clock::now())
        .map_err(explain)?;
    commit(&store, changes)?;
    print_created(output, &id.to_string(), &name);
    Ok(())
}

pub fn zone(cmd: ZoneCommand) -> anyhow::Result<()> {
    let ZoneCommand::Create {
        data,
        account,
        name,
        allow_overlap,
        output,
    } = cmd;
    let (store, catalog) = open(&data)?;
    let account: AccountId = account
        .parse()
        .map_err(|_| anyhow!("--account is not an account id"))?;
    let id = ZoneId::from_bytes(random_bytes());
    let overlap = if allow_overlap {
        Overlap::AllowedByOperator
    } else {
        Overlap::Refuse
    };
    let changes = catalog
        .create_zone(account, id, &name, overlap, vantage_control::clock::now())
        .map_err(explain)?;
    commit(&store, changes)?;
    print_created(output, &id.to_string(), &name.to_ascii_lowercase());
    Ok(())
}
