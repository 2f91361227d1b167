//! Where new object identifiers come from: fresh random bytes in production, a counter a test
//! can predict otherwise. The API asks the controller; nothing else makes ids for stored
//! objects.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait IdSource: Send + Sync + std::fmt::Debug {
    /// 16 bytes no other object of the installation has.
    fn next_id(&self) -> [u8; 16];
}

/// 128 random bits from the operating system's generator: unguessable, so an id reveals
/// nothing about how many objects exist or when they were made.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self) -> [u8; 16] {
        crate::secrets::random_bytes()
    }
}

/// 1, 2, 3, … in the last eight bytes, after a fixed prefix (tests that name ids in advance).
#[derive(Debug)]
pub struct SequentialIds {
    prefix: [u8; 8],
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new(prefix: [u8; 8]) -> Self {
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self) -> [u8; 16] {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.prefix);
        id[8..].copy_from_slice(&n.to_be_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_give_distinct_ids() {
        let seq = SequentialIds::new([7; 8]);
        let (a, b) = (seq.next_id(), seq.next_id());
        assert_eq!(a[15], 1);
        assert_eq!(b[15], 2);
        assert_eq!(&a[..8], &[7; 8]);
        assert_ne!(RandomIds.next_id(), RandomIds.next_id());
    }
}
