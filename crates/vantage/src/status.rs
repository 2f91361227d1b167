//! `vantage status`: every load balancer, its pools and their origins per region, from a
//! running server's API, with the reason for everything that is down.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::paint::Paint;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: crate::client::ServerArgs,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Report {
    load_balancers: Vec<LbStatus>,
    pools: Vec<PoolStatus>,
}

#[derive(Debug, Serialize)]
struct LbStatus {
    name: String,
    zone: String,
    enabled: bool,
    proxied: bool,
    steering_policy: String,
    default_pools: Vec<String>,
    fallback_pool: String,
    /// The pool failover order sends traffic to now (for `off` and unset policies).
    active_pool: Option<String>,
}

#[derive(Debug, Serialize)]
struct PoolStatus {
    id: String,
    name: String,
    account: String,
    /// Healthy, Degraded (up, but some origins down), Critical, Unknown or Disabled.
    state: &'static str,
    monitored: bool,
    origins: Vec<OriginStatus>,
}

#[derive(Debug, Serialize)]
struct OriginStatus {
    name: String,
    address: String,
    enabled: bool,
    healthy: Option<bool>,
    failure_reason: Option<String>,
    /// Per checking region: healthy, and the reason when not.
    regions: BTreeMap<String, RegionVerdict>,
}

#[derive(Debug, Serialize)]
struct RegionVerdict {
    healthy: Option<bool>,
    failure_reason: Option<String>,
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn state(
    enabled: bool,
    monitored: bool,
    healthy: Option<bool>,
    origins: &[OriginStatus],
) -> &'static str {
    let down = origins.iter().any(|o| o.enabled && o.healthy != Some(true));
    match (enabled, monitored, healthy) {
        (false, _, _) => "Disabled",
        (true, false, _) => "Healthy",
        (true, true, None) => "Unknown",
        (true, true, Some(false)) => "Critical",
        (true, true, Some(true)) if down => "Degraded",
        (true, true, Some(true)) => "Healthy",
    }
}

async fn gather(client: &Client) -> anyhow::Result<Report> {
    let mut pools = Vec::new();
    let mut load_balancers = Vec::new();
    for account in client.list("/accounts").await? {
        let a = text(&account, "id");
        for p in client
            .list(&format!("/accounts/{a}/load_balancers/pools"))
            .await?
        {
            let id = text(&p, "id");
            let monitored = p["monitor"].is_string();
            let health = if monitored {
                let h = client
                    .get(
                        &format!("/accounts/{a}/load_balancers/pools/{id}/health"),
                        true,
                    )
                    .await?;
                h["result"]["pop_health"].clone()
            } else {
                Value::Null
            };
            let origins: Vec<OriginStatus> = p["origins"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let address = text(o, "address");
                    let mut regions = BTreeMap::new();
                    if let Some(obj) = health.as_object() {
                        for (region, rv) in obj {
                            let Some(list) = rv["origins"].as_array() else {
                                continue;
                            };
                            if region == "origins" {
                                continue;
                            }
                            // Entries follow the pool's origin order; the address is the key,
                            // which two origins on one host (different ports) share.
                            let verdict = list
                                .get(i)
                                .and_then(|e| e.get(&address))
                                .or_else(|| list.iter().find_map(|e| e.get(&address)));
                            if let Some(verdict) = verdict {
                                regions.insert(
                                    region.clone(),
                                    RegionVerdict {
                                        healthy: verdict["healthy"].as_bool(),
                                        failure_reason: verdict["failure_reason"]
                                            .as_str()
                                            .filter(|r| *r != "No failures")
                                            .map(str::to_owned),
                                    },
                                );
                            }
                        }
                    }
                    OriginStatus {
                        name: text(o, "name"),
                        address,
                        enabled: o["enabled"].as_bool().unwrap_or(true),
                        healthy: if monitored {
                            o["healthy"].as_bool()
                        } else {
                            Some(true)
                        },
                        failure_reason: o["failure_reason"]
                            .as_str()
                            .filter(|r| *r != "No failures")
                            .map(str::to_owned),
                        regions,
                    }
                })
                .collect();
            let enabled = p["enabled"].as_bool().unwrap_or(true);
            let healthy = p["healthy"].as_bool();
            pools.push(PoolStatus {
                state: state(enabled, monitored, healthy, &origins),
                id,
                name: text(&p, "name"),
                account: a.clone(),
                monitored,
                origins,
            });
        }
        for zone in client.list(&format!("/zones?account.id={a}")).await? {
            let z = text(&zone, "id");
            for lb in client.list(&format!("/zones/{z}/load_balancers")).await? {
                let ids = |key: &str| -> Vec<String> {
                    lb[key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                load_balancers.push(LbStatus {
                    name: text(&lb, "name"),
                    zone: text(&zone, "name"),
                    enabled: lb["enabled"].as_bool().unwrap_or(true),
                    proxied: lb["proxied"].as_bool().unwrap_or(false),
                    steering_policy: text(&lb, "steering_policy"),
                    default_pools: ids("default_pools"),
                    fallback_pool: text(&lb, "fallback_pool"),
                    active_pool: None,
                });
            }
        }
    }
    let usable = |id: &str| {
        pools
            .iter()
            .any(|p| p.id == id && matches!(p.state, "Healthy" | "Degraded"))
    };
    for lb in &mut load_balancers {
        if matches!(lb.steering_policy.as_str(), "off" | "") && lb.enabled {
            lb.active_pool = lb
                .default_pools
                .iter()
                .find(|p| usable(p))
                .cloned()
                .or_else(|| Some(lb.fallback_pool.clone()));
        }
    }
    Ok(Report {
        load_balancers,
        pools,
    })
}

fn print_text(report: &Report) {
    let paint = Paint::stdout();
    let state = |s: &'static str| match s {
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
    let print_pool = |p: &PoolStatus, marks: &str| {
        let up = p.origins.iter().filter(|o| o.healthy == Some(true)).count();
        println!(
            "  {marks} {:<24} {:<10} {up}/{} origins up{}",
            p.name,
            state(p.state),
            p.origins.len(),
            if p.monitored { "" } else { " (no monitor)" }
        );
        for o in &p.origins {
            let mut line = format!(
                "        {} {:<20} {:<22}",
                verdict(o.healthy),
                o.name,
                o.address
            );
            for (region, v) in &o.regions {
                line.push_str(&format!(" {} {region}", verdict(v.healthy)));
            }
            if !o.enabled {
                line.push_str(&paint.dim(" (disabled)"));
            }
            println!("{line}");
            for (region, v) in &o.regions {
                if let Some(reason) = &v.failure_reason {
                    println!("            {region}: {}", paint.red(reason));
                }
            }
            if o.regions.is_empty() {
                if let Some(reason) = &o.failure_reason {
                    println!("            {}", paint.red(reason));
                }
            }
        }
    };
    for lb in &report.load_balancers {
        let flags = [
            (!lb.enabled).then_some("disabled"),
            lb.proxied.then_some("proxied"),
            (!lb.proxied).then_some("DNS only"),
        ];
        let flags: Vec<&str> = flags.into_iter().flatten().collect();
        let policy = if lb.steering_policy.is_empty() {
            "default"
        } else {
            &lb.steering_policy
        };
        println!(
            "{}  {}",
            paint.bold(&lb.name),
            paint.dim(&format!("({}; steering {policy})", flags.join(", ")))
        );
        for id in &lb.default_pools {
            if let Some(p) = by_id(id) {
                let mark = if lb.active_pool.as_deref() == Some(id.as_str()) {
                    "★"
                } else {
                    " "
                };
                print_pool(p, mark);
            }
        }
        if let Some(p) = by_id(&lb.fallback_pool) {
            let mark = if lb.active_pool.as_deref() == Some(lb.fallback_pool.as_str())
                && !lb.default_pools.contains(&lb.fallback_pool)
            {
                "★"
            } else {
                " "
            };
            println!("  {}", paint.dim("fallback:"));
            print_pool(p, mark);
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
            print_pool(p, " ");
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
    let report = runtime.block_on(gather(&client))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print_text(&report),
    }
    Ok(())
}
