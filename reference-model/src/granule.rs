//! VMSAv8-64 translation granules (Arm ARM D8.2) and their encodings in the CD (TG0/TG1,
//! §5.4), the STE (S2TG, §5.2) and TLBI commands (TG, §4.4.1.1).

use serde::{Deserialize, Serialize};

/// Translation granule. Levels are numbered 0..=3; level -1 (52-bit, DS == 1) is not modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    pub const ALL: [Granule; 3] = [Granule::K4, Granule::K16, Granule::K64];

    /// log2 of the granule (page) size.
    pub const fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    /// Granule (page and table) size in bytes.
    pub const fn size(self) -> u64 {
        1 << self.shift()
    }

    /// VA bits resolved per level: a table holds 2^(shift-3) 8-byte descriptors (Arm ARM D8.2).
    pub const fn bits_per_level(self) -> u32 {
        self.shift() - 3
    }

    /// Number of descriptors in a (non-concatenated) table.
    pub const fn entries_per_table(self) -> u64 {
        1 << self.bits_per_level()
    }

    /// Lowest input-address bit indexed at `level` (0..=3): one entry at `level` maps
    /// 2^level_shift bytes. Levels above 3 are clamped to 3.
    pub const fn level_shift(self, level: u8) -> u32 {
        let l = if level > 3 { 3 } else { level as u32 };
        self.shift() + (3 - l) * self.bits_per_level()
    }

    /// Bytes mapped by one descriptor at `level`.
    pub const fn entry_size(self, level: u8) -> u64 {
        1u64 << self.level_shift(level)
    }

    /// Size of a block (or page at level 3) at `level`, if a leaf is permitted there without
    /// 52-bit support (FEAT_LPA/LPA2 not modelled): 4K: L1 1GB, L2 2MB, L3 4KB;
    /// 16K: L2 32MB, L3 16KB; 64K: L2 512MB, L3 64KB (Arm ARM D8.3).
    pub const fn block_size(self, level: u8) -> Option<u64> {
        let ok = match self {
            Granule::K4 => level >= 1 && level <= 3,
            Granule::K16 | Granule::K64 => level >= 2 && level <= 3,
        };
        if ok {
            Some(self.entry_size(level))
        } else {
            None
        }
    }

    /// The shallowest level a walk can start at for this granule without 52-bit support.
    pub const fn min_level(self) -> u8 {
        match self {
            Granule::K64 => 1,
            _ => 0,
        }
    }

    /// CD.TG0 / TCR_ELx.TG0 encoding: 0b00 4KB, 0b01 64KB, 0b10 16KB, 0b11 reserved (§5.4).
    pub const fn from_tg0(tg: u8) -> Option<Granule> {
        match tg & 3 {
            0 => Some(Granule::K4),
            1 => Some(Granule::K64),
            2 => Some(Granule::K16),
            _ => None,
        }
    }

    pub const fn to_tg0(self) -> u8 {
        match self {
            Granule::K4 => 0,
            Granule::K64 => 1,
            Granule::K16 => 2,
        }
    }

    /// CD.TG1 / TCR_ELx.TG1 encoding: 0b00 reserved, 0b01 16KB, 0b10 4KB, 0b11 64KB (§5.4).
    pub const fn from_tg1(tg: u8) -> Option<Granule> {
        match tg & 3 {
            1 => Some(Granule::K16),
            2 => Some(Granule::K4),
            3 => Some(Granule::K64),
            _ => None,
        }
    }

    pub const fn to_tg1(self) -> u8 {
        match self {
            Granule::K16 => 1,
            Granule::K4 => 2,
            Granule::K64 => 3,
        }
    }

    /// STE.S2TG / VTCR_EL2.TG0 encoding: same as TG0 (§5.2).
    pub const fn from_s2tg(tg: u8) -> Option<Granule> {
        Self::from_tg0(tg)
    }

    pub const fn to_s2tg(self) -> u8 {
        self.to_tg0()
    }

    /// TLBI command TG field: 0b00 any (None), 0b01 4KB, 0b10 16KB, 0b11 64KB (§4.4.1.1).
    pub const fn from_tlbi_tg(tg: u8) -> Option<Granule> {
        match tg & 3 {
            1 => Some(Granule::K4),
            2 => Some(Granule::K16),
            3 => Some(Granule::K64),
            _ => None,
        }
    }

    pub const fn to_tlbi_tg(self) -> u8 {
        match self {
            Granule::K4 => 1,
            Granule::K16 => 2,
            Granule::K64 => 3,
        }
    }

    /// The TLBI TG field (§4.4.1.1): 0b01 4KB, 0b10 16KB, 0b11 64KB; 0b00 means "any granule, no
    /// range" and has no granule.
    pub const fn from_tg_field(tg: u8) -> Option<Granule> {
        match tg & 0b11 {
            0b01 => Some(Granule::K4),
            0b10 => Some(Granule::K16),
            0b11 => Some(Granule::K64),
            _ => None,
        }
    }

    pub const fn tg_field(self) -> u8 {
        match self {
            Granule::K4 => 0b01,
            Granule::K16 => 0b10,
            Granule::K64 => 0b11,
        }
    }

    /// Lowest lookup level that exists for this granule with 64-bit descriptors (the 64KB
    /// granule has no level 0; the 4KB LPA2 level -1 is not modelled, and §4.4.1.1 has no TTL
    /// code for it either).
    pub const fn first_level(self) -> u8 {
        self.min_level()
    }

    /// log2 of the bytes of input address one descriptor at `level` maps (a block, a page, or
    /// for a table descriptor the span of its next-level table). Each level resolves
    /// `shift - 3` bits with 64-bit descriptors and `shift - 4` with 128-bit ones (the TTL128
    /// alignment table of §4.4.1.1 is exactly this arithmetic). `None` for levels that do not
    /// exist (level > 3, or below `first_level`).
    pub const fn span_shift(self, level: u8, d128: bool) -> Option<u32> {
        if level > 3 || level < self.first_level() {
            return None;
        }
        let g = self.shift();
        let per_level = if d128 { g - 4 } else { g - 3 };
        Some(g + (3 - level as u32) * per_level)
    }

    /// Bytes covered by one entry at `level` with 128-bit descriptors (VMSAv9-128).
    pub const fn span_d128(self, level: u8) -> Option<u64> {
        match self.span_shift(level, true) {
            Some(s) => Some(1u64 << s),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Granule::K4.level_shift(0), 39);
        assert_eq!(Granule::K4.block_size(1), Some(1 << 30));
        assert_eq!(Granule::K4.block_size(2), Some(1 << 21));
        assert_eq!(Granule::K4.block_size(0), None);
        assert_eq!(Granule::K16.level_shift(0), 47);
        assert_eq!(Granule::K16.block_size(2), Some(1 << 25));
        assert_eq!(Granule::K16.block_size(1), None);
        assert_eq!(Granule::K64.level_shift(1), 42);
        assert_eq!(Granule::K64.block_size(2), Some(1 << 29));
        for g in Granule::ALL {
            assert_eq!(Granule::from_tg0(g.to_tg0()), Some(g));
            assert_eq!(Granule::from_tg1(g.to_tg1()), Some(g));
            assert_eq!(Granule::from_tlbi_tg(g.to_tlbi_tg()), Some(g));
        }
    }
}
