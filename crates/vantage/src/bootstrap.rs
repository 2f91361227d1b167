//! First start: one account, an admin token holding every permission on it, and optionally
//! a user with a global key.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use vantage_control::secrets::{
    generate_token, is_global_key_syntax, is_token_syntax, key_digest, random_bytes, token_digest,
};
use vantage_core::auth::{
    AgentBinding, Grant, Permission, Resource, Token, TokenKind, TokenStatus, User,
};
use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::Location;
use vantage_core::{AccountId, Timestamp, TokenId, UserId};

/// What the environment asks of a first start.
#[derive(Debug, Default)]
pub struct Seed {
    pub token: Option<String>,
    pub email: Option<String>,
    pub key: Option<String>,
    pub agent_token: Option<String>,
    /// The one location the bootstrap agent token speaks for (`REGION/NAME`).
    pub agent_location: Option<Location>,
}

impl Seed {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let seed = Self {
            token: var("VANTAGE_BOOTSTRAP_TOKEN"),
            email: var("VANTAGE_BOOTSTRAP_EMAIL"),
            key: var("VANTAGE_BOOTSTRAP_KEY"),
            agent_token: var("VANTAGE_BOOTSTRAP_AGENT_TOKEN"),
            agent_location: var("VANTAGE_BOOTSTRAP_AGENT_LOCATION")
                .map(|l| parse_agent_location(&l))
                .transpose()?,
        };
        if seed.agent_token.is_some() != seed.agent_location.is_some() {
            bail!("VANTAGE_BOOTSTRAP_AGENT_TOKEN and VANTAGE_BOOTSTRAP_AGENT_LOCATION (REGION/NAME) must be set together");
        }
        if seed
            .agent_token
            .as_deref()
            .is_some_and(|t| !is_token_syntax(t))
        {
            bail!("VANTAGE_BOOTSTRAP_AGENT_TOKEN must be 40-80 characters of [0-9A-Za-z_-]");
        }
        if seed.token.as_deref().is_some_and(|t| !is_token_syntax(t)) {
            bail!("VANTAGE_BOOTSTRAP_TOKEN must be 40-80 characters of [0-9A-Za-z_-]");
        }
        match (&seed.email, &seed.key) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("VANTAGE_BOOTSTRAP_EMAIL and VANTAGE_BOOTSTRAP_KEY must be set together")
            }
            (Some(e), Some(_)) if !e.contains('@') => {
                bail!("VANTAGE_BOOTSTRAP_EMAIL is not an e-mail address")
            }
            (_, Some(k)) if !is_global_key_syntax(k) => {
                bail!("VANTAGE_BOOTSTRAP_KEY must be 37-60 characters of [0-9A-Za-z_-]")
            }
            _ => Ok(seed),
        }
    }
}

/// `REGION/NAME`, as the bootstrap agent location is given.
fn parse_agent_location(s: &str) -> anyhow::Result<Location> {
    let (region, name) = s
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("VANTAGE_BOOTSTRAP_AGENT_LOCATION must be REGION/NAME"))?;
    Ok(Location {
        region: crate::process::parse_region(region).map_err(anyhow::Error::msg)?,
        name: crate::process::parse_location(name).map_err(anyhow::Error::msg)?,
    })
}

pub fn admin_grant(account: AccountId) -> Grant {
    Grant {
        resource: Resource::Account(account),
        permissions: Permission::ALL_PERMISSIONS.to_vec(),
    }
}

pub fn new_token(
    name: &str,
    secret: &str,
    grants: Vec<Grant>,
    now: Timestamp,
    expires_on: Option<Timestamp>,
) -> Token {
    Token {
        id: TokenId::from_bytes(random_bytes()),
        name: name.to_owned(),
        digest: token_digest(secret),
        status: TokenStatus::Active,
        grants,
        issued_on: now,
        modified_on: now,
        expires_on,
        kind: TokenKind::Api,
        agent: None,
    }
}

/// The changes of a first start, or nothing when the store already has an account. Returns
/// the generated token, if one was generated (it must then be shown to the operator).
pub fn plan(
    catalog: &Catalog,
    seed: &Seed,
    now: Timestamp,
) -> anyhow::Result<(Vec<Change>, Option<String>)> {
    if catalog.accounts().next().is_some() {
        return Ok((vec![], None));
    }
    let account = AccountId::from_bytes(random_bytes());
    let mut changes = catalog
        .create_account(account, "Default account".into(), now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (secret, generated) = match &seed.token {
        Some(t) => (t.clone(), None),
        None => {
            let t = generate_token();
            (t.clone(), Some(t))
        }
    };
    changes.push(Change::PutToken(new_token(
        "bootstrap admin",
        &secret,
        vec![admin_grant(account)],
        now,
        None,
    )));
    if let Some(agent) = &seed.agent_token {
        let mut t = new_token("bootstrap agent", agent, vec![], now, None);
        t.kind = TokenKind::Agent;
        t.agent = seed.agent_location.clone().map(|location| AgentBinding {
            location,
            accounts: vec![],
        });
        changes.push(Change::PutToken(t));
    }
    if let (Some(email), Some(key)) = (&seed.email, &seed.key) {
        let salt = random_bytes();
        changes.push(Change::PutUser(User {
            id: UserId::from_bytes(random_bytes()),
            email: email.to_ascii_lowercase(),
            key_digest: key_digest(&salt, key),
            key_salt: salt,
            accounts: vec![account],
            created_on: now,
        }));
    }
    Ok((changes, generated))
}

/// Writes the generated token where only the owner can read it.
pub fn save_token(data_dir: &Path, token: &str) -> anyhow::Result<()> {
    let path = data_dir.join("bootstrap-token");
    let mut f = vantage_control::secrets::open_private(&path, false)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{token}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
