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
