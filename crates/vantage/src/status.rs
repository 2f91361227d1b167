//! `vantage status`: every load balancer, its pools and their origins per region, with the
//! reason for everything that is down. It reads the dashboard's state document, so the
//! terminal and the browser show the same states, decided once by the server's core.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::paint::{printable, Paint};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: crate::client::ServerArgs,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    load_balancers: Vec<LbStatus>,
    pools: Vec<PoolStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LbStatus {
    name: String,
    zone: Option<String>,
    enabled: bool,
    proxied: bool,
    steering_policy: String,
    default_pools: Vec<String>,
    fallback_pool: String,
    /// The pools taking traffic now.
    serving: Vec<String>,
    /// As the API renders them, in array order.
    #[serde(default)]
    rules: Vec<RuleStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RuleStatus {
    name: String,
    condition: String,
    disabled: bool,
    priority: u64,
    terminates: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fixed_response: Option<serde_json::Value>,
    #[serde(default)]
    overrides: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PoolStatus {
    id: String,
    name: String,
    /// Healthy, Degraded (up, but some origins down), Critical, Unknown or Disabled.
    state: String,
    monitored: bool,
    origins: Vec<OriginStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OriginStatus {
    name: String,
    address: String,
    enabled: bool,
    healthy: Option<bool>,
    failure_reason: Option<String>,
    /// Per checking region: its verdict.
    #[serde(default)]
    regions: Option<BTreeMap<String, Option<bool>>>,
}

fn print_text(report: &Report) {
    let paint = Paint::stdout();
    let state = |s: &str| match s {
        "Healthy" => paint.green(s),
        "Degraded" => paint.yellow(s),
        "Critical" => paint.red(s),
        _ => paint.dim(s),
    };
    let verdict = |h: Option<bool>| match h {
        Some(true) => paint.green("✔"),
        Some(false) => paint.red("✘"),
        None => paint.dim("?"),
    };
    let by_id = |id: &str| report.pools.iter().find(|p| p.id == id);
    let print_pool = |p: &PoolStatus, star: bool| {
        let up = p.origins.iter().filter(|o| o.healthy == Some(true)).count();
        println!(
            "  {} {:<24} {:<10} {up}/{} origins up{}",
            if star { "★" } else { " " },
            printable(&p.name),
            state(&p.state),
            p.origins.len(),
            if p.monitored { "" } else { " (no monitor)" }
        );
        for o in &p.origins {
            let mut line = format!(
                "        {} {:<20} {:<22}",
                verdict(o.healthy),
                printable(&o.name),
                printable(&o.address)
            );
            for (region, v) in o.regions.iter().flatten() {
                line.push_str(&format!(" {} {region}", verdict(*v)));
            }
            if !o.enabled {
                line.push_str(&paint.dim(" (disabled)"));
            }
            println!("{line}");
            if let Some(reason) = &o.failure_reason {
                println!("            {}", paint.red(&printable(reason)));
            }
        }
    };
    for lb in &report.load_balancers {
        let mut flags = vec![if lb.proxied { "proxied" } else { "DNS only" }];
        if !lb.enabled {
            flags.insert(0, "disabled");
        }
        let policy = if lb.steering_policy.is_empty() {
            "default"
        } else {
            &lb.steering_policy
        };
        println!(
            "{}  {}",
            paint.bold(&printable(&lb.name)),
            paint.dim(&format!("({}; steering {policy})", flags.join(", ")))
        );
        for id in &lb.default_pools {
            if let Some(p) = by_id(id) {
                print_pool(p, lb.serving.contains(id));
            }
        }
        if let Some(p) = by_id(&lb.fallback_pool) {
            println!("  {}", paint.dim("fallback:"));
            let star = lb.serving.contains(&lb.fallback_pool)
                && !lb.default_pools.contains(&lb.fallback_pool);
            print_pool(p, star);
        }
        print_rules(&paint, &lb.rules, &|id: &str| {
            by_id(id).map_or(id.to_owned(), |p| p.name.clone())
        });
        println!();
    }
    let unused: Vec<&PoolStatus> = report
        .pools
        .iter()
        .filter(|p| {
            !report
                .load_balancers
                .iter()
                .any(|lb| lb.default_pools.contains(&p.id) || lb.fallback_pool == p.id)
        })
        .collect();
    if !unused.is_empty() {
        println!("{}", paint.bold("Pools without a load balancer"));
        for p in unused {
            print_pool(p, false);
        }
    }
    if report.load_balancers.is_empty() && report.pools.is_empty() {
        println!("No load balancers or pools yet.");
    }
}

/// A load balancer's rules in evaluation order: what each tests and what it does.
fn print_rules(paint: &Paint, rules: &[RuleStatus], pool_name: &dyn Fn(&str) -> String) {
    if rules.is_empty() {
        return;
    }
    println!("  {}", paint.dim("rules, in order:"));
    let mut order: Vec<(usize, &RuleStatus)> = rules.iter().enumerate().collect();
    order.sort_by_key(|(i, r)| (r.priority, *i));
    for (i, r) in order {
        let mut does: Vec<String> = Vec::new();
        if let Some(f) = &r.fixed_response {
            does.push(format!("answers {}", f["status_code"]));
        }
        for (k, v) in &r.overrides {
            does.push(match (k.as_str(), v) {
                ("default_pools", serde_json::Value::Array(ids)) => format!(
                    "pools {}",
                    ids.iter()
                        .map(|id| pool_name(id.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ("fallback_pool", id) => {
                    format!("fallback {}", pool_name(id.as_str().unwrap_or_default()))
                }
                (k, _) => k.to_owned(),
            });
        }
        if r.terminates && r.fixed_response.is_none() {
            does.push("stops".to_owned());
        }
        let name = if r.name.is_empty() {
            format!("#{i}")
        } else {
            r.name.clone()
        };
        let condition = if r.condition.is_empty() {
            "always"
        } else {
            &r.condition
        };
        let line = format!(
            "    {} when {} → {}",
            paint.bold(&printable(&name)),
            printable(condition),
            printable(&if does.is_empty() {
                "nothing".to_owned()
            } else {
                does.join("; ")
            })
        );
        if r.disabled {
            println!("{} {}", paint.dim(&line), paint.dim("(disabled)"));
        } else {
            println!("{line}");
        }
    }
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = runtime.block_on(client.dashboard_state())?;
    let report: Report = serde_json::from_value(state)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print_text(&report),
    }
    Ok(())
}
