//! Configuration as code: `vantage apply -f vantage.yaml` makes a running server match a file,
//! and `vantage export` writes the server's state in the same format. Objects are known by
//! their names — a monitor or monitor group by its `description`, a pool by `name`, a load
//! balancer by `zone` + `name`, webhooks and policies by `name` — and refer to each other by
//! those names.
//!
//! Every field a document gives is the API's own; the file is sent through the API, so the
//! server's validation (with its pointers) applies. A kind the file lists is made to match
//! exactly (objects missing from it are deleted); a kind it leaves out is left alone. Fields a
//! document leaves out keep their current values (defaults on creation).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::{Client, ServerArgs};
use crate::paint::Paint;
use crate::Output;

type Doc = Map<String, Value>;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The account (id); may be left out when the token reaches exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitors: Option<Vec<Doc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_groups: Option<Vec<Doc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<Doc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancers: Option<Vec<Doc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<Doc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_policies: Option<Vec<Doc>>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The declarative file (YAML; JSON is YAML too).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write here instead of stdout.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Fields the API computes; never part of a file.
const READ_ONLY: &[&str] = &[
    "id",
    "created_on",
    "modified_on",
    "created_at",
    "updated_at",
    "created",
    "modified",
    "healthy",
    "failure_reason",
    "disabled_at",
    "last_success",
    "last_failure",
    "type_",
    "zone_name",
    "networks",
];

#[derive(Debug, Clone, Serialize)]
struct Step {
    action: &'static str,
    kind: &'static str,
    name: String,
    /// For updates: the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<String>,
}

/// `current` already says everything `desired` says (numbers compared by value; objects by
/// the keys `desired` has; lists element by element).
fn covers(current: &Value, desired: &Value) -> bool {
    match (current, desired) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, v)| covers(a.get(k).unwrap_or(&Value::Null), v)),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| covers(x, y))
        }
        (a, b) => a == b,
    }
}

/// The fields of `desired` that `current` does not already say. A webhook's `secret` is never
/// shown, so it cannot be compared: it is sent when something else changes.
fn differing(current: &Value, desired: &Doc) -> Vec<String> {
    desired
        .iter()
        .filter(|(k, _)| k.as_str() != "secret")
        .filter(|(k, v)| !covers(current.get(k.as_str()).unwrap_or(&Value::Null), v))
        .map(|(k, _)| k.clone())
        .collect()
}

fn name_of<'a>(doc: &'a Doc, key: &str, kind: &str) -> anyhow::Result<&'a str> {
    doc.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .with_context(|| format!("every {kind} needs a `{key}` (its identity)"))
}

/// Names → ids in a document's reference fields, with `lookup` naming the kind.
fn swap_refs(
    doc: &mut Doc,
    keys: &[&str],
    lookup: &BTreeMap<String, String>,
    what: &str,
) -> anyhow::Result<()> {
    let one = |v: &mut Value| -> anyhow::Result<()> {
        if let Some(name) = v.as_str() {
            let id = lookup
                .get(name)
                .with_context(|| format!("no {what} named {name:?}"))?;
            *v = Value::String(id.clone());
        }
        Ok(())
    };
    for key in keys {
        match doc.get_mut(*key) {
            Some(Value::Array(list)) => list.iter_mut().try_for_each(one)?,
            Some(Value::Object(map)) => {
                for v in map.values_mut() {
                    match v {
                        Value::Array(list) => list.iter_mut().try_for_each(one)?,
                        other => one(other)?,
                    }
                }
            }
            Some(v) => one(v)?,
            None => {}
        }
    }
    Ok(())
}

/// Names ⇄ ids of the monitors a group's members name (`members[].monitor_id`).
fn swap_members(
    doc: &mut Doc,
    lookup: &BTreeMap<String, String>,
    what: &str,
) -> anyhow::Result<()> {
    if let Some(Value::Array(members)) = doc.get_mut("members") {
        for m in members {
            if let Value::Object(m) = m {
                swap_refs(m, &["monitor_id"], lookup, what)?;
            }
        }
    }
    Ok(())
}

const LB_POOL_KEYS: &[&str] = &[
    "default_pools",
    "fallback_pool",
    "region_pools",
    "country_pools",
    "pop_pools",
];

/// Everything the server holds for one account, by identity.
struct Current {
    account: String,
    monitors: BTreeMap<String, Value>,
    monitor_groups: BTreeMap<String, Value>,
    pools: BTreeMap<String, Value>,
    /// By `zone/name`, with the zone's id.
    load_balancers: BTreeMap<String, (String, Value)>,
    zones: BTreeMap<String, String>,
    webhooks: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
}

impl Current {
    fn ids(map: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
        map.iter()
            .map(|(name, v)| (name.clone(), v["id"].as_str().unwrap_or("").to_owned()))
            .collect()
    }
}

async fn account_of(client: &Client, wanted: Option<&str>) -> anyhow::Result<String> {
    let accounts = client.list("/accounts").await?;
    match wanted {
        Some(id) => accounts
            .iter()
            .find(|a| a["id"] == id)
            .map(|_| id.to_owned())
            .with_context(|| format!("account {id} is not within the token's reach")),
        None => match accounts.as_slice() {
            [one] => Ok(one["id"].as_str().unwrap_or("").to_owned()),
            _ => bail!("the token reaches several accounts; say which with `account:`"),
        },
    }
}

async fn current(client: &Client, account: String) -> anyhow::Result<Current> {
    let a = &account;
    let by = |items: Vec<Value>, key: &str| -> BTreeMap<String, Value> {
        items
            .into_iter()
            .map(|v| (v[key].as_str().unwrap_or("").to_owned(), v))
            .collect()
    };
    let monitors = by(
        client
            .list(&format!("/accounts/{a}/load_balancers/monitors"))
            .await?,
        "description",
    );
    let monitor_groups = by(
        client
            .list(&format!("/accounts/{a}/load_balancers/monitor_groups"))
            .await?,
        "description",
    );
    let pools = by(
        client
            .list(&format!("/accounts/{a}/load_balancers/pools"))
            .await?,
        "name",
    );
    let mut zones = BTreeMap::new();
    let mut load_balancers = BTreeMap::new();
    for zone in client.list(&format!("/zones?account.id={a}")).await? {
        let (zid, zname) = (
            zone["id"].as_str().unwrap_or("").to_owned(),
            zone["name"].as_str().unwrap_or("").to_owned(),
        );
        for lb in client.list(&format!("/zones/{zid}/load_balancers")).await? {
            let key = format!("{zname}/{}", lb["name"].as_str().unwrap_or(""));
            load_balancers.insert(key, (zid.clone(), lb));
        }
        zones.insert(zname, zid);
    }
    let webhooks = by(
        client
            .list(&format!("/accounts/{a}/alerting/v3/destinations/webhooks"))
            .await?,
        "name",
    );
    let policies = by(
        client
            .list(&format!("/accounts/{a}/alerting/v3/policies"))
            .await?,
        "name",
    );
    Ok(Current {
        account,
        monitors,
        monitor_groups,
        pools,
        load_balancers,
        zones,
        webhooks,
        policies,
    })
}

/// One kind's work: what to create, update and delete, in the file's terms.
struct Plan<'a> {
    steps: Vec<Step>,
    client: &'a Client,
    dry_run: bool,
    progress: Option<indicatif::ProgressBar>,
}

impl Plan<'_> {
    /// Records a step and, unless dry, carries it out; returns the API's result.
    async fn step(
        &mut self,
        step: Step,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let label = format!("{} {} {}", step.action, step.kind, step.name);
        self.steps.push(step);
        if self.dry_run {
            return Ok(Value::Null);
        }
        if let Some(p) = &self.progress {
            p.set_message(label.clone());
        }
        let v = self
            .client
            .call(method, &path, body.as_ref(), false)
            .await
            .with_context(|| label)?;
        if let Some(p) = &self.progress {
            p.inc(1);
        }
        Ok(v["result"].clone())
    }
}

fn step(action: &'static str, kind: &'static str, name: &str, fields: Vec<String>) -> Step {
    Step {
        action,
        kind,
        name: name.to_owned(),
        fields,
    }
}

/// Creates or updates the objects of one kind; returns name → id afterwards.
#[allow(clippy::too_many_arguments)]
async fn upsert(
    plan: &mut Plan<'_>,
    kind: &'static str,
    key: &str,
    base: &str,
    docs: &[Doc],
    current: &BTreeMap<String, Value>,
    patchable: bool,
    prepare: &dyn Fn(&Doc) -> anyhow::Result<Doc>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut ids = Current::ids(current);
    for doc in docs {
        let name = name_of(doc, key, kind)?.to_owned();
        let body = prepare(doc)?;
        match current.get(&name) {
            None => {
                let made = plan
                    .step(
                        step("create", kind, &name, vec![]),
                        Method::POST,
                        base.to_owned(),
                        Some(Value::Object(body)),
                    )
                    .await?;
                let id = made["id"].as_str().unwrap_or("<new>").to_owned();
                ids.insert(name, id);
            }
            Some(cur) => {
                let fields = differing(cur, &body);
                if fields.is_empty() {
                    continue;
                }
                let id = cur["id"].as_str().unwrap_or("");
                let (method, sent) = if patchable {
                    let changed: Doc = body
                        .into_iter()
                        .filter(|(k, _)| fields.contains(k))
                        .collect();
                    (Method::PATCH, changed)
                } else {
                    (Method::PUT, body)
                };
                plan.step(
                    step("update", kind, &name, fields),
                    method,
                    format!("{base}/{id}"),
                    Some(Value::Object(sent)),
                )
                .await?;
            }
        }
    }
    Ok(ids)
}

/// Deletes the objects of a listed kind that the file does not have.
async fn prune(
    plan: &mut Plan<'_>,
    kind: &'static str,
    key: &str,
    docs: &Option<Vec<Doc>>,
    current: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    let Some(docs) = docs else { return Ok(()) };
    let wanted: Vec<&str> = docs
        .iter()
        .filter_map(|d| d.get(key).and_then(Value::as_str))
        .collect();
    for (name, path) in current {
        if !wanted.contains(&name.as_str()) {
            plan.step(
                step("delete", kind, &name, vec![]),
                Method::DELETE,
                path,
                None,
            )
            .await?;
        }
    }
    Ok(())
}

fn webhook_body(doc: &Doc) -> anyhow::Result<Doc> {
    let mut body = doc.clone();
    if let Some(var) = body.remove("secret_env") {
        let var = var
            .as_str()
            .context("secret_env names an environment variable")?;
        let secret = std::env::var(var).with_context(|| format!("${var} is not set"))?;
        body.insert("secret".into(), Value::String(secret));
    }
    Ok(body)
}

async fn apply_config(
    client: &Client,
    config: &Config,
    dry_run: bool,
    progress: Option<indicatif::ProgressBar>,
) -> anyhow::Result<Vec<Step>> {
    let account = account_of(client, config.account.as_deref()).await?;
    let cur = current(client, account).await?;
    let a = cur.account.clone();
    let mut plan = Plan {
        steps: Vec::new(),
        client,
        dry_run,
        progress,
    };
    let monitors = match &config.monitors {
        Some(docs) => {
            upsert(
                &mut plan,
                "monitor",
                "description",
                &format!("/accounts/{a}/load_balancers/monitors"),
                docs,
                &cur.monitors,
                true,
                &|d| Ok(d.clone()),
            )
            .await?
        }
        None => Current::ids(&cur.monitors),
    };
    let groups = match &config.monitor_groups {
        Some(docs) => {
            upsert(
                &mut plan,
                "monitor_group",
                "description",
                &format!("/accounts/{a}/load_balancers/monitor_groups"),
                docs,
                &cur.monitor_groups,
                true,
                &|d| {
                    let mut d = d.clone();
                    swap_members(&mut d, &monitors, "monitor (by description)")?;
                    Ok(d)
                },
            )
            .await?
        }
        None => Current::ids(&cur.monitor_groups),
    };
    let pools = match &config.pools {
        Some(docs) => {
            upsert(
                &mut plan,
                "pool",
                "name",
                &format!("/accounts/{a}/load_balancers/pools"),
                docs,
                &cur.pools,
                true,
                &|d| {
                    let mut d = d.clone();
                    swap_refs(&mut d, &["monitor"], &monitors, "monitor (by description)")?;
                    swap_refs(
                        &mut d,
                        &["monitor_group"],
                        &groups,
                        "monitor group (by description)",
                    )?;
                    Ok(d)
                },
            )
            .await?
        }
        None => Current::ids(&cur.pools),
    };
    if let Some(docs) = &config.load_balancers {
        for doc in docs {
            let zone = name_of(doc, "zone", "load balancer")?;
            let name = name_of(doc, "name", "load balancer")?;
            let zid = cur
                .zones
                .get(zone)
                .with_context(|| format!("no zone {zone:?} in the account"))?;
            let mut body = doc.clone();
            body.remove("zone");
            swap_refs(&mut body, LB_POOL_KEYS, &pools, "pool")?;
            let key = format!("{zone}/{name}");
            let base = format!("/zones/{zid}/load_balancers");
            match cur.load_balancers.get(&key) {
                None => {
                    plan.step(
                        step("create", "load_balancer", &key, vec![]),
                        Method::POST,
                        base,
                        Some(Value::Object(body)),
                    )
                    .await?;
                }
                Some((_, lb)) => {
                    let fields = differing(lb, &body);
                    if !fields.is_empty() {
                        let id = lb["id"].as_str().unwrap_or("");
                        let changed: Doc = body
                            .into_iter()
                            .filter(|(k, _)| fields.contains(k))
                            .collect();
                        plan.step(
                            step("update", "load_balancer", &key, fields),
                            Method::PATCH,
                            format!("{base}/{id}"),
                            Some(Value::Object(changed)),
                        )
                        .await?;
                    }
                }
            }
        }
    }
    let webhooks = match &config.webhooks {
        Some(docs) => {
            upsert(
                &mut plan,
                "webhook",
                "name",
                &format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
                docs,
                &cur.webhooks,
                false,
                &webhook_body,
            )
            .await?
        }
        None => Current::ids(&cur.webhooks),
    };
    if let Some(docs) = &config.notification_policies {
        // In the file a policy names its webhooks and pools; the API wants ids.
        let to_api = |d: &Doc| -> anyhow::Result<Doc> {
            let mut d = d.clone();
            let hooks = d.remove("webhooks").unwrap_or(json!([]));
            let mut hooks = Map::from_iter([("webhooks".to_owned(), hooks)]);
            swap_refs(&mut hooks, &["webhooks"], &webhooks, "webhook")?;
            let list: Vec<Value> = hooks["webhooks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|id| json!({"id": id}))
                .collect();
            d.insert("mechanisms".into(), json!({"webhooks": list}));
            let mut filters = d
                .remove("filters")
                .and_then(|f| f.as_object().cloned())
                .unwrap_or_default();
            swap_refs(&mut filters, &["pool_id"], &pools, "pool")?;
            d.insert("filters".into(), Value::Object(filters));
            d.entry("alert_type")
                .or_insert(json!("load_balancing_health_alert"));
            Ok(d)
        };
        upsert(
            &mut plan,
            "notification_policy",
            "name",
            &format!("/accounts/{a}/alerting/v3/policies"),
            docs,
            &cur.policies,
            false,
            &to_api,
        )
        .await?;
    }
    // Deletions last, referrers before what they refer to.
    let path_of = |base: String, map: &BTreeMap<String, Value>| -> Vec<(String, String)> {
        map.iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    format!("{base}/{}", v["id"].as_str().unwrap_or("")),
                )
            })
            .collect()
    };
    prune(
        &mut plan,
        "notification_policy",
        "name",
        &config.notification_policies,
        path_of(format!("/accounts/{a}/alerting/v3/policies"), &cur.policies).into_iter(),
    )
    .await?;
    prune(
        &mut plan,
        "webhook",
        "name",
        &config.webhooks,
        path_of(
            format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
            &cur.webhooks,
        )
        .into_iter(),
    )
    .await?;
    if let Some(docs) = &config.load_balancers {
        let wanted: Vec<String> = docs
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d.get("zone").and_then(Value::as_str).unwrap_or(""),
                    d.get("name").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect();
        for (key, (zid, lb)) in &cur.load_balancers {
            if !wanted.contains(key) {
                let id = lb["id"].as_str().unwrap_or("");
                plan.step(
                    step("delete", "load_balancer", key, vec![]),
                    Method::DELETE,
                    format!("/zones/{zid}/load_balancers/{id}"),
                    None,
                )
                .await?;
            }
        }
    }
    prune(
        &mut plan,
        "pool",
        "name",
        &config.pools,
        path_of(format!("/accounts/{a}/load_balancers/pools"), &cur.pools).into_iter(),
    )
    .await?;
    prune(
        &mut plan,
        "monitor_group",
        "description",
        &config.monitor_groups,
        path_of(
            format!("/accounts/{a}/load_balancers/monitor_groups"),
            &cur.monitor_groups,
        )
        .into_iter(),
    )
    .await?;
    prune(
        &mut plan,
        "monitor",
        "description",
        &config.monitors,
        path_of(
            format!("/accounts/{a}/load_balancers/monitors"),
            &cur.monitors,
        )
        .into_iter(),
    )
    .await?;
    Ok(plan.steps)
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let config: Config = yaml_serde::from_str(&text)
        .with_context(|| format!("{} is not a Vantage configuration", args.file.display()))?;
    let client = Client::new(&args.server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // A first pass never changes anything: it is the plan (and the dry run).
    let planned = runtime.block_on(apply_config(&client, &config, true, None))?;
    let done = if args.dry_run || planned.is_empty() {
        planned
    } else {
        let bar = (args.output == Output::Text
            && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| {
            let bar = indicatif::ProgressBar::new(planned.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let steps = runtime.block_on(apply_config(&client, &config, false, bar.clone()))?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        steps
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"dry_run": args.dry_run, "changes": done}))?
        ),
        Output::Text => {
            let paint = Paint::stdout();
            if done.is_empty() {
                println!("No changes: the server matches {}.", args.file.display());
            }
            for s in &done {
                let line = match s.action {
                    "create" => paint.green(&format!("+ {} {}", s.kind, s.name)),
                    "delete" => paint.red(&format!("- {} {}", s.kind, s.name)),
                    _ => paint.yellow(&format!(
                        "~ {} {} ({})",
                        s.kind,
                        s.name,
                        s.fields.join(", ")
                    )),
                };
                println!("{line}");
            }
            if args.dry_run && !done.is_empty() {
                println!("(dry run: nothing was changed)");
            }
        }
    }
    Ok(())
}

fn strip(mut v: Value) -> Doc {
    fn clean(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for k in READ_ONLY {
                    map.remove(*k);
                }
                map.values_mut().for_each(clean);
            }
            Value::Array(list) => list.iter_mut().for_each(clean),
            _ => {}
        }
    }
    clean(&mut v);
    v.as_object().cloned().unwrap_or_default()
}

/// Ids → names, the reverse of [`swap_refs`].
fn names_of(map: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(name, v)| (v["id"].as_str().unwrap_or("").to_owned(), name.clone()))
        .collect()
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cur = runtime.block_on(async {
        let account = account_of(&client, None).await?;
        current(&client, account).await
    })?;
    let monitor_names = names_of(&cur.monitors);
    let group_names = names_of(&cur.monitor_groups);
    let pool_names = names_of(&cur.pools);
    let webhook_names = names_of(&cur.webhooks);
    let mut config = Config {
        account: Some(cur.account.clone()),
        ..Config::default()
    };
    config.monitors = Some(cur.monitors.values().map(|m| strip(m.clone())).collect());
    let mut groups = Vec::new();
    for g in cur.monitor_groups.values() {
        let mut d = strip(g.clone());
        swap_members(&mut d, &monitor_names, "monitor")?;
        groups.push(d);
    }
    config.monitor_groups = Some(groups);
    let mut pools = Vec::new();
    for p in cur.pools.values() {
        let mut d = strip(p.clone());
        swap_refs(&mut d, &["monitor"], &monitor_names, "monitor")?;
        swap_refs(&mut d, &["monitor_group"], &group_names, "monitor group")?;
        pools.push(d);
    }
    config.pools = Some(pools);
    let mut lbs = Vec::new();
    for (key, (_, lb)) in &cur.load_balancers {
        let mut d = strip(lb.clone());
        swap_refs(&mut d, LB_POOL_KEYS, &pool_names, "pool")?;
        let zone = key.split('/').next().unwrap_or("");
        d.insert("zone".into(), Value::String(zone.to_owned()));
        lbs.push(d);
    }
    config.load_balancers = Some(lbs);
    config.webhooks = Some(
        cur.webhooks
            .values()
            .map(|w| {
                let mut d = strip(w.clone());
                d.remove("type");
                // Secrets are never shown by the API; name the variable that will hold it.
                d.insert(
                    "secret_env".into(),
                    Value::String("VANTAGE_WEBHOOK_SECRET".into()),
                );
                d
            })
            .collect(),
    );
    let mut policies = Vec::new();
    for p in cur.policies.values() {
        let mut d = strip(p.clone());
        d.remove("mechanisms");
        // From the unstripped policy: stripping removes every `id`, these included.
        let hooks: Vec<Value> = p["mechanisms"]["webhooks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|h| h["id"].as_str())
            .map(|id| {
                Value::String(
                    webhook_names
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| id.to_owned()),
                )
            })
            .collect();
        d.insert("webhooks".into(), Value::Array(hooks));
        if let Some(Value::Object(filters)) = d.get_mut("filters") {
            swap_refs(filters, &["pool_id"], &pool_names, "pool")?;
        }
        policies.push(d);
    }
    config.notification_policies = Some(policies);
    let text = yaml_serde::to_string(&config)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_compares_what_the_file_says() {
        let cur = json!({"a": 1, "b": [{"x": 1.0, "y": 2}], "c": "z"});
        assert!(covers(&cur, &json!({"a": 1.0, "b": [{"x": 1}]})));
        assert!(!covers(&cur, &json!({"b": [{"x": 1}, {"x": 2}]})));
        assert!(!covers(&cur, &json!({"c": "w"})));
        assert!(!covers(&cur, &json!({"d": 0})));
    }

    #[test]
    fn references_swap_both_ways() {
        let ids: BTreeMap<String, String> = [("primary".into(), "p1".into())].into();
        let mut doc: Doc = serde_json::from_value(json!({
            "default_pools": ["primary"], "fallback_pool": "primary",
            "region_pools": {"WEU": ["primary"]}
        }))
        .unwrap_or_default();
        swap_refs(&mut doc, LB_POOL_KEYS, &ids, "pool").unwrap_or(());
        assert_eq!(doc["default_pools"], json!(["p1"]));
        assert_eq!(doc["region_pools"]["WEU"], json!(["p1"]));
        let mut bad: Doc =
            serde_json::from_value(json!({"fallback_pool": "nope"})).unwrap_or_default();
        assert!(swap_refs(&mut bad, LB_POOL_KEYS, &ids, "pool").is_err());
    }
}
