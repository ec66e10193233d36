//! A per-backend map of bounded size for the identity and membership caches. When it is
//! full, a new entry replaces one by CLOCK (second chance): the hand sweeps the slots, sparing
//! each entry used since the hand last passed, and takes the first one that was not. A backend
//! cycling through more users than fit keeps the ones it uses most instead of emptying itself
//! (what the caches did until 0.2.0). Keys are small fixed-size values (a token's SHA-256, ids),
//! held both in the index and in their slot.

use std::collections::HashMap;
use std::hash::Hash;

pub struct ClockCache<K, V> {
    index: HashMap<K, usize>,
    /// Key, value, and whether it was used since the hand last passed.
    slots: Vec<(K, V, bool)>,
    hand: usize,
}

impl<K: Hash + Eq + Copy, V> ClockCache<K, V> {
    pub fn new() -> Self {
        ClockCache { index: HashMap::new(), slots: Vec::new(), hand: 0 }
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
    }

    /// The value for `key`, marking it used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let i = *self.index.get(key)?;
        let slot = &mut self.slots[i];
        slot.2 = true;
        Some(&slot.1)
    }

    /// Stores `value` for `key`, replacing an unused entry when `capacity` entries are held.
    /// A capacity lowered below what is held empties the cache first.
    pub fn insert(&mut self, key: K, value: V, capacity: usize) {
        if let Some(&i) = self.index.get(&key) {
            self.slots[i].1 = value;
            self.slots[i].2 = true;
            return;
        }
        if capacity == 0 {
            return;
        }
        if self.slots.len() > capacity {
            self.clear();
        }
        if self.slots.len() < capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push((key, value, false));
            return;
        }
        // Full: sweep to the first entry not used since the last pass (at most one full turn,
        // since the sweep clears the marks it passes).
        while self.slots[self.hand].2 {
            self.slots[self.hand].2 = false;
            self.hand = (self.hand + 1) % self.slots.len();
        }
        let i = self.hand;
        self.index.remove(&self.slots[i].0);
        self.index.insert(key, i);
        self.slots[i] = (key, value, false);
        self.hand = (i + 1) % self.slots.len();
    }
}

/// A `ClockCache` of answers read from one table, emptied when the table's epoch moves
/// (`probe::epoch`).
pub struct EpochCache<K, V> {
    epoch: u64,
    cache: ClockCache<K, V>,
}

impl<K: Hash + Eq + Copy, V: Clone> EpochCache<K, V> {
    pub fn new() -> Self {
        EpochCache { epoch: 0, cache: ClockCache::new() }
    }

    /// The value kept for `key`, if kept since the table was last at `epoch`.
    pub fn get(&mut self, epoch: u64, key: &K) -> Option<V> {
        if self.epoch != epoch {
            self.cache.clear();
            self.epoch = epoch;
        }
        self.cache.get(key).cloned()
    }

    /// Keeps `value`, read while the table was at `epoch`, unless it has moved since.
    pub fn insert(&mut self, epoch: u64, key: K, value: V, capacity: usize) {
        if self.epoch == epoch {
            self.cache.insert(key, value, capacity);
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_full_cache_replaces_one_entry_instead_of_emptying() {
        let mut c: ClockCache<u32, u32> = ClockCache::new();
        for i in 0..4 {
            c.insert(i, i, 4);
        }
        c.insert(4, 4, 4);
        assert_eq!(c.slots.len(), 4);
        assert_eq!(c.get(&4), Some(&4));
        assert_eq!((0..4).filter(|i| c.get(i).is_some()).count(), 3);
    }

    #[test]
    fn entries_in_use_survive_a_stream_of_new_ones() {
        let mut c: ClockCache<u32, u32> = ClockCache::new();
        c.insert(u32::MAX, 0, 8);
        for i in 0..1000 {
            assert_eq!(c.get(&u32::MAX), Some(&0), "evicted at {i}");
            c.insert(i, i, 8);
            assert!(c.slots.len() <= 8);
        }
    }

    #[test]
    fn tuple_keys_update_and_a_lowered_capacity_applies() {
        let mut c: ClockCache<(u8, u8), &str> = ClockCache::new();
        c.insert((1, 2), "a", 4);
        c.insert((1, 2), "b", 4);
        assert_eq!(c.slots.len(), 1);
        assert_eq!(c.get(&(1, 2)), Some(&"b"));
        for i in 0..4 {
            c.insert((2, i), "x", 4);
        }
        c.insert((3, 0), "y", 2);
        assert_eq!(c.slots.len(), 1);
        c.insert((3, 1), "z", 0);
        assert_eq!(c.get(&(3, 1)), None);
    }
}
