//! Stream table registers (SMMU_STRTAB_BASE §6.3.24, SMMU_STRTAB_BASE_CFG §6.3.25), the
//! L1STD (§5.1) and Stream table lookup for a StreamID (§3.3.2).

use serde::{Deserialize, Serialize};

use super::{addr_mask, bit, bits, set_bits, SmmuProfile};
use crate::memory::MemRead;

/// SMMU_STRTAB_BASE_CFG.FMT (§6.3.25).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamTableFormat {
    Linear,
    TwoLevel,
}

/// The Stream table configuration, built from the raw register values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamTableConfig {
    /// STRTAB_BASE.ADDR, bits [55:6], as an address (not yet aligned to the table size).
    pub addr: u64,
    /// STRTAB_BASE.RA, bit [62].
    pub ra: bool,
    /// STRTAB_BASE_CFG.LOG2SIZE, bits [5:0].
    pub log2size: u8,
    /// STRTAB_BASE_CFG.SPLIT, bits [10:6], raw.
    pub split: u8,
    /// STRTAB_BASE_CFG.FMT, bits [17:16], raw.
    pub fmt_raw: u8,
}

impl StreamTableConfig {
    /// Decodes SMMU_STRTAB_BASE and SMMU_STRTAB_BASE_CFG (§6.3.24, §6.3.25).
    pub fn from_regs(strtab_base: u64, strtab_base_cfg: u32) -> Self {
        let cfg = strtab_base_cfg as u64;
        Self {
            addr: strtab_base & addr_mask(55, 6),
            ra: bit(strtab_base, 62),
            log2size: bits(cfg, 5, 0) as u8,
            split: bits(cfg, 10, 6) as u8,
            fmt_raw: bits(cfg, 17, 16) as u8,
        }
    }

    /// A linear table of 2^log2size STEs at `base`.
    pub fn linear(base: u64, log2size: u8) -> Self {
        Self {
            addr: base & addr_mask(55, 6),
            ra: false,
            log2size: log2size & 63,
            split: 0,
            fmt_raw: 0,
        }
    }

    /// A two-level table: L1 array at `base`, StreamID[split-1:0] index the L2 tables.
    pub fn two_level(base: u64, log2size: u8, split: u8) -> Self {
        Self {
            addr: base & addr_mask(55, 6),
            ra: false,
            log2size: log2size & 63,
            split: split & 31,
            fmt_raw: 1,
        }
    }

    /// SMMU_STRTAB_BASE value.
    pub fn strtab_base(&self) -> u64 {
        set_bits(self.addr & addr_mask(55, 6), 62, 62, self.ra as u64)
    }

    /// SMMU_STRTAB_BASE_CFG value.
    pub fn strtab_base_cfg(&self) -> u32 {
        let mut v = set_bits(0, 5, 0, self.log2size as u64);
        v = set_bits(v, 10, 6, self.split as u64);
        v = set_bits(v, 17, 16, self.fmt_raw as u64);
        v as u32
    }

    /// Effective format: FMT values other than 0b01 behave as 0b00, and FMT is RES0 without
    /// two-level support (§6.3.25).
    pub fn format(&self, profile: &SmmuProfile) -> StreamTableFormat {
        if self.fmt_raw == 1 && profile.st_level_2 {
            StreamTableFormat::TwoLevel
        } else {
            StreamTableFormat::Linear
        }
    }

    /// Effective LOG2SIZE = MIN(LOG2SIZE, SIDSIZE) (§6.3.25).
    pub fn effective_log2size(&self, profile: &SmmuProfile) -> u8 {
        self.log2size.min(profile.sid_bits).min(32)
    }

    /// Effective SPLIT: 6, 8 or 10; other values behave as 6 (§6.3.25).
    pub fn effective_split(&self) -> u8 {
        match self.split {
            8 | 10 => self.split,
            _ => 6,
        }
    }

    /// Number of StreamIDs covered (2^effective LOG2SIZE).
    pub fn num_sids(&self, profile: &SmmuProfile) -> u64 {
        1u64 << self.effective_log2size(profile)
    }

    /// Number of L1STDs of a two-level table: MAX(1, 2^(LOG2SIZE-SPLIT)) (§6.3.25).
    pub fn num_l1(&self, profile: &SmmuProfile) -> u64 {
        let l = self.effective_log2size(profile);
        let s = self.effective_split();
        if l > s {
            1u64 << (l - s)
        } else {
            1
        }
    }

    /// Table base after the alignment the SMMU applies (§6.3.24 ADDR): linear tables are
    /// aligned to their size (ADDR[LOG2SIZE+5:0] = 0, literal LOG2SIZE), two-level L1 arrays to
    /// MAX(64 bytes, L1 size) (ADDR[MAX(5, LOG2SIZE-SPLIT-1+3):0] = 0).
    pub fn effective_base(&self, profile: &SmmuProfile) -> u64 {
        let low_bits: u32 = match self.format(profile) {
            StreamTableFormat::Linear => self.log2size as u32 + 6,
            StreamTableFormat::TwoLevel => {
                let x = self.log2size as i32 - self.effective_split() as i32 - 1 + 3;
                (x.max(5) + 1) as u32
            }
        };
        if low_bits >= 56 {
            0
        } else {
            self.addr & addr_mask(55, low_bits)
        }
    }
}

/// L1STD, Level 1 Stream Table Descriptor (§5.1): 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct L1Std {
    /// Span, bits [4:0].
    pub span: u8,
    /// L2Ptr, bits [55:6], as an address.
    pub l2ptr: u64,
    pub raw: u64,
}

impl L1Std {
    /// Decodes an L1STD (§5.1).
    pub fn decode(raw: u64) -> Self {
        Self {
            span: bits(raw, 4, 0) as u8,
            l2ptr: raw & addr_mask(55, 6),
            raw,
        }
    }

    /// An L1STD pointing at an L2 array of 2^(span-1) STEs.
    pub fn new(l2ptr: u64, span: u8) -> Self {
        let raw = set_bits(l2ptr & addr_mask(55, 6), 4, 0, span as u64);
        Self::decode(raw)
    }

    pub fn encode(&self) -> u64 {
        set_bits(
            set_bits(self.raw, 4, 0, self.span as u64),
            55,
            6,
            self.l2ptr >> 6,
        )
    }

    /// Effective Span given the split: 0 (invalid) for Span 0, the Reserved values 12..31
    /// ("behaves as 0"), and values above SPLIT+1 ("out of bounds given the split point") (§5.1.1).
    pub fn effective_span(&self, split: u8) -> u8 {
        if self.span == 0 || self.span >= 12 || self.span > split + 1 {
            0
        } else {
            self.span
        }
    }

    /// The L2 array base: L2Ptr[5+(Span-1):0] treated as 0 (§5.1 L2Ptr).
    pub fn l2_base(&self, span: u8) -> u64 {
        let low = 6 + span.saturating_sub(1) as u32;
        self.l2ptr & addr_mask(55, low.min(55))
    }
}

/// Where an STE was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteLocation {
    /// The L1STD read on the way (PA, raw), for two-level tables.
    pub l1std: Option<(u64, u64)>,
    /// PA of the 64-byte STE.
    pub ste_pa: u64,
}

/// Stream table lookup failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SteLookupError {
    /// StreamID out of range, or the L1STD is invalid / its span does not cover the StreamID
    /// (C_BAD_STREAMID, §5.1.1, §6.3.25). `l1std` is the descriptor read, if any.
    BadStreamId { l1std: Option<(u64, u64)> },
    /// External abort reading the L1STD at `pa` (F_STE_FETCH, §7.3).
    L1StdFetch { pa: u64 },
}

/// Finds the STE for `sid` (§3.3.2): linear index, or L1STD then L2 index.
pub fn locate_ste<M: MemRead + ?Sized>(
    mem: &M,
    cfg: &StreamTableConfig,
    profile: &SmmuProfile,
    sid: u32,
) -> Result<SteLocation, SteLookupError> {
    let sid = sid as u64;
    if sid >= cfg.num_sids(profile) {
        return Err(SteLookupError::BadStreamId { l1std: None });
    }
    let base = cfg.effective_base(profile);
    match cfg.format(profile) {
        StreamTableFormat::Linear => Ok(SteLocation {
            l1std: None,
            ste_pa: base.wrapping_add(sid * 64),
        }),
        StreamTableFormat::TwoLevel => {
            let split = cfg.effective_split();
            let l1_pa = base.wrapping_add((sid >> split) * 8);
            let raw = mem
                .try_read_u64(l1_pa)
                .ok_or(SteLookupError::L1StdFetch { pa: l1_pa })?;
            let l1 = L1Std::decode(raw);
            let span = l1.effective_span(split);
            let l2_index = sid & ((1u64 << split) - 1);
            if span == 0 || l2_index >= (1u64 << (span - 1)) {
                return Err(SteLookupError::BadStreamId {
                    l1std: Some((l1_pa, raw)),
                });
            }
            Ok(SteLocation {
                l1std: Some((l1_pa, raw)),
                ste_pa: l1.l2_base(span).wrapping_add(l2_index * 64),
            })
        }
    }
}

/// Reads a 64-byte structure (STE or CD) as 8 words; `None` on an external abort.
pub fn read_struct<M: MemRead + ?Sized>(mem: &M, pa: u64) -> Option<[u64; 8]> {
    let mut out = [0u64; 8];
    for (i, w) in out.iter_mut().enumerate() {
        *w = mem.try_read_u64(pa.wrapping_add(i as u64 * 8))?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;

    #[test]
    fn regs_roundtrip() {
        let c = StreamTableConfig::two_level(0x10_0000, 16, 8);
        let d = StreamTableConfig::from_regs(c.strtab_base(), c.strtab_base_cfg());
        assert_eq!(c, d);
    }

    #[test]
    fn two_level_lookup() {
        let p = SmmuProfile::default();
        let mut m = Memory::new();
        let c = StreamTableConfig::two_level(0x10_0000, 16, 8);
        m.write_u64(0x10_0000 + 8, L1Std::new(0x20_0000, 3).encode());
        let loc = locate_ste(&m, &c, &p, 0x103).unwrap();
        assert_eq!(loc.ste_pa, 0x20_0000 + 3 * 64);
        assert!(matches!(
            locate_ste(&m, &c, &p, 0x104),
            Err(SteLookupError::BadStreamId { .. })
        ));
        assert!(matches!(
            locate_ste(&m, &c, &p, 0x1_0000),
            Err(SteLookupError::BadStreamId { l1std: None })
        ));
        // Span above SPLIT+1 is out of bounds.
        m.write_u64(0x10_0000, L1Std::new(0x30_0000, 10).encode());
        assert!(locate_ste(&m, &c, &p, 0).is_err());
    }
}
