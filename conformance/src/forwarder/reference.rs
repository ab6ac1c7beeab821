//! The reference forwarder: what a VMM plus kernel should do with a guest's commands (issue #7),
//! and its mutants, each one real bug class at the point where it would live (grep `FwdMutant::`).
//!
//! What it does, per guest command, on the guest's *effective* command (RES0 bits cleared under
//! the guest's profile, §4.1.5, so no guest RES0 bit ever reaches the host):
//! - ILLEGAL under the guest's profile: an error at that index (the VMM raises CERROR_ILL).
//! - TLBI_NSNH_ALL: TLBI_NH_ALL for the guest's host VMID (the guest's "everything" is its own
//!   stage-1 context, §4.4.4.1; a host NSNH_ALL would reach every VMID).
//! - TLBI_NH_ALL/NH_ASID/NH_VA/NH_VAA: the VMID field replaced by the host VMID. A range
//!   (TG != 0) is kept when the host has RIL and can encode it (SCALE above 31 needs IDR5.DS on
//!   the host) and re-encoded from the decoded range (TTL as the guest's profile reads it,
//!   e.g. 16K TTL=0b01 without DS is 0b00); otherwise it is emulated by one TG=0 TLBI per
//!   granule of the range (§4.4 note: a TG=0 TLBI removes every entry containing its address, of
//!   any granule and level, so this never removes less) up to [`EMULATE_MAX_PAGES`], and by
//!   NH_ALL for the VMID above that (CVE-2023-52484: one TLBI per page soft-locked a CPU). TTL
//!   and TG are therefore only ever sent to a host that honours them, and a TG=0 guest command
//!   stays TG=0 (no TTL is assumed, the 2023 LKML point).
//! - CFGI_STE, CFGI_CD, CFGI_CD_ALL, ATC_INV: the vSID translated to the pSID; an unmapped vSID
//!   is an error. CFGI_STE_RANGE: one CFGI_STE per mapped vSID in the range (a host range would
//!   reach StreamIDs of others). Linux's uAPI does not accept CFGI_STE*: there the VMM handles
//!   them; the reference models the VMM and kernel together.
//! - Everything else is rejected at its index: CFGI_ALL (it would reach every device of the
//!   host), CMD_SYNC (the interface is synchronous, as Linux's uAPI: -EIO), prefetches,
//!   CFGI_VMS_PIDM, EL2/EL3/stage-2 TLBIs, PRI_RESP, RESUME, STALL_TERM, DPTI_*.
//! - After the handled entries' host commands, one host CMD_SYNC; then `handled` is the index of
//!   the failing entry, or the batch length.
//!
//! Every host command is classified under the host's profile before it is issued; one that
//! would not be Legal there is replaced by the emulation (never issued).

use crate::backend::{ForwardResult, Forwarder, HarnessError, VirtualSmmu};
use serde::Serialize;
use smmu_model::classify::{classify, Verdict};
use smmu_model::command::{layout as l, Opcode, RawCommand};
use smmu_model::forward::witness::{effective, range_of};
use smmu_model::profile::{Profile, Queue};

/// Above this many granules a range is emulated by NH_ALL for the VMID, not page by page.
pub const EMULATE_MAX_PAGES: u64 = 64;

macro_rules! fwd_mutants {
    ($( $(#[$m:meta])* $v:ident = $name:literal, $desc:literal; )*) => {
        /// One injected forwarder bug (docs/forwarder.md lists the real bug each stands for).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum FwdMutant {
            $( $(#[$m])* $v, )*
        }

        impl FwdMutant {
            pub const ALL: &'static [FwdMutant] = &[$(FwdMutant::$v),*];

            /// The mutant's fixed name, as `fwd-mutant:NAME` selects it.
            pub fn name(self) -> &'static str {
                match self { $(FwdMutant::$v => $name,)* }
            }
            /// One line: what the bug is.
            pub fn description(self) -> &'static str {
                match self { $(FwdMutant::$v => $desc,)* }
            }
            pub fn from_name(name: &str) -> Option<FwdMutant> {
                FwdMutant::ALL.iter().copied().find(|m| m.name() == name)
            }
        }
    };
}

fwd_mutants! {
    /// The guest's VMID field is forwarded instead of the host VMID.
    GuestVmid = "guest-vmid-forwarded",
        "TLBI NH_* keep the guest's VMID field instead of the guest's host VMID";
    /// NSNH_ALL is passed through (before Linux moved the NH_ALL rewrite into the kernel).
    NsnhRaw = "nsnh-all-raw",
        "TLBI_NSNH_ALL is forwarded as NSNH_ALL, invalidating every VMID on the host";
    /// TG/TTL/NUM/SCALE sent to a host without RIL (fields RES0 there).
    RangeKept = "range-kept-without-ril",
        "range fields are forwarded to a host without IDR3.RIL instead of emulating the range";
    /// Range emulation counts NUM*2^SCALE granules, not (NUM+1)*2^SCALE.
    RangeShort = "range-emulation-short",
        "range emulation issues NUM x 2^SCALE per-page TLBIs, one short of (NUM+1) x 2^SCALE";
    /// A TG=0 command is sent as a TTL=3 range on a RIL host (the 2023 TTL-assumed driver bug).
    TtlAssumed = "ttl-leaf-assumed",
        "a TG=0 TLBI is forwarded with TG=4K, TTL=0b11 (leaf level assumed), missing blocks";
    /// TG is replaced by 4K.
    TgChanged = "tg-changed",
        "range TLBIs are forwarded with TG=4K whatever granule the guest named";
    /// No host CMD_SYNC before reporting the batch handled.
    NoHostSync = "no-host-sync",
        "host commands are issued without a host CMD_SYNC before the batch is reported handled";
    /// handled counts the failing entry.
    HandledOffByOne = "handled-counts-failure",
        "on an error, handled counts the failing entry too (entry_num off by one)";
    /// An unsupported or illegal guest command is skipped and counted handled.
    ErrorDropped = "error-dropped",
        "a guest command that cannot be honoured is skipped silently and counted handled";
    /// The guest's raw command, RES0 bits included, is forwarded.
    Res0Forwarded = "res0-forwarded",
        "guest commands are forwarded with their RES0 bits set, as the guest wrote them";
    /// vSIDs are not translated.
    SidUntranslated = "sid-untranslated",
        "CFGI_*/ATC_INV are forwarded with the guest's vSID instead of the physical StreamID";
    /// vSIDs are translated through the next device's entry.
    SidWrongDevice = "sid-wrong-device",
        "vSIDs are translated through another device's entry of the vSID table";
    /// Leaf=1 forced on address TLBIs.
    LeafForced = "leaf-forced",
        "address TLBIs are forwarded with Leaf=1 even when the guest asked Leaf=0 (walk caches kept)";
    /// ASID truncated to 8 bits.
    AsidTruncated = "asid-truncated",
        "the ASID is truncated to 8 bits when forwarded, whatever IDR0.ASID16 says";
    /// CFGI_STE_RANGE forwarded as a range with the first pSID.
    SteRangeRaw = "ste-range-raw",
        "CFGI_STE_RANGE is forwarded as a range around a physical StreamID, reaching other devices";
    /// SCALE[25] kept for a host without DS (Linux and QEMU read 5 SCALE bits).
    ScaleHighKept = "scale-high-bit-kept",
        "a range with SCALE > 31 from a DS guest is forwarded to a host without IDR5.DS (SCALE[25] RES0 there)";
}

/// The reference forwarder, or one of its mutants.
#[derive(Clone, Debug, Default)]
pub struct ReferenceForwarder {
    pub mutant: Option<FwdMutant>,
    vs: Option<Setup>,
}

#[derive(Clone, Debug)]
struct Setup {
    guest: Profile,
    host: Profile,
    vmid: u16,
    sids: Vec<(u32, u32)>,
}

impl ReferenceForwarder {
    pub fn new(mutant: Option<FwdMutant>) -> ReferenceForwarder {
        ReferenceForwarder { mutant, vs: None }
    }

    fn is(&self, m: FwdMutant) -> bool {
        self.mutant == Some(m)
    }

    fn backend(&self) -> String {
        self.name()
    }
}

fn refuse(backend: String, what: String) -> HarnessError {
    HarnessError::Unsupported { backend, what }
}

/// Why a mapping cannot be honoured: the guest is offered something the host cannot do for it.
fn incompatible(vs: &VirtualSmmu, g: &Profile, h: &Profile) -> Option<String> {
    let id_fits = |x: u32, bits: u8| bits >= 32 || u64::from(x) < (1u64 << bits);
    let lacks = [
        (
            !(h.s1p && h.s2p),
            "the host has no nesting (IDR0.S1P and S2P)",
        ),
        (
            g.asid16 && !h.asid16,
            "16-bit ASIDs are offered but the host has 8",
        ),
        (
            g.vax > h.vax,
            "the guest's VA size exceeds the host's (IDR5.VAX)",
        ),
        (
            g.gran4k && !h.gran4k,
            "4K granule offered but not on the host",
        ),
        (
            g.gran16k && !h.gran16k,
            "16K granule offered but not on the host",
        ),
        (
            g.gran64k && !h.gran64k,
            "64K granule offered but not on the host",
        ),
        (
            g.d128 && !h.d128,
            "128-bit descriptors offered but not on the host",
        ),
        (g.ats && !h.ats, "ATS offered but not on the host"),
        (
            g.ssidsize > h.ssidsize,
            "more SubstreamID bits than the host has",
        ),
        (
            !h.vmid16 && vs.host_vmid > 0xFF,
            "the host VMID does not fit the host's 8-bit VMIDs",
        ),
    ];
    if let Some((_, why)) = lacks.iter().find(|(c, _)| *c) {
        return Some(why.to_string());
    }
    for (i, &(v, p)) in vs.sids.iter().enumerate() {
        if !id_fits(p, h.sidsize) {
            return Some(format!("pSID {p:#x} is beyond the host's SIDSIZE"));
        }
        if vs.sids[..i].iter().any(|&(v2, p2)| v2 == v || p2 == p) {
            return Some(format!("vSID {v:#x} or pSID {p:#x} is mapped twice"));
        }
    }
    None
}

impl Forwarder for ReferenceForwarder {
    fn name(&self) -> String {
        match self.mutant {
            None => "reference forwarder".into(),
            Some(m) => format!("reference forwarder, mutant {}", m.name()),
        }
    }

    fn setup(&mut self, vs: &VirtualSmmu) -> Result<VirtualSmmu, HarnessError> {
        let guest = Profile::from_regs(vs.guest);
        let host = Profile::from_regs(vs.host);
        if let Some(why) = incompatible(vs, &guest, &host) {
            self.vs = None;
            return Err(refuse(
                self.backend(),
                format!("honour this mapping: {why}"),
            ));
        }
        self.vs = Some(Setup {
            guest,
            host,
            vmid: vs.host_vmid,
            sids: vs.sids.clone(),
        });
        Ok(vs.clone())
    }

    fn forward(&mut self, guest: &[RawCommand]) -> Result<ForwardResult, HarnessError> {
        let Some(vs) = self.vs.clone() else {
            return Err(HarnessError::Protocol {
                backend: self.backend(),
                during: "forward".into(),
                detail: "forward before a successful setup".into(),
            });
        };
        let mut host = Vec::new();
        let mut error = None;
        for (i, &raw) in guest.iter().enumerate() {
            match self.translate(&vs, raw) {
                Ok(cmds) => host.extend(cmds),
                // FwdMutant::ErrorDropped: "unhandled command" with no error (Xen vSMMU style).
                Err(_) if self.is(FwdMutant::ErrorDropped) => {}
                Err(why) => {
                    error = Some((i, why));
                    break;
                }
            }
        }
        if !host.is_empty() && !self.is(FwdMutant::NoHostSync) {
            host.push(RawCommand::new(Opcode::Sync.value().into(), 0));
        }
        let handled = match &error {
            // FwdMutant::HandledOffByOne: the failing entry is counted.
            Some((i, _)) => i + usize::from(self.is(FwdMutant::HandledOffByOne)),
            None => guest.len(),
        };
        Ok(ForwardResult {
            host_commands: host,
            error,
            handled,
        })
    }
}

impl ReferenceForwarder {
    /// The host commands for one guest command, or why it cannot be honoured.
    fn translate(&self, vs: &Setup, raw: RawCommand) -> Result<Vec<RawCommand>, String> {
        let cls = classify(&vs.guest, Queue::NonSecure, raw);
        if let Verdict::Illegal(rule) = cls.verdict {
            return Err(format!(
                "CERROR_ILL: {} is ILLEGAL for the guest ({} {})",
                raw.opcode().name(),
                rule.id,
                rule.section
            ));
        }
        // FwdMutant::Res0Forwarded: the guest's bits as written.
        let eff = if self.is(FwdMutant::Res0Forwarded) {
            raw
        } else {
            effective(&vs.guest, raw)
        };
        let vmid = |c: RawCommand| {
            // FwdMutant::GuestVmid: the guest's VMID field stays.
            if self.is(FwdMutant::GuestVmid) {
                c
            } else {
                c.with(l::VMID, u64::from(vs.vmid))
            }
        };
        let asid = |c: RawCommand| {
            // FwdMutant::AsidTruncated: 8 bits of ASID.
            if self.is(FwdMutant::AsidTruncated) {
                c.with(l::ASID, c.get(l::ASID) & 0xFF)
            } else {
                c
            }
        };
        let op = eff.opcode();
        let out = match op {
            Opcode::TlbiNsnhAll => {
                if self.is(FwdMutant::NsnhRaw) {
                    vec![eff]
                } else {
                    vec![nh_all(vs.vmid)]
                }
            }
            Opcode::TlbiNhAll => vec![vmid(eff)],
            Opcode::TlbiNhAsid => vec![asid(vmid(eff))],
            Opcode::TlbiNhVa | Opcode::TlbiNhVaa => self.address_tlbi(vs, asid(vmid(eff))),
            Opcode::CfgiSte | Opcode::CfgiCd | Opcode::CfgiCdAll | Opcode::AtcInv => {
                vec![eff.with(l::SID, u64::from(self.psid(vs, eff.get(l::SID) as u32)?))]
            }
            Opcode::CfgiSteRange => {
                let range = eff.get(l::RANGE) as u32;
                if range >= 31 {
                    return Err(
                        "CFGI_ALL is not offered: on the host it would reach every device (§4.3.6)"
                            .into(),
                    );
                }
                let count = 1u64 << (range + 1);
                let first = eff.get(l::SID) & !(count - 1);
                let mut v: Vec<u32> = vs
                    .sids
                    .iter()
                    .map(|&(v, _)| v)
                    .filter(|v| (first..first + count).contains(&u64::from(*v)))
                    .collect();
                v.sort_unstable();
                if self.is(FwdMutant::SteRangeRaw) {
                    // Keep the range, around the first mapped device's pSID.
                    match v.first() {
                        Some(&x) => vec![eff.with(l::SID, u64::from(self.psid(vs, x)?))],
                        None => Vec::new(),
                    }
                } else {
                    let mut out = Vec::new();
                    for x in v {
                        let ste = RawCommand::new(Opcode::CfgiSte.value().into(), 0)
                            .with(l::SID, u64::from(self.psid(vs, x)?));
                        out.push(ste);
                    }
                    out
                }
            }
            Opcode::Sync => {
                return Err(
                    "CMD_SYNC is not accepted: the interface is synchronous (Linux: -EIO)".into(),
                )
            }
            _ => return Err(format!("{} is not offered to the guest", op.name())),
        };
        Ok(out)
    }

    /// The physical StreamID for a vSID.
    fn psid(&self, vs: &Setup, vsid: u32) -> Result<u32, String> {
        // FwdMutant::SidUntranslated: the vSID itself.
        if self.is(FwdMutant::SidUntranslated) {
            return Ok(vsid);
        }
        let i = vs
            .sids
            .iter()
            .position(|(v, _)| *v == vsid)
            .ok_or_else(|| format!("vSID {vsid:#x} has no device (no vDEVICE)"))?;
        // FwdMutant::SidWrongDevice: the next entry of the table.
        let i = if self.is(FwdMutant::SidWrongDevice) {
            (i + 1) % vs.sids.len()
        } else {
            i
        };
        Ok(vs.sids[i].1)
    }

    /// NH_VA / NH_VAA with the host VMID (and ASID) already in place: keep, re-encode or emulate
    /// the range for the host (module docs).
    fn address_tlbi(&self, vs: &Setup, c: RawCommand) -> Vec<RawCommand> {
        // FwdMutant::LeafForced.
        let c = if self.is(FwdMutant::LeafForced) {
            c.with(l::LEAF, 1)
        } else {
            c
        };
        let point = clear_range(c);
        let Some(rg) = range_of(&vs.guest, c) else {
            // FwdMutant::TtlAssumed: the leaf level is assumed for a TG=0 command.
            if self.is(FwdMutant::TtlAssumed) && vs.host.ril {
                return vec![point.with(l::TG, 1).with(l::TTL, 3)];
            }
            return vec![point];
        };
        // FwdMutant::RangeKept: the guest's range fields, whatever the host supports.
        if self.is(FwdMutant::RangeKept) {
            return vec![c];
        }
        let scale_ok = rg.scale <= 31 || vs.host.ds;
        // FwdMutant::ScaleHighKept: SCALE[25] sent to a host that reads 5 bits.
        if vs.host.ril && (scale_ok || self.is(FwdMutant::ScaleHighKept)) {
            // FwdMutant::TgChanged: always 4K.
            let tg = if self.is(FwdMutant::TgChanged) {
                1
            } else {
                u64::from(rg.granule.tg_field())
            };
            let h = point
                .with(l::TG, tg)
                .with(l::TTL, u64::from(rg.ttl_level.unwrap_or(0)))
                .with(l::TTL128, u64::from(rg.d128))
                .with(l::NUM, u64::from(rg.num))
                .with(l::SCALE, u64::from(rg.scale));
            let legal = classify(&vs.host, Queue::NonSecure, h).verdict == Verdict::Legal;
            if legal || self.is(FwdMutant::ScaleHighKept) || self.is(FwdMutant::TgChanged) {
                return vec![h];
            }
        }
        // Emulate: one TG=0 TLBI per granule, or NH_ALL for the VMID.
        // FwdMutant::RangeShort: NUM granules per 2^SCALE instead of NUM+1.
        let num = u64::from(rg.num) + u64::from(!self.is(FwdMutant::RangeShort));
        let pages = num << rg.scale;
        if pages > EMULATE_MAX_PAGES {
            return vec![nh_all(vs.vmid)];
        }
        (0..pages)
            .map_while(|k| rg.base.checked_add(k * rg.granule.size()))
            .map(|a| point.with_address(l::VA, a))
            .collect()
    }
}

fn nh_all(vmid: u16) -> RawCommand {
    RawCommand::new(Opcode::TlbiNhAll.value().into(), 0).with(l::VMID, u64::from(vmid))
}

/// TG, TTL, TTL128, NUM and SCALE cleared: a TG=0 (single address, any level) TLBI.
fn clear_range(c: RawCommand) -> RawCommand {
    [l::TG, l::TTL, l::TTL128, l::NUM, l::SCALE]
        .iter()
        .fold(c, |c, f| c.with(*f, 0))
}
