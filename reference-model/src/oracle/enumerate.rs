//! The allowed set for one probe: every outcome of some walk in which each structure or
//! descriptor used is either its current value in memory or a stale entry that may still be
//! cached and matches the lookup's tags (§3.17, §3.21.1, §16.2).
//!
//! Lookups of cached entries are by tag, not by address: a stale leaf at any level that matches
//! (world, VMID, ASID or global, address) can satisfy the lookup; a stale walk-cache entry at
//! any level lets the walk resume from the table it names. Fresh walks always count (a model
//! with empty caches is a valid implementation, §16.2), so the set is never empty.

use super::context::{subtree_params, Ctx};
use super::reach::attrs_of;
use super::stale::{LeafAttrs, Origin, StaleSet, TlbContent};
use crate::memory::MemRead;
use crate::structures::cd::{cd_table_step, CdTableStep};
use crate::structures::stream_table::{locate_ste, read_struct};
use crate::structures::{Cd, CdFormat, L1Cd, SmmuProfile, Ste, SteConfig, StreamTableConfig};
use crate::tlb::{CfgTag, EntryKind, EntryStage, Security};
use crate::walk::{
    decode_descriptor, descriptor_address, s1_perms, s2_perms, Access, Descriptor, Leaf, Perms,
    Stage, WalkParams,
};
use serde::Serialize;
use std::collections::BTreeSet;

/// Cap on outcomes explored for one probe; past it the probe is answered "cannot decide" and
/// counted, never failed.
pub const MAX_PATHS: usize = 4096;

/// What a probe may observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Outcome {
    /// The access reached this physical address.
    Translated { pa: u64 },
    /// The access faulted; the event number when known (§7.3), e.g. 0x10 F_TRANSLATION.
    Fault { event: u8 },
    /// Terminated without an event (STE.Config == abort, §5.2).
    Abort,
}

pub const F_TRANSLATION: u8 = 0x10;
/// AF == 0 without AFFD (§7.3, F_ACCESS).
pub const F_ACCESS: u8 = 0x12;
pub const F_PERMISSION: u8 = 0x13;
/// A table or output address beyond the stage's output size (§7.3 F_ADDR_SIZE; Arm ARM D8).
pub const F_ADDR_SIZE: u8 = 0x11;
pub const C_BAD_STREAMID: u8 = 0x02;
pub const C_BAD_STE: u8 = 0x04;
pub const C_BAD_SUBSTREAMID: u8 = 0x08;
pub const C_BAD_CD: u8 = 0x0A;
pub const F_STE_FETCH: u8 = 0x03;
pub const F_CD_FETCH: u8 = 0x09;

/// One allowed outcome and whether it needed stale entries (for reports: the oldest origin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Allowed {
    pub outcomes: BTreeSet<Outcome>,
    /// The outcome a walk of current memory alone gives.
    pub fresh: Option<Outcome>,
    /// True if the enumeration hit MAX_PATHS.
    pub undecided: bool,
}

pub struct Enumerator<'a, M: MemRead + ?Sized> {
    pub mem: &'a M,
    pub sp: &'a SmmuProfile,
    pub st: &'a StreamTableConfig,
    pub stale: &'a StaleSet,
    pub access: Access,
    paths: usize,
    undecided: bool,
}

type Cand<T> = (T, Option<Origin>);

impl<'a, M: MemRead + ?Sized> Enumerator<'a, M> {
    pub fn new(
        mem: &'a M,
        sp: &'a SmmuProfile,
        st: &'a StreamTableConfig,
        stale: &'a StaleSet,
        access: Access,
    ) -> Self {
        Enumerator {
            mem,
            sp,
            st,
            stale,
            access,
            paths: 0,
            undecided: false,
        }
    }

    fn tick(&mut self) -> bool {
        self.paths += 1;
        if self.paths > MAX_PATHS {
            self.undecided = true;
            false
        } else {
            true
        }
    }

    /// Every allowed outcome of an access by (sid, ssid) to `addr`.
    pub fn probe(&mut self, sid: u32, ssid: Option<u32>, addr: u64) -> Allowed {
        let mut out = BTreeSet::new();
        let mut fresh = None;
        for (i, (ste, _)) in self.ste_cands(sid).into_iter().enumerate() {
            let mut here = BTreeSet::new();
            match ste {
                Err(ev) => {
                    here.insert(Outcome::Fault { event: ev });
                }
                Ok(ste) => self.through_ste(sid, &ste, ssid, addr, &mut here),
            }
            // The first candidate is the current STE: its first outcome is the fresh walk's
            // (the caller replaces it with the walker's own answer).
            if i == 0 && fresh.is_none() {
                fresh = here.iter().next().copied();
            }
            out.extend(here);
        }
        Allowed {
            outcomes: out,
            fresh,
            undecided: self.undecided,
        }
    }

    /// Current STE first, then stale cached STEs for this StreamID (§3.21.3).
    fn ste_cands(&mut self, sid: u32) -> Vec<Cand<Result<Ste, u8>>> {
        let mut v = Vec::new();
        let cur = match locate_ste(self.mem, self.st, self.sp, sid) {
            Err(crate::structures::stream_table::SteLookupError::BadStreamId { .. }) => {
                Err(C_BAD_STREAMID)
            }
            Err(_) => Err(F_STE_FETCH),
            Ok(loc) => match read_struct(self.mem, loc.ste_pa) {
                Some(w) => Ok(Ste::decode(w)),
                None => Err(F_STE_FETCH),
            },
        };
        v.push((cur, None));
        // A stale L1STD names an old level-2 table: the STE there may be used (case 59).
        for (e, o) in self.stale.cfg_entries_for_sid_l1(sid) {
            let l1 = crate::structures::L1Std::decode(e);
            let split = self.st.effective_split();
            let span = l1.effective_span(split);
            if span == 0 {
                continue;
            }
            let idx = (sid as u64) & ((1u64 << split) - 1);
            if idx >= 1u64 << (span - 1) {
                continue;
            }
            if let Some(w) = read_struct(self.mem, l1.l2_base(span).wrapping_add(idx * 64)) {
                v.push((Ok(Ste::decode(w)), Some(o)));
            }
        }
        for (e, o) in self.stale.cfg_lookup(&CfgTag::Ste {
            sec: Security::NonSecure,
            sid,
        }) {
            if e.words.len() == 8 {
                let mut w = [0u64; 8];
                w.copy_from_slice(&e.words);
                v.push((Ok(Ste::decode(w)), Some(o)));
            }
        }
        v
    }

    fn through_ste(
        &mut self,
        sid: u32,
        ste: &Ste,
        ssid: Option<u32>,
        addr: u64,
        out: &mut BTreeSet<Outcome>,
    ) {
        if !self.tick() {
            return;
        }
        if !ste.v || ste.check(self.sp).is_err() {
            out.insert(Outcome::Fault { event: C_BAD_STE });
            return;
        }
        match ste.config() {
            SteConfig::Abort => {
                out.insert(Outcome::Abort);
            }
            SteConfig::Bypass => {
                out.insert(Outcome::Translated { pa: addr });
            }
            SteConfig::S2Translate => {
                if let Some(ctx) = Ctx::new(sid, ste, None, self.sp) {
                    for r in self.s2(&ctx, addr) {
                        out.insert(self.finish(ste, r));
                    }
                }
            }
            SteConfig::S1Translate | SteConfig::Nested => {
                let ssid_v = ssid.unwrap_or(0);
                if ste.s1cdmax > 0 && ssid_v as u64 >= 1u64 << ste.s1cdmax.min(20) {
                    out.insert(Outcome::Fault {
                        event: C_BAD_SUBSTREAMID,
                    });
                    return;
                }
                for (cd, _) in self.cd_cands(sid, ste, ssid_v) {
                    match cd {
                        Err(ev) => {
                            out.insert(Outcome::Fault { event: ev });
                        }
                        Ok(cd) => {
                            let Some(ctx) = Ctx::new(sid, ste, Some(&cd), self.sp) else {
                                out.insert(Outcome::Fault { event: C_BAD_STE });
                                continue;
                            };
                            if !cd.v || cd.check(self.sp, ctx.walk_world).is_err() {
                                out.insert(Outcome::Fault { event: C_BAD_CD });
                                continue;
                            }
                            for r in self.s1(&ctx, addr) {
                                match r {
                                    Err(ev) => {
                                        out.insert(Outcome::Fault { event: ev });
                                    }
                                    Ok((oa, attrs, true)) => {
                                        // Already a full VA->PA (combined entry).
                                        out.insert(self.finish(ste, Ok((oa, attrs))));
                                    }
                                    Ok((ipa, attrs, false)) => {
                                        if ctx.s2.is_some() {
                                            for r2 in self.s2(&ctx, ipa) {
                                                let r2 = r2.map(|(pa, a2)| {
                                                    (
                                                        pa,
                                                        LeafAttrs {
                                                            perms: a2.perms.intersect(&attrs.perms),
                                                        },
                                                    )
                                                });
                                                out.insert(self.finish(ste, r2));
                                            }
                                        } else {
                                            out.insert(self.finish(ste, Ok((ipa, attrs))));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The outcome of a translation through `ste`: the permission check uses the access with
    /// that STE's PRIVCFG/INSTCFG overrides applied (§3.3.4, §13.4: "The R/W, PRIV and INST
    /// attributes, as modified by STE overrides, are checked against the page permissions"),
    /// whether the leaf comes from a walk or from a TLB entry filled under another STE.
    fn finish(&self, ste: &Ste, r: Result<(u64, LeafAttrs), u8>) -> Outcome {
        match r {
            Err(ev) => Outcome::Fault { event: ev },
            Ok((pa, a)) => {
                if a.perms.allows(self.access.with_ste_overrides(ste)) {
                    Outcome::Translated { pa }
                } else {
                    Outcome::Fault {
                        event: F_PERMISSION,
                    }
                }
            }
        }
    }

    /// Current CD (through current L1CDs), CDs through stale L1CDs, then stale cached CDs.
    fn cd_cands(&mut self, sid: u32, ste: &Ste, ssid: u32) -> Vec<Cand<Result<Cd, u8>>> {
        let mut v = Vec::new();
        let nested = ste.config().s2_enabled();
        let ctx0 = Ctx::new(sid, ste, None, self.sp);
        // Every stage-2 outcome for the CD's IPA: a stage-2 fault on the fetch is reported as
        // that fault, as the walker does (walk.rs `config_pa`).
        let read_cd = |this: &mut Self, ipa: u64| -> Vec<Result<Cd, u8>> {
            let pas: Vec<Result<u64, u8>> = if nested {
                match ctx0.as_ref() {
                    Some(c) => this
                        .s2(c, ipa)
                        .into_iter()
                        .map(|r| r.map(|x| x.0))
                        .collect(),
                    None => vec![],
                }
            } else {
                vec![Ok(ipa)]
            };
            if pas.is_empty() {
                return vec![Err(F_CD_FETCH)];
            }
            pas.into_iter()
                .map(|r| {
                    r.and_then(|pa| read_struct(this.mem, pa).map(Cd::decode).ok_or(F_CD_FETCH))
                })
                .collect()
        };
        match cd_table_step(ste, self.sp, ssid) {
            CdTableStep::Cd { addr } => {
                for c in read_cd(self, addr) {
                    v.push((c, None));
                }
            }
            CdTableStep::L1Cd {
                l1cd_addr,
                l2_index,
            } => {
                let fmt = CdFormat::of_ste(ste, self.sp);
                let l1pa = if nested {
                    let rs = match ctx0.as_ref() {
                        Some(c) => self.s2(c, l1cd_addr),
                        None => Vec::new(),
                    };
                    for r in &rs {
                        if let Err(ev) = r {
                            v.push((Err(*ev), None));
                        }
                    }
                    rs.into_iter().find_map(|r| r.ok()).map(|x| x.0)
                } else {
                    Some(l1cd_addr)
                };
                let mut l1s: Vec<(u64, Option<Origin>)> = Vec::new();
                if let Some(pa) = l1pa {
                    l1s.push((self.mem.read_u64(pa), None));
                }
                for (w, o) in self.stale.cfg_entries_for_l1cd(sid, ssid) {
                    l1s.push((w, Some(o)));
                }
                for (raw, o) in l1s {
                    let l1 = L1Cd::decode(raw);
                    if !l1.v {
                        v.push((Err(C_BAD_SUBSTREAMID), o));
                        continue;
                    }
                    for c in read_cd(self, l1.l2_base(fmt).wrapping_add(l2_index * 64)) {
                        v.push((c, o));
                    }
                }
            }
        }
        for (e, o) in self.stale.cfg_lookup(&CfgTag::Cd {
            sec: Security::NonSecure,
            sid,
            ssid,
        }) {
            if e.words.len() == 8 {
                let mut w = [0u64; 8];
                w.copy_from_slice(&e.words);
                v.push((Ok(Cd::decode(w)), Some(o)));
            }
        }
        v
    }

    /// Stage-1 outcomes for a VA: (output, attrs, already_final_pa).
    fn s1(&mut self, ctx: &Ctx, va: u64) -> Vec<Result<(u64, LeafAttrs, bool), u8>> {
        let mut out = Vec::new();
        let Some(cd) = ctx.cd else {
            return out;
        };
        let p = match WalkParams::stage1(&cd, ctx.walk_world, self.sp, va) {
            Ok(p) => p,
            Err(_) => {
                out.push(Err(F_TRANSLATION));
                return out;
            }
        };
        // Cached entries are tagged with the canonical VA (the region's sign extension from
        // bit 55, as the traversal records them). With TBI the top byte of the access is
        // ignored (§3.4.1, CD.TBI0/TBI1), so it must not defeat the lookup: walk::stage1 has
        // checked VA[55:input_bits], so canonicalising [63:56] is an identity without TBI.
        let va = match p.region {
            Some(crate::structures::cd::TtbRegion::Ttb1) => va | 0xFF00_0000_0000_0000,
            _ => va & 0x00FF_FFFF_FFFF_FFFF,
        };
        let asid = Some(ctx.asid);
        // Stale leaves, S1-only and combined, at every level (matched by tag, §3.17.1).
        for level in 0..=3u8 {
            for stage in [EntryStage::S1, EntryStage::Combined] {
                for (e, _) in
                    self.stale
                        .lookup(ctx.world, stage, EntryKind::Leaf, ctx.vmid, asid, level, va)
                {
                    if e.tag.aset != ctx.aset && e.tag.global {
                        // An ASET=0 global entry never satisfies an ASET=1 lookup (§3.17.1).
                        continue;
                    }
                    if let TlbContent::Leaf { oa, attrs } = e.content {
                        let off = va.wrapping_sub(e.tag.base);
                        out.push(Ok((
                            oa.wrapping_add(off),
                            attrs,
                            stage == EntryStage::Combined || ctx.s2.is_none(),
                        )));
                    }
                }
            }
        }
        // Stale walk-cache entries: resume the walk below them.
        for level in 0..3u8 {
            for (e, _) in self.stale.lookup(
                ctx.world,
                EntryStage::S1,
                EntryKind::Table,
                ctx.vmid,
                asid,
                level,
                va,
            ) {
                if let TlbContent::Table { next } = e.content {
                    // The cached entry fixes the granule of the walk below it, whatever the
                    // current configuration says (§3.17: lookups are by tag and address).
                    if let Some(sp) = subtree_params(Stage::S1, e.tag.granule, level, next) {
                        let sp = WalkParams {
                            affd: p.affd,
                            output_bits: p.output_bits,
                            ..sp
                        };
                        self.s1_walk(ctx, &sp, level + 1, next, va, &mut out);
                    }
                }
            }
        }
        self.s1_walk(ctx, &p, p.start_level, p.table_base, va, &mut out);
        out
    }

    fn s1_walk(
        &mut self,
        ctx: &Ctx,
        p: &WalkParams,
        level: u8,
        table: u64,
        va: u64,
        out: &mut Vec<Result<(u64, LeafAttrs, bool), u8>>,
    ) {
        if level > 3 || !self.tick() {
            return;
        }
        let ia = descriptor_address(p, level, table, va);
        let pas: Vec<u64> = if ctx.s2.is_some() {
            let mut pas = Vec::new();
            // A stage-2 fault on the table fetch is an outcome too (walk.rs reports it).
            for r in self.s2(ctx, ia) {
                match r {
                    Ok((pa, _)) => pas.push(pa),
                    Err(ev) => out.push(Err(ev)),
                }
            }
            pas
        } else {
            vec![ia]
        };
        for pa in pas {
            let raw = self.mem.read_u64(pa);
            match decode_descriptor(p.granule, level, raw, Stage::S1) {
                Descriptor::Invalid => out.push(Err(F_TRANSLATION)),
                // The same checks, in the same order, as the walker (walk.rs).
                Descriptor::Table { next_table, .. } if out_of_range(next_table, p.output_bits) => {
                    out.push(Err(F_ADDR_SIZE))
                }
                Descriptor::Table { next_table, .. } => {
                    self.s1_walk(ctx, p, level + 1, next_table, va, out)
                }
                Descriptor::Leaf { output_address, .. }
                    if out_of_range(output_address, p.output_bits) =>
                {
                    out.push(Err(F_ADDR_SIZE))
                }
                Descriptor::Leaf {
                    output_address,
                    size,
                    attrs,
                    ..
                } => {
                    if !attrs.af && !p.affd {
                        out.push(Err(F_ACCESS));
                        continue;
                    }
                    let base = va & !(size - 1);
                    let leaf = leaf_of(
                        Stage::S1,
                        p,
                        level,
                        base,
                        output_address,
                        size,
                        attrs,
                        pa,
                        raw,
                    );
                    let perms = s1_perms(&leaf, ctx.walk_world, ctx.wxn);
                    out.push(Ok((
                        output_address.wrapping_add(va - base),
                        attrs_of(perms),
                        ctx.s2.is_none(),
                    )));
                }
            }
        }
    }

    /// Stage-2 outcomes for an IPA (PA, attrs).
    fn s2(&mut self, ctx: &Ctx, ipa: u64) -> Vec<Result<(u64, LeafAttrs), u8>> {
        let mut out = Vec::new();
        let Some(p) = ctx.s2 else {
            out.push(Ok((ipa, LeafAttrs { perms: Perms::ALL })));
            return out;
        };
        if p.input_bits < 64 && ipa >> p.input_bits != 0 {
            out.push(Err(F_TRANSLATION));
            return out;
        }
        for level in 0..=3u8 {
            for (e, _) in self.stale.lookup(
                crate::tlb::StreamWorld::NsEl1,
                EntryStage::S2,
                EntryKind::Leaf,
                ctx.vmid,
                Some(0),
                level,
                ipa,
            ) {
                if let TlbContent::Leaf { oa, attrs } = e.content {
                    out.push(Ok((oa.wrapping_add(ipa - e.tag.base), attrs)));
                }
            }
        }
        for level in 0..3u8 {
            for (e, _) in self.stale.lookup(
                crate::tlb::StreamWorld::NsEl1,
                EntryStage::S2,
                EntryKind::Table,
                ctx.vmid,
                Some(0),
                level,
                ipa,
            ) {
                if let TlbContent::Table { next } = e.content {
                    if let Some(sp) = subtree_params(Stage::S2, e.tag.granule, level, next) {
                        let sp = WalkParams {
                            affd: p.affd,
                            output_bits: p.output_bits,
                            ..sp
                        };
                        self.s2_walk(&sp, level + 1, next, ipa, &mut out);
                    }
                }
            }
        }
        self.s2_walk(&p, p.start_level, p.table_base, ipa, &mut out);
        out
    }

    fn s2_walk(
        &mut self,
        p: &WalkParams,
        level: u8,
        table: u64,
        ipa: u64,
        out: &mut Vec<Result<(u64, LeafAttrs), u8>>,
    ) {
        if level > 3 || !self.tick() {
            return;
        }
        let pa = descriptor_address(p, level, table, ipa);
        let raw = self.mem.read_u64(pa);
        match decode_descriptor(p.granule, level, raw, Stage::S2) {
            Descriptor::Invalid => out.push(Err(F_TRANSLATION)),
            Descriptor::Table { next_table, .. } if out_of_range(next_table, p.output_bits) => {
                out.push(Err(F_ADDR_SIZE))
            }
            Descriptor::Table { next_table, .. } => {
                self.s2_walk(p, level + 1, next_table, ipa, out)
            }
            Descriptor::Leaf { output_address, .. }
                if out_of_range(output_address, p.output_bits) =>
            {
                out.push(Err(F_ADDR_SIZE))
            }
            Descriptor::Leaf {
                output_address,
                size,
                attrs,
                ..
            } => {
                if !attrs.af && !p.affd {
                    out.push(Err(F_ACCESS));
                    return;
                }
                let base = ipa & !(size - 1);
                let leaf = leaf_of(
                    Stage::S2,
                    p,
                    level,
                    base,
                    output_address,
                    size,
                    attrs,
                    pa,
                    raw,
                );
                out.push(Ok((
                    output_address.wrapping_add(ipa - base),
                    attrs_of(s2_perms(&leaf)),
                )));
            }
        }
    }
}

/// An address beyond an output size of `bits` bits (walk.rs applies the same test).
fn out_of_range(addr: u64, bits: u8) -> bool {
    bits < 64 && addr >> bits != 0
}

#[allow(clippy::too_many_arguments)]
fn leaf_of(
    stage: Stage,
    p: &WalkParams,
    level: u8,
    base: u64,
    oa: u64,
    size: u64,
    attrs: crate::walk::DescAttrs,
    pa: u64,
    raw: u64,
) -> Leaf {
    Leaf {
        stage,
        input_address: base,
        output_address: oa,
        input_base: base,
        output_base: oa,
        level,
        size,
        granule: p.granule,
        attrs,
        table_attrs: Default::default(),
        descriptor_pa: pa,
        raw,
        region: p.region,
    }
}
