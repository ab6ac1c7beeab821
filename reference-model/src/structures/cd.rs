//! CD, Context Descriptor (§5.4), L1CD (§5.3) and CD table indexing (§5.2 S1Fmt/S1CDMax).

use serde::{Deserialize, Serialize};

use super::ste::{Ste, StreamWorld};
use super::{addr_mask, bit, bits, set_bits, SmmuProfile};
use crate::granule::Granule;

/// Layout of the CD table behind STE.S1ContextPtr (§5.2 S1Fmt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CdFormat {
    /// S1CDMax == 0 or SSIDSIZE == 0: S1ContextPtr points at one CD.
    Single,
    /// S1Fmt 0b00 (and Reserved 0b11, "behaves as 0b00"): linear array of 2^S1CDMax CDs.
    Linear,
    /// S1Fmt 0b01: L1CD array, 4KB L2 tables of 64 CDs indexed by SubstreamID[5:0].
    TwoLevel4K,
    /// S1Fmt 0b10: L1CD array, 64KB L2 tables of 1024 CDs indexed by SubstreamID[9:0].
    TwoLevel64K,
}

impl CdFormat {
    /// Effective format of an STE's CD table (§5.2 S1Fmt, S1CDMax).
    pub fn of_ste(ste: &Ste, profile: &SmmuProfile) -> CdFormat {
        if ste.s1cdmax == 0 || profile.ssid_bits == 0 {
            return CdFormat::Single;
        }
        match ste.s1fmt {
            1 => CdFormat::TwoLevel4K,
            2 => CdFormat::TwoLevel64K,
            _ => CdFormat::Linear,
        }
    }

    /// S1Fmt encoding (Single encodes as 0b00).
    pub fn to_s1fmt(self) -> u8 {
        match self {
            CdFormat::Single | CdFormat::Linear => 0,
            CdFormat::TwoLevel4K => 1,
            CdFormat::TwoLevel64K => 2,
        }
    }

    /// log2 of the number of CDs per L2 table (two-level formats only).
    pub fn l2_bits(self) -> Option<u32> {
        match self {
            CdFormat::TwoLevel4K => Some(6),
            CdFormat::TwoLevel64K => Some(10),
            _ => None,
        }
    }
}

/// The first step of finding CD number `index` (§5.2 S1Fmt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CdTableStep {
    /// The CD is at this address (PA, or IPA when stage 2 is enabled).
    Cd { addr: u64 },
    /// Read the L1CD at `l1cd_addr`, then the CD at `L1CD.L2Ptr + l2_index * 64`.
    L1Cd { l1cd_addr: u64, l2_index: u64 },
}

/// Locates CD `index` (already range-checked against S1CDMax by the caller).
/// Table bases are aligned as §5.2 S1Fmt requires: linear tables to their size; L1 tables to
/// MAX(64 bytes, their size).
pub fn cd_table_step(ste: &Ste, profile: &SmmuProfile, index: u32) -> CdTableStep {
    let fmt = CdFormat::of_ste(ste, profile);
    let base = ste.s1_context_ptr;
    let index = index as u64;
    let cdmax = ste.s1cdmax as u32;
    match fmt {
        CdFormat::Single => CdTableStep::Cd { addr: base },
        CdFormat::Linear => {
            let aligned = base & addr_mask(55, (cdmax + 6).min(55));
            CdTableStep::Cd {
                addr: aligned.wrapping_add(index * 64),
            }
        }
        CdFormat::TwoLevel4K | CdFormat::TwoLevel64K => {
            let l2 = fmt.l2_bits().unwrap_or(6);
            let l1_entries_log2 = cdmax.saturating_sub(l2);
            let aligned = base & addr_mask(55, (l1_entries_log2 + 3).max(6));
            CdTableStep::L1Cd {
                l1cd_addr: aligned.wrapping_add((index >> l2) * 8),
                l2_index: index & ((1u64 << l2) - 1),
            }
        }
    }
}

/// L1CD, Level 1 Context Descriptor (§5.3): 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct L1Cd {
    /// V, bit [0].
    pub v: bool,
    /// L2Ptr, bits [55:12], as an address.
    pub l2ptr: u64,
    pub raw: u64,
}

impl L1Cd {
    pub fn decode(raw: u64) -> Self {
        Self {
            v: bit(raw, 0),
            l2ptr: raw & addr_mask(55, 12),
            raw,
        }
    }

    pub fn new(l2ptr: u64) -> Self {
        Self::decode((l2ptr & addr_mask(55, 12)) | 1)
    }

    pub fn invalid() -> Self {
        Self::decode(0)
    }

    pub fn encode(&self) -> u64 {
        set_bits(
            set_bits(self.raw, 0, 0, self.v as u64),
            55,
            12,
            self.l2ptr >> 12,
        )
    }

    /// L2 table base. For 64KB L2 tables L2Ptr[15:12] are RES0 (§5.2 S1Fmt); this model
    /// treats them as zero, one of the permitted CONSTRAINED UNPREDICTABLE behaviours.
    pub fn l2_base(&self, fmt: CdFormat) -> u64 {
        match fmt {
            CdFormat::TwoLevel64K => self.l2ptr & addr_mask(55, 16),
            _ => self.l2ptr,
        }
    }
}

/// A decoded CD (§5.4). `raw` keeps every bit as decoded (builders leave it stale: it only
/// supplies the unmodelled fields); [`Cd::encode`] is `raw` with the decoded fields overwritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cd {
    /// T0SZ [5:0], TG0 [7:6], IR0 [9:8], OR0 [11:10], SH0 [13:12], EPD0 [14], ENDI [15].
    pub t0sz: u8,
    pub tg0: u8,
    pub ir0: u8,
    pub or0: u8,
    pub sh0: u8,
    pub epd0: bool,
    pub endi: bool,
    /// T1SZ [21:16], TG1 [23:22], IR1 [25:24], OR1 [27:26], SH1 [29:28], EPD1 [30].
    pub t1sz: u8,
    pub tg1: u8,
    pub ir1: u8,
    pub or1: u8,
    pub sh1: u8,
    pub epd1: bool,
    /// V [31].
    pub v: bool,
    /// IPS [34:32].
    pub ips: u8,
    /// AFFD [35], WXN [36], UWXN [37], TBI0 [38], TBI1 [39], PAN [40], AA64 [41].
    pub affd: bool,
    pub wxn: bool,
    pub uwxn: bool,
    pub tbi0: bool,
    pub tbi1: bool,
    pub pan: bool,
    pub aa64: bool,
    /// HD [42], HA [43], S [44], R [45], A [46], ASET [47], ASID [63:48].
    pub hd: bool,
    pub ha: bool,
    pub s: bool,
    pub r: bool,
    pub a: bool,
    pub aset: bool,
    pub asid: u16,
    /// HAD0 [65] (hierarchical permission disable for TTB0), TTB0 [119:68] = addr [55:4].
    pub had0: bool,
    pub ttb0: u64,
    /// HAD1 [129], TTB1 [183:132] = addr [55:4].
    pub had1: bool,
    pub ttb1: u64,
    /// DS [186].
    pub ds: bool,
    /// MAIR0 [223:192] and MAIR1 [255:224] as one 64-bit MAIR.
    pub mair: u64,
    pub raw: [u64; 8],
}

/// Why a CD is ILLEGAL (C_BAD_CD, §5.4 CdIllegal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum BadCd {
    #[error("CD.V == 0")]
    NotValid,
    #[error("AA64 == 0 (VMSAv8-32 LPAE unsupported)")]
    Aa64,
    #[error("HA/HD set without HTTU")]
    Httu,
    #[error("big-endian tables unsupported")]
    Endi,
    #[error("ASID[15:8] non-zero without ASID16")]
    Asid,
    #[error("TG{0} reserved or unsupported")]
    Tg(u8),
    #[error("T{0}SZ out of range")]
    TxSz(u8),
    #[error("TTB{0} outside the IPS range")]
    Ttb(u8),
}

/// Stage 1 translation-table region: TTB0 (low VAs) or TTB1 (high VAs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TtbRegion {
    Ttb0,
    Ttb1,
}

impl Cd {
    /// Decodes 8 raw words (§5.4).
    pub fn decode(raw: [u64; 8]) -> Cd {
        let w0 = raw[0];
        let w1 = raw[1];
        let w2 = raw[2];
        Cd {
            t0sz: bits(w0, 5, 0) as u8,
            tg0: bits(w0, 7, 6) as u8,
            ir0: bits(w0, 9, 8) as u8,
            or0: bits(w0, 11, 10) as u8,
            sh0: bits(w0, 13, 12) as u8,
            epd0: bit(w0, 14),
            endi: bit(w0, 15),
            t1sz: bits(w0, 21, 16) as u8,
            tg1: bits(w0, 23, 22) as u8,
            ir1: bits(w0, 25, 24) as u8,
            or1: bits(w0, 27, 26) as u8,
            sh1: bits(w0, 29, 28) as u8,
            epd1: bit(w0, 30),
            v: bit(w0, 31),
            ips: bits(w0, 34, 32) as u8,
            affd: bit(w0, 35),
            wxn: bit(w0, 36),
            uwxn: bit(w0, 37),
            tbi0: bit(w0, 38),
            tbi1: bit(w0, 39),
            pan: bit(w0, 40),
            aa64: bit(w0, 41),
            hd: bit(w0, 42),
            ha: bit(w0, 43),
            s: bit(w0, 44),
            r: bit(w0, 45),
            a: bit(w0, 46),
            aset: bit(w0, 47),
            asid: bits(w0, 63, 48) as u16,
            had0: bit(w1, 1),
            ttb0: w1 & addr_mask(55, 4),
            had1: bit(w2, 1),
            ttb1: w2 & addr_mask(55, 4),
            ds: bit(w2, 58),
            mair: raw[3],
            raw,
        }
    }

    /// Encodes to 8 words.
    pub fn encode(&self) -> [u64; 8] {
        let mut r = self.raw;
        let mut w0 = r[0];
        for (hi, lo, v) in [
            (5, 0, self.t0sz as u64),
            (7, 6, self.tg0 as u64),
            (9, 8, self.ir0 as u64),
            (11, 10, self.or0 as u64),
            (13, 12, self.sh0 as u64),
            (14, 14, self.epd0 as u64),
            (15, 15, self.endi as u64),
            (21, 16, self.t1sz as u64),
            (23, 22, self.tg1 as u64),
            (25, 24, self.ir1 as u64),
            (27, 26, self.or1 as u64),
            (29, 28, self.sh1 as u64),
            (30, 30, self.epd1 as u64),
            (31, 31, self.v as u64),
            (34, 32, self.ips as u64),
            (35, 35, self.affd as u64),
            (36, 36, self.wxn as u64),
            (37, 37, self.uwxn as u64),
            (38, 38, self.tbi0 as u64),
            (39, 39, self.tbi1 as u64),
            (40, 40, self.pan as u64),
            (41, 41, self.aa64 as u64),
            (42, 42, self.hd as u64),
            (43, 43, self.ha as u64),
            (44, 44, self.s as u64),
            (45, 45, self.r as u64),
            (46, 46, self.a as u64),
            (47, 47, self.aset as u64),
            (63, 48, self.asid as u64),
        ] {
            w0 = set_bits(w0, hi, lo, v);
        }
        r[0] = w0;
        r[1] = set_bits(
            set_bits(r[1], 1, 1, self.had0 as u64),
            55,
            4,
            self.ttb0 >> 4,
        );
        r[2] = set_bits(
            set_bits(r[2], 1, 1, self.had1 as u64),
            55,
            4,
            self.ttb1 >> 4,
        );
        r[2] = set_bits(r[2], 58, 58, self.ds as u64);
        r[3] = self.mair;
        r
    }

    /// A valid AArch64 CD translating the TTB0 region only (EPD1 = 1), IPS 48 bits,
    /// R = A = 1, MAIR = 0x0044_ff00 (Attr0 Device-nGnRnE, Attr1 Normal WB, Attr2 Normal NC;
    /// memory attributes are not interpreted by this model).
    pub fn new(asid: u16, ttb0: u64, t0sz: u8, granule: Granule) -> Cd {
        let mut c = Cd::decode([0; 8]);
        c.v = true;
        c.aa64 = true;
        c.r = true;
        c.a = true;
        c.ips = 5;
        c.asid = asid;
        c.ttb0 = ttb0 & addr_mask(55, 4);
        c.t0sz = t0sz & 63;
        c.tg0 = granule.to_tg0();
        c.epd1 = true;
        c.tg1 = Granule::K4.to_tg1();
        c.t1sz = 16;
        c.mair = 0x0044_ff00;
        c
    }

    /// Enables the TTB1 region.
    pub fn with_ttb1(mut self, ttb1: u64, t1sz: u8, granule: Granule) -> Cd {
        self.ttb1 = ttb1 & addr_mask(55, 4);
        self.t1sz = t1sz & 63;
        self.tg1 = granule.to_tg1();
        self.epd1 = false;
        self
    }

    pub fn with_epd0(mut self, epd0: bool) -> Cd {
        self.epd0 = epd0;
        self
    }

    pub fn with_aset(mut self, aset: bool) -> Cd {
        self.aset = aset;
        self
    }

    pub fn with_affd(mut self, affd: bool) -> Cd {
        self.affd = affd;
        self
    }

    pub fn with_ips(mut self, ips: u8) -> Cd {
        self.ips = ips & 7;
        self
    }

    pub fn with_tbi(mut self, tbi0: bool, tbi1: bool) -> Cd {
        self.tbi0 = tbi0;
        self.tbi1 = tbi1;
        self
    }

    pub fn with_wxn(mut self, wxn: bool) -> Cd {
        self.wxn = wxn;
        self
    }

    pub fn with_valid(mut self, v: bool) -> Cd {
        self.v = v;
        self
    }

    /// Whether `region` exists and is walked in `world` (effective EPDx; §5.4 EPD0/EPD1:
    /// EPDx are IGNORED, effective 0, for any-EL2; TTB1 is unused in NS-EL2).
    pub fn region_enabled(&self, world: StreamWorld, region: TtbRegion) -> bool {
        match (world, region) {
            (StreamWorld::NsEl2, TtbRegion::Ttb0) => true,
            (StreamWorld::NsEl2, TtbRegion::Ttb1) => false,
            (_, TtbRegion::Ttb0) => !self.epd0,
            (_, TtbRegion::Ttb1) => !self.epd1,
        }
    }

    /// Granule, TxSZ and table base of a region (decoded but not validated).
    pub fn region(&self, region: TtbRegion) -> (Option<Granule>, u8, u64) {
        match region {
            TtbRegion::Ttb0 => (Granule::from_tg0(self.tg0), self.t0sz, self.ttb0),
            TtbRegion::Ttb1 => (Granule::from_tg1(self.tg1), self.t1sz, self.ttb1),
        }
    }

    /// Effective stage 1 output size, eff_IPS = MIN(IPS, OAS) (§5.4 IPS).
    pub fn output_bits(&self, profile: &SmmuProfile) -> u8 {
        super::decode_ps(self.ips, profile.oas())
    }

    /// The CdIllegal() checks of §5.4 relevant to this model's profile.
    pub fn check(&self, profile: &SmmuProfile, world: StreamWorld) -> Result<(), BadCd> {
        if !self.v {
            return Err(BadCd::NotValid);
        }
        if !self.aa64 {
            return Err(BadCd::Aa64);
        }
        if self.ha || self.hd {
            return Err(BadCd::Httu);
        }
        let any_region = self.region_enabled(world, TtbRegion::Ttb0)
            || self.region_enabled(world, TtbRegion::Ttb1);
        if self.endi && any_region {
            return Err(BadCd::Endi);
        }
        if world.has_asid() && !profile.asid16 && self.asid >> 8 != 0 {
            return Err(BadCd::Asid);
        }
        let ips = self.output_bits(profile);
        for (n, region) in [(0u8, TtbRegion::Ttb0), (1u8, TtbRegion::Ttb1)] {
            if !self.region_enabled(world, region) {
                continue;
            }
            let (g, txsz, ttb) = self.region(region);
            let g = match g {
                Some(g) if profile.granule_supported(g) => g,
                _ => return Err(BadCd::Tg(n)),
            };
            // §5.4 T0SZ: max 39 without STT, else 48 (4K/16K) or 47 (64K); min 16 (no 52-bit VA).
            let max = if !profile.stt {
                39
            } else if g == Granule::K64 {
                47
            } else {
                48
            };
            if txsz < 16 || txsz > max {
                return Err(BadCd::TxSz(n));
            }
            // §5.4 TTB0/TTB1: ILLEGAL outside the effective IPS range (48 bits without DS).
            if ttb >> ips.min(48) != 0 {
                return Err(BadCd::Ttb(n));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let c = Cd::new(0x1234, 0x4000_0000, 25, Granule::K16)
            .with_ttb1(0x5000_0000, 20, Granule::K64)
            .with_aset(true);
        let d = Cd::decode(c.encode());
        // `raw` of a built CD is stale until encoded; compare encodings.
        assert_eq!(c.encode(), d.encode());
        assert_eq!(d.region(TtbRegion::Ttb1).0, Some(Granule::K64));
        assert_eq!(d.region(TtbRegion::Ttb0).0, Some(Granule::K16));
        assert_eq!(d.check(&SmmuProfile::default(), StreamWorld::NsEl1), Ok(()));
        assert_eq!(
            d.with_valid(false)
                .check(&SmmuProfile::default(), StreamWorld::NsEl1),
            Err(BadCd::NotValid)
        );
    }

    #[test]
    fn table_steps() {
        let p = SmmuProfile::default();
        let ste = Ste::stage1(0x10_0000).with_cd_table(CdFormat::TwoLevel4K, 10);
        assert_eq!(
            cd_table_step(&ste, &p, 0x85),
            CdTableStep::L1Cd {
                l1cd_addr: 0x10_0000 + 2 * 8,
                l2_index: 5
            }
        );
        let ste = Ste::stage1(0x10_0000).with_cd_table(CdFormat::Linear, 4);
        assert_eq!(
            cd_table_step(&ste, &p, 3),
            CdTableStep::Cd {
                addr: 0x10_0000 + 3 * 64
            }
        );
    }
}
