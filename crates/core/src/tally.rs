//! How many of something each key holds (checks running per tenant, previews per account): a
//! key is present only while its count is above zero, so the number of keys is the number
//! holding any.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct Tally<K>(HashMap<K, usize>);

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Tally(HashMap::new())
    }
}

impl<K: Hash + Eq> Tally<K> {
    /// One more for `key`.
    pub fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    /// One fewer for `key`, forgotten at zero; nothing if it holds none.
    pub fn remove_one(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(key);
            }
        }
    }

    /// What `key` holds.
    pub fn get(&self, key: &K) -> usize {
        self.0.get(key).copied().unwrap_or(0)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    /// Keys holding any.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Over every key.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// Each key holding any, with what it holds.
    pub fn iter(&self) -> impl Iterator<Item = (&K, usize)> {
        self.0.iter().map(|(k, n)| (k, *n))
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn a_key_is_held_while_its_count_is_above_zero() {
        let mut t = Tally::default();
        t.add('a');
        t.add('a');
        t.add('b');
        assert_eq!((t.get(&'a'), t.len(), t.total()), (2, 2, 3));
        t.remove_one(&'a');
        t.remove_one(&'b');
        t.remove_one(&'z');
        assert_eq!((t.get(&'a'), t.get(&'b'), t.len()), (1, 0, 1));
        assert!(t.contains(&'a') && !t.contains(&'b'));
        t.remove_one(&'a');
        assert!(t.is_empty());
    }
}
