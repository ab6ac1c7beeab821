//! The oracle: given the history of memory writes, register writes and consumed commands, it
//! answers for any observation whether the architecture allows it, and if not which rule the
//! observation breaks.
//!
//! Semantics (docs/model.md explains them on a page):
//! - A translation observed at time t is allowed iff it is the result of some walk in which every
//!   structure or descriptor used is either its current value in memory or an older version that
//!   may still be cached ([`enumerate`]).
//! - An older version may still be cached unless an invalidation whose required scope covers the
//!   entry built from it ([`crate::scope`]) was consumed after that version stopped being current,
//!   and a CMD_SYNC after that invalidation has completed (§4.1.4, §4.7.3, §3.21.1). Before that
//!   SYNC completes both outcomes are allowed. Eviction and over-invalidation are always allowed
//!   (§4.4, §4.3, §16.2).
//! - Stale versions are found by difference of what is cacheable before and after each write
//!   ([`reach`]); nothing is cached while SMMUEN has never been 1 (§3.21.1, §3.21.3).

pub mod context;
pub mod enumerate;
pub mod reach;
pub mod stale;

use crate::classify::{classify, Verdict};
use crate::command::RawCommand;
use crate::memory::{MemRead, Memory};
use crate::profile::{Profile, Queue};
use crate::rules::{self, Rule};
use crate::scope::{required_scope, ScopeCtx};
use crate::structures::stream_table::{locate_ste, read_struct};
use crate::structures::{SmmuProfile, Ste, StreamTableConfig};
use crate::tlb::EntryStage;
use crate::walk::Access;
use enumerate::{Allowed, Enumerator, Outcome};
use reach::{Reach, Reacher};
use serde::Serialize;
use stale::{Origin, StaleSet, TlbContent, TlbEntry};
use std::collections::VecDeque;

pub use enumerate::Outcome as AllowedOutcome;

/// What a backend saw for a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Observation {
    /// The access reached this PA.
    Translated { pa: u64 },
    /// The access faulted; `event` is the event number when the backend could read it.
    Fault { event: Option<u8> },
    /// Terminated with no event.
    Abort,
    /// The backend cannot observe this probe (it answers "cannot observe" rather than guess).
    CannotObserve,
}

/// A probe: one DMA-style access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub sid: u32,
    pub ssid: Option<u32>,
    pub addr: u64,
    pub write: bool,
}

/// A rejected observation, with the rule it breaks and an explanation a kernel developer can act
/// on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static Rule,
    pub message: String,
    pub allowed: Vec<Outcome>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{} {}] {}",
            self.rule.id, self.rule.section, self.message
        )
    }
}

/// An accepted observation: was it the fresh result, and did it need stale entries?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Accepted {
    Fresh,
    /// Allowed only because stale entries may still be cached.
    Stale,
    /// The backend could not observe; nothing to judge.
    NotObserved,
    /// The enumeration hit its bound: counted, never failed.
    Undecided,
}

/// An invalidation consumed and not yet completed by a SYNC, with every value of the register
/// state its scope depends on (CR0.VMW, CR2.E2H) seen since it was consumed: when that state
/// changes in flight it is UNPREDICTABLE whether the old or the new value applies (§4.1.2), so
/// only entries required under every value are required.
#[derive(Clone, Debug)]
struct Pending {
    event: u64,
    raw: RawCommand,
    ctxs: Vec<ScopeCtx>,
}

/// A stale entry removed by a completed SYNC, kept (bounded) to explain violations.
#[derive(Clone, Debug)]
struct Removed {
    entry: TlbEntry,
    by: RawCommand,
    rule: Option<&'static Rule>,
}

const GRAVEYARD: usize = 8192;

/// The golden model of one SMMU (Non-secure programming interface).
pub struct Model {
    pub profile: Profile,
    sp: SmmuProfile,
    mem: Memory,
    st: StreamTableConfig,
    smmuen: bool,
    ever_enabled: bool,
    e2h: bool,
    vmw: u8,
    stale: StaleSet,
    reach: Option<Reach>,
    /// A discarded reach whose allocations the next computation reuses.
    spare: Option<Reach>,
    event: u64,
    /// Invalidations consumed since the last completed SYNC.
    pending: Vec<Pending>,
    graveyard: VecDeque<Removed>,
    /// Entries a completed invalidation removed while SMMUEN == 0: not cacheable again until the
    /// SMMU is enabled.
    clean_tlb: rustc_hash::FxHashSet<TlbEntry>,
    clean_cfg: rustc_hash::FxHashSet<stale::CfgEntry>,
    /// Counters for reports.
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    pub writes: u64,
    pub commands: u64,
    pub syncs: u64,
    pub stale_created: u64,
    pub truncated_traversals: u64,
}

/// Whether `e`, cacheable until this SYNC only through walk-cache entries it removes
/// (`removed`: their tags and the event of the invalidation that removes each), is removed for
/// good by a completed invalidation: one that requires it and was consumed no earlier than the
/// last of those walk-cache entries that could refill it went (after that none is left to
/// refill it, §3.21.1). A walk-cache entry of the same input address space whose span does not
/// hold `e`'s address cannot refill it; any other (another stage's) might.
fn covered_after_refills(
    e: &TlbEntry,
    removed: &[(crate::tlb::TlbTag, u64)],
    scopes: &[(u64, RawCommand, crate::scope::Scope)],
) -> bool {
    let s2 = |s: EntryStage| s == EntryStage::S2;
    let could_refill = |t: &crate::tlb::TlbTag| {
        s2(t.stage) != s2(e.tag.stage) || (t.vmid == e.tag.vmid && t.contains(e.tag.base))
    };
    let last = removed
        .iter()
        .filter(|(t, _)| could_refill(t))
        .map(|(_, k)| *k)
        .max()
        .or_else(|| removed.iter().map(|(_, k)| *k).max());
    last.is_some_and(|last| {
        scopes
            .iter()
            .any(|(ev, _, sc)| *ev >= last && sc.requires_tlb(&e.tag))
    })
}

impl Model {
    pub fn new(profile: Profile) -> Model {
        Model {
            sp: context::smmu_profile(&profile, false),
            profile,
            mem: Memory::new(),
            st: StreamTableConfig::linear(0, 0),
            smmuen: false,
            ever_enabled: false,
            e2h: false,
            vmw: 0,
            stale: StaleSet::default(),
            reach: None,
            spare: None,
            event: 0,
            pending: Vec::new(),
            graveyard: VecDeque::new(),
            clean_tlb: Default::default(),
            clean_cfg: Default::default(),
            stats: Stats::default(),
        }
    }

    pub fn memory(&self) -> &Memory {
        &self.mem
    }
    pub fn smmu_profile(&self) -> &SmmuProfile {
        &self.sp
    }
    pub fn stream_table(&self) -> &StreamTableConfig {
        &self.st
    }
    pub fn stale(&self) -> &StaleSet {
        &self.stale
    }

    fn current_reach(&mut self) -> &Reach {
        if self.reach.is_none() {
            let r = self.compute_reach();
            self.reach = Some(r);
        }
        self.reach.as_ref().expect("just computed")
    }

    fn compute_reach(&mut self) -> Reach {
        let mut r = Reacher::new(&self.mem, &self.sp);
        if let Some(mut spare) = self.spare.take() {
            spare.clear();
            r.out = spare;
        }
        r.stale = Some(&self.stale);
        r.stream_table(&self.st);
        let mem = &self.mem;
        let st = &self.st;
        let sp = &self.sp;
        let cur = |sid: u32| -> Option<Ste> {
            let loc = locate_ste(mem, st, sp, sid).ok()?;
            read_struct(mem, loc.ste_pa).map(Ste::decode)
        };
        r.stale_roots(&self.stale, &cur);
        if r.out.truncated {
            self.stats.truncated_traversals += 1;
        }
        r.out
    }

    /// Forget the cacheable set (it is recomputed when next needed), keeping its allocations.
    fn drop_reach(&mut self) {
        if let Some(r) = self.reach.take() {
            self.spare = Some(r);
        }
    }

    /// Any change of what is cacheable: entries cacheable before and not after become stale.
    fn changed<F: FnOnce(&mut Self)>(&mut self, pa: Option<u64>, value: Option<u64>, f: F) {
        self.event += 1;
        if !self.ever_enabled {
            // Nothing can have been cached yet (§3.21.1: no insertion while SMMUEN == 0).
            f(self);
            self.drop_reach();
            return;
        }
        let relevant = match pa {
            Some(pa) => self.current_reach().reads(pa),
            None => true,
        };
        if !relevant {
            f(self);
            return;
        }
        let origin = Origin {
            event: self.event,
            pa: pa.unwrap_or(0),
        };
        // Fast path: a leaf (or invalid) descriptor replaced by a leaf (or invalid) descriptor
        // changes only the entries of its own slots.
        if let (Some(pa), Some(new)) = (pa, value) {
            let old = self.mem.read_u64(pa);
            let local = self.reach.as_mut().and_then(|r| r.leaf_write(pa, old, new));
            if let Some(gone) = local {
                f(self);
                for e in gone {
                    if self.clean_tlb.contains(&e) {
                        continue;
                    }
                    self.stale.add_tlb(e, origin);
                    self.stats.stale_created += 1;
                }
                return;
            }
        }
        let before = std::mem::take(&mut self.reach).unwrap_or_default();
        f(self);
        let after = self.compute_reach();
        let mut new_roots = false;
        for e in before.tlb.difference(&after.tlb) {
            if self.clean_tlb.contains(e) {
                continue;
            }
            new_roots |= e.tag.kind == crate::tlb::EntryKind::Table;
            // A stale stage-2 leaf of a nested VMID builds combined entries (see
            // `Reacher::combined`): recompute so that they are cacheable now.
            new_roots |= e.tag.stage == EntryStage::S2
                && e.tag.kind == crate::tlb::EntryKind::Leaf
                && after.nested_vmids.contains(&e.tag.vmid);
            self.stale.add_tlb(*e, origin);
            self.stats.stale_created += 1;
        }
        for e in before.cfg.difference(&after.cfg) {
            if self.clean_cfg.contains(e) {
                continue;
            }
            new_roots = true;
            self.stale.add_cfg(e.clone(), origin);
            self.stats.stale_created += 1;
        }
        self.spare = Some(before);
        // Newly stale tables or structures are roots that may reach more: recompute lazily.
        if new_roots {
            self.spare = Some(after);
        } else {
            self.reach = Some(after);
        }
    }

    /// A 64-bit memory write (structures, tables, anything).
    pub fn write_u64(&mut self, pa: u64, value: u64) {
        self.stats.writes += 1;
        if self.mem.read_u64(pa) == value {
            return;
        }
        self.changed(Some(pa), Some(value), |m| m.mem.write_u64(pa, value));
    }

    pub fn write_words(&mut self, pa: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.write_u64(pa.wrapping_add(8 * i as u64), *w);
        }
    }

    /// STRTAB_BASE / STRTAB_BASE_CFG (§6.3.23-24). Structures cached through the old table may
    /// stay cached (§3.21.3 note).
    pub fn set_stream_table(&mut self, st: StreamTableConfig) {
        self.changed(None, None, |m| m.st = st);
    }

    /// CR0.SMMUEN (§6.3.9).
    pub fn set_smmuen(&mut self, en: bool) {
        self.smmuen = en;
        if en {
            self.clean_tlb.clear();
            self.clean_cfg.clear();
        }
        if en && !self.ever_enabled {
            self.ever_enabled = true;
            self.drop_reach();
        }
    }

    /// CR2.E2H (§6.3.12): it may be cached in TLBs; a change makes EL2 entries stale.
    pub fn set_e2h(&mut self, e2h: bool) {
        self.changed(None, None, |m| {
            m.e2h = e2h;
            m.sp = context::smmu_profile(&m.profile, e2h);
        });
        // EL2_VA/EL2_VAA in flight may use either value (§4.1.2, §4.4.2.8/9).
        self.register_changed();
    }

    /// CR0.VMW (§3.17.6). A change while VMID-matching invalidations are in flight leaves it
    /// UNPREDICTABLE which value they use (§4.1.2, §6.3.9.1).
    pub fn set_vmw(&mut self, vmw: u8) {
        if self.vmw == vmw {
            return;
        }
        self.vmw = vmw;
        self.register_changed();
    }

    /// Register state invalidation scopes depend on changed: every pending invalidation may now
    /// use the old or the new value (§4.1.2), so an entry stays covered only if it is required
    /// under each value seen since the command was consumed.
    fn register_changed(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let cur = self.scope_ctx(Queue::NonSecure);
        for p in &mut self.pending {
            let ctx = ScopeCtx {
                queue: p.ctxs[0].queue,
                ..cur
            };
            if !p.ctxs.contains(&ctx) {
                p.ctxs.push(ctx);
            }
        }
        let scopes: Vec<(u64, Vec<crate::scope::Scope>)> = self
            .pending
            .iter()
            .map(|p| {
                (
                    p.event,
                    p.ctxs.iter().map(|c| required_scope(c, p.raw)).collect(),
                )
            })
            .collect();
        // A command covers only entries already stale when it was consumed (origin < event).
        self.stale.rekill(
            |tag, origin| {
                scopes
                    .iter()
                    .find(|(ev, ss)| origin < *ev && ss.iter().all(|s| s.requires_tlb(tag)))
                    .map(|(ev, _)| *ev)
            },
            |tag, origin| {
                scopes
                    .iter()
                    .find(|(ev, ss)| origin < *ev && ss.iter().all(|s| s.requires_cfg(tag)))
                    .map(|(ev, _)| *ev)
            },
        );
    }

    fn scope_ctx(&self, queue: Queue) -> ScopeCtx {
        ScopeCtx {
            profile: self.profile,
            queue,
            vmw: self.vmw,
            s_vmw: 0,
            e2h: self.e2h,
            s_e2h: false,
            r_e2h: false,
        }
    }

    /// A command was consumed from the Non-secure queue. Returns how many stale entries its
    /// required scope covers (removal completes at the next SYNC), or the rule if the command
    /// must have raised CERROR_ILL instead of being consumed.
    pub fn consume(&mut self, raw: RawCommand) -> Result<usize, &'static Rule> {
        self.consume_on(Queue::NonSecure, raw)
    }

    pub fn consume_on(&mut self, queue: Queue, raw: RawCommand) -> Result<usize, &'static Rule> {
        self.stats.commands += 1;
        let c = classify(&self.profile, queue, raw);
        if let Verdict::Illegal(rule) = c.verdict {
            return Err(rule);
        }
        self.event += 1;
        let scope = required_scope(&self.scope_ctx(queue), raw);
        if scope.is_sync() {
            self.complete_sync();
            return Ok(0);
        }
        let n = self.stale.apply(&scope, self.event);
        let ctx = self.scope_ctx(queue);
        self.pending.push(Pending {
            event: self.event,
            raw,
            ctxs: vec![ctx],
        });
        Ok(n)
    }

    /// A CMD_SYNC completed: every invalidation consumed before it has taken effect.
    pub fn complete_sync(&mut self) {
        self.stats.syncs += 1;
        self.event += 1;
        // Keep what was removed (bounded) to explain later violations. Scopes are built once
        // per pending command, under the register state it was consumed with.
        let pending = std::mem::take(&mut self.pending);
        let scopes: Vec<(u64, RawCommand, crate::scope::Scope)> = pending
            .iter()
            .map(|p| (p.event, p.raw, required_scope(&p.ctxs[0], p.raw)))
            .collect();
        for (e, _, k) in self.stale.tlb_entries() {
            let Some(ev) = k else { continue };
            if let Some((_, raw, scope)) = scopes.iter().find(|(pe, _, _)| *pe == ev) {
                if self.graveyard.len() >= GRAVEYARD {
                    self.graveyard.pop_front();
                }
                self.graveyard.push_back(Removed {
                    entry: *e,
                    by: *raw,
                    rule: scope.rule_for_tlb(&e.tag),
                });
            }
        }
        // While SMMUEN == 0 nothing is inserted (§3.21.1, §6.3.9.6): what a completed
        // invalidation covers now cannot be cached again until the SMMU is enabled, so later
        // writes while disabled do not make it stale.
        if !self.smmuen && self.ever_enabled && !scopes.is_empty() {
            self.current_reach();
            let reach = self.reach.as_ref().expect("just computed");
            for e in &reach.tlb {
                if scopes.iter().any(|(_, _, sc)| sc.requires_tlb(&e.tag)) {
                    self.clean_tlb.insert(*e);
                }
            }
            for e in &reach.cfg {
                if scopes.iter().any(|(_, _, sc)| sc.requires_cfg(&e.tag)) {
                    self.clean_cfg.insert(e.clone());
                }
            }
        }
        // Stale configuration removed by this SYNC was usable until it completed, and TLBI and
        // CFGI are unordered without a SYNC between them: a walk through a still-cached old STE
        // or CD may refill the TLB after the TLBI was consumed (§4.3.6 note, §4.7.3). So TLB
        // entries reachable only through that configuration become stale now, and only a later
        // invalidation removes them. (Configuration itself, and walks through old table
        // pointers, cannot outlive a completed invalidation: §3.21.1, §3.21.3.)
        let refill = self.smmuen && self.stale.pending_cfg();
        let before = if refill {
            Some(self.current_reach().tlb.clone())
        } else {
            None
        };
        let mut roots = self.stale.complete_cfg();
        if let Some(before) = before {
            let after = self.compute_reach();
            let origin = Origin {
                event: self.event,
                pa: 0,
            };
            for e in before.difference(&after.tlb) {
                self.stale.add_tlb(*e, origin);
                self.stats.stale_created += 1;
            }
            self.spare = Some(after);
        }
        // A walk-cache entry that an invalidation did not cover (Leaf=1, or a TTL/TG hint), or
        // covered only later, can refill leaves below it after an earlier invalidation removed
        // them (§4.4.1.1, §3.21.1: only covered walk-cache entries stop being used): such a leaf
        // survives this SYNC as a new stale entry.
        for e in self.refills_through_tables() {
            self.stale.add_tlb(
                e,
                Origin {
                    event: self.event,
                    pa: 0,
                },
            );
        }
        // Entries cacheable now only through a stale walk-cache entry this SYNC removes (a
        // leaf cached while its table was current, whose table descriptor was removed while
        // an older walk-cache entry for that table was already stale) may still be cached
        // themselves: removing the walk-cache entry does not remove them (§3.21.1). Until the
        // walk-cache entry's own invalidation was consumed it could refill them after any
        // invalidation of their own (§4.4.1.1, as in `refills_through_tables`), so they stay
        // as stale entries unless an invalidation consumed no earlier than that one covers
        // them (after it nothing removed here can refill them, and its completion leaves no
        // access using them, §3.21.1). Entries already stale follow their own life cycle.
        // Likewise a stale stage-2 leaf of a nested VMID this SYNC removes: the combined entries
        // built from it stay cached unless an invalidation requiring them, consumed no earlier
        // than the stage-2 leaf's own, completes (CMD_TLBI_S2_IPA does not, §4.4.3.1).
        let s2_leaf_killed = self.stale.tlb_entries().any(|(e, _, k)| {
            k.is_some()
                && e.tag.stage == EntryStage::S2
                && e.tag.kind == crate::tlb::EntryKind::Leaf
        });
        let nested_vmids = if self.ever_enabled && s2_leaf_killed {
            self.current_reach().nested_vmids.clone()
        } else {
            Default::default()
        };
        let removed_tables: Vec<(crate::tlb::TlbTag, u64)> = self
            .stale
            .tlb_entries()
            .filter(|(e, _, _)| {
                e.tag.kind == crate::tlb::EntryKind::Table
                    || (e.tag.stage == EntryStage::S2 && nested_vmids.contains(&e.tag.vmid))
            })
            .filter_map(|(e, _, k)| k.map(|k| (e.tag, k)))
            .collect();
        let s2_leaves_go = removed_tables
            .iter()
            .any(|(t, _)| t.kind == crate::tlb::EntryKind::Leaf);
        let tables_go = self.ever_enabled && !removed_tables.is_empty();
        let before_tlb = if tables_go {
            // A combined entry this SYNC removes that a removed stage-2 leaf could build again
            // after the entry's own invalidation was consumed (a walk between that TLBI and the
            // stage-2 leaf's, §3.21.1) is judged like any other entry that leaves the set.
            let known: rustc_hash::FxHashSet<TlbEntry> = self
                .stale
                .tlb_entries()
                .filter(|(e, _, k)| {
                    !(s2_leaves_go && k.is_some() && e.tag.stage == EntryStage::Combined)
                })
                .map(|(e, _, _)| *e)
                .collect();
            let mut b = self.current_reach().tlb.clone();
            b.retain(|e| !known.contains(e));
            Some(b)
        } else {
            None
        };
        roots |= self.stale.complete_tlb();
        if roots || s2_leaves_go {
            // What only a removed stale table or structure reached is no longer cacheable.
            self.drop_reach();
        }
        if let Some(before) = before_tlb {
            let origin = Origin {
                event: self.event,
                pa: 0,
            };
            let after = self.current_reach().tlb.clone();
            let mut added = false;
            for e in before.difference(&after) {
                if self.clean_tlb.contains(e) || covered_after_refills(e, &removed_tables, &scopes)
                {
                    continue;
                }
                self.stale.add_tlb(*e, origin);
                self.stats.stale_created += 1;
                added = true;
            }
            if added {
                // New stale entries may be roots (tables) or translate IPAs (stage 2).
                self.drop_reach();
            }
        }
    }

    /// Leaves pending removal that a stale walk-cache entry alive after their removal can
    /// produce again.
    fn refills_through_tables(&self) -> Vec<TlbEntry> {
        let killed: Vec<(TlbEntry, u64)> = self
            .stale
            .tlb_entries()
            .filter_map(|(e, _, k)| k.map(|k| (*e, k)))
            .filter(|(e, _)| e.tag.kind == crate::tlb::EntryKind::Leaf)
            .collect();
        if killed.is_empty() {
            return Vec::new();
        }
        let mut groups: Vec<Option<u64>> = self
            .stale
            .tlb_entries()
            .filter(|(e, _, _)| e.tag.kind == crate::tlb::EntryKind::Table)
            .map(|(_, _, k)| k)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let mut out = Vec::new();
        for g in groups {
            // Roots alive after some killed leaf's removal: never covered, or covered later.
            if let Some(gk) = g {
                if !killed.iter().any(|(_, k)| gk > *k) {
                    continue;
                }
            }
            let mut r = Reacher::new(&self.mem, &self.sp);
            r.stale = Some(&self.stale);
            r.stale_tables(&self.stale, &|k| k == g);
            for (e, k) in &killed {
                let alive_after = g.is_none_or(|gk| gk > *k);
                // A global leaf matches any ASID (§3.17.1): the walk-cache entry's own ASID,
                // which the rebuilt leaf carries, says nothing about it. Its ASET does: a
                // global entry matches only lookups with its ASET (§3.17.1), and a walk through
                // the walk-cache entry runs for a context of that entry's ASID, whose ASET is
                // the walk-cache entry's (CDs of one ASID agree in ASET, §5.4.1), so it refills
                // the leaf with that ASET only.
                let refilled = r.out.tlb.contains(e)
                    || (e.tag.global
                        && r.out.tlb.iter().any(|x| {
                            x.tag.global
                                && TlbEntry {
                                    tag: crate::tlb::TlbTag {
                                        asid: e.tag.asid,
                                        ..x.tag
                                    },
                                    ..*x
                                } == *e
                        }));
                if alive_after && refilled && !out.contains(e) {
                    out.push(*e);
                }
            }
        }
        out
    }

    /// Every outcome the architecture allows for this probe now.
    pub fn allowed(&self, probe: &Probe) -> Allowed {
        let access = if probe.write {
            Access::write()
        } else {
            Access::read()
        };
        let mut en = Enumerator::new(&self.mem, &self.sp, &self.st, &self.stale, access);
        let mut a = en.probe(probe.sid, probe.ssid, probe.addr);
        // The walker's own fresh translation is authoritative for the current state.
        if let Some(f) = self.fresh(probe) {
            a.outcomes.insert(f);
            a.fresh = Some(f);
        }
        a
    }

    /// The result of a walk of current memory alone.
    pub fn fresh(&self, probe: &Probe) -> Option<Outcome> {
        let access = if probe.write {
            Access::write()
        } else {
            Access::read()
        };
        let mut trace = Vec::new();
        match crate::walk::translate_traced(
            &self.mem, &self.st, &self.sp, probe.sid, probe.ssid, probe.addr, access, &mut trace,
        ) {
            Ok(t) => Some(Outcome::Translated { pa: t.pa }),
            Err(f) => Some(match f.event_id() {
                Some(ev) => Outcome::Fault { event: ev },
                None => Outcome::Abort,
            }),
        }
    }

    /// Judge an observation.
    pub fn check(&self, probe: &Probe, obs: &Observation) -> Result<Accepted, Box<Violation>> {
        self.judge(probe, obs).map(|(acc, _)| acc)
    }

    /// [`Model::check`], also returning how many outcomes were allowed (0 when the observation
    /// was not observable and nothing was enumerated), so callers that count over-invalidation
    /// need not enumerate a second time.
    pub fn judge(
        &self,
        probe: &Probe,
        obs: &Observation,
    ) -> Result<(Accepted, usize), Box<Violation>> {
        if matches!(obs, Observation::CannotObserve) {
            return Ok((Accepted::NotObserved, 0));
        }
        let a = self.allowed(probe);
        let n = a.outcomes.len();
        let hit = match *obs {
            Observation::Translated { pa } => a.outcomes.contains(&Outcome::Translated { pa }),
            Observation::Fault { event: Some(ev) } => {
                a.outcomes.contains(&Outcome::Fault { event: ev })
            }
            // An unidentified fault matches any fault or abort.
            Observation::Fault { event: None } | Observation::Abort => a
                .outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Fault { .. } | Outcome::Abort)),
            Observation::CannotObserve => true,
        };
        if hit {
            let fresh_match = match (*obs, a.fresh) {
                (Observation::Translated { pa }, Some(Outcome::Translated { pa: f })) => pa == f,
                (Observation::Fault { .. } | Observation::Abort, Some(Outcome::Fault { .. }))
                | (Observation::Fault { .. } | Observation::Abort, Some(Outcome::Abort)) => true,
                _ => false,
            };
            let acc = if fresh_match {
                Accepted::Fresh
            } else {
                Accepted::Stale
            };
            return Ok((acc, n));
        }
        if a.undecided {
            return Ok((Accepted::Undecided, n));
        }
        Err(Box::new(self.explain(probe, obs, &a)))
    }

    fn explain(&self, probe: &Probe, obs: &Observation, a: &Allowed) -> Violation {
        let allowed: Vec<Outcome> = a.outcomes.iter().copied().collect();
        let allowed_s = allowed
            .iter()
            .map(|o| match o {
                Outcome::Translated { pa } => format!("PA {pa:#x}"),
                Outcome::Fault { event } => format!("fault {event:#04x}"),
                Outcome::Abort => "abort".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if let Observation::Translated { pa } = *obs {
            // Was it a translation an invalidation removed?
            for r in self.graveyard.iter().rev() {
                let t = &r.entry.tag;
                // Entries are tagged with canonical addresses; a tagged (TBI) VA reaches them
                // with its top byte ignored (§3.4.1).
                let addr = if t.base >> 55 & 1 == 1 {
                    probe.addr | 0xFF00_0000_0000_0000
                } else {
                    probe.addr & 0x00FF_FFFF_FFFF_FFFF
                };
                if addr < t.base || addr - t.base >= t.size {
                    continue;
                }
                if let TlbContent::Leaf { oa, .. } = r.entry.content {
                    if oa.wrapping_add(addr - t.base) == pa {
                        let rule = r.rule.unwrap_or(&rules::oracle::STALE_TLB_AFTER_SYNC);
                        let tagdesc = if t.global {
                            "global".to_string()
                        } else {
                            format!("ASID {}", t.asid)
                        };
                        return Violation {
                            rule,
                            message: format!(
                                "stale translation IOVA {:#x} -> PA {:#x} (SID {:#x}, {}, VMID {}, {:?} level {} {:?} entry) still observed after {} and a CMD_SYNC completed; {} requires: {}. Allowed now: {}",
                                probe.addr,
                                pa,
                                probe.sid,
                                tagdesc,
                                t.vmid,
                                t.stage,
                                t.level,
                                t.granule,
                                describe_cmd(r.by),
                                rule.section,
                                rule.summary,
                                allowed_s
                            ),
                            allowed,
                        };
                    }
                }
            }
            return Violation {
                rule: &rules::oracle::NO_SUCH_TRANSLATION,
                message: format!(
                    "IOVA {:#x} (SID {:#x}) reached PA {:#x}, which no walk of current or still-cacheable structures gives. Allowed now: {}",
                    probe.addr, probe.sid, pa, allowed_s
                ),
                allowed,
            };
        }
        Violation {
            rule: &rules::oracle::SPURIOUS_FAULT,
            message: format!(
                "IOVA {:#x} (SID {:#x}) {} but every permitted walk gives: {}",
                probe.addr,
                probe.sid,
                match obs {
                    Observation::Abort => "was aborted".to_string(),
                    Observation::Fault { event: Some(e) } => format!("faulted with event {e:#04x}"),
                    _ => "faulted".to_string(),
                },
                allowed_s
            ),
            allowed,
        }
    }
}

/// "CMD_TLBI_NH_VA(VMID=0, ASID=2, Addr=0x..., Leaf=1)" style.
pub fn describe_cmd(raw: RawCommand) -> String {
    let fields: Vec<String> = raw
        .fields()
        .skip(1)
        .filter(|(_, v)| *v != 0)
        .map(|(f, v)| {
            if f.shift != 0 {
                format!("{}={:#x}", f.name, v << f.shift)
            } else {
                format!("{}={:#x}", f.name, v)
            }
        })
        .collect();
    format!("{}({})", raw.opcode().name(), fields.join(", "))
}

impl MemRead for Model {
    fn read_u64(&self, pa: u64) -> u64 {
        self.mem.read_u64(pa)
    }
}
