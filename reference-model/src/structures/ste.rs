//! STE, Stream Table Entry (§5.2): 64 bytes, eight little-endian 64-bit words.
//!
//! Field positions are the bit numbers of §5.2 (bit n lives in word n/64 at bit n%64).

use serde::{Deserialize, Serialize};

use super::{addr_mask, bit, bits, set_bits, SmmuProfile};
use crate::granule::Granule;

/// STE.Config (§5.2, bits [3:1]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SteConfig {
    /// 0b000, and the Reserved values 0b001..0b011 which "behave as 0b000" (§5.2 Config):
    /// the transaction is aborted and no event is recorded.
    Abort,
    /// 0b100: both stages bypass.
    Bypass,
    /// 0b101: stage 1 translates, stage 2 bypasses.
    S1Translate,
    /// 0b110: stage 1 bypasses, stage 2 translates.
    S2Translate,
    /// 0b111: both stages translate (nested).
    Nested,
}

impl SteConfig {
    pub fn from_bits(v: u8) -> SteConfig {
        match v & 7 {
            0b100 => SteConfig::Bypass,
            0b101 => SteConfig::S1Translate,
            0b110 => SteConfig::S2Translate,
            0b111 => SteConfig::Nested,
            _ => SteConfig::Abort,
        }
    }

    pub fn to_bits(self) -> u8 {
        match self {
            SteConfig::Abort => 0b000,
            SteConfig::Bypass => 0b100,
            SteConfig::S1Translate => 0b101,
            SteConfig::S2Translate => 0b110,
            SteConfig::Nested => 0b111,
        }
    }

    /// Config[0]: stage 1 translates.
    pub fn s1_enabled(self) -> bool {
        matches!(self, SteConfig::S1Translate | SteConfig::Nested)
    }

    /// Config[1]: stage 2 translates.
    pub fn s2_enabled(self) -> bool {
        matches!(self, SteConfig::S2Translate | SteConfig::Nested)
    }
}

/// Effective StreamWorld of a Non-secure STE (§5.2 STRW, §3.3.3). Secure and Realm worlds are
/// not modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StreamWorld {
    NsEl1,
    NsEl2,
    NsEl2E2h,
}

impl StreamWorld {
    /// EL2 (non-E2H) has one VA range, no ASIDs and a single privilege level (Arm ARM D8.4).
    pub fn has_asid(self) -> bool {
        !matches!(self, StreamWorld::NsEl2)
    }
}

/// A decoded STE (§5.2). Only the fields relevant to translation are decoded; `raw` keeps
/// every bit, and [`Ste::encode`] starts from `raw` so unmodelled fields round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ste {
    /// V, bit [0].
    pub v: bool,
    /// Config, bits [3:1], raw value.
    pub config_raw: u8,
    /// S1Fmt, bits [5:4].
    pub s1fmt: u8,
    /// S1ContextPtr, bits [55:6], as an address (bits [5:0] zero).
    pub s1_context_ptr: u64,
    /// S1CDMax, bits [63:59].
    pub s1cdmax: u8,
    /// S1DSS, bits [65:64].
    pub s1dss: u8,
    /// EATS, bits [93:92].
    pub eats: u8,
    /// STRW, bits [95:94].
    pub strw: u8,
    /// PRIVCFG, bits [113:112].
    pub privcfg: u8,
    /// INSTCFG, bits [115:114].
    pub instcfg: u8,
    /// S2VMID, bits [143:128].
    pub s2vmid: u16,
    /// S2T0SZ, bits [165:160].
    pub s2t0sz: u8,
    /// S2SL0, bits [167:166].
    pub s2sl0: u8,
    /// S2TG, bits [175:174].
    pub s2tg: u8,
    /// S2PS, bits [178:176].
    pub s2ps: u8,
    /// S2AA64, bit [179].
    pub s2aa64: bool,
    /// S2ENDI, bit [180].
    pub s2endi: bool,
    /// S2AFFD, bit [181].
    pub s2affd: bool,
    /// S2PTW, bit [182].
    pub s2ptw: bool,
    /// S2HD, bit [183].
    pub s2hd: bool,
    /// S2HA, bit [184].
    pub s2ha: bool,
    /// S2S, bit [185].
    pub s2s: bool,
    /// S2R, bit [186].
    pub s2r: bool,
    /// S2TTB, bits [247:196] = address bits [55:4].
    pub s2ttb: u64,
    /// The eight raw words.
    pub raw: [u64; 8],
}

/// Why an STE is ILLEGAL (C_BAD_STE, §5.2.2 SteIllegal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum BadSte {
    #[error("STE.V == 0")]
    NotValid,
    #[error("stage 1 enabled but not implemented")]
    S1NotImplemented,
    #[error("stage 2 enabled but not implemented")]
    S2NotImplemented,
    #[error("reserved STRW value")]
    Strw,
    #[error("S1CDMax above SSIDSIZE")]
    S1CdMax,
    #[error("two-level CD table without CD2L")]
    S1Fmt,
    #[error("S1ContextPtr out of range")]
    S1ContextPtr,
    #[error("S2AA64 selects VMSAv8-32 LPAE (unsupported)")]
    S2Aa64,
    #[error("S2HA/S2HD set without HTTU")]
    S2Httu,
    #[error("S2ENDI big-endian unsupported")]
    S2Endi,
    #[error("S2TG reserved or unsupported")]
    S2Tg,
    #[error("S2TTB outside the S2PS range")]
    S2Ttb,
    #[error("S2T0SZ out of range")]
    S2T0sz,
    #[error("S2SL0 inconsistent with S2T0SZ/S2TG")]
    S2Sl0,
    #[error("S2VMID[15:8] non-zero without VMID16")]
    S2Vmid,
}

impl Ste {
    /// Decodes 8 raw words (§5.2).
    pub fn decode(raw: [u64; 8]) -> Ste {
        let w0 = raw[0];
        let w1 = raw[1];
        let w2 = raw[2];
        let w3 = raw[3];
        Ste {
            v: bit(w0, 0),
            config_raw: bits(w0, 3, 1) as u8,
            s1fmt: bits(w0, 5, 4) as u8,
            s1_context_ptr: w0 & addr_mask(55, 6),
            s1cdmax: bits(w0, 63, 59) as u8,
            s1dss: bits(w1, 1, 0) as u8,
            eats: bits(w1, 29, 28) as u8,
            strw: bits(w1, 31, 30) as u8,
            privcfg: bits(w1, 49, 48) as u8,
            instcfg: bits(w1, 51, 50) as u8,
            s2vmid: bits(w2, 15, 0) as u16,
            s2t0sz: bits(w2, 37, 32) as u8,
            s2sl0: bits(w2, 39, 38) as u8,
            s2tg: bits(w2, 47, 46) as u8,
            s2ps: bits(w2, 50, 48) as u8,
            s2aa64: bit(w2, 51),
            s2endi: bit(w2, 52),
            s2affd: bit(w2, 53),
            s2ptw: bit(w2, 54),
            s2hd: bit(w2, 55),
            s2ha: bit(w2, 56),
            s2s: bit(w2, 57),
            s2r: bit(w2, 58),
            s2ttb: w3 & addr_mask(55, 4),
            raw,
        }
    }

    /// Encodes back to 8 words: `raw` with every decoded field overwritten.
    pub fn encode(&self) -> [u64; 8] {
        let mut r = self.raw;
        let mut w0 = r[0];
        w0 = set_bits(w0, 0, 0, self.v as u64);
        w0 = set_bits(w0, 3, 1, self.config_raw as u64);
        w0 = set_bits(w0, 5, 4, self.s1fmt as u64);
        w0 = set_bits(w0, 55, 6, self.s1_context_ptr >> 6);
        w0 = set_bits(w0, 63, 59, self.s1cdmax as u64);
        let mut w1 = r[1];
        w1 = set_bits(w1, 1, 0, self.s1dss as u64);
        w1 = set_bits(w1, 29, 28, self.eats as u64);
        w1 = set_bits(w1, 31, 30, self.strw as u64);
        w1 = set_bits(w1, 49, 48, self.privcfg as u64);
        w1 = set_bits(w1, 51, 50, self.instcfg as u64);
        let mut w2 = r[2];
        w2 = set_bits(w2, 15, 0, self.s2vmid as u64);
        w2 = set_bits(w2, 37, 32, self.s2t0sz as u64);
        w2 = set_bits(w2, 39, 38, self.s2sl0 as u64);
        w2 = set_bits(w2, 47, 46, self.s2tg as u64);
        w2 = set_bits(w2, 50, 48, self.s2ps as u64);
        for (b, v) in [
            (51, self.s2aa64),
            (52, self.s2endi),
            (53, self.s2affd),
            (54, self.s2ptw),
            (55, self.s2hd),
            (56, self.s2ha),
            (57, self.s2s),
            (58, self.s2r),
        ] {
            w2 = set_bits(w2, b, b, v as u64);
        }
        let w3 = set_bits(r[3], 55, 4, self.s2ttb >> 4);
        r[0] = w0;
        r[1] = w1;
        r[2] = w2;
        r[3] = w3;
        r
    }

    /// An all-zero, valid STE with the given Config.
    pub fn with_config(config: SteConfig) -> Ste {
        let mut s = Ste::decode([0; 8]);
        s.v = true;
        s.config_raw = config.to_bits();
        s
    }

    /// Valid STE, Config 0b000: abort without an event.
    pub fn abort() -> Ste {
        Ste::with_config(SteConfig::Abort)
    }

    /// Valid STE, Config 0b100: bypass.
    pub fn bypass() -> Ste {
        Ste::with_config(SteConfig::Bypass)
    }

    /// Stage-1-only STE pointing at a single CD (S1CDMax == 0), NS-EL1 StreamWorld.
    pub fn stage1(cd_ptr: u64) -> Ste {
        let mut s = Ste::with_config(SteConfig::S1Translate);
        s.s1_context_ptr = cd_ptr & addr_mask(55, 6);
        s
    }

    /// Stage-2-only STE (VMSAv8-64, S2PS 48 bits). `start_level` is encoded into S2SL0 with
    /// [`s2sl0_for_level`]; an unencodable level leaves S2SL0 = 0 (and the STE ILLEGAL).
    pub fn stage2(vmid: u16, s2ttb: u64, granule: Granule, s2t0sz: u8, start_level: u8) -> Ste {
        let mut s = Ste::with_config(SteConfig::S2Translate);
        s.set_s2(vmid, s2ttb, granule, s2t0sz, start_level);
        s
    }

    /// Nested STE: stage 1 through the CD at `cd_ptr` (an IPA), then stage 2.
    pub fn nested(
        cd_ptr: u64,
        vmid: u16,
        s2ttb: u64,
        granule: Granule,
        s2t0sz: u8,
        start_level: u8,
    ) -> Ste {
        let mut s = Ste::with_config(SteConfig::Nested);
        s.s1_context_ptr = cd_ptr & addr_mask(55, 6);
        s.set_s2(vmid, s2ttb, granule, s2t0sz, start_level);
        s
    }

    fn set_s2(&mut self, vmid: u16, s2ttb: u64, granule: Granule, s2t0sz: u8, start_level: u8) {
        self.s2vmid = vmid;
        self.s2ttb = s2ttb & addr_mask(55, 4);
        self.s2tg = granule.to_s2tg();
        self.s2t0sz = s2t0sz & 63;
        self.s2sl0 = s2sl0_for_level(granule, start_level).unwrap_or(0);
        self.s2ps = 5;
        self.s2aa64 = true;
    }

    /// Sets S1Fmt and S1CDMax (a CD table of 2^cdmax CDs).
    pub fn with_cd_table(mut self, fmt: super::CdFormat, s1cdmax: u8) -> Ste {
        self.s1fmt = fmt.to_s1fmt();
        self.s1cdmax = s1cdmax & 31;
        self
    }

    pub fn with_s1dss(mut self, s1dss: u8) -> Ste {
        self.s1dss = s1dss & 3;
        self
    }

    pub fn with_strw(mut self, strw: u8) -> Ste {
        self.strw = strw & 3;
        self
    }

    pub fn with_vmid(mut self, vmid: u16) -> Ste {
        self.s2vmid = vmid;
        self
    }

    pub fn with_s2ps(mut self, ps: u8) -> Ste {
        self.s2ps = ps & 7;
        self
    }

    pub fn with_s2affd(mut self, affd: bool) -> Ste {
        self.s2affd = affd;
        self
    }

    pub fn with_valid(mut self, v: bool) -> Ste {
        self.v = v;
        self
    }

    pub fn config(&self) -> SteConfig {
        SteConfig::from_bits(self.config_raw)
    }

    /// Stage 2 granule, if S2TG is not Reserved.
    pub fn s2_granule(&self) -> Option<Granule> {
        Granule::from_s2tg(self.s2tg)
    }

    /// Effective StreamWorld (§5.2 STRW; Non-secure table). STRW is used only for Config
    /// 0b101 when S1P and Hyp are implemented; otherwise the world is NS-EL1.
    /// `None` when STRW is used and Reserved (0bx1), which is ILLEGAL.
    pub fn stream_world(&self, profile: &SmmuProfile) -> Option<StreamWorld> {
        if !self.strw_used(profile) {
            return Some(StreamWorld::NsEl1);
        }
        match self.strw {
            0b00 => Some(StreamWorld::NsEl1),
            0b10 if profile.e2h => Some(StreamWorld::NsEl2E2h),
            0b10 => Some(StreamWorld::NsEl2),
            _ => None,
        }
    }

    /// !IgnoreSTESTRW() (§5.2.2).
    fn strw_used(&self, profile: &SmmuProfile) -> bool {
        profile.s1p && profile.hyp && self.config() == SteConfig::S1Translate
    }

    /// VMID tag for TLB entries made through this STE (§3.17, §5.2.2 IgnoreSTES2VMID):
    /// STE.S2VMID when stage 2 is implemented and the StreamWorld is NS-EL1 (also for
    /// stage-1-only STEs), otherwise 0.
    pub fn tlb_vmid(&self, profile: &SmmuProfile) -> u16 {
        let el1 = self.stream_world(profile) == Some(StreamWorld::NsEl1);
        if profile.s2p && el1 && self.config() != SteConfig::Abort {
            self.s2vmid
        } else {
            0
        }
    }

    /// Effective stage 2 output size in bits (eff_S2PS = MIN(S2PS, OAS), §5.2 S2PS).
    pub fn s2_output_bits(&self, profile: &SmmuProfile) -> u8 {
        super::decode_ps(self.s2ps, profile.oas())
    }

    /// The SteIllegal() checks of §5.2.2 that apply to this model's profile (Non-secure, no
    /// ATS/stall/MPAM/PI). Returns Ok for Config 0b0xx (no further checks, §5.2.2).
    pub fn check(&self, profile: &SmmuProfile) -> Result<(), BadSte> {
        if !self.v {
            return Err(BadSte::NotValid);
        }
        let config = self.config();
        if config == SteConfig::Abort {
            return Ok(());
        }
        if config.s1_enabled() && !profile.s1p {
            return Err(BadSte::S1NotImplemented);
        }
        if config.s2_enabled() && !profile.s2p {
            return Err(BadSte::S2NotImplemented);
        }
        if self.stream_world(profile).is_none() {
            return Err(BadSte::Strw);
        }
        if config.s1_enabled() {
            if profile.ssid_bits != 0 && self.s1cdmax > profile.ssid_bits {
                return Err(BadSte::S1CdMax);
            }
            if profile.ssid_bits != 0
                && self.s1cdmax != 0
                && !profile.cd2l
                && (self.s1fmt == 1 || self.s1fmt == 2)
            {
                return Err(BadSte::S1Fmt);
            }
            // S1ContextPtr is an IPA (range IAS) with stage 2, else a PA (range OAS) (§5.2).
            let limit = if config.s2_enabled() {
                profile.ias()
            } else {
                profile.oas()
            };
            if self.s1_context_ptr >> limit != 0 {
                return Err(BadSte::S1ContextPtr);
            }
        }
        if config.s2_enabled() {
            if !self.s2aa64 {
                return Err(BadSte::S2Aa64);
            }
            if self.s2ha || self.s2hd {
                return Err(BadSte::S2Httu);
            }
            if self.s2endi {
                return Err(BadSte::S2Endi);
            }
            let g = match self.s2_granule() {
                Some(g) if profile.granule_supported(g) => g,
                _ => return Err(BadSte::S2Tg),
            };
            let ps = self.s2_output_bits(profile);
            // §5.2 S2TTB: ILLEGAL outside the effective S2PS range (and 48 bits without DS).
            if self.s2ttb >> ps.min(48) != 0 {
                return Err(BadSte::S2Ttb);
            }
            // STES2T0SZInvalid (§5.2.2): max 39 without STT, else 48 (4K/16K) or 47 (64K);
            // min MAX(16, 64-IAS) for 4K/16K without DS, MAX(12, 64-IAS) for 64K; as no
            // 52-bit IAS is modelled this is 64-IAS in practice.
            let max = if !profile.stt {
                39
            } else if g == Granule::K64 {
                47
            } else {
                48
            };
            let min = 16u8.max(64 - profile.ias());
            if self.s2t0sz < min || self.s2t0sz > max {
                return Err(BadSte::S2T0sz);
            }
            if crate::walk::s2_start_level(g, self.s2sl0, self.s2t0sz).is_none() {
                return Err(BadSte::S2Sl0);
            }
        }
        if !profile.vmid16 && self.tlb_vmid(profile) >> 8 != 0 {
            return Err(BadSte::S2Vmid);
        }
        Ok(())
    }
}

/// S2SL0 encoding of a starting level (VTCR_EL2.SL0, Arm ARM D8.2; §5.2 S2SL0).
/// 4KB: 0b00 = L2, 0b01 = L1, 0b10 = L0, 0b11 = L3 (FEAT_TTST).
/// 16KB/64KB: 0b00 = L3, 0b01 = L2, 0b10 = L1, 0b11 = L0 (16KB, 52-bit only: not modelled).
pub fn s2sl0_for_level(g: Granule, level: u8) -> Option<u8> {
    match (g, level) {
        (Granule::K4, 0) => Some(2),
        (Granule::K4, 1) => Some(1),
        (Granule::K4, 2) => Some(0),
        (Granule::K4, 3) => Some(3),
        (_, 1) => Some(2),
        (_, 2) => Some(1),
        (_, 3) => Some(0),
        _ => None,
    }
}

/// Inverse of [`s2sl0_for_level`].
pub fn s2_level_for_sl0(g: Granule, sl0: u8) -> Option<u8> {
    match (g, sl0 & 3) {
        (Granule::K4, 0) => Some(2),
        (Granule::K4, 1) => Some(1),
        (Granule::K4, 2) => Some(0),
        (Granule::K4, 3) => Some(3),
        (_, 0) => Some(3),
        (_, 1) => Some(2),
        (_, 2) => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let s = Ste::nested(0x1234_5000, 7, 0x8000_0000, Granule::K16, 24, 1).with_s1dss(2);
        let d = Ste::decode(s.encode());
        assert_eq!(d, Ste::decode(d.encode()));
        assert_eq!(d.config(), SteConfig::Nested);
        assert_eq!(d.s1_context_ptr, 0x1234_5000);
        assert_eq!(d.s2vmid, 7);
        assert_eq!(d.s2ttb, 0x8000_0000);
        assert_eq!(d.s2_granule(), Some(Granule::K16));
        assert_eq!(s2_level_for_sl0(Granule::K16, d.s2sl0), Some(1));
        assert_eq!(d.s1dss, 2);
        assert_eq!(d.check(&SmmuProfile::default()), Ok(()));
    }

    #[test]
    fn reserved_config_aborts() {
        assert_eq!(SteConfig::from_bits(0b011), SteConfig::Abort);
        assert_eq!(SteConfig::from_bits(0b001), SteConfig::Abort);
    }
}
