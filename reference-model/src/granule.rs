//! Translation granules and the input-address span an entry covers at each lookup level (VMSAv8-64,
//! as used by SMMU TLBI TG/TTL, §4.4.1.1). Minimal and self-contained on purpose: the walker may
//! carry its own richer granule type.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    pub const ALL: [Granule; 3] = [Granule::K4, Granule::K16, Granule::K64];

    /// log2 of the granule size in bytes.
    pub const fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    pub const fn size(self) -> u64 {
        1u64 << self.shift()
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

    /// Lowest lookup level that exists for this granule with 64-bit descriptors: the 64KB granule
    /// has no level 0 (VMSAv8-64; the 4KB LPA2 level -1 is not modelled, §4.4.1.1 has no TTL
    /// code for it either).
    pub const fn first_level(self) -> u8 {
        match self {
            Granule::K64 => 1,
            _ => 0,
        }
    }

    /// log2 of the bytes of input address one descriptor at `level` maps (a block, a page, or
    /// for a table descriptor the span of its next-level table). Each level resolves
    /// `shift - 3` bits with 64-bit descriptors and `shift - 4` with 128-bit ones (the
    /// TTL128 alignment table of §4.4.1.1 is exactly this arithmetic). `None` for levels that
    /// do not exist (level > 3, or below `first_level`).
    pub const fn level_shift(self, level: u8, d128: bool) -> Option<u32> {
        if level > 3 || level < self.first_level() {
            return None;
        }
        let g = self.shift();
        let per_level = if d128 { g - 4 } else { g - 3 };
        Some(g + (3 - level as u32) * per_level)
    }

    /// Bytes covered by one entry at `level` (64-bit descriptors): 4KB: L0 512GB, L1 1GB,
    /// L2 2MB, L3 4KB; 16KB: L0 128TB, L1 64GB, L2 32MB, L3 16KB; 64KB: L1 4TB, L2 512MB,
    /// L3 64KB.
    pub const fn block_size(self, level: u8) -> Option<u64> {
        match self.level_shift(level, false) {
            Some(s) => Some(1u64 << s),
            None => None,
        }
    }

    /// As [`Granule::block_size`] for 128-bit descriptor (VMSAv9-128) regimes.
    pub const fn block_size_d128(self, level: u8) -> Option<u64> {
        match self.level_shift(level, true) {
            Some(s) => Some(1u64 << s),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes() {
        assert_eq!(Granule::K4.block_size(1), Some(1 << 30));
        assert_eq!(Granule::K4.block_size(2), Some(2 << 20));
        assert_eq!(Granule::K4.block_size(0), Some(1 << 39));
        assert_eq!(Granule::K16.block_size(2), Some(32 << 20));
        assert_eq!(Granule::K16.block_size(1), Some(64 << 30));
        assert_eq!(Granule::K64.block_size(2), Some(512 << 20));
        assert_eq!(Granule::K64.block_size(1), Some(4 << 40));
        assert_eq!(Granule::K64.block_size(0), None);
        assert_eq!(Granule::K4.block_size(4), None);
        assert_eq!(Granule::K4.block_size_d128(1), Some(1 << 28));
        assert_eq!(Granule::K64.block_size_d128(1), Some(1 << 40));
    }

    #[test]
    fn tg_round_trip() {
        assert_eq!(Granule::from_tg_field(0), None);
        for g in Granule::ALL {
            assert_eq!(Granule::from_tg_field(g.tg_field()), Some(g));
        }
    }
}
