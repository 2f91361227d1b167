//! Completed HTTP checks per second: 64 checks in flight, each on a new connection (as real
//! health checks are), for 10 seconds against `VANTAGE_BENCH_TARGET` (`host:port`, e.g. a local
//! nginx `return 200`). `bench/health.sh` runs it beside `wrk -H "Connection: close"`.
//! With `VANTAGE_BENCH_CHECKS=N` it stops after N checks instead, a fixed workload whose
//! instructions `bench/probe_instructions.sh` counts.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vantage_core::health::Outcome;
use vantage_core::monitor::MonitorDraft;
use vantage_probe::{Prober, Target};

fn main() {
    let Ok(target) = std::env::var("VANTAGE_BENCH_TARGET") else {
        println!("throughput: set VANTAGE_BENCH_TARGET=host:port (bench/health.sh does) — skipped");
        return;
    };
    let (host, port) = target.rsplit_once(':').unwrap();
    let (host, port) = (host.to_owned(), port.parse::<u16>().unwrap());
    let concurrency: usize = std::env::var("VANTAGE_BENCH_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let secs: u64 = std::env::var("VANTAGE_BENCH_SECONDS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let spec = Arc::new(MonitorDraft { expected_codes: Some("200".into()), ..Default::default() }.validate().unwrap());
        let prober = Prober::new(None, None).unwrap();
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let budget: Option<u64> = std::env::var("VANTAGE_BENCH_CHECKS").ok().and_then(|n| n.parse().ok());
        let started = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (prober, spec, host, ok, failed) = (prober.clone(), Arc::clone(&spec), host.clone(), Arc::clone(&ok), Arc::clone(&failed));
                let started = Arc::clone(&started);
                tokio::spawn(async move {
                    loop {
                        let more = match budget {
                            Some(n) => started.fetch_add(1, Ordering::Relaxed) < n,
                            None => Instant::now() < deadline,
                        };
                        if !more {
                            break;
                        }
                        let t = Target { spec: &spec, address: &host, port, host: None, user_agent: "vantage-bench" };
                        match prober.check(&t).await.outcome {
                            Outcome::Http { status: 200, .. } => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        println!("RESULT probe_checks_per_s={:.0} completed={ok} failed={failed} seconds={elapsed:.1} concurrency={concurrency}", ok as f64 / elapsed);
    });
}
