//! Delivers notifications from the outbox to their webhooks: at least once (an attempt is
//! recorded only after it ends, so a crash means one more attempt, never none), retried with
//! exponential backoff, each attempt in the delivery log. The outbox rows were written with
//! the health events that called for them, so a restart neither loses nor re-creates one.

use std::sync::Arc;
use std::time::Duration;

use vantage_api::AppState;
use vantage_core::Timestamp;
use vantage_store::Delivery;

/// Attempts before a notification is given up (about 2 hours of retrying).
const MAX_ATTEMPTS: u32 = 20;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(20)).min(MAX_BACKOFF)
}

pub async fn deliver(state: Arc<AppState>) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notifications: no HTTP client");
            return;
        }
    };
    let mut changes = state.outbox_changes();
    loop {
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.due_deliveries(100)).await {
            Ok(Ok(due)) => {
                for d in due {
                    attempt(&state, &http, d).await;
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "notifications: reading the outbox"),
            Err(e) => tracing::warn!(error = %e, "notifications: outbox job failed"),
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn attempt(state: &Arc<AppState>, http: &reqwest::Client, d: Delivery) {
    let webhook = d.item.webhook;
    let result = match state.webhook(webhook) {
        None => Err("the webhook destination was deleted".to_owned()),
        Some(w) => {
            let mut req = http
                .post(&w.spec.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(d.item.payload.clone());
            if !w.spec.secret.is_empty() {
                req = req.header("cf-webhook-auth", &w.spec.secret);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                // Without the URL: webhook URLs often carry credentials.
                Err(e) => Err(e.without_url().to_string()),
            }
        }
    };
    let attempts = d.attempts + 1;
    let outcome = result.map_err(|error| {
        let give_up = attempts >= MAX_ATTEMPTS || state.webhook(webhook).is_none();
        let next = (!give_up).then(|| {
            let now = vantage_api::state::now().unix_micros();
            let wait = i64::try_from(backoff(attempts).as_micros()).unwrap_or(i64::MAX);
            Timestamp::from_unix_micros(now.saturating_add(wait))
        });
        tracing::warn!(%webhook, attempts, %error, gave_up = give_up, "notification not delivered");
        (error, next)
    });
    let st = Arc::clone(state);
    let seq = d.seq;
    match tokio::task::spawn_blocking(move || st.delivery_attempted(seq, outcome)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "notifications: recording an attempt"),
        Err(e) => tracing::error!(error = %e, "notifications: recording job failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
