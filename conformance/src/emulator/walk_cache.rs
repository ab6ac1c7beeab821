//! The emulator's walk cache: table descriptors (intermediate walk entries) by the same tags as
//! TLB entries plus the level they were read at and the input range their next-level table
//! spans (§3.17, §4.4.1.1 note on Leaf). A hit lets a walk resume at the next level.

use super::tlb::{LookupKey, Tag};
use std::collections::VecDeque;

/// One cached table descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkEntry {
    /// `tag.level` is the level of the table descriptor; `tag.base`/`tag.size` the input range
    /// its next-level table translates. `tag.global` is always false.
    pub tag: Tag,
    /// Address of the next-level table (an IPA for a nested stage 1 walk).
    pub next: u64,
    /// Hierarchical attributes accumulated down to and including this descriptor.
    pub attrs: smmu_model::walk::TableAttrs,
}

#[derive(Clone, Debug, Default)]
pub struct WalkCache {
    capacity: usize,
    entries: VecDeque<WalkEntry>,
}

impl WalkCache {
    pub fn new(capacity: usize) -> WalkCache {
        WalkCache {
            capacity,
            entries: VecDeque::new(),
        }
    }
    pub fn clear(&mut self) {
        self.entries.clear();
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The deepest cached table descriptor for `addr` at a level in `levels` (the walk resumes
    /// below it, skipping the most reads).
    pub fn lookup(
        &self,
        key: &LookupKey,
        addr: u64,
        levels: std::ops::Range<u8>,
    ) -> Option<WalkEntry> {
        self.entries
            .iter()
            .filter(|e| levels.contains(&e.tag.level) && key.matches(&e.tag, addr))
            .max_by_key(|e| e.tag.level)
            .copied()
    }
    pub fn insert(&mut self, e: WalkEntry) {
        if self.capacity == 0 {
            return;
        }
        self.entries.retain(|o| o.tag != e.tag);
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }
    pub fn remove_if(&mut self, mut pred: impl FnMut(&Tag) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !pred(&e.tag));
        before - self.entries.len()
    }
}
