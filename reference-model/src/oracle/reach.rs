//! Everything an SMMU could have cached from the structures reachable right now: configuration
//! (STEs, L1STDs, CDs, L1CDs) and TLB/walk-cache entries (§16.2), each with its tags (§3.17).
//!
//! The model finds stale entries by difference: when a memory write touches anything reachable,
//! every entry that was cacheable before the write and is not identical after it has become a
//! stale entry that may stay cached until an invalidation covering it completes (§3.21.1,
//! §3.21.3). This covers in one mechanism a changed leaf, a removed or replaced table (its whole
//! old subtree, e.g. level-2 blocks under a removed level-1 table), a changed CD (ASID, TTB,
//! granule), a changed STE (VMID, S2TTB, Config) and a changed L1 descriptor.
//!
//! Structures reachable only through stale entries (an old table still pointed to by a cached
//! walk entry, an old STE or CD) are roots too, so writes into them are tracked as well.

use super::context::{subtree_params, Ctx};
use super::stale::{CfgEntry, LeafAttrs, StaleSet, TlbContent, TlbEntry};
use crate::memory::MemRead;
use crate::structures::cd::{cd_table_step, CdTableStep};
use crate::structures::stream_table::{read_struct, StreamTableFormat};
use crate::structures::{Cd, L1Cd, L1Std, SmmuProfile, Ste, StreamTableConfig};
use crate::tlb::{CfgTag, EntryKind, EntryStage, Security, TlbTag};
use crate::walk::{
    decode_descriptor, s1_perms, s2_perms, table_size, walk_stage, Descriptor, Leaf, Stage,
    WalkParams,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// Bounds that keep one traversal cheap whatever memory holds (the fuzzer writes garbage).
pub const MAX_STREAMS: u64 = 1 << 12;
pub const MAX_CDS_PER_STREAM: u64 = 256;
pub const MAX_NODES: usize = 200_000;
/// Combined S1+S2 entries generated per stage-1 leaf (a large S1 block over small S2 pages).
pub const MAX_COMBINED_PER_LEAF: usize = 512;

#[derive(Default, Debug, Clone)]
pub struct Reach {
    pub tlb: FxHashSet<TlbEntry>,
    pub cfg: FxHashSet<CfgEntry>,
    /// Every PA read to build the above other than a translation-table slot (those are in
    /// `tables`): a write outside both cannot change what is cacheable.
    pub pas: FxHashSet<u64>,
    /// True when a bound cut the traversal short (reported, never silent).
    pub truncated: bool,
    nodes: usize,
    /// Every translation table visited, with the context it serves: the slots of a table are
    /// found from its range, not stored one by one, so a traversal costs what the table holds
    /// (its non-zero words), not its size (8 192 slots for a 64K-granule table). A write that
    /// only changes a leaf updates the cacheable set locally ([`Reach::leaf_write`]).
    pub tables: Vec<TableVisit>,
    /// Which entries of `tables` overlap each 4 KiB page.
    table_pages: PageIndex,
    /// PAs read as anything other than a table slot (STE, CD, L1 descriptors, stage-2 walks done
    /// to fetch structures or build combined entries): a write there is never local. Single
    /// words here, whole structures (STEs, CDs, a linear stream table) in `structural_ranges`.
    pub structural: FxHashSet<u64>,
    /// Word ranges (first, n) read as structures; also counted as read (see [`Reach::reads`]).
    pub structural_ranges: Vec<(u64, u64)>,
    structural_pages: PageIndex,
    /// Contexts referenced by `tables`.
    pub ctxs: Vec<Ctx>,
    /// Some slot is used by a nested context or structure fetch: local updates are not attempted
    /// for stage-2 slots of these VMIDs (combined entries depend on them).
    pub nested_vmids: FxHashSet<u16>,
}

/// One visit of a translation table: its words [first, first + 8 * n) (wrapping) at `level`,
/// slot `i` translating input address `ia_base + i * step`, in context `ctx`.
#[derive(Clone, Copy, Debug)]
pub struct TableVisit {
    pub ctx: u32,
    pub stage: Stage,
    pub params: WalkParams,
    pub level: u8,
    pub ia_base: u64,
    pub step: u64,
    pub first: u64,
    /// Slots visited: the whole table unless the traversal bound stopped inside it.
    pub n: u64,
}

impl TableVisit {
    /// The slot this visit reads at `pa`, if any.
    fn slot(&self, pa: u64) -> Option<Slot> {
        let idx = (pa & !7).wrapping_sub(self.first) >> 3;
        (idx < self.n).then(|| Slot {
            ctx: self.ctx,
            stage: self.stage,
            params: self.params,
            level: self.level,
            ia: self.ia_base.wrapping_add(idx.wrapping_mul(self.step)),
        })
    }
}

/// One use of a descriptor slot: the table level and input address it translates, in a context.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub ctx: u32,
    pub stage: Stage,
    pub params: WalkParams,
    pub level: u8,
    pub ia: u64,
}

/// The leaf entry a descriptor value gives in a slot, if any (only valid translations are
/// cached, §3.21.1); `None` when the value is a table descriptor (a structural change).
pub fn leaf_entry(ctx: &Ctx, s: &Slot, pa: u64, raw: u64) -> Option<Option<TlbEntry>> {
    let g = s.params.granule;
    match decode_descriptor(g, s.level, raw, s.stage) {
        Descriptor::Invalid => Some(None),
        Descriptor::Table { .. } => None,
        Descriptor::Leaf {
            output_address,
            size,
            attrs,
            ..
        } => {
            if !attrs.af && !s.params.affd {
                return Some(None);
            }
            let leaf = Leaf {
                stage: s.stage,
                input_address: s.ia,
                output_address,
                input_base: s.ia,
                output_base: output_address,
                level: s.level,
                size,
                granule: g,
                attrs,
                table_attrs: Default::default(),
                descriptor_pa: pa,
                raw,
                region: s.params.region,
            };
            let (perms, global) = match s.stage {
                Stage::S1 => (s1_perms(&leaf, ctx.walk_world, ctx.wxn), !attrs.ng),
                Stage::S2 => (s2_perms(&leaf), false),
            };
            Some(Some(TlbEntry {
                tag: tag(
                    ctx,
                    s.stage,
                    EntryKind::Leaf,
                    g,
                    s.level,
                    s.ia,
                    size,
                    global,
                ),
                content: TlbContent::Leaf {
                    oa: output_address,
                    attrs: attrs_of(perms),
                },
            }))
        }
    }
}

impl Reach {
    /// A write of `new` over `old` at `pa` when both are leaves or invalid in every slot that
    /// uses `pa` and no nested context depends on it: update the cacheable set in place and
    /// return the entries that stopped being cacheable. `None` means a full recomputation is
    /// needed (a table descriptor changed, or combined entries depend on the slot).
    pub fn leaf_write(&mut self, pa: u64, old: u64, new: u64) -> Option<Vec<TlbEntry>> {
        if self.is_structural(pa) {
            return None;
        }
        let slots = self.slots_at(pa);
        if slots.is_empty() {
            return None;
        }
        let mut gone = Vec::new();
        let mut added = Vec::new();
        for s in &slots {
            let ctx = self.ctxs.get(s.ctx as usize)?;
            if ctx.nested() || (s.stage == Stage::S2 && self.nested_vmids.contains(&ctx.vmid)) {
                return None;
            }
            let o = leaf_entry(ctx, s, pa, old)?;
            let n = leaf_entry(ctx, s, pa, new)?;
            if o != n {
                if let Some(o) = o {
                    gone.push(o);
                }
                if let Some(n) = n {
                    added.push(n);
                }
            }
        }
        for e in &gone {
            self.tlb.remove(e);
        }
        for e in added {
            self.tlb.insert(e);
        }
        // An entry still produced by another slot is not stale.
        gone.retain(|e| !self.tlb.contains(e));
        Some(gone)
    }
}

/// 4 KiB page number -> indices of the word ranges overlapping that page, ascending: finds the
/// ranges containing a PA with one hash probe, whatever the ranges' sizes.
#[derive(Default, Debug, Clone)]
struct PageIndex(FxHashMap<u64, Vec<u32>>);

impl PageIndex {
    fn add(&mut self, first: u64, n: u64, id: u32) {
        if n == 0 {
            return;
        }
        let last = first.wrapping_add((n - 1).wrapping_mul(8)) >> 12;
        let mut page = first >> 12;
        loop {
            self.0.entry(page).or_default().push(id);
            if page == last {
                break;
            }
            page = page.wrapping_add(1) & (u64::MAX >> 12);
        }
    }

    fn at(&self, pa: u64) -> &[u32] {
        self.0.get(&(pa >> 12)).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

/// Whether the `n` words from `first` (wrapping) include the word at `pa`.
fn in_range(first: u64, n: u64, pa: u64) -> bool {
    ((pa & !7).wrapping_sub(first) >> 3) < n
}

impl Reach {
    /// Empty, keeping the collections' allocations for the next traversal.
    pub fn clear(&mut self) {
        self.tlb.clear();
        self.cfg.clear();
        self.pas.clear();
        self.truncated = false;
        self.nodes = 0;
        self.tables.clear();
        self.table_pages.0.clear();
        self.structural.clear();
        self.structural_ranges.clear();
        self.structural_pages.0.clear();
        self.ctxs.clear();
        self.nested_vmids.clear();
    }

    /// Whether building this set read `pa`: a write elsewhere cannot change what is cacheable.
    pub fn reads(&self, pa: u64) -> bool {
        self.pas.contains(&(pa & !7))
            || self.is_structural(pa)
            || self.in_tables(pa).next().is_some()
    }

    /// Whether `pa` was read as (part of) a structure rather than a table slot.
    pub fn is_structural(&self, pa: u64) -> bool {
        self.structural.contains(&(pa & !7))
            || self.structural_pages.at(pa).iter().any(|&i| {
                let (first, n) = self.structural_ranges[i as usize];
                in_range(first, n, pa)
            })
    }

    fn add_structural(&mut self, first: u64, n: u64) {
        let i = self.structural_ranges.len() as u32;
        self.structural_ranges.push((first, n));
        self.structural_pages.add(first, n, i);
    }

    /// The table visits that read `pa`, in visiting order.
    fn in_tables(&self, pa: u64) -> impl Iterator<Item = Slot> + '_ {
        self.table_pages
            .at(pa)
            .iter()
            .filter_map(move |&i| self.tables[i as usize].slot(pa))
    }

    /// Every use of the descriptor slot at `pa` (one per table visit that read it).
    pub fn slots_at(&self, pa: u64) -> Vec<Slot> {
        self.in_tables(pa).collect()
    }

    fn add_table(&mut self, v: TableVisit) -> usize {
        let i = self.tables.len();
        self.table_pages.add(v.first, v.n, i as u32);
        self.tables.push(v);
        i
    }
}

pub fn attrs_of(p: crate::walk::Perms) -> LeafAttrs {
    LeafAttrs { perms: p }
}

pub struct Reacher<'a, M: MemRead + ?Sized> {
    pub mem: &'a M,
    pub sp: &'a SmmuProfile,
    pub out: Reach,
    /// Stale entries that may still be cached: a nested stage-1 structure stays reachable
    /// through a cached stage-2 entry after the stage-2 tables stop mapping it.
    pub stale: Option<&'a StaleSet>,
}

impl<'a, M: MemRead + ?Sized> Reacher<'a, M> {
    pub fn new(mem: &'a M, sp: &'a SmmuProfile) -> Self {
        Reacher {
            mem,
            sp,
            out: Reach::default(),
            stale: None,
        }
    }

    fn read(&mut self, pa: u64) -> u64 {
        self.out.pas.insert(pa & !7);
        self.out.structural.insert(pa & !7);
        self.mem.read_u64(pa)
    }

    fn read8(&mut self, pa: u64) -> [u64; 8] {
        self.out.add_structural(pa & !7, 8);
        read_struct(self.mem, pa).unwrap_or([0; 8])
    }

    /// Index of `ctx` in `out.ctxs` (contexts are few: one per STE/CD pair reached).
    fn ctx_index(&mut self, ctx: &Ctx) -> u32 {
        if let Some(last) = self.out.ctxs.last() {
            if same_ctx(last, ctx) {
                return (self.out.ctxs.len() - 1) as u32;
            }
        }
        self.out.ctxs.push(*ctx);
        (self.out.ctxs.len() - 1) as u32
    }

    fn budget(&mut self) -> bool {
        self.out.nodes += 1;
        if self.out.nodes > MAX_NODES {
            self.out.truncated = true;
            false
        } else {
            true
        }
    }

    /// Everything reachable from the stream table.
    pub fn stream_table(&mut self, st: &StreamTableConfig) {
        let n = st.num_sids(self.sp);
        if n > MAX_STREAMS {
            self.out.truncated = true;
        }
        let base = st.effective_base(self.sp);
        match st.format(self.sp) {
            StreamTableFormat::Linear => {
                // The STEs are contiguous: one structural range for all of them.
                let count = n.min(MAX_STREAMS);
                self.out.add_structural(base & !7, count * 8);
                for sid in 0..count {
                    self.ste_at(sid as u32, base.wrapping_add(sid * 64), true);
                }
            }
            StreamTableFormat::TwoLevel => {
                let split = st.effective_split();
                let per_l1 = 1u64 << split;
                let n_l1 = n.div_ceil(per_l1).min(MAX_STREAMS);
                for i in 0..n_l1 {
                    let pa = base.wrapping_add(i * 8);
                    let raw = self.read(pa);
                    let l1 = L1Std::decode(raw);
                    let span = l1.effective_span(split);
                    if span == 0 {
                        continue;
                    }
                    let first = (i * per_l1) as u32;
                    let count = (1u64 << (span - 1)).min(per_l1);
                    self.out.cfg.insert(CfgEntry {
                        tag: CfgTag::L1Std {
                            sec: Security::NonSecure,
                            sid_first: first,
                            sid_count: count,
                        },
                        words: vec![raw],
                    });
                    let l2 = l1.l2_base(span);
                    let count = count.min(MAX_STREAMS);
                    self.out.add_structural(l2 & !7, count * 8);
                    for j in 0..count {
                        self.ste_at(first.wrapping_add(j as u32), l2.wrapping_add(j * 64), true);
                    }
                }
            }
        }
    }

    /// The STE of `sid` at `pa`; `recorded` when the caller has already recorded its words as
    /// read.
    fn ste_at(&mut self, sid: u32, pa: u64, recorded: bool) {
        // Only V=1 STEs lead anywhere, but any reachable STE, valid or not (all zeros
        // included), may be cached (§3.21.3, case 63): it is recorded as configuration too.
        let words = if recorded {
            read_struct(self.mem, pa).unwrap_or([0; 8])
        } else {
            self.read8(pa)
        };
        self.out.cfg.insert(CfgEntry {
            tag: CfgTag::Ste {
                sec: Security::NonSecure,
                sid,
            },
            words: words.to_vec(),
        });
        self.ste_value(sid, &words);
    }

    /// What an STE value leads to (used for current STEs and for stale cached ones).
    pub fn ste_value(&mut self, sid: u32, words: &[u64; 8]) {
        if !self.budget() {
            return;
        }
        let ste = Ste::decode(*words);
        if !ste.v || ste.check(self.sp).is_err() {
            return;
        }
        let cfg = ste.config();
        if cfg.s2_enabled() {
            if let Some(ctx) = Ctx::new(sid, &ste, None, self.sp) {
                if let Some(p) = ctx.s2 {
                    self.tree(&ctx, Stage::S2, &p, p.start_level, p.table_base, 0);
                }
            }
        }
        if cfg.s1_enabled() {
            let max = if ste.s1cdmax == 0 {
                1
            } else {
                (1u64 << ste.s1cdmax.min(20)).min(MAX_CDS_PER_STREAM)
            };
            for ssid in 0..max as u32 {
                self.cd_index(sid, &ste, ssid);
            }
        }
    }

    fn cd_index(&mut self, sid: u32, ste: &Ste, ssid: u32) {
        let nested = ste.config().s2_enabled();
        let ctx0 = Ctx::new(sid, ste, None, self.sp);
        let addr = match cd_table_step(ste, self.sp, ssid) {
            CdTableStep::Cd { addr } => addr,
            CdTableStep::L1Cd {
                l1cd_addr,
                l2_index,
            } => {
                let Some(pa) = self
                    .ipa_to_pa(ctx0.as_ref(), nested, l1cd_addr)
                    .first()
                    .copied()
                else {
                    return;
                };
                let raw = self.read(pa);
                let l1 = L1Cd::decode(raw);
                if !l1.v {
                    return;
                }
                let fmt = crate::structures::CdFormat::of_ste(ste, self.sp);
                let per = 1u64 << fmt.l2_bits().unwrap_or(6);
                self.out.cfg.insert(CfgEntry {
                    tag: CfgTag::L1Cd {
                        sec: Security::NonSecure,
                        sid,
                        ssid_first: (ssid as u64 & !(per - 1)) as u32,
                        ssid_count: per,
                    },
                    words: vec![raw],
                });
                l1.l2_base(fmt).wrapping_add(l2_index * 64)
            }
        };
        for pa in self.ipa_to_pa(ctx0.as_ref(), nested, addr) {
            self.cd_at(sid, ste, ssid, pa);
        }
    }

    fn cd_at(&mut self, sid: u32, ste: &Ste, ssid: u32, pa: u64) {
        let words = self.read8(pa);
        if words[0] == 0 {
            return;
        }
        self.out.cfg.insert(CfgEntry {
            tag: CfgTag::Cd {
                sec: Security::NonSecure,
                sid,
                ssid,
            },
            words: words.to_vec(),
        });
        self.cd_value(sid, ste, &words);
    }

    /// What a CD value leads to, through this STE.
    pub fn cd_value(&mut self, sid: u32, ste: &Ste, words: &[u64; 8]) {
        let cd = Cd::decode(*words);
        let Some(ctx) = Ctx::new(sid, ste, Some(&cd), self.sp) else {
            return;
        };
        if !cd.v || cd.check(self.sp, ctx.walk_world).is_err() {
            return;
        }
        for region in [
            crate::structures::cd::TtbRegion::Ttb0,
            crate::structures::cd::TtbRegion::Ttb1,
        ] {
            if let Some(p) = WalkParams::stage1_region(&cd, ctx.walk_world, self.sp, region) {
                let base = p.region_base();
                self.tree(&ctx, Stage::S1, &p, p.start_level, p.table_base, base);
            }
        }
    }

    /// A stage-1 table address is an IPA when stage 2 is on (§3.4): translate it with a fresh
    /// stage-2 walk of current memory.
    fn ipa_to_pa(&mut self, ctx: Option<&Ctx>, nested: bool, ipa: u64) -> Vec<u64> {
        if !nested {
            return vec![ipa];
        }
        let Some(c) = ctx else { return Vec::new() };
        let Some(p) = c.s2 else { return Vec::new() };
        let mut out = Vec::new();
        let mut trace = Vec::new();
        if let Ok(leaf) = walk_stage(self.mem, &p, ipa, &mut trace) {
            out.push(leaf.output_address);
        }
        for s in &trace {
            self.out.pas.insert(s.descriptor_pa & !7);
            self.out.structural.insert(s.descriptor_pa & !7);
        }
        // Still-cached stage-2 leaves for this VMID translate it too (§3.21.1: until a covering
        // invalidation completes).
        if let Some(st) = self.stale {
            for level in 0..=3u8 {
                for (e, _) in st.lookup(
                    crate::tlb::StreamWorld::NsEl1,
                    EntryStage::S2,
                    EntryKind::Leaf,
                    c.vmid,
                    Some(0),
                    level,
                    ipa,
                ) {
                    if let TlbContent::Leaf { oa, .. } = e.content {
                        let pa = oa.wrapping_add(ipa.wrapping_sub(e.tag.base));
                        if !out.contains(&pa) {
                            out.push(pa);
                        }
                    }
                }
            }
        }
        out
    }

    /// Walk every valid descriptor of the table at `level`, recording table and leaf entries.
    pub fn tree(
        &mut self,
        ctx: &Ctx,
        stage: Stage,
        p: &WalkParams,
        level: u8,
        table: u64,
        ia_base: u64,
    ) {
        if level > 3 || !self.budget() {
            return;
        }
        let pas = if stage == Stage::S1 {
            self.ipa_to_pa(Some(ctx), ctx.nested(), table)
        } else {
            vec![table]
        };
        for table_pa in pas {
            self.tree_at(ctx, stage, p, level, table_pa, ia_base);
        }
    }

    /// [`Reacher::tree`] for a table already located at `table_pa`.
    fn tree_at(
        &mut self,
        ctx: &Ctx,
        stage: Stage,
        p: &WalkParams,
        level: u8,
        table_pa: u64,
        ia_base: u64,
    ) {
        let g = p.granule;
        let n = table_size(p, level) / 8;
        let step = g.entry_size(level);
        let ci = self.ctx_index(ctx);
        if ctx.nested() {
            self.out.nested_vmids.insert(ctx.vmid);
        }
        let first = table_pa & !7;
        let vi = self.out.add_table(TableVisit {
            ctx: ci,
            stage,
            params: *p,
            level,
            ia_base,
            step,
            first,
            n,
        });
        // Only valid descriptors (bit 0 set) lead anywhere; zero words are never stored.
        let mut valid = Vec::new();
        self.mem.for_each_nonzero(first, n, &mut |pa, raw| {
            if raw & 1 == 1 {
                valid.push((pa, raw));
            }
        });
        for (pa, raw) in valid {
            let idx = pa.wrapping_sub(first) >> 3;
            let ia = ia_base.wrapping_add(idx.wrapping_mul(step));
            match decode_descriptor(g, level, raw, stage) {
                Descriptor::Invalid => {}
                Descriptor::Table { next_table, .. } => {
                    self.out.tlb.insert(TlbEntry {
                        tag: tag(ctx, stage, EntryKind::Table, g, level, ia, step, true),
                        content: TlbContent::Table { next: next_table },
                    });
                    self.tree(ctx, stage, p, level + 1, next_table, ia);
                    if !self.budget() {
                        // The slots after this one were never read.
                        self.out.tables[vi].n = idx + 1;
                        return;
                    }
                }
                Descriptor::Leaf {
                    output_address,
                    size,
                    attrs,
                    ..
                } => {
                    let leaf = Leaf {
                        stage,
                        input_address: ia,
                        output_address,
                        input_base: ia,
                        output_base: output_address,
                        level,
                        size,
                        granule: g,
                        attrs,
                        table_attrs: Default::default(),
                        descriptor_pa: pa,
                        raw,
                        region: p.region,
                    };
                    // Only valid translations are cached: AF == 0 faults unless AFFD (§3.21.1).
                    if !attrs.af && !p.affd {
                        continue;
                    }
                    let (perms, global) = match stage {
                        Stage::S1 => (s1_perms(&leaf, ctx.walk_world, ctx.wxn), !attrs.ng),
                        Stage::S2 => (s2_perms(&leaf), false),
                    };
                    self.out.tlb.insert(TlbEntry {
                        tag: tag(ctx, stage, EntryKind::Leaf, g, level, ia, size, global),
                        content: TlbContent::Leaf {
                            oa: output_address,
                            attrs: attrs_of(perms),
                        },
                    });
                    if stage == Stage::S1 && ctx.nested() {
                        self.combined(ctx, g, level, ia, size, output_address, global, perms);
                    }
                }
            }
        }
    }

    /// Combined S1+S2 entries for a stage-1 leaf of a nested configuration (§16.2.1): one per
    /// stage-2 leaf under the stage-1 output range, tagged like the stage-1 entry.
    #[allow(clippy::too_many_arguments)]
    fn combined(
        &mut self,
        ctx: &Ctx,
        g: crate::granule::Granule,
        level: u8,
        va: u64,
        size: u64,
        ipa: u64,
        global: bool,
        s1p: crate::walk::Perms,
    ) {
        let Some(p2) = ctx.s2 else { return };
        let mut off = 0u64;
        let mut n = 0;
        while off < size {
            n += 1;
            if n > MAX_COMBINED_PER_LEAF {
                self.out.truncated = true;
                return;
            }
            let mut trace = Vec::new();
            let r = walk_stage(self.mem, &p2, ipa.wrapping_add(off), &mut trace);
            for s in &trace {
                self.out.pas.insert(s.descriptor_pa & !7);
            }
            match r {
                Ok(l2) => {
                    let l2_end = l2.input_base.wrapping_add(l2.size);
                    let chunk = l2_end
                        .wrapping_sub(ipa.wrapping_add(off))
                        .min(size - off)
                        .max(1);
                    // Entries are naturally aligned powers of two (both blocks are).
                    let chunk = if chunk.is_power_of_two() {
                        chunk
                    } else {
                        1u64 << (63 - chunk.leading_zeros())
                    };
                    let oa = l2
                        .output_base
                        .wrapping_add(ipa.wrapping_add(off) - l2.input_base);
                    let perms = s1p.intersect(&s2_perms(&l2));
                    self.out.tlb.insert(combined_leaf(
                        ctx,
                        g,
                        level,
                        va + off,
                        chunk,
                        global,
                        oa,
                        perms,
                    ));
                    off = off.saturating_add(chunk);
                }
                Err(_) => off = off.saturating_add(p2.granule.size()),
            }
        }
        // A stage-2 leaf still cached after its descriptor changed may serve walks until an
        // invalidation covering it completes (§3.21.1), and what such a walk caches is a
        // combined entry that CMD_TLBI_S2_IPA need not remove (§4.4.3.1, §16.2.1 note): the
        // current stage-1 leaf combined with a stale stage-2 leaf is cacheable too.
        if let Some(st) = self.stale {
            let end = ipa as u128 + size as u128;
            for (e, _, _) in st.tlb_entries() {
                let t = &e.tag;
                if t.stage != EntryStage::S2
                    || t.kind != EntryKind::Leaf
                    || t.vmid != ctx.vmid
                    || t.world != crate::tlb::StreamWorld::NsEl1
                {
                    continue;
                }
                let TlbContent::Leaf { oa, attrs } = e.content else {
                    continue;
                };
                let lo = t.base.max(ipa);
                let hi = t.end().min(end);
                if (lo as u128) >= hi {
                    continue;
                }
                // Both ranges are naturally aligned powers of two: the overlap is one of them.
                let chunk = (hi - lo as u128) as u64;
                self.out.tlb.insert(combined_leaf(
                    ctx,
                    g,
                    level,
                    va.wrapping_add(lo - ipa),
                    chunk,
                    global,
                    oa.wrapping_add(lo - t.base),
                    s1p.intersect(&attrs.perms),
                ));
            }
        }
    }

    /// Roots that only stale entries still reach (§3.21.3 note: unreachable is not uncached).
    pub fn stale_roots(&mut self, stale: &StaleSet, current_ste: &dyn Fn(u32) -> Option<Ste>) {
        let cfgs: Vec<CfgEntry> = stale.cfg_entries().map(|(e, _, _)| e.clone()).collect();
        for e in cfgs {
            match e.tag {
                CfgTag::Ste { sid, .. } if e.words.len() == 8 => {
                    let mut w = [0u64; 8];
                    w.copy_from_slice(&e.words);
                    self.ste_value(sid, &w);
                }
                CfgTag::Cd { sid, .. } if e.words.len() == 8 => {
                    let mut w = [0u64; 8];
                    w.copy_from_slice(&e.words);
                    // Configuration caches are independent (§3.21.3): a cached CD may be used
                    // with the current STE or with a still-cached older STE of its stream.
                    let mut stes: Vec<Ste> = current_ste(sid).into_iter().collect();
                    for (s, _, _) in stale.cfg_entries() {
                        if let CfgTag::Ste { sid: ssid, .. } = s.tag {
                            if ssid == sid && s.words.len() == 8 {
                                let mut sw = [0u64; 8];
                                sw.copy_from_slice(&s.words);
                                let ste = Ste::decode(sw);
                                if !stes.iter().any(|x| x.raw == ste.raw) {
                                    stes.push(ste);
                                }
                            }
                        }
                    }
                    for ste in &stes {
                        self.cd_value(sid, ste, &w);
                    }
                }
                _ => {}
            }
        }
        self.stale_tables(stale, &|_| true);
    }

    /// The subtrees below stale walk-cache entries whose pending-removal state passes `which`
    /// (`None`: not covered by any invalidation yet; `Some(ev)`: covered by the one consumed at
    /// event `ev`).
    pub fn stale_tables(&mut self, stale: &StaleSet, which: &dyn Fn(Option<u64>) -> bool) {
        let tables: Vec<TlbEntry> = stale
            .tlb_entries()
            .filter(|(e, _, k)| {
                e.tag.kind == EntryKind::Table && e.tag.stage != EntryStage::Combined && which(*k)
            })
            .map(|(e, _, _)| *e)
            .collect();
        for e in tables {
            let TlbContent::Table { next } = e.content else {
                continue;
            };
            let stage = if e.tag.stage == EntryStage::S2 {
                Stage::S2
            } else {
                Stage::S1
            };
            // Nested stage-1 subtrees need the stage-2 context to find their PAs; those are
            // not followed (documented in docs/model.md).
            let Some(p) = subtree_params(stage, e.tag.granule, e.tag.level, next) else {
                continue;
            };
            let ctx = Ctx {
                sid: 0,
                walk_world: crate::structures::StreamWorld::NsEl1,
                world: e.tag.world,
                vmid: e.tag.vmid,
                asid: e.tag.asid,
                aset: e.tag.aset,
                cd: None,
                s2: None,
                wxn: false,
            };
            self.tree(&ctx, stage, &p, e.tag.level + 1, next, e.tag.base);
        }
    }
}

fn same_ctx(a: &Ctx, b: &Ctx) -> bool {
    a.sid == b.sid
        && a.world == b.world
        && a.vmid == b.vmid
        && a.asid == b.asid
        && a.aset == b.aset
        && a.wxn == b.wxn
        && a.walk_world == b.walk_world
        && a.cd.map(|c| c.raw) == b.cd.map(|c| c.raw)
        && a.s2 == b.s2
}

/// A combined stage-1+stage-2 leaf entry (§3.21.1): tagged like the stage-1 leaf it comes from
/// (its VA range, ASID, VMID), holding the final output address and both stages' permissions.
#[allow(clippy::too_many_arguments)]
fn combined_leaf(
    ctx: &Ctx,
    g: crate::granule::Granule,
    level: u8,
    va: u64,
    size: u64,
    global: bool,
    oa: u64,
    perms: crate::walk::Perms,
) -> TlbEntry {
    TlbEntry {
        tag: TlbTag {
            stage: EntryStage::Combined,
            ..tag(ctx, Stage::S1, EntryKind::Leaf, g, level, va, size, global)
        },
        content: TlbContent::Leaf {
            oa,
            attrs: attrs_of(perms),
        },
    }
}

/// The tag an entry built in this context gets (§3.17 table).
#[allow(clippy::too_many_arguments)]
pub fn tag(
    ctx: &Ctx,
    stage: Stage,
    kind: EntryKind,
    g: crate::granule::Granule,
    level: u8,
    base: u64,
    size: u64,
    global: bool,
) -> TlbTag {
    let s2 = stage == Stage::S2;
    TlbTag {
        world: if s2 {
            crate::tlb::StreamWorld::NsEl1
        } else {
            ctx.world
        },
        stage: if s2 { EntryStage::S2 } else { EntryStage::S1 },
        kind,
        vmid: ctx.vmid,
        // Stage-2 entries and EL2 entries carry no ASID.
        asid: if s2 { 0 } else { ctx.asid },
        global: !s2 && global && kind == EntryKind::Leaf,
        aset: !s2 && ctx.aset,
        granule: g,
        level,
        d128: false,
        base,
        size,
        ipa_space_ns: true,
    }
}
