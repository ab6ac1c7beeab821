//! The set of stale entries an SMMU may still hold: every version of a structure or descriptor
//! that stopped being current while it could have been cached, with the tags it would be cached
//! under (§3.17, §16.2), until an invalidation whose required scope covers it is followed by a
//! completed CMD_SYNC (§4.1.4, §4.7.3).
//!
//! Current values are never stored here: a fresh walk always reads them. An entry is *pending*
//! from the consumption of a covering invalidation until the next CMD_SYNC completes: in that
//! window the architecture allows it to be seen or not (§4.1.4 note), so pending entries still
//! count as allowed; only the completed SYNC removes them.
//!
//! Cost: applying an invalidation is one O(1) scope test per entry (never proportional to the
//! command's address range); a lookup is a handful of hash probes (one per distinct entry size).

use crate::scope::Scope;
use crate::tlb::{CfgTag, EntryKind, EntryStage, StreamWorld, TlbTag};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;

/// What a stale TLB or walk-cache entry translates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbContent {
    /// A leaf (block or page) entry: output address of `tag.base`, with its permissions.
    Leaf { oa: u64, attrs: LeafAttrs },
    /// A walk-cache entry for a table descriptor: the next-level table's address (an IPA for a
    /// nested stage-1 walk, a PA otherwise).
    Table { next: u64 },
}

/// The attributes of a leaf entry that an observation can tell apart: its permissions for
/// every kind of access, not only unprivileged data reads and writes, because a probe is
/// checked with the PRIV and INST attributes after the STE.PRIVCFG/INSTCFG overrides of the
/// STE it is translated through (§3.3.4, §13.4), and a cached entry can meet an STE whose
/// overrides differ from those of the walk that filled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct LeafAttrs {
    pub perms: crate::walk::Perms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlbEntry {
    pub tag: TlbTag,
    pub content: TlbContent,
}

/// A stale configuration structure: STE or CD (8 words), or an L1 descriptor (1 word).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CfgEntry {
    pub tag: CfgTag,
    pub words: Vec<u64>,
}

/// Where an entry came from, for explanations: the memory write that made it stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Event number of the write that superseded the version.
    pub event: u64,
    pub pa: u64,
}

#[derive(Clone, Debug)]
struct Slot<T> {
    entry: T,
    origin: Origin,
    /// Event number of the invalidation that covers it, once consumed: removal is pending until
    /// a later CMD_SYNC completes.
    killed_by: Option<u64>,
}

/// The key a lookup can compute from the request alone: everything but the ASID/global choice
/// and the exact base, which the entry's size fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LookupKey {
    pub world: StreamWorld,
    pub stage: EntryStage,
    pub kind: EntryKind,
    pub vmid: u16,
    /// None for a global entry (it matches any ASID, §3.17.1).
    pub asid: Option<u16>,
    pub level: u8,
    pub size_log2: u8,
    pub base: u64,
}

impl LookupKey {
    pub fn of(tag: &TlbTag) -> LookupKey {
        LookupKey {
            world: tag.world,
            stage: tag.stage,
            kind: tag.kind,
            vmid: tag.vmid,
            asid: if tag.global { None } else { Some(tag.asid) },
            level: tag.level,
            size_log2: tag.size.max(1).trailing_zeros() as u8,
            base: tag.base,
        }
    }
}

/// Stale entries, with the pending/removed life cycle.
#[derive(Default, Debug)]
pub struct StaleSet {
    tlb: Vec<Option<Slot<TlbEntry>>>,
    tlb_free: Vec<usize>,
    tlb_index: HashMap<LookupKey, Vec<usize>>,
    tlb_dedup: HashMap<TlbEntry, usize>,
    /// Distinct (stage, kind, level, size) shapes present, so a lookup probes only those.
    shapes: HashMap<(EntryStage, EntryKind, u8, u8), usize>,
    cfg: Vec<Option<Slot<CfgEntry>>>,
    cfg_free: Vec<usize>,
    cfg_dedup: HashMap<CfgEntry, usize>,
    live_tlb: usize,
    live_cfg: usize,
    /// Counts, for reports: entries removed by completed invalidations.
    pub removed_tlb: u64,
    pub removed_cfg: u64,
}

impl StaleSet {
    pub fn tlb_len(&self) -> usize {
        self.live_tlb
    }
    pub fn cfg_len(&self) -> usize {
        self.live_cfg
    }

    /// Add a stale TLB entry. The same entry made stale again keeps one slot (the newest origin,
    /// and it is no longer pending: a covering invalidation consumed before this supersede does
    /// not cover the new version).
    pub fn add_tlb(&mut self, entry: TlbEntry, origin: Origin) {
        if let Some(&i) = self.tlb_dedup.get(&entry) {
            if let Some(slot) = self.tlb[i].as_mut() {
                slot.origin = origin;
                slot.killed_by = None;
            }
            return;
        }
        let slot = Slot {
            entry,
            origin,
            killed_by: None,
        };
        let i = match self.tlb_free.pop() {
            Some(i) => {
                self.tlb[i] = Some(slot);
                i
            }
            None => {
                self.tlb.push(Some(slot));
                self.tlb.len() - 1
            }
        };
        self.tlb_dedup.insert(entry, i);
        self.tlb_index
            .entry(LookupKey::of(&entry.tag))
            .or_default()
            .push(i);
        let k = LookupKey::of(&entry.tag);
        *self
            .shapes
            .entry((k.stage, k.kind, k.level, k.size_log2))
            .or_default() += 1;
        self.live_tlb += 1;
    }

    pub fn add_cfg(&mut self, entry: CfgEntry, origin: Origin) {
        if let Some(&i) = self.cfg_dedup.get(&entry) {
            if let Some(slot) = self.cfg[i].as_mut() {
                slot.origin = origin;
                slot.killed_by = None;
            }
            return;
        }
        let slot = Slot {
            entry: entry.clone(),
            origin,
            killed_by: None,
        };
        let i = match self.cfg_free.pop() {
            Some(i) => {
                self.cfg[i] = Some(slot);
                i
            }
            None => {
                self.cfg.push(Some(slot));
                self.cfg.len() - 1
            }
        };
        self.cfg_dedup.insert(entry, i);
        self.live_cfg += 1;
    }

    /// A covering invalidation was consumed (event `ev`): mark what its required scope covers.
    /// Returns how many entries it covers (over-invalidation beyond these is never counted here).
    pub fn apply(&mut self, scope: &Scope, ev: u64) -> usize {
        let mut n = 0;
        for slot in self.tlb.iter_mut().flatten() {
            if slot.killed_by.is_none() && scope.requires_tlb(&slot.entry.tag) {
                slot.killed_by = Some(ev);
                n += 1;
            }
        }
        for slot in self.cfg.iter_mut().flatten() {
            if slot.killed_by.is_none() && scope.requires_cfg(&slot.entry.tag) {
                slot.killed_by = Some(ev);
                n += 1;
            }
        }
        n
    }

    /// Recompute which pending invalidation covers each entry (after the register state their
    /// scopes depend on changed in flight, §4.1.2). `tlb`/`cfg` get the entry's tag and the event
    /// that made it stale, and return the covering invalidation's event, if any.
    pub fn rekill(
        &mut self,
        tlb: impl Fn(&crate::tlb::TlbTag, u64) -> Option<u64>,
        cfg: impl Fn(&CfgTag, u64) -> Option<u64>,
    ) {
        for slot in self.tlb.iter_mut().flatten() {
            slot.killed_by = tlb(&slot.entry.tag, slot.origin.event);
        }
        for slot in self.cfg.iter_mut().flatten() {
            slot.killed_by = cfg(&slot.entry.tag, slot.origin.event);
        }
    }

    /// Whether a pending removal covers a configuration structure.
    pub fn pending_cfg(&self) -> bool {
        self.cfg.iter().flatten().any(|s| s.killed_by.is_some())
    }

    /// A CMD_SYNC completed: every entry covered by an invalidation consumed before it is gone.
    /// Returns whether a table entry or a configuration structure (a root of reachability) went.
    pub fn complete_sync(&mut self) -> bool {
        let c = self.complete_cfg();
        self.complete_tlb() | c
    }

    /// The configuration half of [`StaleSet::complete_sync`]; true if anything went.
    pub fn complete_cfg(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.cfg.len() {
            if matches!(&self.cfg[i], Some(s) if s.killed_by.is_some()) {
                if let Some(slot) = self.cfg[i].take() {
                    self.cfg_dedup.remove(&slot.entry);
                    self.cfg_free.push(i);
                    self.live_cfg -= 1;
                    self.removed_cfg += 1;
                    any = true;
                }
            }
        }
        any
    }

    /// The TLB half of [`StaleSet::complete_sync`]; true if a table entry went.
    pub fn complete_tlb(&mut self) -> bool {
        let mut roots = false;
        for i in 0..self.tlb.len() {
            if matches!(&self.tlb[i], Some(s) if s.killed_by.is_some()) {
                roots |= matches!(&self.tlb[i], Some(s) if s.entry.tag.kind == EntryKind::Table);
                self.remove_tlb(i);
                self.removed_tlb += 1;
            }
        }
        roots
    }

    fn remove_tlb(&mut self, i: usize) {
        if let Some(slot) = self.tlb[i].take() {
            let k = LookupKey::of(&slot.entry.tag);
            if let Some(v) = self.tlb_index.get_mut(&k) {
                v.retain(|&j| j != i);
                if v.is_empty() {
                    self.tlb_index.remove(&k);
                }
            }
            let shape = (k.stage, k.kind, k.level, k.size_log2);
            if let Some(c) = self.shapes.get_mut(&shape) {
                *c -= 1;
                if *c == 0 {
                    self.shapes.remove(&shape);
                }
            }
            self.tlb_dedup.remove(&slot.entry);
            self.tlb_free.push(i);
            self.live_tlb -= 1;
        }
    }

    /// Stale TLB entries that a lookup for `addr` in this context could hit at `level`: same
    /// world, stage, kind and VMID, the entry's range containing `addr`, and either the ASID or
    /// global (§3.17.1).
    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &self,
        world: StreamWorld,
        stage: EntryStage,
        kind: EntryKind,
        vmid: u16,
        asid: Option<u16>,
        level: u8,
        addr: u64,
    ) -> Vec<(TlbEntry, Origin)> {
        let mut out = Vec::new();
        let mut sizes = BTreeSet::new();
        for &(s, k, l, sz) in self.shapes.keys() {
            if s == stage && k == kind && l == level {
                sizes.insert(sz);
            }
        }
        for sz in sizes {
            let base = if sz >= 64 {
                0
            } else {
                addr & !((1u64 << sz) - 1)
            };
            let asids: [Option<u16>; 2] = [None, asid];
            for (n, a) in asids.iter().enumerate() {
                if n == 1 && a.is_none() {
                    continue;
                }
                let key = LookupKey {
                    world,
                    stage,
                    kind,
                    vmid,
                    asid: *a,
                    level,
                    size_log2: sz,
                    base,
                };
                if let Some(v) = self.tlb_index.get(&key) {
                    for &i in v {
                        if let Some(slot) = &self.tlb[i] {
                            out.push((slot.entry, slot.origin));
                        }
                    }
                }
            }
        }
        out
    }

    /// Stale configuration entries with this tag.
    pub fn cfg_lookup(&self, tag: &CfgTag) -> Vec<(&CfgEntry, Origin)> {
        self.cfg
            .iter()
            .flatten()
            .filter(|s| &s.entry.tag == tag)
            .map(|s| (&s.entry, s.origin))
            .collect()
    }

    /// Every live stale entry, for traversal from stale roots and for reports.
    pub fn tlb_entries(&self) -> impl Iterator<Item = (&TlbEntry, Origin, Option<u64>)> {
        self.tlb
            .iter()
            .flatten()
            .map(|s| (&s.entry, s.origin, s.killed_by))
    }
    pub fn cfg_entries(&self) -> impl Iterator<Item = (&CfgEntry, Origin, Option<u64>)> {
        self.cfg
            .iter()
            .flatten()
            .map(|s| (&s.entry, s.origin, s.killed_by))
    }
}

impl StaleSet {
    /// Stale L1STD words whose span covers `sid` (for lookups through an old level-2 pointer).
    pub fn cfg_entries_for_sid_l1(&self, sid: u32) -> Vec<(u64, Origin)> {
        self.cfg
            .iter()
            .flatten()
            .filter_map(|s| match s.entry.tag {
                CfgTag::L1Std {
                    sid_first,
                    sid_count,
                    ..
                } if (sid as u64) >= sid_first as u64
                    && (sid as u64) < sid_first as u64 + sid_count.max(1)
                    && !s.entry.words.is_empty() =>
                {
                    Some((s.entry.words[0], s.origin))
                }
                _ => None,
            })
            .collect()
    }

    /// Stale L1CD words covering (sid, ssid).
    pub fn cfg_entries_for_l1cd(&self, sid: u32, ssid: u32) -> Vec<(u64, Origin)> {
        self.cfg
            .iter()
            .flatten()
            .filter_map(|s| match s.entry.tag {
                CfgTag::L1Cd {
                    sid: esid,
                    ssid_first,
                    ssid_count,
                    ..
                } if esid == sid
                    && (ssid as u64) >= ssid_first as u64
                    && (ssid as u64) < ssid_first as u64 + ssid_count
                    && !s.entry.words.is_empty() =>
                {
                    Some((s.entry.words[0], s.origin))
                }
                _ => None,
            })
            .collect()
    }
}
