//! In-memory configuration structures of the SMMU (IHI 0070 chapter 5) and the Stream table
//! registers (§6.3.24, §6.3.25): decoders, validity checks and first-class encoders.

pub mod cd;
pub mod ste;
pub mod stream_table;

pub use cd::{Cd, CdFormat, L1Cd};
pub use ste::{Ste, SteConfig, StreamWorld};
pub use stream_table::{L1Std, StreamTableConfig, StreamTableFormat};

/// Extracts bits `[hi:lo]` of `w`.
#[inline]
pub(crate) fn bits(w: u64, hi: u32, lo: u32) -> u64 {
    debug_assert!(hi >= lo && hi < 64);
    let width = hi - lo + 1;
    if width == 64 {
        w
    } else {
        (w >> lo) & ((1u64 << width) - 1)
    }
}

#[inline]
pub(crate) fn bit(w: u64, n: u32) -> bool {
    (w >> n) & 1 == 1
}

/// Returns `w` with bits `[hi:lo]` replaced by the low bits of `v`.
#[inline]
pub(crate) fn set_bits(w: u64, hi: u32, lo: u32, v: u64) -> u64 {
    let width = hi - lo + 1;
    let mask = if width == 64 {
        u64::MAX
    } else {
        ((1u64 << width) - 1) << lo
    };
    (w & !mask) | ((v << lo) & mask)
}

/// Mask of address bits `[hi:lo]`.
#[inline]
pub fn addr_mask(hi: u32, lo: u32) -> u64 {
    set_bits(0, hi, lo, u64::MAX)
}

/// The implemented SMMU features that change how structures are decoded or validated
/// (the relevant fields of SMMU_IDR0/1/3/5 and CR2, §6.3). Non-secure state only: Secure and
/// Realm streams are out of scope of this model.
///
/// Fixed, not configurable: AArch64 (VMSAv8-64) tables only (IDR0.TTF == 0b10, so
/// CD.AA64 == 0 and STE.S2AA64 == 0 are ILLEGAL); little-endian tables only (TTENDIAN == 0b10);
/// no HTTU (IDR0.HTTU == 0, so CD.HA/HD and STE.S2HA/S2HD are ILLEGAL); no 52-bit VA/PA (DS/LPA);
/// no ATS, PRI, MPAM, stalls or permission indirection (those STE/CD fields are decoded but not
/// checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmmuProfile {
    /// IDR0.S1P: stage 1 implemented.
    pub s1p: bool,
    /// IDR0.S2P: stage 2 implemented. Also decides whether stage-1 TLB entries carry
    /// STE.S2VMID as their VMID tag (§3.17).
    pub s2p: bool,
    /// IDR0.Hyp: EL2 StreamWorlds (STE.STRW == 0b10) supported.
    pub hyp: bool,
    /// CR2.E2H: EL2 StreamWorld is EL2-E2H (two VA ranges, ASIDs).
    pub e2h: bool,
    /// IDR0.CD2L: two-level CD tables supported.
    pub cd2l: bool,
    /// IDR0.ST_LEVEL != 0: two-level Stream tables supported.
    pub st_level_2: bool,
    /// IDR0.ASID16.
    pub asid16: bool,
    /// IDR0.VMID16.
    pub vmid16: bool,
    /// IDR1.SIDSIZE (0..=32).
    pub sid_bits: u8,
    /// IDR1.SSIDSIZE (0..=20).
    pub ssid_bits: u8,
    /// IDR3.STT: small translation tables (TxSZ up to 48/47).
    pub stt: bool,
    /// IDR5.OAS in bits (32..=48). IAS == OAS since AArch32 tables are not supported (§3.4).
    pub oas_bits: u8,
    /// IDR5.GRAN4K / GRAN16K / GRAN64K.
    pub gran4k: bool,
    pub gran16k: bool,
    pub gran64k: bool,
}

impl Default for SmmuProfile {
    fn default() -> Self {
        Self {
            s1p: true,
            s2p: true,
            hyp: true,
            e2h: false,
            cd2l: true,
            st_level_2: true,
            asid16: true,
            vmid16: true,
            sid_bits: 32,
            ssid_bits: 20,
            stt: true,
            oas_bits: 48,
            gran4k: true,
            gran16k: true,
            gran64k: true,
        }
    }
}

impl SmmuProfile {
    /// Effective OAS in bits, clamped to what this model supports (32..=48).
    pub fn oas(&self) -> u8 {
        self.oas_bits.clamp(32, 48)
    }

    /// IAS in bits (== OAS without AArch32 support, §3.4).
    pub fn ias(&self) -> u8 {
        self.oas()
    }

    pub fn granule_supported(&self, g: crate::granule::Granule) -> bool {
        use crate::granule::Granule;
        match g {
            Granule::K4 => self.gran4k,
            Granule::K16 => self.gran16k,
            Granule::K64 => self.gran64k,
        }
    }
}

/// Decodes a 3-bit PS/IPS/S2PS encoding to an address size in bits (Arm ARM D8, §5.2 S2PS,
/// §5.4 IPS), capped at `oas` ("eff_IPS = MIN(CD.IPS, SMMU_IDR5.OAS)").
pub fn decode_ps(ps: u8, oas: u8) -> u8 {
    let bits = match ps & 7 {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        _ => 56,
    };
    bits.min(oas)
}

/// Encodes an address size in bits as PS (rounding up to the next encodable size).
pub fn encode_ps(bits: u8) -> u8 {
    match bits {
        0..=32 => 0,
        33..=36 => 1,
        37..=40 => 2,
        41..=42 => 3,
        43..=44 => 4,
        45..=48 => 5,
        49..=52 => 6,
        _ => 7,
    }
}
