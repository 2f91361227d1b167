//! Delivers notifications from the outbox to their webhooks: at least once (an attempt is
//! recorded only after it ends, so a crash means one more attempt, never none), retried with
//! exponential backoff, each attempt in the delivery log. The outbox rows were written with
//! the health events that called for them, so a restart neither loses nor re-creates one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Controller;
use vantage_core::notification::Delivery;
use vantage_core::notification::{internal_address, next_attempt};
use vantage_core::{AccountId, WebhookId};

/// Destinations attempted at once. Each has at most one request in flight, so a receiver
/// that stalls holds one place for at most the request timeout and delays nobody else.
const IN_FLIGHT: usize = 32;
/// Of those, one account's at most: an account with many stalled receivers cannot take
/// every place from the others.
const IN_FLIGHT_PER_ACCOUNT: usize = 8;
/// Due notifications read per round (one per destination).
const DUE_WINDOW: usize = 1024;

/// The destinations being attempted, and how many per account.
#[derive(Debug, Default)]
struct Busy {
    destinations: HashSet<WebhookId>,
    per_account: vantage_core::tally::Tally<AccountId>,
}

impl Busy {
    /// Takes a place for `webhook` of `account`, if one is free.
    fn take(&mut self, webhook: WebhookId, account: AccountId) -> bool {
        if self.destinations.len() >= IN_FLIGHT
            || self.per_account.get(&account) >= IN_FLIGHT_PER_ACCOUNT
            || !self.destinations.insert(webhook)
        {
            return false;
        }
        self.per_account.add(account);
        true
    }

    fn give_back(&mut self, webhook: WebhookId, account: AccountId) {
        self.destinations.remove(&webhook);
        self.per_account.remove_one(&account);
    }
}
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves webhook host names and keeps only addresses outside the installation
/// (`internal_address`), so a name that resolves to loopback or a metadata service — even
/// one that changed its answer since the webhook was created — is never posted to.
#[derive(Debug)]
struct OutsideOnly;

impl reqwest::dns::Resolve for OutsideOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| internal_address(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses inside this installation").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub async fn deliver(state: Arc<Controller>) {
    let mut builder = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if !state.installation().allow_internal_webhooks {
        builder = builder.dns_resolver(Arc::new(OutsideOnly));
    }
    let http = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notifications: no HTTP client");
            return;
        }
    };
    let busy: Arc<Mutex<Busy>> = Arc::default();
    let finished = Arc::new(tokio::sync::Notify::new());
    let mut changes = state.outbox_changes();
    loop {
        let st = Arc::clone(&state);
        // One due notification per destination, oldest first, and many more than there are
        // places: an account whose share is used up, or whose receivers are busy, leaves the
        // remaining places to the destinations behind it.
        match tokio::task::spawn_blocking(move || st.due_deliveries(DUE_WINDOW)).await {
            Ok(Ok(due)) => {
                for d in due {
                    let (webhook, account) = (d.item.webhook, d.item.account);
                    if !busy
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(webhook, account)
                    {
                        continue;
                    }
                    let (state, http, busy, finished) = (
                        Arc::clone(&state),
                        http.clone(),
                        Arc::clone(&busy),
                        Arc::clone(&finished),
                    );
                    tokio::spawn(async move {
                        attempt(&state, &http, d).await;
                        busy.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .give_back(webhook, account);
                        finished.notify_one();
                    });
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "notifications: reading the outbox"),
            Err(e) => tracing::warn!(error = %e, "notifications: outbox job failed"),
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = finished.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// How long one attempt holds its claim on a notification: well past the request's timeout,
/// so it ends by itself only when the controller died mid-attempt.
const CLAIM: Duration = Duration::from_secs(60);

async fn attempt(state: &Arc<Controller>, http: &reqwest::Client, d: Delivery) {
    // Another controller on the same store may have taken it since it was listed as due.
    let st = Arc::clone(state);
    let seq = d.seq;
    match tokio::task::spawn_blocking(move || st.claim_delivery(seq, CLAIM)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "notifications: claiming a delivery");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "notifications: claiming a delivery");
            return;
        }
    }
    let webhook = d.item.webhook;
    let result = match state.webhook(webhook) {
        None => Err("the webhook destination was deleted".to_owned()),
        Some(w) => match state.forbidden_webhook(&w.spec.url) {
            // Created before such targets were refused, or the operator's allowance is gone.
            Some(why) => Err(format!("the URL points inside this installation ({why})")),
            None => {
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
        },
    };
    let attempts = d.attempts + 1;
    let outcome = result.map_err(|error| {
        // The retry schedule is the core's; a deleted destination is given up at once.
        let next = state
            .webhook(webhook)
            .and_then(|_| next_attempt(attempts, state.now()));
        let give_up = next.is_none();
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
    fn one_account_cannot_take_every_delivery_place() {
        let mut busy = Busy::default();
        let (a, b) = (
            AccountId::from_bytes([1; 16]),
            AccountId::from_bytes([2; 16]),
        );
        let hook = |i: u8| WebhookId::from_bytes([i; 16]);
        for i in 0..IN_FLIGHT_PER_ACCOUNT as u8 {
            assert!(busy.take(hook(i), a));
        }
        assert!(!busy.take(hook(100), a), "account A's share is used up");
        assert!(busy.take(hook(101), b), "account B still gets a place");
        assert!(!busy.take(hook(101), b), "one request per destination");
        busy.give_back(hook(0), a);
        assert!(
            busy.take(hook(100), a),
            "a finished delivery frees its place"
        );
    }
}
