//! The SMMUv3 command opcode map (§4.1.1, Table 4.1).
//!
//! Every one of the 256 opcode values has exactly one meaning here: an architected command, one of
//! the IMPLEMENTATION DEFINED values 0x80-0x8F, or Reserved. Reserved opcodes raise CERROR_ILL
//! (§4.1.1, §7.1 "Unknown command opcode"); whether an architected opcode is legal for a given SMMU
//! is decided by `classify`, not here.

use serde::Serialize;

/// An architected command opcode, or a value with no architected command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Opcode {
    PrefetchConfig,
    PrefetchAddr,
    CfgiSte,
    /// 0x04: CMD_CFGI_STE_RANGE; with Range == 31 it is CMD_CFGI_ALL (§4.3.6).
    CfgiSteRange,
    CfgiCd,
    CfgiCdAll,
    CfgiVmsPidm,
    TlbiNhAll,
    TlbiNhAsid,
    TlbiNhVa,
    TlbiNhVaa,
    TlbiEl3All,
    TlbiEl3Va,
    TlbiEl2All,
    TlbiEl2Asid,
    TlbiEl2Va,
    TlbiEl2Vaa,
    TlbiS12Vmall,
    TlbiS2Ipa,
    TlbiNsnhAll,
    AtcInv,
    PriResp,
    Resume,
    StallTerm,
    Sync,
    TlbiSEl2All,
    TlbiSEl2Asid,
    TlbiSEl2Va,
    TlbiSEl2Vaa,
    TlbiSS12Vmall,
    TlbiSS2Ipa,
    TlbiSnhAll,
    DptiAll,
    DptiPa,
    /// 0x80-0x8F (§4.1.1).
    ImplementationDefined(u8),
    /// Every value the opcode table does not assign (§4.1.1; 0x0B-0x0F are missing from the
    /// extracted table and are treated as Reserved, see docs/spec-notes.md).
    Reserved(u8),
}

/// All architected opcodes with their byte value, spec name and section.
pub const ARCHITECTED: &[(u8, Opcode, &str, &str)] = &[
    (
        0x01,
        Opcode::PrefetchConfig,
        "CMD_PREFETCH_CONFIG",
        "§4.2.1",
    ),
    (0x02, Opcode::PrefetchAddr, "CMD_PREFETCH_ADDR", "§4.2.2"),
    (0x03, Opcode::CfgiSte, "CMD_CFGI_STE", "§4.3.1"),
    (0x04, Opcode::CfgiSteRange, "CMD_CFGI_STE_RANGE", "§4.3.2"),
    (0x05, Opcode::CfgiCd, "CMD_CFGI_CD", "§4.3.3"),
    (0x06, Opcode::CfgiCdAll, "CMD_CFGI_CD_ALL", "§4.3.4"),
    (0x07, Opcode::CfgiVmsPidm, "CMD_CFGI_VMS_PIDM", "§4.3.5"),
    (0x10, Opcode::TlbiNhAll, "CMD_TLBI_NH_ALL", "§4.4.2.1"),
    (0x11, Opcode::TlbiNhAsid, "CMD_TLBI_NH_ASID", "§4.4.2.2"),
    (0x12, Opcode::TlbiNhVa, "CMD_TLBI_NH_VA", "§4.4.2.4"),
    (0x13, Opcode::TlbiNhVaa, "CMD_TLBI_NH_VAA", "§4.4.2.3"),
    (0x18, Opcode::TlbiEl3All, "CMD_TLBI_EL3_ALL", "§4.4.2.5"),
    (0x1A, Opcode::TlbiEl3Va, "CMD_TLBI_EL3_VA", "§4.4.2.6"),
    (0x20, Opcode::TlbiEl2All, "CMD_TLBI_EL2_ALL", "§4.4.2.7"),
    (0x21, Opcode::TlbiEl2Asid, "CMD_TLBI_EL2_ASID", "§4.4.2.10"),
    (0x22, Opcode::TlbiEl2Va, "CMD_TLBI_EL2_VA", "§4.4.2.8"),
    (0x23, Opcode::TlbiEl2Vaa, "CMD_TLBI_EL2_VAA", "§4.4.2.9"),
    (0x28, Opcode::TlbiS12Vmall, "CMD_TLBI_S12_VMALL", "§4.4.3.2"),
    (0x2A, Opcode::TlbiS2Ipa, "CMD_TLBI_S2_IPA", "§4.4.3.1"),
    (0x30, Opcode::TlbiNsnhAll, "CMD_TLBI_NSNH_ALL", "§4.4.4.1"),
    (0x40, Opcode::AtcInv, "CMD_ATC_INV", "§4.5.1"),
    (0x41, Opcode::PriResp, "CMD_PRI_RESP", "§4.5.2"),
    (0x44, Opcode::Resume, "CMD_RESUME", "§4.7.1"),
    (0x45, Opcode::StallTerm, "CMD_STALL_TERM", "§4.7.2"),
    (0x46, Opcode::Sync, "CMD_SYNC", "§4.7.3"),
    (0x50, Opcode::TlbiSEl2All, "CMD_TLBI_S_EL2_ALL", "§4.4.2.11"),
    (
        0x51,
        Opcode::TlbiSEl2Asid,
        "CMD_TLBI_S_EL2_ASID",
        "§4.4.2.14",
    ),
    (0x52, Opcode::TlbiSEl2Va, "CMD_TLBI_S_EL2_VA", "§4.4.2.12"),
    (0x53, Opcode::TlbiSEl2Vaa, "CMD_TLBI_S_EL2_VAA", "§4.4.2.13"),
    (
        0x58,
        Opcode::TlbiSS12Vmall,
        "CMD_TLBI_S_S12_VMALL",
        "§4.4.3.4",
    ),
    (0x5A, Opcode::TlbiSS2Ipa, "CMD_TLBI_S_S2_IPA", "§4.4.3.3"),
    (0x60, Opcode::TlbiSnhAll, "CMD_TLBI_SNH_ALL", "§4.4.4.2"),
    (0x70, Opcode::DptiAll, "CMD_DPTI_ALL", "§4.6.1"),
    (0x73, Opcode::DptiPa, "CMD_DPTI_PA", "§4.6.2"),
];

const fn build_table() -> [Opcode; 256] {
    let mut t = [Opcode::Reserved(0); 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i >= 0x80 && i <= 0x8F {
            Opcode::ImplementationDefined(i as u8)
        } else {
            Opcode::Reserved(i as u8)
        };
        i += 1;
    }
    let mut j = 0;
    while j < ARCHITECTED.len() {
        t[ARCHITECTED[j].0 as usize] = ARCHITECTED[j].1;
        j += 1;
    }
    t
}

const TABLE: [Opcode; 256] = build_table();

const fn build_index() -> [u8; 256] {
    // Index into ARCHITECTED by byte value, 0xFF when none.
    let mut t = [0xFFu8; 256];
    let mut j = 0;
    while j < ARCHITECTED.len() {
        t[ARCHITECTED[j].0 as usize] = j as u8;
        j += 1;
    }
    t
}

static INDEX: [u8; 256] = build_index();

impl Opcode {
    /// Total: every byte maps to exactly one `Opcode`.
    #[inline]
    pub const fn from_u8(b: u8) -> Opcode {
        TABLE[b as usize]
    }

    /// The byte value; `Opcode::from_u8(op.value()) == op` for every opcode.
    pub fn value(self) -> u8 {
        match self {
            Opcode::ImplementationDefined(b) | Opcode::Reserved(b) => b,
            op => ARCHITECTED
                .iter()
                .find(|e| e.1 == op)
                .map(|e| e.0)
                .unwrap_or(0),
        }
    }

    fn entry(self) -> Option<&'static (u8, Opcode, &'static str, &'static str)> {
        let i = INDEX[self.value() as usize];
        if i == 0xFF {
            None
        } else {
            Some(&ARCHITECTED[i as usize])
        }
    }

    /// The spec's name, e.g. "CMD_TLBI_NH_VA"; "IMPLEMENTATION DEFINED" or "Reserved" otherwise.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::ImplementationDefined(_) => "IMPLEMENTATION DEFINED",
            Opcode::Reserved(_) => "Reserved",
            op => op.entry().map(|e| e.2).unwrap_or("Reserved"),
        }
    }

    /// The section that defines the command.
    pub fn section(self) -> &'static str {
        match self {
            Opcode::ImplementationDefined(_) | Opcode::Reserved(_) => "§4.1.1",
            op => op.entry().map(|e| e.3).unwrap_or("§4.1.1"),
        }
    }

    pub fn is_architected(self) -> bool {
        !matches!(self, Opcode::ImplementationDefined(_) | Opcode::Reserved(_))
    }

    /// Address-based TLB invalidations carry NUM/SCALE/TTL/TG/Leaf (§4.4.1.1).
    pub fn is_address_tlbi(self) -> bool {
        matches!(
            self,
            Opcode::TlbiNhVa
                | Opcode::TlbiNhVaa
                | Opcode::TlbiEl3Va
                | Opcode::TlbiEl2Va
                | Opcode::TlbiEl2Vaa
                | Opcode::TlbiS2Ipa
                | Opcode::TlbiSEl2Va
                | Opcode::TlbiSEl2Vaa
                | Opcode::TlbiSS2Ipa
        )
    }

    /// Commands that remove TLB entries (§4.4).
    pub fn is_tlbi(self) -> bool {
        let v = self.value();
        self.is_architected() && ((0x10..=0x3F).contains(&v) || (0x50..=0x6F).contains(&v))
    }

    /// Commands that remove configuration cache entries (§4.3).
    pub fn is_cfgi(self) -> bool {
        matches!(
            self,
            Opcode::CfgiSte
                | Opcode::CfgiSteRange
                | Opcode::CfgiCd
                | Opcode::CfgiCdAll
                | Opcode::CfgiVmsPidm
        )
    }
}

impl std::fmt::Display for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (0x{:02x})", self.name(), self.value())
    }
}
