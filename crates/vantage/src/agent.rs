//! The probe agent built into `vantage serve`: one probe location that takes its assignment
//! from the controller, checks every target on schedule and hands the facts back. Remote
//! agents run the same loop against the controller over the network.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use vantage_api::state::now;
use vantage_api::AppState;
use vantage_core::health::engine::Assignment;
use vantage_core::health::{Location, ProbeKey, Schedule};
use vantage_probe::{Prober, Target};

/// Checks in flight at once; beyond it the schedule waits (and lateness shows in metrics).
const MAX_IN_FLIGHT: usize = 4096;

fn user_agent(a: &Assignment) -> String {
    format!(
        "Mozilla/5.0 (compatible; Vantage-Health-Check/{}; pool: {})",
        env!("CARGO_PKG_VERSION"),
        a.pools.join(",")
    )
}

/// How late checks start against their schedule, summarised in the log once a minute.
#[derive(Debug, Default)]
struct Lateness {
    micros: Vec<u64>,
    window_start: Option<i64>,
}

impl Lateness {
    const WINDOW: i64 = 60_000_000;

    fn add(&mut self, late_micros: u64, now: i64) {
        let start = *self.window_start.get_or_insert(now);
        self.micros.push(late_micros);
        if now - start >= Self::WINDOW {
            self.micros.sort_unstable();
            let pick =
                |q: f64| self.micros[((self.micros.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            tracing::info!(
                "probes: {} checks started in the last {:.0} s; lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                self.micros.len(),
                (now - start) as f64 / 1e6,
                pick(0.5),
                pick(0.99),
                pick(1.0)
            );
            self.micros.clear();
            self.window_start = Some(now);
        }
    }
}

pub async fn run(state: Arc<AppState>, prober: Prober, location: Location) {
    tracing::info!(%location, "probe agent started");
    let mut changes = state.assignment_changes();
    let mut schedule = Schedule::default();
    let mut targets: HashMap<ProbeKey, Arc<(Assignment, String)>> = HashMap::new();
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut lateness = Lateness::default();
    let mut reload = true;
    loop {
        if reload {
            let assignment = state.assignment(location.region);
            schedule.set(
                assignment.iter().map(|a| (a.key.clone(), a.spec.interval)),
                now(),
            );
            targets = assignment
                .into_iter()
                .map(|a| {
                    let ua = user_agent(&a);
                    (a.key.clone(), Arc::new((a, ua)))
                })
                .collect();
            tracing::debug!(targets = targets.len(), "assignment loaded");
            reload = false;
        }
        let wait = schedule.next_deadline().map(|d| {
            Duration::from_micros(u64::try_from(d.unix_micros() - now().unix_micros()).unwrap_or(0))
        });
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                reload = true;
            }
            () = sleep_or_forever(wait) => {
                for (key, due_at) in schedule.due(now()) {
                    let Some(target) = targets.get(&key).cloned() else { continue };
                    let Ok(permit) = Arc::clone(&limit).acquire_owned().await else { return };
                    let started = now().unix_micros();
                    lateness.add(u64::try_from(started - due_at.unix_micros()).unwrap_or(0), started);
                    let (state, prober, location) = (Arc::clone(&state), prober.clone(), location.clone());
                    tokio::spawn(async move {
                        let (a, ua) = &*target;
                        let t = Target { spec: &a.spec, address: &a.key.address, port: a.key.port, host: a.key.host.as_deref(), user_agent: ua };
                        let facts = prober.check(&t).await;
                        state.record(&location, &a.key, &facts);
                        drop(permit);
                    });
                }
            }
        }
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Keeps the health engine in step with the catalog. Bursts of writes are coalesced, so a
/// change takes effect about 100 ms after the write that made it.
pub async fn follow_config(state: Arc<AppState>) {
    let mut changes = state.config_changes();
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        changes.borrow_and_update();
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.reconfigure()).await {
            Ok(n) if n > 0 => tracing::debug!(events = n, "configuration changed verdicts"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconfiguring health failed"),
        }
    }
}

/// Previews from the built-in location.
pub struct LocalPreviews {
    pub prober: Prober,
    pub location: Location,
}

impl vantage_api::preview::PreviewRunner for LocalPreviews {
    fn locations(&self) -> Vec<Location> {
        vec![self.location.clone()]
    }

    fn check<'a>(
        &'a self,
        _: &'a Location,
        spec: &'a vantage_core::monitor::MonitorSpec,
        address: &'a str,
        port: u16,
        host: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = vantage_core::health::Facts> + Send + 'a>>
    {
        Box::pin(async move {
            let ua = format!(
                "Mozilla/5.0 (compatible; Vantage-Health-Check/{}; preview)",
                env!("CARGO_PKG_VERSION")
            );
            self.prober
                .check(&Target {
                    spec,
                    address,
                    port,
                    host,
                    user_agent: &ua,
                })
                .await
        })
    }
}

/// Lets stale votes expire: once a second, off the async threads.
pub async fn tick(state: Arc<AppState>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let st = Arc::clone(&state);
        if let Err(e) = tokio::task::spawn_blocking(move || st.tick()).await {
            tracing::error!(error = %e, "health tick failed");
        }
    }
}
