//! Enumeration of every configuration structure and translation table descriptor reachable
//! from a Stream table, with the role each plays. Used to find which cached entries a
//! memory write could make stale.
//!
//! Bounded: at most [`TraverseOptions::max_reads`] memory words/structures are examined
//! (default 2^20); when the budget runs out the traversal stops and
//! [`TraverseStats::truncated`] is set. Repeated subtrees are skipped cheaply:
//! - a stage 2 table tree is walked once per (VMID, S2 walk parameters), however many STEs
//!   use it;
//! - a stage 1 table tree is walked once per translation context (StreamWorld, ASID, ASET,
//!   VMID, region walk parameters, stage 2 context). TLB entries are tagged by that context,
//!   not by StreamID (§3.17), so the S1 roles report the SID/SSID of the *first* CD that
//!   reached the tree.
//!
//! Within one tree a table reachable from several parents is visited once per parent (each
//! visit covers a different input range); depth is bounded by the four levels.
//! Only valid descriptors are reported and descended into (invalid descriptors are never
//! cached, Arm ARM D8.16). All STE, L1STD, CD and L1CD slots are reported, including invalid
//! ones, because configuration caches may hold invalid structures (§3.21.3), unless
//! [`TraverseOptions::include_invalid_structures`] is false.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::granule::Granule;
use crate::memory::MemRead;
use crate::structures::cd::{cd_table_step, CdFormat, CdTableStep, L1Cd, TtbRegion};
use crate::structures::stream_table::{read_struct, L1Std, StreamTableFormat};
use crate::structures::{Cd, SmmuProfile, Ste, StreamTableConfig, StreamWorld};
use crate::walk::{
    decode_descriptor, index_bits, s2_perms, walk_stage, Access, Descriptor, Raw, Stage, WalkParams,
};

/// The role of a visited structure or descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// An L1STD covering StreamIDs `sid_first .. sid_first + sid_count` (§5.1).
    L1Std { sid_first: u32, sid_count: u64 },
    /// The STE of `sid` (§5.2).
    Ste { sid: u32 },
    /// An L1CD of `sid`'s CD table covering SubstreamIDs `ssid_first ..+ ssid_count` (§5.3).
    L1Cd {
        sid: u32,
        ssid_first: u32,
        ssid_count: u32,
    },
    /// CD number `ssid` of `sid` (index 0 for a single-CD STE) (§5.4).
    Cd { sid: u32, ssid: u32 },
    /// A stage 1 table descriptor at `level` covering `va_base ..+ va_size`.
    S1Table {
        sid: u32,
        ssid: u32,
        world: StreamWorld,
        asid: u16,
        aset: bool,
        vmid: u16,
        region: TtbRegion,
        level: u8,
        granule: Granule,
        va_base: u64,
        va_size: u64,
    },
    /// A stage 1 block/page descriptor; `global` is nG == 0 (or a world without ASIDs).
    S1Leaf {
        sid: u32,
        ssid: u32,
        world: StreamWorld,
        asid: u16,
        aset: bool,
        vmid: u16,
        region: TtbRegion,
        global: bool,
        level: u8,
        granule: Granule,
        va_base: u64,
        va_size: u64,
    },
    /// A stage 2 table descriptor.
    S2Table {
        vmid: u16,
        level: u8,
        granule: Granule,
        ipa_base: u64,
        ipa_size: u64,
    },
    /// A stage 2 block/page descriptor.
    S2Leaf {
        vmid: u16,
        level: u8,
        granule: Granule,
        ipa_base: u64,
        ipa_size: u64,
    },
}

/// One visited item: its role, the PA read and the raw contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    pub role: Role,
    pub pa: u64,
    pub raw: Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraverseOptions {
    /// Budget of memory reads (structures and descriptors examined).
    pub max_reads: usize,
    /// Report invalid STEs/CDs/L1STDs/L1CDs too.
    pub include_invalid_structures: bool,
}

impl Default for TraverseOptions {
    fn default() -> Self {
        Self {
            max_reads: 1 << 20,
            include_invalid_structures: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraverseStats {
    /// Visitor calls.
    pub visited: usize,
    /// Memory reads done.
    pub reads: usize,
    /// The read budget ran out: the enumeration is incomplete.
    pub truncated: bool,
    /// Subtrees skipped as repeats.
    pub skipped_subtrees: usize,
}

/// Identity of a stage 2 table tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct S2Key {
    vmid: u16,
    params: WalkParams,
}

/// Identity of a stage 1 translation context.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct S1Key {
    world: StreamWorld,
    asid: u16,
    aset: bool,
    vmid: u16,
    params: WalkParams,
    s2: Option<WalkParams>,
}

#[derive(Clone, Copy)]
struct S1Ctx {
    sid: u32,
    ssid: u32,
    world: StreamWorld,
    asid: u16,
    aset: bool,
    vmid: u16,
}

/// Visits everything reachable from `st` (see the module documentation).
pub fn traverse<M, V>(
    mem: &M,
    st: &StreamTableConfig,
    profile: &SmmuProfile,
    opts: &TraverseOptions,
    visitor: V,
) -> TraverseStats
where
    M: MemRead + ?Sized,
    V: FnMut(&Node),
{
    let mut t = Traverser {
        mem,
        profile,
        opts,
        visitor,
        stats: TraverseStats::default(),
        s1_seen: HashSet::new(),
        s2_seen: HashSet::new(),
        s2_cache: None,
    };
    t.stream_table(st);
    t.stats
}

struct Traverser<'a, M: MemRead + ?Sized, V> {
    mem: &'a M,
    profile: &'a SmmuProfile,
    opts: &'a TraverseOptions,
    visitor: V,
    stats: TraverseStats,
    s1_seen: HashSet<S1Key>,
    s2_seen: HashSet<S2Key>,
    /// Last stage 2 leaf used to map IPAs: (params, ipa base, size, pa base).
    s2_cache: Option<(WalkParams, u64, u64, u64)>,
}

impl<M: MemRead + ?Sized, V: FnMut(&Node)> Traverser<'_, M, V> {
    /// Charges one read; false once the budget is exhausted.
    fn charge(&mut self) -> bool {
        if self.stats.reads >= self.opts.max_reads {
            self.stats.truncated = true;
            return false;
        }
        self.stats.reads += 1;
        true
    }

    fn read_word(&mut self, pa: u64) -> Option<u64> {
        if !self.charge() {
            return None;
        }
        self.mem.try_read_u64(pa)
    }

    fn read_struct(&mut self, pa: u64) -> Option<[u64; 8]> {
        if !self.charge() {
            return None;
        }
        read_struct(self.mem, pa)
    }

    fn visit(&mut self, role: Role, pa: u64, raw: Raw) {
        self.stats.visited += 1;
        (self.visitor)(&Node { role, pa, raw });
    }

    fn done(&self) -> bool {
        self.stats.truncated
    }

    /// Maps an IPA to a PA through stage 2 for a configuration/table fetch (read
    /// permission required), using a one-entry cache of the last leaf.
    fn ipa_to_pa(&mut self, s2: Option<&WalkParams>, addr: u64) -> Option<u64> {
        let Some(s2) = s2 else { return Some(addr) };
        if let Some((p, base, size, pa)) = self.s2_cache {
            if p == *s2 && addr.wrapping_sub(base) < size {
                return Some(pa.wrapping_add(addr - base));
            }
        }
        if !self.charge() {
            return None;
        }
        let mut steps = Vec::new();
        let leaf = walk_stage(self.mem, s2, addr, &mut steps).ok()?;
        self.stats.reads += steps.len().saturating_sub(1);
        if !s2_perms(&leaf).allows(Access::READ) {
            return None;
        }
        self.s2_cache = Some((*s2, leaf.input_base, leaf.size, leaf.output_base));
        Some(leaf.output_address)
    }

    fn stream_table(&mut self, st: &StreamTableConfig) {
        let p = *self.profile;
        let base = st.effective_base(&p);
        let num = st.num_sids(&p);
        match st.format(&p) {
            StreamTableFormat::Linear => {
                for sid in 0..num {
                    if self.done() {
                        return;
                    }
                    self.ste(sid as u32, base.wrapping_add(sid * 64));
                }
            }
            StreamTableFormat::TwoLevel => {
                let split = st.effective_split();
                let per_l1 = 1u64 << split;
                for i in 0..st.num_l1(&p) {
                    if self.done() {
                        return;
                    }
                    let pa = base.wrapping_add(i * 8);
                    let Some(raw) = self.read_word(pa) else {
                        continue;
                    };
                    let l1 = L1Std::decode(raw);
                    let span = l1.effective_span(split);
                    let sid_first = i * per_l1;
                    let sid_count = per_l1.min(num.saturating_sub(sid_first));
                    if span != 0 || self.opts.include_invalid_structures {
                        self.visit(
                            Role::L1Std {
                                sid_first: sid_first as u32,
                                sid_count,
                            },
                            pa,
                            Raw::Word(raw),
                        );
                    }
                    if span == 0 {
                        continue;
                    }
                    let l2 = l1.l2_base(span);
                    let count = (1u64 << (span - 1)).min(sid_count);
                    for j in 0..count {
                        if self.done() {
                            return;
                        }
                        self.ste((sid_first + j) as u32, l2.wrapping_add(j * 64));
                    }
                }
            }
        }
    }

    fn ste(&mut self, sid: u32, pa: u64) {
        let Some(words) = self.read_struct(pa) else {
            return;
        };
        let ste = Ste::decode(words);
        let p = *self.profile;
        let ok = ste.check(&p).is_ok();
        if ok || self.opts.include_invalid_structures {
            self.visit(Role::Ste { sid }, pa, Raw::Struct(words));
        }
        if !ok {
            return;
        }
        let config = ste.config();
        let vmid = ste.tlb_vmid(&p);
        let world = ste.stream_world(&p).unwrap_or(StreamWorld::NsEl1);
        let s2 = if config.s2_enabled() {
            WalkParams::stage2(&ste, &p)
        } else {
            None
        };
        if let Some(s2p) = s2 {
            let key = S2Key { vmid, params: s2p };
            if self.s2_seen.insert(key) {
                self.tree(&s2p, s2p.start_level, s2p.table_base, 0, None, vmid, None);
            } else {
                self.stats.skipped_subtrees += 1;
            }
        }
        if !config.s1_enabled() {
            return;
        }
        let fmt = CdFormat::of_ste(&ste, &p);
        let n_cds: u64 = if fmt == CdFormat::Single {
            1
        } else {
            1u64 << ste.s1cdmax.min(20)
        };
        match fmt.l2_bits() {
            None => {
                for idx in 0..n_cds {
                    if self.done() {
                        return;
                    }
                    if let CdTableStep::Cd { addr } = cd_table_step(&ste, &p, idx as u32) {
                        self.cd(sid, idx as u32, addr, s2.as_ref(), world, vmid);
                    }
                }
            }
            Some(l2_bits) => {
                let per_l1 = 1u64 << l2_bits;
                let n_l1 = n_cds.div_ceil(per_l1);
                for i in 0..n_l1 {
                    if self.done() {
                        return;
                    }
                    let first = i * per_l1;
                    let CdTableStep::L1Cd { l1cd_addr, .. } = cd_table_step(&ste, &p, first as u32)
                    else {
                        continue;
                    };
                    let Some(pa) = self.ipa_to_pa(s2.as_ref(), l1cd_addr) else {
                        continue;
                    };
                    let Some(raw) = self.read_word(pa) else {
                        continue;
                    };
                    let l1 = L1Cd::decode(raw);
                    let count = per_l1.min(n_cds - first);
                    if l1.v || self.opts.include_invalid_structures {
                        self.visit(
                            Role::L1Cd {
                                sid,
                                ssid_first: first as u32,
                                ssid_count: count as u32,
                            },
                            pa,
                            Raw::Word(raw),
                        );
                    }
                    if !l1.v {
                        continue;
                    }
                    let l2 = l1.l2_base(fmt);
                    for j in 0..count {
                        if self.done() {
                            return;
                        }
                        let addr = l2.wrapping_add(j * 64);
                        self.cd(sid, (first + j) as u32, addr, s2.as_ref(), world, vmid);
                    }
                }
            }
        }
    }

    fn cd(
        &mut self,
        sid: u32,
        ssid: u32,
        addr: u64,
        s2: Option<&WalkParams>,
        world: StreamWorld,
        vmid: u16,
    ) {
        let Some(pa) = self.ipa_to_pa(s2, addr) else {
            return;
        };
        let Some(words) = self.read_struct(pa) else {
            return;
        };
        let cd = Cd::decode(words);
        let p = *self.profile;
        let ok = cd.check(&p, world).is_ok();
        if ok || self.opts.include_invalid_structures {
            self.visit(Role::Cd { sid, ssid }, pa, Raw::Struct(words));
        }
        if !ok {
            return;
        }
        let asid = if world.has_asid() { cd.asid } else { 0 };
        let aset = world.has_asid() && cd.aset;
        for region in [TtbRegion::Ttb0, TtbRegion::Ttb1] {
            let Some(params) = WalkParams::stage1_region(&cd, world, &p, region) else {
                continue;
            };
            let key = S1Key {
                world,
                asid,
                aset,
                vmid,
                params,
                s2: s2.copied(),
            };
            if !self.s1_seen.insert(key) {
                self.stats.skipped_subtrees += 1;
                continue;
            }
            let ctx = S1Ctx {
                sid,
                ssid,
                world,
                asid,
                aset,
                vmid,
            };
            self.tree(
                &params,
                params.start_level,
                params.table_base,
                params.region_base(),
                Some(ctx),
                vmid,
                s2,
            );
        }
    }

    /// Visits the table at `level` (address in the walk's table space) covering inputs from
    /// `ia_base`, and everything below it.
    #[allow(clippy::too_many_arguments)]
    fn tree(
        &mut self,
        params: &WalkParams,
        level: u8,
        table: u64,
        ia_base: u64,
        s1: Option<S1Ctx>,
        vmid: u16,
        s2: Option<&WalkParams>,
    ) {
        if level > 3 {
            return;
        }
        let g = params.granule;
        let n = 1u64 << index_bits(params, level);
        let entry = g.entry_size(level);
        for i in 0..n {
            if self.done() {
                return;
            }
            let addr = table.wrapping_add(i * 8);
            let Some(pa) = self.ipa_to_pa(s2, addr) else {
                continue;
            };
            let Some(raw) = self.read_word(pa) else {
                continue;
            };
            let ia = ia_base.wrapping_add(i.wrapping_mul(entry));
            let (is_leaf, next) = match decode_descriptor(g, level, raw, params.stage) {
                Descriptor::Invalid => continue,
                Descriptor::Table { next_table, .. } => (false, next_table),
                Descriptor::Leaf {
                    output_address,
                    attrs,
                    ..
                } => {
                    // Bit 0 of `next` carries "global" (nG == 0) for the role below.
                    let is_global = !attrs.ng;
                    (true, output_address | is_global as u64)
                }
            };
            let out_bits = params.output_bits;
            if out_bits < 64 && (next & !1) >> out_bits != 0 {
                continue; // Address Size fault: never cached.
            }
            let role = match (s1, is_leaf) {
                (Some(c), false) => Role::S1Table {
                    sid: c.sid,
                    ssid: c.ssid,
                    world: c.world,
                    asid: c.asid,
                    aset: c.aset,
                    vmid: c.vmid,
                    region: params.region.unwrap_or(TtbRegion::Ttb0),
                    level,
                    granule: g,
                    va_base: ia,
                    va_size: entry,
                },
                (Some(c), true) => Role::S1Leaf {
                    sid: c.sid,
                    ssid: c.ssid,
                    world: c.world,
                    asid: c.asid,
                    aset: c.aset,
                    vmid: c.vmid,
                    region: params.region.unwrap_or(TtbRegion::Ttb0),
                    global: c.world == StreamWorld::NsEl2 || next & 1 == 1,
                    level,
                    granule: g,
                    va_base: ia,
                    va_size: entry,
                },
                (None, false) => Role::S2Table {
                    vmid,
                    level,
                    granule: g,
                    ipa_base: ia,
                    ipa_size: entry,
                },
                (None, true) => Role::S2Leaf {
                    vmid,
                    level,
                    granule: g,
                    ipa_base: ia,
                    ipa_size: entry,
                },
            };
            debug_assert!(params.stage == Stage::S1 || s1.is_none());
            self.visit(role, pa, Raw::Word(raw));
            if !is_leaf {
                self.tree(params, level + 1, next, ia, s1, vmid, s2);
            }
        }
    }
}
