//! Configuration caches (§16.2, §3.21.3): STEs by StreamID, CDs by (StreamID, SubstreamID)
//! (§4.3.3: a CD is cached per StreamID through which it was reached), and L1STDs by their
//! index in the level-1 stream table. Bounded, oldest-first eviction (always legal).

use std::collections::{BTreeMap, VecDeque};

/// Entries each structure cache holds at most.
pub const CONFIG_CAPACITY: usize = 256;

#[derive(Clone, Debug)]
struct Bounded<K: Ord + Copy, V> {
    map: BTreeMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Ord + Copy, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            map: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Ord + Copy, V> Bounded<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }
    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > CONFIG_CAPACITY {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
    fn remove_if(&mut self, mut pred: impl FnMut(&K) -> bool) {
        self.map.retain(|k, _| !pred(k));
        let map = &self.map;
        self.order.retain(|k| map.contains_key(k));
    }
    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The configuration caches.
#[derive(Clone, Debug, Default)]
pub struct ConfigCache {
    ste: Bounded<u32, [u64; 8]>,
    cd: Bounded<(u32, u32), [u64; 8]>,
    /// L1STD index -> (first StreamID it covers, StreamIDs it covers, raw descriptor).
    l1std: Bounded<u64, (u64, u64, u64)>,
}

impl ConfigCache {
    pub fn clear(&mut self) {
        self.ste.clear();
        self.cd.clear();
        self.l1std.clear();
    }
    pub fn len(&self) -> usize {
        self.ste.len() + self.cd.len() + self.l1std.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn ste(&self, sid: u32) -> Option<[u64; 8]> {
        self.ste.get(&sid).copied()
    }
    pub fn insert_ste(&mut self, sid: u32, words: [u64; 8]) {
        self.ste.insert(sid, words);
    }
    pub fn cd(&self, sid: u32, ssid: u32) -> Option<[u64; 8]> {
        self.cd.get(&(sid, ssid)).copied()
    }
    pub fn insert_cd(&mut self, sid: u32, ssid: u32, words: [u64; 8]) {
        self.cd.insert((sid, ssid), words);
    }
    pub fn l1std(&self, index: u64) -> Option<u64> {
        self.l1std.get(&index).map(|e| e.2)
    }
    pub fn insert_l1std(&mut self, index: u64, first: u64, count: u64, raw: u64) {
        self.l1std.insert(index, (first, count, raw));
    }

    /// Remove STEs for StreamIDs in [first, first + count).
    pub fn remove_stes(&mut self, first: u64, count: u64) {
        let end = first.saturating_add(count);
        self.ste
            .remove_if(|&s| (s as u64) >= first && (s as u64) < end);
    }
    /// Remove every CD cached through a StreamID in [first, first + count).
    pub fn remove_cds_of(&mut self, first: u64, count: u64) {
        let end = first.saturating_add(count);
        self.cd
            .remove_if(|&(s, _)| (s as u64) >= first && (s as u64) < end);
    }
    pub fn remove_cd(&mut self, sid: u32, ssid: u32) {
        self.cd.remove_if(|&k| k == (sid, ssid));
    }
    /// Remove L1STDs covering any StreamID in [first, first + count).
    pub fn remove_l1stds(&mut self, first: u64, count: u64) {
        let end = u128::from(first) + u128::from(count);
        let keep: Vec<u64> = self
            .l1std
            .map
            .iter()
            .filter(|(_, &(f, c, _))| {
                !(u128::from(f) < end && u128::from(first) < u128::from(f) + u128::from(c))
            })
            .map(|(k, _)| *k)
            .collect();
        self.l1std.remove_if(|k| !keep.contains(k));
    }
}
