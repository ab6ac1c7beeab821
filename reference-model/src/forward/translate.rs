//! How a guest's cached entries look on the host, and which host entries belong to the guest
//! (rule FWD-TRANSLATE, §3.17, §16.2.1).
//!
//! A guest sees a virtual SMMU. Its stage-1 tables are walked by the host SMMU under a nested
//! STE (the guest's CD, the VMM's stage 2), so what the guest thinks of as an NS-EL1 stage-1
//! entry is cached on the host as a combined S1+S2 entry (or, for an implementation that caches
//! the stages apart, a stage-1 entry) tagged with the host VMID the VMM gave the guest. The
//! guest's ASID, address, granule, level, Leaf/table kind and descriptor format are kept: the
//! host caches the guest's own descriptors (§16.2.1: a combined entry is invalidated when any
//! part of it would be). Guest CDs, L1CDs and ATC entries are cached under the physical
//! StreamID the guest's virtual StreamID stands for. The guest's stream table itself is read by
//! the VMM (it emulates STEs), so guest L1STD entries have no host counterpart, nor has guest
//! VMS information (no MPAM is offered).
//!
//! The guest's domain on the host: NS-EL1 entries of its host VMID, and configuration and ATC
//! entries of its physical StreamIDs. Everything else belongs to someone else (FWD-CONFINE-*).

use super::Mapping;
use crate::tlb::{AtcTag, CfgTag, EntryKind, EntryStage, Security, StreamWorld, TlbTag};

/// The host entries a guest TLB entry may be cached as: a combined S1+S2 entry and a stage-1
/// entry, both of which must be covered. Only NS-EL1 stage-1 guest entries exist on the host
/// (the guest's own stage 2 and EL2 regimes are not offered by a nested host).
pub fn host_tlb(m: &Mapping, g: &TlbTag) -> Option<[TlbTag; 2]> {
    if g.world != StreamWorld::NsEl1 || g.stage != EntryStage::S1 {
        return None;
    }
    let mut h = *g;
    h.vmid = m.host_vmid;
    h.ipa_space_ns = false;
    h.stage = EntryStage::Combined;
    let mut s1 = h;
    s1.stage = EntryStage::S1;
    Some([h, s1])
}

/// The host configuration entry a guest one is cached as: the same entry under the physical
/// StreamID; `None` for entries with no host counterpart (guest L1STDs, VMS information, other
/// Security states, unmapped vSIDs).
pub fn host_cfg(m: &Mapping, g: &CfgTag) -> Option<CfgTag> {
    if g.sec() != Security::NonSecure {
        return None;
    }
    match *g {
        CfgTag::Ste { sec, sid } => Some(CfgTag::Ste {
            sec,
            sid: m.psid(sid)?,
        }),
        CfgTag::Cd { sec, sid, ssid } => Some(CfgTag::Cd {
            sec,
            sid: m.psid(sid)?,
            ssid,
        }),
        CfgTag::L1Cd {
            sec,
            sid,
            ssid_first,
            ssid_count,
        } => Some(CfgTag::L1Cd {
            sec,
            sid: m.psid(sid)?,
            ssid_first,
            ssid_count,
        }),
        CfgTag::L1Std { .. } | CfgTag::VmsPidm { .. } => None,
    }
}

/// The host ATC entry: the same translation in the physical device.
pub fn host_atc(m: &Mapping, g: &AtcTag) -> Option<AtcTag> {
    Some(AtcTag {
        sid: m.psid(g.sid)?,
        ..*g
    })
}

/// Whether a host TLB entry belongs to the guest: an NS-EL1 entry of its host VMID, any stage
/// (stage-2 entries of that VMID are the guest's VM's own; removing them is over-invalidation).
pub fn tlb_in_domain(m: &Mapping, h: &TlbTag) -> bool {
    h.world == StreamWorld::NsEl1 && h.vmid == m.host_vmid
}

/// Whether a host configuration entry belongs to the guest: Non-secure structures of its
/// physical StreamIDs; an L1STD that covers one of them (a shared descriptor reached through
/// the guest's own StreamID); VMS information of its VMID.
pub fn cfg_in_domain(m: &Mapping, c: &CfgTag) -> bool {
    if c.sec() != Security::NonSecure {
        return false;
    }
    match *c {
        CfgTag::Ste { sid, .. } | CfgTag::Cd { sid, .. } | CfgTag::L1Cd { sid, .. } => {
            m.is_psid(sid)
        }
        CfgTag::L1Std {
            sid_first,
            sid_count,
            ..
        } => m.sids.iter().any(|&(_, p)| {
            u64::from(p) >= u64::from(sid_first) && u64::from(p) < u64::from(sid_first) + sid_count
        }),
        CfgTag::VmsPidm { vmid, .. } => vmid == m.host_vmid,
    }
}

pub fn atc_in_domain(m: &Mapping, a: &AtcTag) -> bool {
    m.is_psid(a.sid)
}

/// "NS-EL1 combined leaf L3 4K [0x100000, +0x1000) VMID 0x5 ASID 0x1 nG" for messages.
pub fn describe_tlb(t: &TlbTag) -> String {
    let stage = match t.stage {
        EntryStage::S1 => "S1",
        EntryStage::S2 => "S2",
        EntryStage::Combined => "S1+S2",
    };
    let kind = match t.kind {
        EntryKind::Leaf => "leaf",
        EntryKind::Table => "table",
    };
    let asid = if t.global {
        "global".to_string()
    } else {
        format!("ASID {:#x}", t.asid)
    };
    format!(
        "{:?} {stage} {kind} L{} {:?}{} [{:#x}, +{:#x}) VMID {:#x} {asid}",
        t.world,
        t.level,
        t.granule,
        if t.d128 { " D128" } else { "" },
        t.base,
        t.size,
        t.vmid
    )
}

pub fn describe_cfg(c: &CfgTag) -> String {
    match *c {
        CfgTag::Ste { sec, sid } => format!("{sec:?} STE SID {sid:#x}"),
        CfgTag::L1Std {
            sec,
            sid_first,
            sid_count,
        } => format!("{sec:?} L1STD SIDs [{sid_first:#x}, +{sid_count:#x})"),
        CfgTag::Cd { sec, sid, ssid } => format!("{sec:?} CD SID {sid:#x} SSID {ssid:#x}"),
        CfgTag::L1Cd {
            sec,
            sid,
            ssid_first,
            ssid_count,
        } => format!("{sec:?} L1CD SID {sid:#x} SSIDs [{ssid_first:#x}, +{ssid_count:#x})"),
        CfgTag::VmsPidm { sec, vmid } => format!("{sec:?} VMS VMID {vmid:#x}"),
    }
}

pub fn describe_atc(a: &AtcTag) -> String {
    let ss = match a.ssid {
        None => "no PASID".to_string(),
        Some(s) => format!("SSID {s:#x}{}", if a.global { " global" } else { "" }),
    };
    format!("ATC SID {:#x} {ss} [{:#x}, +{:#x})", a.sid, a.base, a.size)
}
