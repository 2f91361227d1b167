//! Answers of single-object reads, rendered once and kept until the catalog or the object's
//! health moves: a `GET` of an unchanged object copies bytes instead of building and
//! serializing a JSON tree (perf put that at a third of the API's time on a `GET` of a pool;
//! BENCHMARKS.md).
//!
//! An entry is stamped with the catalog's generation and the health verdicts it was rendered
//! with, both read before the object: what it holds is at least as new as its stamp, so an
//! answer is never older than the catalog and health a reader sees. The kept verdicts (an
//! `Arc`) cannot be freed and their address reused while the entry lives.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use vantage_core::health::PoolVerdicts;

/// The most bytes kept. Past it, everything is dropped and rendered again on demand: the
/// cache can never grow memory beyond this (README, limits).
pub(crate) const MAX_BYTES: usize = 16 << 20;

/// What an entry answers: the object's kind, its account and its id.
pub(crate) type Key = (&'static str, [u8; 16], [u8; 16]);

#[derive(Debug, Default)]
pub(crate) struct Rendered {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    entries: HashMap<Key, Entry>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    health: Option<Arc<PoolVerdicts>>,
    body: Bytes,
}

fn same(a: Option<&Arc<PoolVerdicts>>, b: Option<&Arc<PoolVerdicts>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

impl Rendered {
    /// The answer kept for `key`, if it was rendered at catalog `generation` with `health`.
    pub(crate) fn get(
        &self,
        key: &Key,
        generation: u64,
        health: Option<&Arc<PoolVerdicts>>,
    ) -> Option<Bytes> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        if inner.generation != generation {
            return None;
        }
        let entry = inner.entries.get(key)?;
        same(entry.health.as_ref(), health).then(|| entry.body.clone())
    }

    /// Keeps `body`, rendered after reading catalog `generation` and `health`. A newer
    /// generation drops every older entry; an older one is not kept.
    pub(crate) fn put(
        &self,
        key: Key,
        generation: u64,
        health: Option<Arc<PoolVerdicts>>,
        body: Bytes,
    ) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if generation < inner.generation || body.len() > MAX_BYTES {
            return;
        }
        if generation > inner.generation || inner.bytes + body.len() > MAX_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
            inner.generation = generation;
        }
        inner.bytes += body.len();
        if let Some(old) = inner.entries.insert(key, Entry { health, body }) {
            inner.bytes -= old.body.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = ("pool", [1; 16], [2; 16]);

    fn verdicts() -> Arc<PoolVerdicts> {
        Arc::new(PoolVerdicts {
            pool: vantage_core::PoolId::from_bytes([2; 16]),
            account: vantage_core::AccountId::from_bytes([1; 16]),
            enabled: true,
            monitored: true,
            healthy: vantage_core::health::Verdict::Healthy,
            regions: vantage_core::health::RegionVerdicts::default(),
            origins: Vec::new(),
        })
    }

    #[test]
    fn an_entry_answers_only_its_generation_and_its_health() {
        let cache = Rendered::default();
        let health = verdicts();
        cache.put(KEY, 3, Some(Arc::clone(&health)), Bytes::from_static(b"a"));
        assert_eq!(cache.get(&KEY, 3, Some(&health)).unwrap(), "a");
        assert!(
            cache.get(&KEY, 4, Some(&health)).is_none(),
            "the catalog moved"
        );
        assert!(
            cache.get(&KEY, 3, Some(&verdicts())).is_none(),
            "health moved"
        );
        assert!(cache.get(&KEY, 3, None).is_none());
        assert!(cache
            .get(&("pool", [1; 16], [3; 16]), 3, Some(&health))
            .is_none());
        // A reader that saw an older generation does not overwrite a newer answer.
        cache.put(
            KEY,
            2,
            Some(Arc::clone(&health)),
            Bytes::from_static(b"old"),
        );
        assert_eq!(cache.get(&KEY, 3, Some(&health)).unwrap(), "a");
        cache.put(KEY, 4, None, Bytes::from_static(b"b"));
        assert!(cache.get(&KEY, 3, Some(&health)).is_none());
        assert_eq!(cache.get(&KEY, 4, None).unwrap(), "b");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_budget() {
        let cache = Rendered::default();
        let big = Bytes::from(vec![b'x'; MAX_BYTES / 2 + 1]);
        cache.put(("pool", [1; 16], [1; 16]), 1, None, big.clone());
        cache.put(("pool", [1; 16], [2; 16]), 1, None, big.clone());
        let inner = cache.inner.read().unwrap();
        assert!(inner.bytes <= MAX_BYTES);
        assert_eq!(inner.entries.len(), 1);
        drop(inner);
        cache.put(
            ("pool", [1; 16], [3; 16]),
            1,
            None,
            Bytes::from(vec![0; MAX_BYTES + 1]),
        );
        assert!(cache.get(&("pool", [1; 16], [3; 16]), 1, None).is_none());
    }
}
