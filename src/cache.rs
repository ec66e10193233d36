//! A per-backend map of bounded size for the verified-token and membership caches. When it is
//! full, a new entry replaces one by CLOCK (second chance): the hand sweeps the slots, sparing
//! each entry used since the hand last passed, and takes the first one that was not. A backend
//! cycling through more users than fit keeps the ones it uses most instead of emptying itself
//! (what the caches did until 0.2.0). Keys are shared between the index and the slots (`Rc`),
//! so a token's text is stored once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

pub struct ClockCache<K: ?Sized, V> {
    index: HashMap<Rc<K>, usize>,
    /// Key, value, and whether it was used since the hand last passed.
    slots: Vec<(Rc<K>, V, bool)>,
    hand: usize,
}

impl<K: ?Sized + Hash + Eq, V> ClockCache<K, V> {
    pub fn new() -> Self {
        ClockCache { index: HashMap::new(), slots: Vec::new(), hand: 0 }
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The value for `key`, marking it used.
    pub fn get<Q: ?Sized + Hash + Eq>(&mut self, key: &Q) -> Option<&V>
    where
        Rc<K>: Borrow<Q>,
    {
        let i = *self.index.get(key)?;
        let slot = &mut self.slots[i];
        slot.2 = true;
        Some(&slot.1)
    }

    /// Stores `value` for `key`, replacing an unused entry when `capacity` entries are held.
    /// A capacity lowered below what is held empties the cache first.
    pub fn insert(&mut self, key: Rc<K>, value: V, capacity: usize) {
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
            self.index.insert(key.clone(), self.slots.len());
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
        self.index.insert(key.clone(), i);
        self.slots[i] = (key, value, false);
        self.hand = (i + 1) % self.slots.len();
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_full_cache_replaces_one_entry_instead_of_emptying() {
        let mut c: ClockCache<str, u32> = ClockCache::new();
        for i in 0..4 {
            c.insert(Rc::from(format!("t{i}").as_str()), i, 4);
        }
        c.insert(Rc::from("t4"), 4, 4);
        assert_eq!(c.len(), 4);
        assert_eq!(c.get("t4"), Some(&4));
        assert_eq!((0..4).filter(|i| c.get(format!("t{i}").as_str()).is_some()).count(), 3);
    }

    #[test]
    fn entries_in_use_survive_a_stream_of_new_ones() {
        let mut c: ClockCache<str, u32> = ClockCache::new();
        c.insert(Rc::from("hot"), 0, 8);
        for i in 0..1000 {
            assert_eq!(c.get("hot"), Some(&0), "evicted at {i}");
            c.insert(Rc::from(format!("cold{i}").as_str()), i, 8);
            assert!(c.len() <= 8);
        }
    }

    #[test]
    fn tuple_keys_update_and_a_lowered_capacity_applies() {
        let mut c: ClockCache<(u8, u8), &str> = ClockCache::new();
        c.insert(Rc::new((1, 2)), "a", 4);
        c.insert(Rc::new((1, 2)), "b", 4);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&(1, 2)), Some(&"b"));
        for i in 0..4 {
            c.insert(Rc::new((2, i)), "x", 4);
        }
        c.insert(Rc::new((3, 0)), "y", 2);
        assert_eq!(c.len(), 1);
        c.insert(Rc::new((3, 1)), "z", 0);
        assert_eq!(c.get(&(3, 1)), None);
    }
}
