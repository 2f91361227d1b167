//! A follower's side: it takes the judge's verdicts, states, contacts and RTTs from the store,
//! in an order that never shows anything older than a verdict it shows.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vantage_core::health::Engine;
use vantage_core::routing::PoolRtt;
use vantage_core::PoolId;
use vantage_store::StoreError;

use super::{FOLLOW_VERDICTS_EVERY, PENDING_STATES_AT_MOST, REBUILD_EVERY_MICROS};
use crate::Controller;

impl Controller {
    /// A follower takes the verdicts the judge published since it last looked, and publishes
    /// them as its own. Blocking (the store).
    pub fn follow_verdicts(&self) -> Result<(), StoreError> {
        if self.judges() {
            return Ok(());
        }
        // The verdicts first, then what the judge wrote before them (their states, the
        // locations' contacts): read in this order, nothing shown is older than a verdict.
        let seen = self.role.seen.load(Ordering::Acquire);
        let (next, decided) = self.store.verdicts_since(seen)?;
        self.follow_contacts()?;
        self.follow_judge()?;
        if decided.is_empty() {
            return Ok(());
        }
        let mut engine = self.engine();
        if self.judges() {
            // Became the judge meanwhile: its own verdicts stand.
            return Ok(());
        }
        {
            let mut adopted = self.role.adopted.lock().unwrap_or_else(|p| p.into_inner());
            for d in decided {
                engine.adopt(&d);
                adopted.insert(d.pool, d);
            }
        }
        self.role.seen.store(next, Ordering::Release);
        let view = engine.view();
        drop(engine);
        self.publish_adopted(view);
        Ok(())
    }

    /// A follower's engine, just rebuilt or reconfigured on its own, takes the judge's
    /// verdicts again (call with the engine locked). Keeps the copy bounded: verdicts of pools
    /// this engine does not know are kept for a catalog that is behind, but not past twice
    /// the pools it knows.
    pub(crate) fn adopt_judged(&self, engine: &mut Engine) {
        if self.judges() {
            return;
        }
        {
            let mut pending = self.role.pending.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = std::mem::take(&mut *pending);
            for (key, location, state) in waiting {
                if let Err(state) = engine.restore_state(&key, &location, state) {
                    pending.push((key, location, state));
                }
            }
        }
        let mut adopted = self.role.adopted.lock().unwrap_or_else(|p| p.into_inner());
        let mut unknown = Vec::new();
        for (id, d) in adopted.iter() {
            if !engine.adopt(d) && engine.view().pool(*id).is_none() {
                unknown.push(*id);
            }
        }
        if unknown.len() > engine.view().len() + 1000 {
            for id in unknown {
                adopted.remove(&id);
            }
        }
    }

    pub(super) fn publish_adopted(&self, view: vantage_core::health::HealthView) {
        if !view.same(&self.health.load()) {
            self.health.store(Arc::new(view));
            self.verdict_version.send_modify(|v| *v += 1);
        }
    }

    /// A follower's engine rebuilt from every stored location state (their per-location
    /// detail; its verdicts stay the judge's), when it has none yet or its last rebuild is
    /// older than [`REBUILD_EVERY_MICROS`] (states the judge deleted go then); otherwise only the
    /// states written since it last looked. Blocking (the store).
    pub fn follow_judge(&self) -> Result<(), StoreError> {
        if self.judges() {
            return Ok(());
        }
        let now = self.now().unix_micros();
        let seen = self.role.states_seen.load(Ordering::Acquire);
        let rebuilt = self.role.rebuilt_at.load(Ordering::Acquire);
        if rebuilt == 0 || now.saturating_sub(rebuilt) >= REBUILD_EVERY_MICROS {
            return self.resume_from_store();
        }
        let (next, states) = self.store.states_since(seen)?;
        if states.is_empty() {
            return Ok(());
        }
        let mut engine = self.engine();
        if self.judges() {
            return Ok(());
        }
        let mut pending = self.role.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (key, location, state) in states {
            if let Err(state) = engine.restore_state(&key, &location, state) {
                pending.push((key, location, state));
            }
        }
        if pending.len() > PENDING_STATES_AT_MOST {
            // Targets this replica may never know (deleted meanwhile): read all again.
            pending.clear();
            self.role.rebuilt_at.store(0, Ordering::Release);
        }
        self.role.states_seen.store(next, Ordering::Release);
        Ok(())
    }

    /// Rebuilds the engine from the stored location states, as at a restart (their votes
    /// count, with the usual grace), and publishes its verdicts; a follower's verdicts are
    /// then the judge's again.
    pub(super) fn resume_from_store(&self) -> Result<(), StoreError> {
        let following = !self.judges();
        let (seen, states) = if following {
            self.store.states_since(0)?
        } else {
            (0, self.store.load_health()?)
        };
        // The catalog stays locked while the engine is rebuilt from its plan (catalog before
        // engine, as everywhere): a reconfiguration cannot slip in between and be lost.
        let catalog = self.catalog();
        let mut engine = self.engine();
        // Everything is read afresh: what waited for the catalog is older than that.
        self.role
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let numbered = engine.assignment_seq();
        *engine = Engine::new(&catalog.health_plan(), states, self.now());
        // Versions keep rising: an agent holding one from before is sent the whole again.
        engine.continue_assignments_after(numbered);
        self.adopt_judged(&mut engine);
        let view = engine.view();
        drop((engine, catalog));
        if following {
            self.role.states_seen.store(seen, Ordering::Release);
            self.role
                .rebuilt_at
                .store(self.now().unix_micros(), Ordering::Release);
        }
        if !view.same_verdicts(&self.health.load()) {
            self.publish_adopted(view);
        }
        Ok(())
    }

    /// A follower takes the judge's probe-location contacts.
    pub(super) fn follow_contacts(&self) -> Result<(), StoreError> {
        let contacts = self.store.contacts()?;
        let mut engine = self.engine();
        if !self.judges() {
            engine.restore_contacts(contacts);
        }
        Ok(())
    }

    /// A follower takes the judge's pools' RTTs; its routing follows when they moved.
    pub(super) fn follow_rtts(&self) -> Result<(), StoreError> {
        let rtts: HashMap<PoolId, PoolRtt> = self.store.rtts()?.into_iter().collect();
        let mut given = self
            .role
            .rtts_given
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if **given != rtts {
            *given = Arc::new(rtts);
            drop(given);
            self.verdict_version.send_modify(|v| *v += 1);
        }
        Ok(())
    }

    /// The judge's pools' RTTs, as this follower last read them.
    pub(crate) fn judges_rtts(&self) -> Arc<HashMap<PoolId, PoolRtt>> {
        Arc::clone(
            &self
                .role
                .rtts_given
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }
}

/// Keeps a follower's verdicts and per-location detail the judge's: reads what the judge
/// published and the states it wrote when the store says it did, and every
/// [`FOLLOW_VERDICTS_EVERY`] anyway (nothing while this controller judges).
pub async fn follow_verdicts(state: Arc<Controller>) {
    let mut every = tokio::time::interval(FOLLOW_VERDICTS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let published = state.role.verdicts_published();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = published.notified() => {}
        }
        if state.judges() {
            continue;
        }
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.follow_verdicts()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the judge's verdicts could not be read"),
            Err(e) => tracing::warn!(error = %e, "the verdict job failed"),
        }
    }
}
