//! The emulator's TLB: a finite set of leaf entries (page or block descriptors, or combined
//! stage 1+2 results), each tagged the way §3.17 says a TLB entry is tagged, with deterministic
//! FIFO eviction (eviction is always legal, §16.2).

use smmu_model::granule::Granule;
use smmu_model::walk::Perms;
use std::collections::VecDeque;

/// The translation regime an entry was inserted for (§3.17, STE.STRW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    NsEl1,
    NsEl2,
    NsEl2E2h,
}

/// Which stages an entry holds (§3.17, §16.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryStage {
    /// Stage-1-only VA -> PA.
    S1,
    /// Stage-2-only IPA -> PA.
    S2,
    /// Nested VA -> PA through both stages.
    Combined,
}

/// The tags every cached translation or walk-cache entry carries (§3.17 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    pub world: World,
    pub stage: EntryStage,
    /// STE.S2VMID when stage 2 is implemented and the world is NS-EL1, else 0.
    pub vmid: u16,
    /// CD.ASID for ASID-tagged regimes, else 0.
    pub asid: u16,
    /// nG == 0 (matches any ASID, §3.17.1). Always false for stage 2 and table entries.
    pub global: bool,
    /// CD.ASET: a global entry only satisfies lookups with the same ASET (§3.17.1).
    pub aset: bool,
    pub granule: Granule,
    /// Lookup level of the descriptor.
    pub level: u8,
    /// First input address covered (VA or IPA).
    pub base: u64,
    /// Bytes of input address covered.
    pub size: u64,
}

impl Tag {
    /// Exclusive end (u128: an entry may end at 2^64).
    pub fn end(&self) -> u128 {
        u128::from(self.base) + u128::from(self.size)
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.base <= addr && u128::from(addr) < self.end()
    }
    /// Whether [start, end) and the entry's range overlap.
    pub fn overlaps(&self, start: u64, end: u128) -> bool {
        u128::from(self.base) < end && u128::from(start) < self.end()
    }
}

/// One cached leaf translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub tag: Tag,
    /// Output address of `tag.base`.
    pub oa: u64,
    /// Permissions of the translating stages (combined for nested entries).
    pub perms: Perms,
}

/// What a lookup is for: the request's tags.
#[derive(Clone, Copy, Debug)]
pub struct LookupKey {
    pub world: World,
    pub stage: EntryStage,
    pub vmid: u16,
    pub asid: u16,
    pub aset: bool,
    /// Whether to compare ASID and VMID at all (a mutant drops them).
    pub match_asid: bool,
    pub match_vmid: bool,
}

impl LookupKey {
    /// Whether an entry with `tag` may satisfy this lookup of `addr` (§3.17.1).
    pub fn matches(&self, tag: &Tag, addr: u64) -> bool {
        if tag.world != self.world || tag.stage != self.stage || !tag.contains(addr) {
            return false;
        }
        if self.match_vmid && tag.vmid != self.vmid {
            return false;
        }
        if tag.global {
            // A global entry matches any ASID, but only with the same ASET (§3.17.1).
            return tag.aset == self.aset;
        }
        !self.match_asid || tag.asid == self.asid
    }
}

/// A FIFO-evicting TLB of `capacity` leaf entries (capacity 0: nothing is cached).
#[derive(Clone, Debug, Default)]
pub struct Tlb {
    capacity: usize,
    entries: VecDeque<TlbEntry>,
}

impl Tlb {
    pub fn new(capacity: usize) -> Tlb {
        Tlb {
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
    pub fn entries(&self) -> impl Iterator<Item = &TlbEntry> {
        self.entries.iter()
    }
    pub fn lookup(&self, key: &LookupKey, addr: u64) -> Option<TlbEntry> {
        self.entries
            .iter()
            .find(|e| key.matches(&e.tag, addr))
            .copied()
    }
    /// Insert, evicting the oldest entry when full (a duplicate tag replaces the old entry).
    pub fn insert(&mut self, e: TlbEntry) {
        if self.capacity == 0 {
            return;
        }
        self.entries.retain(|o| o.tag != e.tag);
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }
    /// Remove every entry `pred` selects; returns how many.
    pub fn remove_if(&mut self, mut pred: impl FnMut(&Tag) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !pred(&e.tag));
        before - self.entries.len()
    }
}
