//! Translation of a probe through the emulator's caches (§3.3): configuration lookup (STE, CD
//! caches, else memory, then insert), TLB lookup by tags (§3.17), else a walk driven one level
//! at a time with the model's step functions (`descriptor_address`, `decode_descriptor`),
//! resuming from the walk cache when it holds a table descriptor, and inserting what was read.
//! Every loop is bounded by the four lookup levels.

use super::mutant::Mutant;
use super::tlb::{EntryStage, LookupKey, Tag, TlbEntry, World};
use super::walk_cache::WalkEntry;
use super::Emulator;
use smmu_model::memory::MemRead;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::structures::cd::{cd_table_step, CdTableStep, TtbRegion};
use smmu_model::structures::stream_table::{read_struct, StreamTableFormat};
use smmu_model::structures::{addr_mask, Cd, CdFormat, L1Cd, L1Std, Ste, SteConfig, StreamWorld};
use smmu_model::walk::{
    decode_descriptor, descriptor_address, s1_perms, s2_perms, translate_traced, Access,
    Descriptor, FaultKind, Leaf, Perms, Stage, TableAttrs, WalkParams,
};

/// A failed translation, as the probe reports it (§7.3 event, or abort without event).
fn fault(kind: FaultKind) -> Observation {
    match kind.event_id() {
        Some(e) => Observation::Fault { event: Some(e) },
        None => Observation::Abort,
    }
}

type R<T> = Result<T, Observation>;

fn pow2(n: u32) -> u64 {
    1u64.checked_shl(n).unwrap_or(0)
}

fn out_of_range(addr: u64, bits: u8) -> bool {
    bits < 64 && addr >> bits != 0
}

fn world_of(w: StreamWorld) -> World {
    match w {
        StreamWorld::NsEl1 => World::NsEl1,
        StreamWorld::NsEl2 => World::NsEl2,
        StreamWorld::NsEl2E2h => World::NsEl2E2h,
    }
}

/// Stage-1 table attributes of a table descriptor (Arm ARM D8.3): PXNTable [59], XNTable [60],
/// APTable [62:61], NSTable [63], accumulated down the walk.
fn merge_table_attrs(acc: TableAttrs, raw: u64) -> TableAttrs {
    TableAttrs {
        pxn_table: acc.pxn_table | (raw >> 59 & 1 != 0),
        xn_table: acc.xn_table | (raw >> 60 & 1 != 0),
        ap_table: acc.ap_table | ((raw >> 61) & 3) as u8,
        ns_table: acc.ns_table | (raw >> 63 != 0),
    }
}

/// The stage-2 context of a stream: walk parameters and the VMID its entries carry.
#[derive(Clone, Copy)]
struct S2Ctx {
    params: WalkParams,
    vmid: u16,
}

/// A translated stage-2 address with the entry it came from.
struct S2Out {
    pa: u64,
    perms: Perms,
    size: u64,
}

impl Emulator {
    /// The outcome of one probe.
    pub(super) fn translate(&mut self, probe: &Probe) -> Observation {
        let access = if probe.write {
            Access::write()
        } else {
            Access::read()
        };
        if !self.smmuen {
            // SMMUEN == 0: nothing may be inserted (§3.21.1, §6.3.9.6) and no cached entry is
            // used; the walk reads memory only. (GBPA bypass is not modelled by the oracle,
            // which judges every probe as a translation: see the module notes in mod.rs.)
            let mut trace = Vec::new();
            return match translate_traced(
                &self.mem, &self.st, &self.sp, probe.sid, probe.ssid, probe.addr, access,
                &mut trace,
            ) {
                Ok(t) => Observation::Translated { pa: t.pa },
                Err(f) => fault(f.kind),
            };
        }
        match self.translate_cached(probe, access) {
            Ok(pa) => Observation::Translated { pa },
            Err(o) => o,
        }
    }

    /// Stream table walk for `sid` (§3.3.2), through the L1STD cache for two-level tables.
    fn locate(&mut self, sid: u32) -> R<u64> {
        let st = self.st;
        let sp = self.sp;
        let sid64 = u64::from(sid);
        if sid64 >= st.num_sids(&sp) {
            return Err(fault(FaultKind::BadStreamId));
        }
        let base = st.effective_base(&sp);
        match st.format(&sp) {
            StreamTableFormat::Linear => Ok(base.wrapping_add(sid64 * 64)),
            StreamTableFormat::TwoLevel => {
                let split = u32::from(st.effective_split()).min(32);
                let idx = sid64 >> split;
                let raw = match self.config.l1std(idx) {
                    Some(r) => r,
                    None => self.mem.read_u64(base.wrapping_add(idx.wrapping_mul(8))),
                };
                let l1 = L1Std::decode(raw);
                let span = l1.effective_span(split as u8);
                let l2_index = sid64 & pow2(split).wrapping_sub(1);
                if span == 0 || l2_index >= pow2(u32::from(span) - 1) {
                    return Err(fault(FaultKind::BadStreamId));
                }
                let count = pow2(u32::from(span) - 1).min(pow2(split));
                self.config.insert_l1std(idx, idx << split, count, raw);
                Ok(l1.l2_base(span).wrapping_add(l2_index * 64))
            }
        }
    }

    /// The STE for `sid`: cached, else fetched and (if valid) inserted (§3.21.3).
    fn ste(&mut self, sid: u32) -> R<Ste> {
        if let Some(w) = self.config.ste(sid) {
            return Ok(Ste::decode(w));
        }
        let pa = self.locate(sid)?;
        let words = read_struct(&self.mem, pa).ok_or(fault(FaultKind::SteFetch))?;
        let ste = Ste::decode(words);
        if ste.check(&self.sp).is_ok() {
            self.config.insert_ste(sid, words);
        }
        Ok(ste)
    }

    /// A configuration-structure address to a PA: through stage 2 when the STE enables it
    /// (§5.2 S1ContextPtr, §5.4 L1CD L2Ptr are IPAs then).
    fn config_pa(&mut self, s2: Option<&S2Ctx>, addr: u64) -> R<u64> {
        match s2 {
            None => Ok(addr),
            Some(s) => self.s2_translate(s, addr, Access::READ).map(|o| o.pa),
        }
    }

    /// CD `idx` of the stream: cached per (StreamID, index) (§4.3.3), else fetched.
    fn cd(
        &mut self,
        sid: u32,
        idx: u32,
        ste: &Ste,
        world: StreamWorld,
        s2: Option<&S2Ctx>,
    ) -> R<Cd> {
        if let Some(w) = self.config.cd(sid, idx) {
            return Ok(Cd::decode(w));
        }
        let sp = self.sp;
        let addr = match cd_table_step(ste, &sp, idx) {
            CdTableStep::Cd { addr } => addr,
            CdTableStep::L1Cd {
                l1cd_addr,
                l2_index,
            } => {
                let pa = self.config_pa(s2, l1cd_addr)?;
                let l1 = L1Cd::decode(self.mem.read_u64(pa));
                if !l1.v {
                    // §5.3.1: an invalid L1CD gives C_BAD_SUBSTREAMID.
                    return Err(fault(FaultKind::BadSubstreamId));
                }
                l1.l2_base(CdFormat::of_ste(ste, &sp))
                    .wrapping_add(l2_index.wrapping_mul(64))
            }
        };
        let pa = self.config_pa(s2, addr)?;
        let words = read_struct(&self.mem, pa).ok_or(fault(FaultKind::CdFetch))?;
        let cd = Cd::decode(words);
        if cd.check(&sp, world).is_err() {
            return Err(fault(FaultKind::BadCd));
        }
        self.config.insert_cd(sid, idx, words);
        Ok(cd)
    }

    fn key(&self, world: World, stage: EntryStage, vmid: u16, asid: u16, aset: bool) -> LookupKey {
        LookupKey {
            world,
            stage,
            vmid,
            asid,
            aset,
            // MUTANT (TlbIgnoresAsid / TlbIgnoresVmid): a tag left out of the comparator.
            match_asid: self.cfg.mutant != Some(Mutant::TlbIgnoresAsid),
            match_vmid: self.cfg.mutant != Some(Mutant::TlbIgnoresVmid),
        }
    }

    fn translate_cached(&mut self, probe: &Probe, access: Access) -> R<u64> {
        let sp = self.sp;
        let sid = probe.sid;
        // 1-2. STE and its checks (§5.2.2).
        let ste = self.ste(sid)?;
        if ste.check(&sp).is_err() {
            return Err(fault(FaultKind::BadSte));
        }
        let config = ste.config();
        if config == SteConfig::Abort {
            return Err(Observation::Abort);
        }
        let sworld = ste.stream_world(&sp).unwrap_or(StreamWorld::NsEl1);
        let world = world_of(sworld);
        let vmid = ste.tlb_vmid(&sp);
        let access = access.with_ste_overrides(&ste);
        let s2 = if config.s2_enabled() {
            Some(S2Ctx {
                params: WalkParams::stage2(&ste, &sp).ok_or(fault(FaultKind::BadSte))?,
                vmid,
            })
        } else {
            None
        };

        // 3. SubstreamID (§5.2 S1CDMax, S1DSS).
        let mut cd_index = None;
        if !config.s1_enabled() {
            if probe.ssid.is_some() {
                return Err(fault(FaultKind::BadSubstreamId));
            }
        } else {
            let substreams = ste.s1cdmax != 0 && sp.ssid_bits != 0;
            match probe.ssid {
                Some(s) => {
                    if !substreams || u64::from(s) >= pow2(u32::from(ste.s1cdmax)) {
                        return Err(fault(FaultKind::BadSubstreamId));
                    }
                    if ste.s1dss == 0b10 && s == 0 {
                        return Err(fault(FaultKind::StreamDisabled));
                    }
                    cd_index = Some(s);
                }
                None if !substreams => cd_index = Some(0),
                None => match ste.s1dss {
                    0b01 => {}
                    0b10 => cd_index = Some(0),
                    _ => return Err(fault(FaultKind::StreamDisabled)),
                },
            }
        }

        // 4. CD (§5.4).
        let cd = match cd_index {
            None => None,
            Some(idx) => Some(self.cd(sid, idx, &ste, sworld, s2.as_ref())?),
        };

        // 5. Stage 1.
        let iova = probe.addr;
        let (ipa, s1_done) = match cd {
            Some(cd) => {
                let params =
                    WalkParams::stage1(&cd, sworld, &sp, iova).map_err(|f| fault(f.kind))?;
                let (asid, aset) = if sworld.has_asid() {
                    (cd.asid, cd.aset)
                } else {
                    (0, cd.aset)
                };
                // TBI: entries are tagged and looked up by the canonical VA (§3.4.1).
                let tbi = match params.region {
                    Some(TtbRegion::Ttb1) => cd.tbi1,
                    _ => cd.tbi0,
                };
                let va = if tbi {
                    (((iova << 8) as i64) >> 8) as u64
                } else {
                    iova
                };
                let stage = if s2.is_some() {
                    EntryStage::Combined
                } else {
                    EntryStage::S1
                };
                let key = self.key(world, stage, vmid, asid, aset);
                if let Some(e) = self.tlb.lookup(&key, va) {
                    if !e.perms.allows(access) {
                        return Err(fault(FaultKind::Permission));
                    }
                    return Ok(e.oa.wrapping_add(va.wrapping_sub(e.tag.base)));
                }
                let wkey = self.key(world, EntryStage::S1, vmid, asid, aset);
                let leaf = self.walk_s1(&params, va, s2.as_ref(), &wkey)?;
                let perms = s1_perms(&leaf, sworld, cd.wxn);
                let global = sworld == StreamWorld::NsEl2 || !leaf.attrs.ng;
                let tag = Tag {
                    world,
                    stage: EntryStage::S1,
                    vmid,
                    asid,
                    global,
                    aset,
                    granule: leaf.granule,
                    level: leaf.level,
                    base: leaf.input_base,
                    size: leaf.size,
                };
                match s2.as_ref() {
                    None => {
                        self.tlb.insert(TlbEntry {
                            tag,
                            oa: leaf.output_base,
                            perms,
                        });
                        if !perms.allows(access) {
                            return Err(fault(FaultKind::Permission));
                        }
                        (leaf.output_address, true)
                    }
                    Some(s) => {
                        if !perms.allows(access) {
                            return Err(fault(FaultKind::Permission));
                        }
                        let out = self.s2_translate(s, leaf.output_address, access)?;
                        // A combined entry covers the smaller of the two stages' blocks
                        // (§16.2.1).
                        let size = leaf.size.min(out.size).max(1);
                        self.tlb.insert(TlbEntry {
                            tag: Tag {
                                stage: EntryStage::Combined,
                                base: va & !(size - 1),
                                size,
                                ..tag
                            },
                            oa: out.pa & !(size - 1),
                            perms: perms.intersect(&out.perms),
                        });
                        (out.pa, true)
                    }
                }
            }
            None => {
                // Stage 1 bypass: the input must fit IAS (OAS for full bypass) (§3.4).
                let limit = if config.s2_enabled() {
                    sp.ias()
                } else {
                    sp.oas()
                };
                if out_of_range(iova, limit) {
                    return Err(fault(FaultKind::AddrSize));
                }
                (iova, false)
            }
        };
        if s1_done {
            return Ok(ipa);
        }
        // 6. Stage 2 of the input (stage 1 bypassed), or full bypass truncated to OAS.
        match s2.as_ref() {
            Some(s) => self.s2_translate(s, ipa, access).map(|o| o.pa),
            None => Ok(ipa & addr_mask(u32::from(sp.oas()) - 1, 0)),
        }
    }

    /// Stage-1 walk of `va`, resuming from the walk cache, inserting table descriptors.
    /// Table addresses go through stage 2 when nested (§3.3.4).
    fn walk_s1(&mut self, p: &WalkParams, va: u64, s2: Option<&S2Ctx>, key: &LookupKey) -> R<Leaf> {
        let g = p.granule;
        let mut level = p.start_level;
        let mut table = p.table_base;
        let mut tattrs = TableAttrs::default();
        if self.cfg.walk_cache {
            // Resume only from an entry built with this walk's granule: an entry left from a CD
            // with another TG0 (changed without a TLBI) describes another table geometry, and
            // not using a cached entry is always allowed.
            if let Some(e) = self
                .walk
                .lookup(key, va, p.start_level..3)
                .filter(|e| e.tag.granule == g)
            {
                level = e.tag.level + 1;
                table = e.next;
                tattrs = e.attrs;
            }
        }
        for _ in 0..4 {
            if level > 3 {
                break;
            }
            let addr = descriptor_address(p, level, table, va);
            let pa = match s2 {
                None => addr,
                Some(s) => self.s2_translate(s, addr, Access::READ)?.pa,
            };
            let raw = self.mem.read_u64(pa);
            match decode_descriptor(g, level, raw, Stage::S1) {
                Descriptor::Invalid => return Err(fault(FaultKind::Translation)),
                Descriptor::Table { next_table, .. } => {
                    if out_of_range(next_table, p.output_bits) {
                        return Err(fault(FaultKind::AddrSize));
                    }
                    if !p.hpd {
                        tattrs = merge_table_attrs(tattrs, raw);
                    }
                    let span = g.entry_size(level);
                    if self.cfg.walk_cache {
                        self.walk.insert(WalkEntry {
                            tag: Tag {
                                world: key.world,
                                stage: EntryStage::S1,
                                vmid: key.vmid,
                                asid: key.asid,
                                global: false,
                                aset: key.aset,
                                granule: g,
                                level,
                                base: va & !(span - 1),
                                size: span,
                            },
                            next: next_table,
                            attrs: tattrs,
                        });
                    }
                    table = next_table;
                    level += 1;
                }
                Descriptor::Leaf {
                    output_address,
                    size,
                    attrs,
                    level: lvl,
                    ..
                } => {
                    if out_of_range(output_address, p.output_bits) {
                        return Err(fault(FaultKind::AddrSize));
                    }
                    if !attrs.af && !p.affd {
                        return Err(fault(FaultKind::Access));
                    }
                    let base = va & !(size - 1);
                    return Ok(Leaf {
                        stage: Stage::S1,
                        input_address: va,
                        output_address: output_address | (va & (size - 1)),
                        input_base: base,
                        output_base: output_address,
                        level: lvl,
                        size,
                        granule: g,
                        attrs,
                        table_attrs: tattrs,
                        descriptor_pa: pa,
                        raw,
                        region: p.region,
                    });
                }
            }
        }
        Err(fault(FaultKind::Translation))
    }

    /// Stage-2 translation of an IPA needing `need` (READ for configuration and table fetches,
    /// §3.4): TLB, else walk (resuming from the walk cache), inserting the leaf.
    fn s2_translate(&mut self, s: &S2Ctx, ipa: u64, need: Access) -> R<S2Out> {
        let p = s.params;
        if p.input_bits < 64 && ipa >> p.input_bits != 0 {
            return Err(fault(FaultKind::Translation));
        }
        let key = self.key(World::NsEl1, EntryStage::S2, s.vmid, 0, false);
        if let Some(e) = self.tlb.lookup(&key, ipa) {
            if !e.perms.allows(need) {
                return Err(fault(FaultKind::Permission));
            }
            return Ok(S2Out {
                pa: e.oa.wrapping_add(ipa.wrapping_sub(e.tag.base)),
                perms: e.perms,
                size: e.tag.size,
            });
        }
        let g = p.granule;
        let mut level = p.start_level;
        let mut table = p.table_base;
        if self.cfg.walk_cache {
            if let Some(e) = self
                .walk
                .lookup(&key, ipa, p.start_level..3)
                .filter(|e| e.tag.granule == g)
            {
                level = e.tag.level + 1;
                table = e.next;
            }
        }
        for _ in 0..4 {
            if level > 3 {
                break;
            }
            let pa = descriptor_address(&p, level, table, ipa);
            let raw = self.mem.read_u64(pa);
            match decode_descriptor(g, level, raw, Stage::S2) {
                Descriptor::Invalid => return Err(fault(FaultKind::Translation)),
                Descriptor::Table { next_table, .. } => {
                    if out_of_range(next_table, p.output_bits) {
                        return Err(fault(FaultKind::AddrSize));
                    }
                    let span = g.entry_size(level);
                    if self.cfg.walk_cache {
                        self.walk.insert(WalkEntry {
                            tag: Tag {
                                world: World::NsEl1,
                                stage: EntryStage::S2,
                                vmid: s.vmid,
                                asid: 0,
                                global: false,
                                aset: false,
                                granule: g,
                                level,
                                base: ipa & !(span - 1),
                                size: span,
                            },
                            next: next_table,
                            attrs: TableAttrs::default(),
                        });
                    }
                    table = next_table;
                    level += 1;
                }
                Descriptor::Leaf {
                    output_address,
                    size,
                    attrs,
                    level: lvl,
                    ..
                } => {
                    if out_of_range(output_address, p.output_bits) {
                        return Err(fault(FaultKind::AddrSize));
                    }
                    if !attrs.af && !p.affd {
                        return Err(fault(FaultKind::Access));
                    }
                    let base = ipa & !(size - 1);
                    let leaf = Leaf {
                        stage: Stage::S2,
                        input_address: ipa,
                        output_address: output_address | (ipa & (size - 1)),
                        input_base: base,
                        output_base: output_address,
                        level: lvl,
                        size,
                        granule: g,
                        attrs,
                        table_attrs: TableAttrs::default(),
                        descriptor_pa: pa,
                        raw,
                        region: None,
                    };
                    let perms = s2_perms(&leaf);
                    self.tlb.insert(TlbEntry {
                        tag: Tag {
                            world: World::NsEl1,
                            stage: EntryStage::S2,
                            vmid: s.vmid,
                            asid: 0,
                            global: false,
                            aset: false,
                            granule: g,
                            level: lvl,
                            base,
                            size,
                        },
                        oa: output_address,
                        perms,
                    });
                    if !perms.allows(need) {
                        return Err(fault(FaultKind::Permission));
                    }
                    return Ok(S2Out {
                        pa: leaf.output_address,
                        perms,
                        size,
                    });
                }
            }
        }
        Err(fault(FaultKind::Translation))
    }
}
