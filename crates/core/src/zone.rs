//! DNS zones: the namespaces load balancers live in.

use crate::{AccountId, Timestamp, ZoneId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: ZoneId,
    pub account: AccountId,
    /// Lower case, no trailing dot; unique across the installation so that a hostname
    /// resolves to exactly one zone.
    pub name: String,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
    /// An installation operator allowed this zone to overlap a zone of another account
    /// (`vantage zone create --allow-overlap`). Without it, of two overlapping zones of
    /// different accounts only the older is served (see `Catalog::served_zones`).
    pub overlap_allowed: bool,
}

/// Whether a new zone may overlap (equal, contain or fall inside) another account's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Every tenant-facing path: another account's namespace is not yours to take.
    Refuse,
    /// The installation operator delegates part of one account's namespace to another.
    AllowedByOperator,
}

/// `inner` is `outer` or a name below it.
pub fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || inner
            .strip_suffix(outer)
            .is_some_and(|head| head.ends_with('.'))
}

/// The names above `name`, nearest first (`a.b.c` → `b.c`, `c`).
pub fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = name;
    std::iter::from_fn(move || {
        let (_, up) = rest.split_once('.')?;
        rest = up;
        Some(up)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_is_label_aligned() {
        assert!(is_within("www.example.com", "example.com"));
        assert!(is_within("example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        assert!(!is_within("example.com", "www.example.com"));
        assert_eq!(
            ancestors("a.b.example.com").collect::<Vec<_>>(),
            ["b.example.com", "example.com", "com"]
        );
    }
}
