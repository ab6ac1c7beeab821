//! The MINIMUM set of cached entries a command is required to remove (§4.3, §4.4, §4.5.1).
//!
//! [`required_scope`] decodes a command once into a small, allocation-free [`Scope`]; each entry
//! is then judged in O(1) (a handful of compares, never a walk over pages), so an oracle can
//! apply the largest range TLBI to 100 000 entries cheaply. Everything outside the required set
//! may stay or go: over-invalidation is always permitted (§4.4, §4.3, §16.6.1).
//!
//! The scope is computed on the *effective* command: raw with its RES0 bits cleared, because an
//! implementation that does not raise CERROR_ILL must behave as the all-zero encoding (§4.1.5).
//! Rules that give a non-zero reserved value its own meaning are applied to the raw value first:
//! the 8-bit ASID/VMID upper byte (§4.4) and the unmatched NH_* VMID (§4.4.2). Whether to expect
//! CERROR_ILL is the caller's decision (`classify`).

use crate::classify::{classify, Flags, Verdict};
use crate::command::{layout as l, Opcode, RangeFields, RawCommand};
use crate::granule::Granule;
use crate::profile::{Profile, Queue};
use crate::range::Range;
use crate::rules::scope as r;
use crate::rules::Rule;
use crate::tlb::{AtcTag, CfgTag, EntryKind, EntryStage, Security, StreamWorld, TlbTag};

/// Register state the scope depends on (§4.1.2: it must not change while the command is in
/// flight; if it does, either value may apply and the caller should compute both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeCtx {
    pub profile: Profile,
    pub queue: Queue,
    /// SMMU_CR0.VMW (§6.3.9).
    pub vmw: u8,
    /// SMMU_S_CR0.VMW.
    pub s_vmw: u8,
    /// SMMU_CR2.E2H (§6.3.12).
    pub e2h: bool,
    /// SMMU_S_CR2.E2H.
    pub s_e2h: bool,
    /// SMMU_R_CR2.E2H.
    pub r_e2h: bool,
}

impl ScopeCtx {
    pub fn new(profile: Profile, queue: Queue) -> ScopeCtx {
        ScopeCtx {
            profile,
            queue,
            vmw: 0,
            s_vmw: 0,
            e2h: false,
            s_e2h: false,
            r_e2h: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AsidSel {
    Any,
    /// Non-global entries with this ASID only (ASIDE1-like, §3.17.1).
    NonGlobal(u16),
    /// Entries with this ASID or global (VAE1-like, §4.4.2.4).
    OrGlobal(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AddrSel {
    All,
    /// TG == 0: entries containing the address, any granule, any level (§4.4 note).
    Point(u64),
    /// TG != 0: entries intersecting `[range.base, end)`; `end_two` for two-VA-range regimes.
    Range {
        range: Range,
        end_two: u128,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TlbSel {
    worlds: u16,
    stages: u8,
    /// (value, mask) compared on the entry's VMID; `None` when VMID is not matched.
    vmid: Option<(u16, u16)>,
    asid: AsidSel,
    addr: AddrSel,
    /// TG != 0: only entries of that granule (§4.4.1.1).
    granule: Option<Granule>,
    ttl_level: Option<u8>,
    ttl128: bool,
    leaf_only: bool,
    /// S_S2_IPA: the IPA space of Secure stage-2 entries.
    ipa_ns: Option<bool>,
    rule: &'static Rule,
    global_rule: &'static Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CfgSel {
    Ste { sid: u32, leaf: bool },
    SteRange { first: u32, count: u64 },
    All,
    Cd { sid: u32, ssid: u32, leaf: bool },
    CdAll { sid: u32 },
    VmsPidm { vmid: u16, mask: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AtcSel {
    sid: u32,
    /// `None`: SSV == 0, entries without a PASID.
    ssid: Option<u32>,
    global: bool,
    base: u64,
    /// Exclusive end (2^64 for Size == 52).
    end: u128,
}

/// What a command is required to remove. Small, `Copy`, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    opcode: Opcode,
    tlb: Option<TlbSel>,
    cfg: Option<(Security, CfgSel)>,
    atc: Option<AtcSel>,
    /// Why the scope is empty (or the main rule for configuration/ATC scopes).
    reason: Option<&'static Rule>,
    /// RES0 bits were set and cleared before computing the scope.
    res0_cleared: bool,
}

impl Scope {
    fn empty(opcode: Opcode, reason: &'static Rule) -> Scope {
        Scope {
            opcode,
            tlb: None,
            cfg: None,
            atc: None,
            reason: Some(reason),
            res0_cleared: false,
        }
    }

    pub fn opcode(&self) -> Opcode {
        self.opcode
    }

    /// CMD_SYNC: the completion point for earlier invalidations (§4.7.3).
    pub fn is_sync(&self) -> bool {
        self.opcode == Opcode::Sync
    }

    /// Nothing at all is required.
    pub fn is_empty(&self) -> bool {
        self.tlb.is_none() && self.cfg.is_none() && self.atc.is_none()
    }

    /// When the scope is empty, or for configuration/ATC scopes, the rule that says so.
    pub fn reason(&self) -> Option<&'static Rule> {
        self.reason
    }

    #[inline]
    pub fn requires_tlb(&self, t: &TlbTag) -> bool {
        self.rule_for_tlb(t).is_some()
    }

    /// The rule that requires `t` to be removed, or `None` when the entry may stay. O(1).
    pub fn rule_for_tlb(&self, t: &TlbTag) -> Option<&'static Rule> {
        let s = self.tlb.as_ref()?;
        if s.worlds & t.world.bit() == 0 || s.stages & t.stage.bit() == 0 {
            return None;
        }
        if let (Some(ns), EntryStage::S2) = (s.ipa_ns, t.stage) {
            if t.ipa_space_ns != ns {
                return None;
            }
        }
        if let Some((v, m)) = s.vmid {
            if t.vmid & m != v & m {
                return None;
            }
        }
        let mut rule = s.rule;
        match s.asid {
            AsidSel::Any => {}
            AsidSel::NonGlobal(a) => {
                if t.global || t.asid != a {
                    return None;
                }
            }
            AsidSel::OrGlobal(a) => {
                if !t.global && t.asid != a {
                    return None;
                }
                if t.global && t.asid != a {
                    rule = s.global_rule;
                }
            }
        }
        if t.kind == EntryKind::Table && s.leaf_only {
            return None;
        }
        if let Some(g) = s.granule {
            if t.granule != g {
                return None;
            }
        }
        if let Some(lvl) = s.ttl_level {
            // TTL128 selects the descriptor format the hint is about (§4.4.1.1).
            if t.d128 != s.ttl128 {
                return None;
            }
            // Leaf entries only from level TTL; with Leaf == 0, table entries from the levels
            // before it (§4.4.1.1 note). Combined S1+S2 entries are judged by their recorded
            // level like any leaf (interpretation, SCOPE-TTL-COMBINED).
            let ok = match t.kind {
                EntryKind::Leaf => t.level == lvl,
                EntryKind::Table => t.level < lvl,
            };
            if !ok {
                return None;
            }
            if rule == s.rule {
                if t.stage == EntryStage::Combined {
                    rule = &r::TTL_COMBINED;
                } else if t.kind == EntryKind::Table {
                    rule = &r::TTL_LEVEL;
                }
            }
        }
        match s.addr {
            AddrSel::All => {}
            AddrSel::Point(a) => {
                if !t.contains(a) {
                    return None;
                }
                if t.base != a && rule == s.rule {
                    // The address lies inside a larger entry: required by containment.
                    rule = &r::NONRANGE_CONTAINS;
                }
            }
            AddrSel::Range { range, end_two } => {
                let end = if t.world.has_two_va_ranges() && t.stage != EntryStage::S2 {
                    end_two
                } else {
                    range.end()
                };
                if !range.intersects(t.base, t.size, end) {
                    return None;
                }
                // A one-granule span behaves like a non-range invalidation of Addr (§4.4.1.1
                // note), so an entry translating Addr is required outright; any other entry only
                // partly inside the invalidated set is required by interpretation (digest §10.6).
                let single = range.num == 0 && range.scale == 0 && t.contains(range.base);
                if !single && !range.contains(t.base, t.size, end) && rule == s.rule {
                    rule = &r::RANGE_OVERLAP;
                }
            }
        }
        Some(rule)
    }

    #[inline]
    pub fn requires_cfg(&self, c: &CfgTag) -> bool {
        self.rule_for_cfg(c).is_some()
    }

    /// The rule that requires configuration entry `c` to be removed. O(1).
    pub fn rule_for_cfg(&self, c: &CfgTag) -> Option<&'static Rule> {
        let (sec, sel) = self.cfg?;
        if c.sec() != sec {
            return None;
        }
        let in_span = |x: u32, first: u32, count: u64| {
            u64::from(x) >= u64::from(first) && u64::from(x) < u64::from(first) + count
        };
        let overlap = |a: u32, an: u64, b: u32, bn: u64| {
            an != 0
                && bn != 0
                && u64::from(a) < u64::from(b) + bn
                && u64::from(b) < u64::from(a) + an
        };
        match (sel, *c) {
            (CfgSel::All, CfgTag::VmsPidm { .. }) => Some(&r::CFGI_ALL),
            (CfgSel::All, _) => Some(&r::CFGI_ALL),
            (CfgSel::Ste { sid, .. }, CfgTag::Ste { sid: s, .. })
            | (CfgSel::Ste { sid, .. }, CfgTag::Cd { sid: s, .. })
            | (CfgSel::Ste { sid, .. }, CfgTag::L1Cd { sid: s, .. }) => {
                (s == sid).then_some(&r::CFGI_STE)
            }
            (
                CfgSel::Ste { sid, leaf: false },
                CfgTag::L1Std {
                    sid_first,
                    sid_count,
                    ..
                },
            ) => in_span(sid, sid_first, sid_count).then_some(&r::CFGI_STE_L1),
            (CfgSel::SteRange { first, count }, CfgTag::Ste { sid, .. })
            | (CfgSel::SteRange { first, count }, CfgTag::Cd { sid, .. })
            | (CfgSel::SteRange { first, count }, CfgTag::L1Cd { sid, .. }) => {
                in_span(sid, first, count).then_some(&r::CFGI_STE_RANGE)
            }
            (
                CfgSel::SteRange { first, count },
                CfgTag::L1Std {
                    sid_first,
                    sid_count,
                    ..
                },
            ) => overlap(first, count, sid_first, sid_count).then_some(&r::CFGI_STE_RANGE),
            (
                CfgSel::Cd { sid, ssid, .. },
                CfgTag::Cd {
                    sid: s, ssid: ss, ..
                },
            ) => (s == sid && ss == ssid).then_some(&r::CFGI_CD),
            (
                CfgSel::Cd {
                    sid,
                    ssid,
                    leaf: false,
                },
                CfgTag::L1Cd {
                    sid: s,
                    ssid_first,
                    ssid_count,
                    ..
                },
            ) => (s == sid && in_span(ssid, ssid_first, ssid_count)).then_some(&r::CFGI_CD_L1),
            (CfgSel::CdAll { sid }, CfgTag::Cd { sid: s, .. })
            | (CfgSel::CdAll { sid }, CfgTag::L1Cd { sid: s, .. }) => {
                (s == sid).then_some(&r::CFGI_CD_ALL)
            }
            (CfgSel::VmsPidm { vmid, mask }, CfgTag::VmsPidm { vmid: v, .. }) => {
                (v & mask == vmid & mask).then_some(&r::CFGI_VMS_PIDM)
            }
            _ => None,
        }
    }

    #[inline]
    pub fn requires_atc(&self, a: &AtcTag) -> bool {
        self.rule_for_atc(a).is_some()
    }

    /// The rule that requires ATC entry `a` to be removed. O(1).
    pub fn rule_for_atc(&self, a: &AtcTag) -> Option<&'static Rule> {
        let s = self.atc?;
        if a.sid != s.sid {
            return None;
        }
        let b = u128::from(a.base);
        if a.size == 0 || b >= s.end || a.end() <= u128::from(s.base) {
            return None;
        }
        match (s.ssid, a.ssid) {
            (None, None) => Some(&r::ATC_INV),
            (Some(x), Some(y)) if x == y => Some(&r::ATC_INV),
            (Some(_), Some(_)) if s.global && a.global => Some(&r::ATC_INV_GLOBAL),
            _ => None,
        }
    }

    /// One line describing the required scope.
    pub fn describe(&self) -> String {
        let name = self.opcode.name();
        let res0 = if self.res0_cleared {
            " (RES0 bits treated as zero, SCOPE-RES0-AS-ZERO §4.1.5)"
        } else {
            ""
        };
        if self.is_empty() {
            let why = self
                .reason
                .map(|r| format!("{} {}", r.id, r.section))
                .unwrap_or_default();
            return format!("{name}: nothing required ({why}){res0}");
        }
        if let Some(t) = &self.tlb {
            let worlds: Vec<&str> = StreamWorld::ALL
                .iter()
                .filter(|w| t.worlds & w.bit() != 0)
                .map(|w| world_name(*w))
                .collect();
            let stages: Vec<&str> = [
                (EntryStage::S1, "S1"),
                (EntryStage::S2, "S2"),
                (EntryStage::Combined, "S1+S2"),
            ]
            .iter()
            .filter(|(s, _)| t.stages & s.bit() != 0)
            .map(|(_, n)| *n)
            .collect();
            let vmid = match t.vmid {
                Some((v, 0xFFFF)) => format!(" VMID={v:#x}"),
                Some((v, m)) => format!(" VMID={:#x}/mask {m:#x}", v & m),
                None => " any VMID".into(),
            };
            let asid = match t.asid {
                AsidSel::Any => " any ASID".to_string(),
                AsidSel::NonGlobal(a) => format!(" non-global ASID={a:#x}"),
                AsidSel::OrGlobal(a) => format!(" ASID={a:#x} or global"),
            };
            let addr = match t.addr {
                AddrSel::All => " all addresses".to_string(),
                AddrSel::Point(a) => format!(" entries containing {a:#x}"),
                AddrSel::Range { range, end_two } => format!(
                    " entries intersecting [{:#x}, {:#x}) (two-range regimes to {:#x})",
                    range.base,
                    range.end(),
                    end_two
                ),
            };
            let g = t
                .granule
                .map(|g| format!(" granule {g:?}"))
                .unwrap_or_default();
            let ttl = t
                .ttl_level
                .map(|l| format!(" TTL level {l}{}", if t.ttl128 { " (128-bit)" } else { "" }))
                .unwrap_or_default();
            let leaf = if t.leaf_only { " leaf only" } else { "" };
            let ns = t
                .ipa_ns
                .map(|n| format!(" IPA space {}", if n { "NS" } else { "S" }))
                .unwrap_or_default();
            return format!(
                "{name}: {} {} entries{vmid}{asid}{addr}{g}{ttl}{leaf}{ns} [{} {}]{res0}",
                worlds.join("|"),
                stages.join("|"),
                t.rule.id,
                t.rule.section
            );
        }
        if let Some((sec, c)) = &self.cfg {
            let what = match c {
                CfgSel::Ste { sid, leaf } => format!("STE SID={sid:#x} leaf={leaf}"),
                CfgSel::SteRange { first, count } => {
                    format!("STEs SID [{first:#x}, +{count:#x})")
                }
                CfgSel::All => "all configuration".into(),
                CfgSel::Cd { sid, ssid, leaf } => {
                    format!("CD SID={sid:#x} SSID={ssid:#x} leaf={leaf}")
                }
                CfgSel::CdAll { sid } => format!("all CDs of SID={sid:#x}"),
                CfgSel::VmsPidm { vmid, mask } => format!("VMS VMID={vmid:#x}/mask {mask:#x}"),
            };
            return format!("{name}: {sec:?} {what}{res0}");
        }
        if let Some(a) = &self.atc {
            let ss = match a.ssid {
                None => "no PASID".to_string(),
                Some(s) => format!("SSID={s:#x}{}", if a.global { " + global" } else { "" }),
            };
            return format!(
                "{name}: ATC SID={:#x} {ss} [{:#x}, {:#x}){res0}",
                a.sid, a.base, a.end
            );
        }
        format!("{name}{res0}")
    }
}

fn world_name(w: StreamWorld) -> &'static str {
    use StreamWorld::*;
    match w {
        NsEl1 => "NS-EL1",
        NsEl2 => "NS-EL2",
        NsEl2E2h => "NS-EL2-E2H",
        SEl1 => "S-EL1",
        SEl2 => "S-EL2",
        SEl2E2h => "S-EL2-E2H",
        El3 => "EL3",
        RealmEl1 => "Realm-EL1",
        RealmEl2 => "Realm-EL2",
        RealmEl2E2h => "Realm-EL2-E2H",
    }
}

const S1_STAGES: u8 = EntryStage::S1.bit() | EntryStage::Combined.bit();
const ALL_STAGES: u8 = S1_STAGES | EntryStage::S2.bit();

/// The VMID mask under a VMW value: 1..=4 ignore VMID[VMW-1:0]; other values behave as 0
/// (§3.17.6, §6.3.9).
fn vmw_mask(vmw: u8) -> u16 {
    match vmw {
        1..=4 => !((1u16 << vmw) - 1),
        _ => 0xFFFF,
    }
}

fn bits_u32(v: u32, hi: u32, lo: u32) -> u32 {
    (v >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// Whether an address parameter of `bits` width holds `x` (a StreamID or SubstreamID).
fn id_in_range(x: u32, bits: u8) -> bool {
    bits >= 32 || u64::from(x) < (1u64 << bits)
}

/// VA parameter out of range: bits [63:VAS-1] not all equal, with VAS 49/53/56 for VAX
/// 0b00/0b01/0b10 (§3.4.1, §4.4.2). The implementation MAY then do nothing (§4.1.7).
fn va_out_of_range(p: &Profile, va: u64) -> bool {
    let sign = match p.vax {
        0 => 48,
        1 => 52,
        _ => 55,
    };
    let top = (va as i64) >> sign;
    top != 0 && top != -1
}

/// IPA parameter out of range: Address[63:IAS] non-zero (§4.4.3.1). IAS is OAS, or at least 40
/// when AArch32 tables are supported (TTF[0], §3.4).
fn ipa_out_of_range(p: &Profile, ipa: u64) -> bool {
    let ias = if p.ttf & 1 != 0 {
        p.oas_bits.max(40)
    } else {
        p.oas_bits
    };
    ias < 64 && (ipa >> ias) != 0
}

/// The range fields of the effective command, with the configuration-dependent RES0 rules of
/// §4.4.1.1 applied (RIL == 0: all RES0; TG == 0: NUM/SCALE/TTL/TTL128 RES0; TTL == 0: TTL128
/// RES0; DS == 0: SCALE[25] RES0). `classify` reports the same bits; applying them here too keeps
/// the scope right whatever `classify` reports.
fn effective_range(p: &Profile, eff: RawCommand) -> RangeFields {
    let mut f = RangeFields {
        tg: eff.get(l::TG) as u8,
        ttl: eff.get(l::TTL) as u8,
        ttl128: eff.get(l::TTL128) != 0,
        num: eff.get(l::NUM) as u8,
        scale: eff.get(l::SCALE) as u8,
    };
    if !p.ril || f.tg == 0 {
        f = RangeFields::default();
    }
    if f.ttl == 0 {
        f.ttl128 = false;
    }
    if !p.ds {
        f.scale &= 0x1F;
    }
    f
}

/// The minimum the architecture requires `raw`, submitted to `ctx.queue`, to remove. Total,
/// allocation-free, never panics.
pub fn required_scope(ctx: &ScopeCtx, raw: RawCommand) -> Scope {
    let p = &ctx.profile;
    let op = raw.opcode();
    let cls = classify(p, ctx.queue, raw);
    if let Verdict::Illegal(_) = cls.verdict {
        return Scope::empty(op, &r::ILLEGAL);
    }
    let f = cls.flags;
    // Flags::IGNORED names an ignored *field* (SYNC MSI fields, ATC_INV Global without SSV,
    // RESUME Ab): the command still acts, with that field treated as its ignored value, which
    // `build` does per command (§4.5.1, §4.7.1, §4.7.3).
    for (flag, rule) in [
        (Flags::OUT_OF_RANGE, &r::OUT_OF_RANGE),
        (Flags::NARROW_ID_UPPER_SET, &r::NARROW_ID),
        (Flags::UNPREDICTABLE_RANGE, &r::RANGE_UNPREDICTABLE),
        (Flags::NOTHING_REQUIRED, &r::RANGE_TTL128_MISALIGNED),
    ] {
        if f.has(flag) {
            return Scope::empty(op, rule);
        }
    }
    let eff = RawCommand::from_u128(raw.as_u128() & !cls.res0_set);
    let mut s = build(ctx, raw, eff);
    s.res0_cleared = cls.res0_set != 0;
    s
}

/// Stage-2 support for the Security state of a queue (§4.4.2: NS S2P; Secure SEL2; Realm S2P).
fn s2_for_queue(p: &Profile, q: Queue) -> bool {
    match q {
        Queue::NonSecure | Queue::Realm => p.s2p,
        Queue::Secure => p.sel2,
    }
}

fn base_tlb(worlds: u16, stages: u8, rule: &'static Rule) -> TlbSel {
    TlbSel {
        worlds,
        stages,
        vmid: None,
        asid: AsidSel::Any,
        addr: AddrSel::All,
        granule: None,
        ttl_level: None,
        ttl128: false,
        leaf_only: false,
        ipa_ns: None,
        rule,
        global_rule: rule,
    }
}

fn build(ctx: &ScopeCtx, raw: RawCommand, eff: RawCommand) -> Scope {
    use Opcode as O;
    use StreamWorld as W;
    let p = &ctx.profile;
    let q = ctx.queue;
    let op = eff.opcode();
    let mk = |tlb: TlbSel| Scope {
        opcode: op,
        tlb: Some(tlb),
        cfg: None,
        atc: None,
        reason: None,
        res0_cleared: false,
    };

    // Raw ASID/VMID: the §4.4 upper-byte rule reads the submitted value, not the RES0-cleared
    // one (clearing would turn a no-op into a low-byte invalidation).
    let raw_asid = raw.get(l::ASID) as u16;
    let raw_vmid = raw.get(l::VMID) as u16;
    let asid = eff.get(l::ASID) as u16;
    let vmid = eff.get(l::VMID) as u16;
    let asid_narrow_bad = !p.asid16 && raw_asid >> 8 != 0;
    let vmid_narrow_bad = !p.vmid16 && raw_vmid >> 8 != 0;

    // The NS/Secure/Realm world family of the queue, for NH_* (§4.4.2 table).
    let el1_world = match q {
        Queue::NonSecure => W::NsEl1,
        Queue::Secure => W::SEl1,
        Queue::Realm => W::RealmEl1,
    };
    // EL2_* target NS EL2 from the NS and Secure queues, Realm EL2 from the Realm queue.
    let (el2, el2_e2h, e2h) = match q {
        Queue::Realm => (W::RealmEl2, W::RealmEl2E2h, ctx.r_e2h),
        _ => (W::NsEl2, W::NsEl2E2h, ctx.e2h),
    };
    // S12_VMALL, S2_IPA and NSNH_ALL target NS EL1 from NS and Secure queues, Realm EL1 from the
    // Realm queue (§4.4.3, §4.4.4.1).
    let nsnh_world = if q == Queue::Realm {
        W::RealmEl1
    } else {
        W::NsEl1
    };
    // VMW applies to NS VMIDs (CR0) and Secure VMIDs (S_CR0) when implemented. The Realm
    // queue's own VMW register is not modelled: no wildcard (smaller required set).
    let ns_mask = if p.vmw && p.s2p {
        vmw_mask(ctx.vmw)
    } else {
        0xFFFF
    };
    let s_mask = if p.vmw && p.sel2 {
        vmw_mask(ctx.s_vmw)
    } else {
        0xFFFF
    };
    let nh_mask = match q {
        Queue::NonSecure => ns_mask,
        Queue::Secure => s_mask,
        Queue::Realm => 0xFFFF,
    };
    let nsnh_mask = if q == Queue::Realm { 0xFFFF } else { ns_mask };

    // NH_* VMID (§4.4.2): matched only with stage 2 for the queue's Security state; otherwise
    // VMID == 0 covers every VMID and VMID != 0 may hit an UNKNOWN VMID (nothing required).
    let nh_vmid = || -> Result<Option<(u16, u16)>, &'static Rule> {
        if s2_for_queue(p, q) {
            if vmid_narrow_bad {
                return Err(&r::NARROW_ID);
            }
            Ok(Some((vmid, nh_mask)))
        } else if raw_vmid != 0 {
            Err(&r::NH_VMID_UNMATCHED)
        } else {
            Ok(None)
        }
    };

    // Address-based fields (§4.4.1.1), on the effective command.
    let addr_field = if matches!(op, O::TlbiS2Ipa | O::TlbiSS2Ipa) {
        l::IPA
    } else {
        l::VA
    };
    let addr = eff.address(addr_field);
    let leaf = eff.get(l::LEAF) != 0;
    let apply_addr = |mut t: TlbSel| -> Result<TlbSel, &'static Rule> {
        let out = if addr_field == l::IPA {
            ipa_out_of_range(p, addr)
        } else {
            va_out_of_range(p, addr)
        };
        if out {
            return Err(&r::OUT_OF_RANGE);
        }
        t.leaf_only = leaf;
        match Range::from_fields(addr, &effective_range(p, eff), p.ds) {
            None => t.addr = AddrSel::Point(addr),
            Some(rg) => {
                if rg.is_reserved() {
                    return Err(&r::RANGE_RESERVED);
                }
                if rg.nothing_required() {
                    return Err(&r::RANGE_TTL128_MISALIGNED);
                }
                if rg.is_unpredictable() {
                    return Err(&r::RANGE_UNPREDICTABLE);
                }
                t.granule = Some(rg.granule);
                t.ttl_level = rg.ttl_level;
                t.ttl128 = rg.d128;
                t.addr = AddrSel::Range {
                    range: rg,
                    end_two: rg.end_two_ranges(),
                };
            }
        }
        Ok(t)
    };
    let done = |t: Result<TlbSel, &'static Rule>| match t {
        Ok(t) => mk(t),
        Err(rule) => Scope::empty(op, rule),
    };

    let queue_ok_secure = q == Queue::Secure;
    let ssec_sec = match q {
        Queue::NonSecure => Security::NonSecure,
        Queue::Realm => Security::Realm,
        Queue::Secure => {
            if eff.get(l::SSEC) != 0 {
                Security::Secure
            } else {
                Security::NonSecure
            }
        }
    };
    let sid = eff.get(l::SID) as u32;
    let ssid = eff.get(l::SSID) as u32;
    let sid_bits = if ssec_sec == Security::Secure {
        bits_u32(p.regs.s_idr1, 5, 0) as u8
    } else {
        p.sidsize
    };
    let cfg = |sel: CfgSel, rule: &'static Rule| Scope {
        opcode: op,
        tlb: None,
        cfg: Some((ssec_sec, sel)),
        atc: None,
        reason: Some(rule),
        res0_cleared: false,
    };

    match op {
        O::TlbiNhAll => done(nh_vmid().map(|v| {
            let mut t = base_tlb(el1_world.bit(), S1_STAGES, &r::NH_ALL);
            t.vmid = v;
            t
        })),
        O::TlbiNhAsid => {
            if asid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            done(nh_vmid().map(|v| {
                let mut t = base_tlb(el1_world.bit(), S1_STAGES, &r::NH_ASID);
                t.vmid = v;
                t.asid = AsidSel::NonGlobal(asid);
                t
            }))
        }
        O::TlbiNhVa | O::TlbiNhVaa => {
            let va = op == O::TlbiNhVa;
            if va && asid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            done(nh_vmid().and_then(|v| {
                let rule = if va { &r::NH_VA } else { &r::NH_VAA };
                let mut t = base_tlb(el1_world.bit(), S1_STAGES, rule);
                t.vmid = v;
                if va {
                    t.asid = AsidSel::OrGlobal(asid);
                    t.global_rule = &r::NH_VA_GLOBAL;
                }
                apply_addr(t)
            }))
        }
        O::TlbiEl3All | O::TlbiEl3Va if !queue_ok_secure => Scope::empty(op, &r::ILLEGAL),
        O::TlbiEl3All => mk(base_tlb(W::El3.bit(), S1_STAGES, &r::EL3_ALL)),
        O::TlbiEl3Va => done(apply_addr(base_tlb(W::El3.bit(), S1_STAGES, &r::EL3_VA))),
        O::TlbiEl2All => mk(base_tlb(el2.bit() | el2_e2h.bit(), S1_STAGES, &r::EL2_ALL)),
        O::TlbiSEl2All if queue_ok_secure => mk(base_tlb(
            W::SEl2.bit() | W::SEl2E2h.bit(),
            S1_STAGES,
            &r::S_EL2_ALL,
        )),
        O::TlbiEl2Va | O::TlbiEl2Vaa | O::TlbiSEl2Va | O::TlbiSEl2Vaa => {
            let secure = matches!(op, O::TlbiSEl2Va | O::TlbiSEl2Vaa);
            if secure && !queue_ok_secure {
                return Scope::empty(op, &r::ILLEGAL);
            }
            let with_asid = matches!(op, O::TlbiEl2Va | O::TlbiSEl2Va);
            if with_asid && asid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            let (w, we, e) = if secure {
                (W::SEl2, W::SEl2E2h, ctx.s_e2h)
            } else {
                (el2, el2_e2h, e2h)
            };
            let (rule, grule) = match (secure, with_asid) {
                (false, true) => (&r::EL2_VA, &r::EL2_VA_GLOBAL),
                (false, false) => (&r::EL2_VAA, &r::EL2_VAA),
                (true, true) => (&r::S_EL2_VA, &r::S_EL2_VA_GLOBAL),
                (true, false) => (&r::S_EL2_VAA, &r::S_EL2_VAA),
            };
            // E2H selects the world; the other flavour is not required (§4.4.2.8/9). With
            // E2H == 0 the ASID parameter is ignored.
            let mut t = base_tlb(if e { we.bit() } else { w.bit() }, S1_STAGES, rule);
            if e && with_asid {
                t.asid = AsidSel::OrGlobal(asid);
                t.global_rule = grule;
            }
            done(apply_addr(t))
        }
        O::TlbiEl2Asid | O::TlbiSEl2Asid => {
            let secure = op == O::TlbiSEl2Asid;
            if secure && !queue_ok_secure {
                return Scope::empty(op, &r::ILLEGAL);
            }
            if asid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            // Always the E2H-tagged world, whatever E2H (§4.4.2.10).
            let (w, rule) = if secure {
                (W::SEl2E2h, &r::S_EL2_ASID)
            } else {
                (el2_e2h, &r::EL2_ASID)
            };
            let mut t = base_tlb(w.bit(), S1_STAGES, rule);
            t.asid = AsidSel::NonGlobal(asid);
            mk(t)
        }
        O::TlbiS12Vmall | O::TlbiS2Ipa | O::TlbiSS12Vmall | O::TlbiSS2Ipa => {
            let secure = matches!(op, O::TlbiSS12Vmall | O::TlbiSS2Ipa);
            if secure && !queue_ok_secure {
                return Scope::empty(op, &r::ILLEGAL);
            }
            if vmid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            let (world, mask) = if secure {
                (W::SEl1, s_mask)
            } else {
                (nsnh_world, nsnh_mask)
            };
            let vmall = matches!(op, O::TlbiS12Vmall | O::TlbiSS12Vmall);
            let rule = match op {
                O::TlbiS12Vmall => &r::S12_VMALL,
                O::TlbiS2Ipa => &r::S2_IPA,
                O::TlbiSS12Vmall => &r::S_S12_VMALL,
                _ => &r::S_S2_IPA,
            };
            // S2_IPA: S2-only entries, not combined ones (§4.4.3.1).
            let stages = if vmall {
                ALL_STAGES
            } else {
                EntryStage::S2.bit()
            };
            let mut t = base_tlb(world.bit(), stages, rule);
            t.vmid = Some((vmid, mask));
            if vmall {
                mk(t)
            } else {
                if op == O::TlbiSS2Ipa {
                    t.ipa_ns = Some(eff.get(l::S_S2_IPA_NS) != 0);
                }
                done(apply_addr(t))
            }
        }
        O::TlbiNsnhAll => mk(base_tlb(nsnh_world.bit(), ALL_STAGES, &r::NSNH_ALL)),
        O::TlbiSnhAll if queue_ok_secure => mk(base_tlb(W::SEl1.bit(), ALL_STAGES, &r::SNH_ALL)),
        O::TlbiSEl2All | O::TlbiSnhAll => Scope::empty(op, &r::ILLEGAL),

        // ---- Configuration (§4.3) ----
        O::CfgiSte => {
            if !id_in_range(sid, sid_bits) {
                return Scope::empty(op, &r::OUT_OF_RANGE);
            }
            cfg(
                CfgSel::Ste {
                    sid,
                    leaf: eff.get(l::LEAF) != 0,
                },
                &r::CFGI_STE,
            )
        }
        O::CfgiSteRange => {
            let range = eff.get(l::RANGE) as u32;
            if range >= 31 {
                return cfg(CfgSel::All, &r::CFGI_ALL);
            }
            // 2^(Range+1) StreamIDs, SID[Range:0] ignored (§4.3.2).
            let count = 1u64 << (range + 1);
            let first = (u64::from(sid) & !(count - 1)) as u32;
            if !id_in_range(first, sid_bits) {
                return Scope::empty(op, &r::OUT_OF_RANGE);
            }
            cfg(CfgSel::SteRange { first, count }, &r::CFGI_STE_RANGE)
        }
        O::CfgiCd => {
            if !id_in_range(sid, sid_bits) || !id_in_range(ssid, p.ssidsize) {
                return Scope::empty(op, &r::OUT_OF_RANGE);
            }
            cfg(
                CfgSel::Cd {
                    sid,
                    ssid,
                    leaf: eff.get(l::LEAF) != 0,
                },
                &r::CFGI_CD,
            )
        }
        O::CfgiCdAll => {
            if !id_in_range(sid, sid_bits) {
                return Scope::empty(op, &r::OUT_OF_RANGE);
            }
            cfg(CfgSel::CdAll { sid }, &r::CFGI_CD_ALL)
        }
        O::CfgiVmsPidm => {
            // "VMID treated as in the TLBI commands" (§4.3.5): upper-byte rule, VMW, and no
            // VMID matching without stage 2 for the Security state.
            if vmid_narrow_bad {
                return Scope::empty(op, &r::NARROW_ID);
            }
            let (s2, mask) = match ssec_sec {
                Security::Secure => (p.sel2, s_mask),
                Security::NonSecure => (p.s2p, ns_mask),
                Security::Realm => (p.s2p, 0xFFFF),
            };
            if !s2 {
                // As the NH_* VMID (§4.4.2): not matched; VMID != 0 may hit an UNKNOWN VMID.
                if raw_vmid != 0 {
                    return Scope::empty(op, &r::NH_VMID_UNMATCHED);
                }
                return cfg(CfgSel::VmsPidm { vmid: 0, mask: 0 }, &r::CFGI_VMS_PIDM);
            }
            cfg(CfgSel::VmsPidm { vmid, mask }, &r::CFGI_VMS_PIDM)
        }

        // ---- ATC (§4.5.1) ----
        O::AtcInv => {
            let size = eff.get(l::ATC_SIZE) as u32;
            if size > 52 {
                return Scope::empty(op, &r::ATC_INV_SIZE);
            }
            let ssv = eff.get(l::SSV) != 0;
            // SSV == 1 without PASID support: as SSV == 0 or no effect; an out-of-range SID or
            // SSID: no effect permitted (§4.1.7).
            if !id_in_range(sid, p.sidsize)
                || (ssv && (p.ssidsize == 0 || !id_in_range(ssid, p.ssidsize)))
            {
                return Scope::empty(op, &r::OUT_OF_RANGE);
            }
            let shift = 12 + size;
            let (base, end) = if shift >= 64 {
                (0u64, crate::range::ADDR_SPACE_END)
            } else {
                let span = 1u64 << shift;
                let b = eff.address(l::VA) & !(span - 1);
                (b, u128::from(b) + u128::from(span))
            };
            Scope {
                opcode: op,
                tlb: None,
                cfg: None,
                atc: Some(AtcSel {
                    sid,
                    ssid: ssv.then_some(ssid),
                    // Global is IGNORED when SSV == 0 (§4.5.1).
                    global: ssv && eff.get(l::GLOBAL) != 0,
                    base,
                    end,
                }),
                reason: Some(&r::ATC_INV),
                res0_cleared: false,
            }
        }
        O::PrefetchConfig
        | O::PrefetchAddr
        | O::PriResp
        | O::Resume
        | O::StallTerm
        | O::Sync
        | O::DptiAll
        | O::DptiPa => Scope::empty(op, &r::NO_CACHE_EFFECT),
        // IMPLEMENTATION DEFINED commands: nothing is architecturally required of them.
        O::ImplementationDefined(_) => Scope::empty(op, &r::NO_CACHE_EFFECT),
        O::Reserved(_) => Scope::empty(op, &r::ILLEGAL),
    }
}
