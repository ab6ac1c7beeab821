//! Field layouts of every command (§4.1-§4.7), as data.
//!
//! Bits are numbered across the whole 128-bit command: DW0 is [63:0], DW1 is [127:64] (§4.1.1).
//! Every bit that no field of a command names is RES0 for that command (§4.1.5), so the RES0 mask
//! of an opcode is derived from this table rather than written by hand. Positions the spec's
//! extracted figures lost are marked in `source` and discussed in docs/spec-notes.md.

use super::opcode::Opcode;
use serde::Serialize;

/// One named field of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The spec's field name, e.g. "VMID".
    pub name: &'static str,
    /// Lowest bit, counted across the 128-bit command.
    pub lo: u8,
    /// Highest bit, inclusive.
    pub hi: u8,
    /// For an address field: the address bit that `lo` holds (Address[63:12] at [127:76] has 12).
    pub shift: u8,
    /// Where the position comes from when the spec figure was lost: "" when the spec gives it.
    pub source: &'static str,
}

impl Field {
    pub const fn new(name: &'static str, hi: u8, lo: u8) -> Field {
        Field {
            name,
            lo,
            hi,
            shift: 0,
            source: "",
        }
    }
    pub const fn addr(name: &'static str, hi: u8, lo: u8, shift: u8) -> Field {
        Field {
            name,
            lo,
            hi,
            shift,
            source: "",
        }
    }
    pub const fn unverified(name: &'static str, hi: u8, lo: u8, source: &'static str) -> Field {
        Field {
            name,
            lo,
            hi,
            shift: 0,
            source,
        }
    }
    pub const fn width(&self) -> u32 {
        (self.hi - self.lo + 1) as u32
    }
    pub const fn mask(&self) -> u128 {
        let w = self.width();
        let ones: u128 = if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        ones << self.lo
    }
    /// The field's value from a 128-bit command (not shifted by `shift`).
    #[inline]
    pub const fn get(&self, v: u128) -> u64 {
        ((v & self.mask()) >> self.lo) as u64
    }
    #[inline]
    pub const fn set(&self, v: u128, x: u64) -> u128 {
        (v & !self.mask()) | (((x as u128) << self.lo) & self.mask())
    }
}

pub const OPCODE: Field = Field::new("Opcode", 7, 0);

// Fields shared by many commands (positions: digest §1.2, confirmed against the spec tables).
pub const SSEC: Field = Field::new("SSec", 10, 10);
pub const SSV: Field = Field::new("SSV", 11, 11);
pub const SSID: Field = Field::new("SubstreamID", 31, 12);
pub const SID: Field = Field::new("StreamID", 63, 32);
pub const VMID: Field = Field::new("VMID", 47, 32);
pub const ASID: Field = Field::new("ASID", 63, 48);
pub const NUM: Field = Field::new("NUM", 16, 12);
/// SCALE is [25:20] when IDR5.DS == 1 and [24:20] otherwise (bit 25 is then RES0) (§4.4.1.1).
pub const SCALE: Field = Field::new("SCALE", 25, 20);
pub const LEAF: Field = Field::new("Leaf", 64, 64);
pub const TTL128: Field = Field::new("TTL128", 71, 71);
pub const TTL: Field = Field::new("TTL", 73, 72);
pub const TG: Field = Field::new("TG", 75, 74);
/// Address[63:12] at [127:76] (§4.1.6).
pub const VA: Field = Field::addr("Address", 127, 76, 12);
/// Address[55:12] at [119:76] for IPA/PA parameters (§4.1.6).
pub const IPA: Field = Field::addr("Address", 119, 76, 12);
pub const RANGE: Field = Field::new("Range", 68, 64);
pub const GLOBAL: Field = Field::new("Global", 9, 9);
pub const ATC_SIZE: Field = Field::new("Size", 69, 64);
pub const PF_SIZE: Field = Field::new("Size", 68, 64);
pub const PF_STRIDE: Field = Field::unverified("Stride", 73, 69, "vendor HAL; figure lost");
pub const PRGINDEX: Field = Field::new("PRGIndex", 72, 64);
pub const RESP: Field = Field::new("Resp", 77, 76);
pub const AC: Field = Field::new("Ac", 12, 12);
pub const AB: Field = Field::new("Ab", 13, 13);
pub const STAG: Field = Field::new("STAG", 79, 64);
pub const CS: Field = Field::new("CS", 13, 12);
pub const MSH: Field = Field::new("MSH", 23, 22);
pub const MSIATTR: Field = Field::new("MSIAttr", 27, 24);
pub const MSIDATA: Field = Field::new("MSIData", 63, 32);
/// MSIAddress is PA[55:2] at [119:66] (§4.7.3).
pub const MSIADDR: Field = Field::addr("MSIAddress", 119, 66, 2);
pub const S_S2_IPA_NS: Field = Field::unverified("NS", 65, 65, "vendor HAL; figure lost");
pub const DPTI_SIZE: Field =
    Field::unverified("SIZE", 69, 66, "figure lost; chosen, see spec-notes");

const RANGE_TLBI: [Field; 5] = [NUM, SCALE, TTL128, TTL, TG];

macro_rules! fields {
    ($($f:expr),* $(,)?) => { &[OPCODE, $($f),*] };
}

const PREFETCH_CONFIG: &[Field] = fields![SSEC, SSV, SSID, SID];
const PREFETCH_ADDR: &[Field] = fields![SSEC, SSV, SSID, SID, PF_SIZE, PF_STRIDE, VA];
const CFGI_STE: &[Field] = fields![SSEC, SID, LEAF];
const CFGI_STE_RANGE: &[Field] = fields![SSEC, SID, RANGE];
const CFGI_CD: &[Field] = fields![SSEC, SSID, SID, LEAF];
const CFGI_CD_ALL: &[Field] = fields![SSEC, SID];
const CFGI_VMS_PIDM: &[Field] = fields![
    SSEC,
    Field::unverified("VMID", 47, 32, "vendor HAL; as TLBI VMID")
];
const TLBI_VMID: &[Field] = fields![VMID];
const TLBI_VMID_ASID: &[Field] = fields![VMID, ASID];
const TLBI_NH_VA: &[Field] = fields![NUM, SCALE, VMID, ASID, LEAF, TTL128, TTL, TG, VA];
const TLBI_NH_VAA: &[Field] = fields![NUM, SCALE, VMID, LEAF, TTL128, TTL, TG, VA];
const OPCODE_ONLY: &[Field] = fields![];
const TLBI_VA_NOTAG: &[Field] = fields![NUM, SCALE, LEAF, TTL128, TTL, TG, VA];
const TLBI_ASID: &[Field] = fields![ASID];
const TLBI_EL2_VA: &[Field] = fields![NUM, SCALE, ASID, LEAF, TTL128, TTL, TG, VA];
const TLBI_S2_IPA: &[Field] = fields![NUM, SCALE, VMID, LEAF, TTL128, TTL, TG, IPA];
const TLBI_S_S2_IPA: &[Field] = fields![NUM, SCALE, VMID, LEAF, S_S2_IPA_NS, TTL128, TTL, TG, IPA];
const ATC_INV: &[Field] = fields![GLOBAL, SSV, SSID, SID, ATC_SIZE, VA];
const PRI_RESP: &[Field] = fields![SSV, SSID, SID, PRGINDEX, RESP];
const RESUME: &[Field] = fields![SSEC, AC, AB, SID, STAG];
const STALL_TERM: &[Field] = fields![SSEC, SID];
const SYNC: &[Field] = fields![CS, MSH, MSIATTR, MSIDATA, MSIADDR];
const DPTI_PA: &[Field] = fields![LEAF, DPTI_SIZE, IPA];

/// The named fields of a command with this opcode, the opcode field first. Reserved and
/// IMPLEMENTATION DEFINED opcodes have only the opcode field.
pub const fn fields(op: Opcode) -> &'static [Field] {
    use Opcode::*;
    match op {
        PrefetchConfig => PREFETCH_CONFIG,
        PrefetchAddr => PREFETCH_ADDR,
        CfgiSte => CFGI_STE,
        CfgiSteRange => CFGI_STE_RANGE,
        CfgiCd => CFGI_CD,
        CfgiCdAll => CFGI_CD_ALL,
        CfgiVmsPidm => CFGI_VMS_PIDM,
        TlbiNhAll | TlbiS12Vmall | TlbiSS12Vmall => TLBI_VMID,
        TlbiNhAsid => TLBI_VMID_ASID,
        TlbiNhVa => TLBI_NH_VA,
        TlbiNhVaa => TLBI_NH_VAA,
        TlbiEl3All | TlbiEl2All | TlbiNsnhAll | TlbiSEl2All | TlbiSnhAll | DptiAll => OPCODE_ONLY,
        TlbiEl3Va | TlbiEl2Vaa | TlbiSEl2Vaa => TLBI_VA_NOTAG,
        TlbiEl2Asid | TlbiSEl2Asid => TLBI_ASID,
        TlbiEl2Va | TlbiSEl2Va => TLBI_EL2_VA,
        TlbiS2Ipa => TLBI_S2_IPA,
        TlbiSS2Ipa => TLBI_S_S2_IPA,
        AtcInv => ATC_INV,
        PriResp => PRI_RESP,
        Resume => RESUME,
        StallTerm => STALL_TERM,
        Sync => SYNC,
        DptiPa => DPTI_PA,
        ImplementationDefined(_) | Reserved(_) => OPCODE_ONLY,
    }
}

/// Mask of every bit named by some field of the command (the opcode included).
pub fn defined_mask(op: Opcode) -> u128 {
    DEFINED_MASKS[op.value() as usize]
}

/// The bits that are RES0 whatever the configuration (§4.1.5). For IMPLEMENTATION DEFINED
/// opcodes nothing is known, so nothing is reported as RES0.
pub fn static_res0_mask(op: Opcode) -> u128 {
    match op {
        Opcode::ImplementationDefined(_) => 0,
        _ => !defined_mask(op),
    }
}

const fn build_masks() -> [u128; 256] {
    let mut t = [0u128; 256];
    let mut b = 0;
    while b < 256 {
        let fs = fields(Opcode::from_u8(b as u8));
        let mut m = 0u128;
        let mut i = 0;
        while i < fs.len() {
            m |= fs[i].mask();
            i += 1;
        }
        t[b] = m;
        b += 1;
    }
    t
}

static DEFINED_MASKS: [u128; 256] = build_masks();

/// The range fields shared by every address-based TLBI.
pub const RANGE_FIELDS: &[Field] = &RANGE_TLBI;
