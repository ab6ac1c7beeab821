//! Candidate entries: the finite set of tags on which the forwarding oracle evaluates the model's
//! per-entry scope predicates ([`crate::scope::Scope::rule_for_tlb`] and friends).
//!
//! Why a finite set is exact enough. Fix every tag dimension but the address (an entry *shape*:
//! world, stage, kind, granule, level, descriptor format, VMID, ASID, global). Along the address
//! the guest command requires an interval of entry bases (a point, a range, or everything), and
//! each host command covers an interval too. An interval is inside a union of intervals iff its
//! first base, and every host interval's end that falls inside it, are covered: so the candidate
//! bases are the guest command's first base, 0, and each host command's end, aligned to the
//! shape's size. The other dimensions take the values the commands name plus one value no
//! command names (an ASID, an SSID, a StreamID) standing for all the others. A candidate the
//! guest requires and no host command covers is a real counterexample (never a false finding);
//! a dimension left out could only hide one. Contiguous-hint entries (larger than one
//! descriptor) are not among the shapes: they are covered whenever their pieces are.

use super::Mapping;
use crate::classify::classify;
use crate::command::{layout as l, Opcode, RawCommand};
use crate::granule::Granule;
use crate::profile::{Profile, Queue};
use crate::range::{Range, ADDR_SPACE_END};
use crate::tlb::{AtcTag, CfgTag, EntryKind, EntryStage, Security, StreamWorld, TlbTag};

/// Where a host command's required address set ends, for candidate bases.
#[derive(Clone, Copy, Debug)]
pub enum AddrMark {
    /// Not address-based (ALL, ASID, VMALL, configuration).
    None,
    /// TG == 0: entries containing this address.
    Point(u64),
    /// TG != 0: entries intersecting [base, end); two ends for two-VA-range regimes.
    Range { base: u64, ends: [u128; 2] },
    /// ATC_INV: [base, end).
    Span { base: u64, end: u128 },
}

/// The effective command (RES0 bits cleared) as the host or guest profile reads it (§4.1.5).
pub fn effective(p: &Profile, raw: RawCommand) -> RawCommand {
    let c = classify(p, Queue::NonSecure, raw);
    RawCommand::from_u128(raw.as_u128() & !c.res0_set)
}

/// The decoded range of an effective address-based TLBI, `None` for TG == 0 (§4.4.1.1).
pub fn range_of(p: &Profile, eff: RawCommand) -> Option<Range> {
    if !p.ril || !eff.opcode().is_address_tlbi() {
        return None;
    }
    let f = crate::command::RangeFields {
        tg: eff.get(l::TG) as u8,
        ttl: eff.get(l::TTL) as u8,
        ttl128: eff.get(l::TTL128) != 0,
        num: eff.get(l::NUM) as u8,
        scale: eff.get(l::SCALE) as u8,
    };
    Range::from_fields(addr_of(eff), &f, p.ds)
}

/// The address parameter (VA, or IPA for S2_IPA).
pub fn addr_of(eff: RawCommand) -> u64 {
    if matches!(eff.opcode(), Opcode::TlbiS2Ipa | Opcode::TlbiSS2Ipa) {
        eff.address(l::IPA)
    } else {
        eff.address(l::VA)
    }
}

pub fn addr_mark(p: &Profile, raw: RawCommand) -> AddrMark {
    let eff = effective(p, raw);
    let op = eff.opcode();
    if op == Opcode::AtcInv {
        let size = eff.get(l::ATC_SIZE) as u32;
        let shift = 12 + size.min(52);
        if shift >= 64 {
            return AddrMark::Span {
                base: 0,
                end: ADDR_SPACE_END,
            };
        }
        let span = 1u64 << shift;
        let b = eff.address(l::VA) & !(span - 1);
        return AddrMark::Span {
            base: b,
            end: u128::from(b) + u128::from(span),
        };
    }
    if !op.is_address_tlbi() {
        return AddrMark::None;
    }
    match range_of(p, eff) {
        None => AddrMark::Point(addr_of(eff)),
        Some(r) => AddrMark::Range {
            base: r.base,
            ends: [r.end(), r.end_two_ranges()],
        },
    }
}

/// One entry shape: everything about a TLB entry but its address and tags.
#[derive(Clone, Copy, Debug)]
struct Shape {
    granule: Granule,
    kind: EntryKind,
    level: u8,
    d128: bool,
    size: u64,
}

fn granules(p: &Profile) -> Vec<Granule> {
    let g: Vec<Granule> = Granule::ALL
        .iter()
        .copied()
        .filter(|g| match g {
            Granule::K4 => p.gran4k,
            Granule::K16 => p.gran16k,
            Granule::K64 => p.gran64k,
        })
        .collect();
    // A profile that names no granule (raw ID registers) cannot have entries at all; judging
    // every granule then is the cautious choice.
    if g.is_empty() {
        Granule::ALL.to_vec()
    } else {
        g
    }
}

/// Leaf (page or block) and table (walk-cache) shapes the profile can cache (Arm ARM D8.3): 4K
/// leaves at levels 1-3, 16K and 64K at 2-3 (level 1 too with DS); tables from the first level
/// to level 2; 128-bit descriptors only with IDR5.D128.
fn shapes(p: &Profile) -> Vec<Shape> {
    let mut v = Vec::new();
    for g in granules(p) {
        let formats: &[bool] = if p.d128 { &[false, true] } else { &[false] };
        for &d128 in formats {
            let leaf_levels: &[u8] = if g == Granule::K4 || p.ds {
                &[1, 2, 3]
            } else {
                &[2, 3]
            };
            for &level in leaf_levels {
                if let Some(s) = g.span_shift(level, d128) {
                    v.push(Shape {
                        granule: g,
                        kind: EntryKind::Leaf,
                        level,
                        d128,
                        size: 1u64 << s,
                    });
                }
            }
            for level in g.first_level()..=2 {
                if let Some(s) = g.span_shift(level, d128) {
                    v.push(Shape {
                        granule: g,
                        kind: EntryKind::Table,
                        level,
                        d128,
                        size: 1u64 << s,
                    });
                }
            }
        }
    }
    v
}

fn align_up(x: u128, size: u64) -> u128 {
    let s = u128::from(size);
    x.div_ceil(s) * s
}

/// Candidate entry bases of `size` for a command addressing `anchor`, given the host marks.
fn bases(anchor: Option<u64>, size: u64, marks: &[AddrMark]) -> Vec<u64> {
    let down = |a: u64| a & !(size - 1);
    let mut v = vec![0u64];
    if let Some(a) = anchor {
        v.push(down(a));
    }
    let mut push_end = |e: u128| {
        let e = align_up(e, size);
        if e < ADDR_SPACE_END {
            v.push(e as u64);
        }
    };
    for m in marks {
        match *m {
            AddrMark::None => {}
            AddrMark::Point(p) => push_end(u128::from(down(p)) + u128::from(size)),
            AddrMark::Range { ends, .. } => {
                push_end(ends[0]);
                push_end(ends[1]);
            }
            AddrMark::Span { end, .. } => push_end(end),
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The largest SubstreamID of a profile (IDR1.SSIDSIZE; 0 when it has none).
fn ssid_max(p: &Profile) -> u32 {
    match p.ssidsize {
        0 => 0,
        s if s >= 20 => 0xF_FFFF,
        s => (1u32 << s) - 1,
    }
}

/// A value in `0..=max` that is not in `named`, starting the search from `from`.
fn unnamed_u32(named: &[u32], from: u32, max: u32) -> u32 {
    let mut x = from.min(max);
    for _ in 0..=named.len() {
        if !named.contains(&x) {
            return x;
        }
        x = if x >= max { 0 } else { x + 1 };
    }
    x
}

/// Guest TLB entries to try for the guest command `g_eff` (NS-EL1 stage-1 entries of the
/// guest's shapes; VMID, ASID and global variants; candidate bases from the host marks).
pub fn guest_tlb(
    guest: &Profile,
    g_eff: RawCommand,
    host_asids: &[u32],
    marks: &[AddrMark],
) -> Vec<TlbTag> {
    let op = g_eff.opcode();
    let anchor = op.is_address_tlbi().then(|| addr_of(g_eff));
    let asid = g_eff.get(l::ASID) as u32;
    let asid_max = if guest.asid16 { 0xFFFF } else { 0xFF };
    let mut named = host_asids.to_vec();
    named.push(asid);
    let other = unnamed_u32(&named, asid ^ 1, asid_max);
    let mut vmids = vec![0u16, g_eff.get(l::VMID) as u16];
    vmids.dedup();
    let mut out = Vec::new();
    for sh in shapes(guest) {
        for base in bases(anchor, sh.size, marks) {
            for &vmid in &vmids {
                for (a, global) in [(asid, false), (asid, true), (other, false), (other, true)] {
                    out.push(TlbTag {
                        world: StreamWorld::NsEl1,
                        stage: EntryStage::S1,
                        kind: sh.kind,
                        vmid,
                        asid: a as u16,
                        global,
                        aset: false,
                        granule: sh.granule,
                        level: sh.level,
                        d128: sh.d128,
                        base,
                        size: sh.size,
                        ipa_space_ns: false,
                    });
                }
            }
        }
    }
    out
}

/// Guest configuration entries to try: STEs, CDs and L1CDs of every mapped vSID, with the
/// command's SSID, SSID 0 and one SSID no host command names.
pub fn guest_cfg(m: &Mapping, g_eff: RawCommand, host_ssids: &[u32]) -> Vec<CfgTag> {
    let ssid = g_eff.get(l::SSID) as u32;
    let max = ssid_max(&m.guest);
    let mut named = host_ssids.to_vec();
    named.push(ssid);
    let other = unnamed_u32(&named, ssid ^ 1, max);
    // Only SubstreamIDs the guest can have (IDR1.SSIDSIZE, §4.1.7).
    let mut ssids: Vec<u32> = [ssid, 0, other].into_iter().filter(|s| *s <= max).collect();
    ssids.sort_unstable();
    ssids.dedup();
    let sec = Security::NonSecure;
    let mut out = Vec::new();
    for &(v, _) in &m.sids {
        out.push(CfgTag::Ste { sec, sid: v });
        for &s in &ssids {
            out.push(CfgTag::Cd {
                sec,
                sid: v,
                ssid: s,
            });
            out.push(CfgTag::L1Cd {
                sec,
                sid: v,
                ssid_first: s & !0x3F,
                ssid_count: 64,
            });
        }
    }
    out
}

/// Guest ATC entries to try: of every mapped vSID, without a PASID, with the command's SSID and
/// with another one, global or not, one page and the command's whole span.
pub fn guest_atc(m: &Mapping, g_eff: RawCommand, marks: &[AddrMark]) -> Vec<AtcTag> {
    let ssid = g_eff.get(l::SSID) as u32;
    let max = ssid_max(&m.guest);
    let other = unnamed_u32(&[ssid], ssid ^ 1, max);
    let anchor = g_eff.address(l::VA);
    let size_code = (g_eff.get(l::ATC_SIZE) as u32).min(51);
    let mut sizes = vec![0x1000u64, 1u64 << (12 + size_code)];
    sizes.dedup();
    let mut out = Vec::new();
    for &(v, _) in &m.sids {
        for &size in &sizes {
            for base in bases(Some(anchor), size, marks) {
                for (ss, global) in [
                    (None, false),
                    (Some(ssid), false),
                    (Some(ssid), true),
                    (Some(other), false),
                    (Some(other), true),
                ] {
                    // PASID-tagged entries only exist with SubstreamIDs (§3.9, §4.1.7).
                    if ss.is_some_and(|s| m.guest.ssidsize == 0 || s > max) {
                        continue;
                    }
                    out.push(AtcTag {
                        sid: v,
                        ssid: ss,
                        global,
                        base,
                        size,
                    });
                }
            }
        }
    }
    out
}

/// Host TLB entries a host command may reach outside the guest's domain: built from the
/// command's own fields (so they lie in its scope when it has one) in every world and stage,
/// with its VMID field and VMIDs that are not the guest's.
pub fn host_tlb_reach(m: &Mapping, host: &Profile, raw: RawCommand) -> Vec<TlbTag> {
    let eff = effective(host, raw);
    let rg = range_of(host, eff);
    let (granule, level, d128) = match rg {
        Some(r) => (r.granule, r.ttl_level.unwrap_or(3), r.d128),
        None => (Granule::K4, 3, false),
    };
    let size = granule
        .span_shift(level, d128)
        .map(|s| 1u64 << s)
        .unwrap_or(granule.size());
    let addr = addr_of(eff);
    let base = match rg {
        Some(r) => r.base & !(size - 1),
        None => addr & !(size - 1),
    };
    let field_vmid = eff.get(l::VMID) as u16;
    let mut vmids = vec![field_vmid, m.host_vmid ^ 1, m.host_vmid ^ 0x100, 0];
    vmids.sort_unstable();
    vmids.dedup();
    let asid = eff.get(l::ASID) as u16;
    let mut out = Vec::new();
    for world in StreamWorld::ALL {
        for stage in [EntryStage::S1, EntryStage::S2, EntryStage::Combined] {
            for &vmid in &vmids {
                for global in [false, true] {
                    for ipa_space_ns in [false, true] {
                        out.push(TlbTag {
                            world,
                            stage,
                            kind: EntryKind::Leaf,
                            vmid,
                            asid,
                            global,
                            aset: false,
                            granule,
                            level,
                            d128,
                            base,
                            size,
                            ipa_space_ns,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Host configuration entries a host command may reach outside the guest's domain.
pub fn host_cfg_reach(m: &Mapping, host: &Profile, raw: RawCommand) -> Vec<CfgTag> {
    let eff = effective(host, raw);
    let sid = eff.get(l::SID) as u32;
    let ssid = eff.get(l::SSID) as u32;
    let psids: Vec<u32> = m.sids.iter().map(|&(_, p)| p).collect();
    let mut sids = vec![sid, unnamed_u32(&psids, 0, u32::MAX)];
    if eff.opcode() == Opcode::CfgiSteRange {
        let range = eff.get(l::RANGE) as u32;
        if range < 31 {
            // The first StreamID of the aligned block that is not the guest's (§4.3.2).
            let count = 1u64 << (range + 1);
            let first = u64::from(sid) & !(count - 1);
            let x = (0..=psids.len() as u64)
                .map(|k| first + k)
                .find(|x| !psids.iter().any(|&p| u64::from(p) == *x));
            if let Some(x) = x.filter(|x| *x < first + count) {
                sids.push(x as u32);
            }
        }
    }
    sids.sort_unstable();
    sids.dedup();
    let vmid = eff.get(l::VMID) as u16;
    let mut out = Vec::new();
    for sec in [Security::NonSecure, Security::Secure, Security::Realm] {
        for &s in &sids {
            out.push(CfgTag::Ste { sec, sid: s });
            out.push(CfgTag::Cd { sec, sid: s, ssid });
            out.push(CfgTag::L1Cd {
                sec,
                sid: s,
                ssid_first: ssid & !0x3F,
                ssid_count: 64,
            });
            out.push(CfgTag::L1Std {
                sec,
                sid_first: s & !0xFF,
                sid_count: 256,
            });
        }
        for v in [vmid, m.host_vmid ^ 1, 0] {
            out.push(CfgTag::VmsPidm { sec, vmid: v });
        }
    }
    out
}

/// Host ATC entries a host ATC_INV may reach outside the guest's domain.
pub fn host_atc_reach(host: &Profile, raw: RawCommand) -> Vec<AtcTag> {
    let eff = effective(host, raw);
    let sid = eff.get(l::SID) as u32;
    let ssid = eff.get(l::SSID) as u32;
    let base = eff.address(l::VA) & !0xFFF;
    [None, Some(ssid)]
        .into_iter()
        .map(|ss| AtcTag {
            sid,
            ssid: ss,
            global: false,
            base,
            size: 0x1000,
        })
        .collect()
}
