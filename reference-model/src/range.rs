//! Range-invalidation arithmetic for address-based TLBIs: TG/TTL/NUM/SCALE/TTL128 (§4.4.1.1).
//!
//! Everything is O(1): a range is an interval `[base, base + len)` over u128 so that a range
//! running past 2^64 is representable; pages are never enumerated.

use crate::command::RangeFields;
use crate::granule::Granule;
use serde::Serialize;

/// 2^64, the top of the input address space (end-exclusive bound).
pub const ADDR_SPACE_END: u128 = 1u128 << 64;

/// A decoded range TLBI (TG != 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Range {
    /// Address[63:12] of the command, [11:0] zero (§4.1.6).
    pub base: u64,
    /// Range in bytes: (NUM+1) * 2^SCALE * granule. At most 32 * 2^39 * 2^16 = 2^60.
    pub len: u128,
    pub granule: Granule,
    /// The level TTL names, after the "16KB TTL=0b01 with DS==0 is treated as 0b00" rule.
    pub ttl_level: Option<u8>,
    /// TTL128 as it applies: only meaningful (and only true) when there is a TTL level.
    pub d128: bool,
    /// NUM and SCALE as used (SCALE after the DS width and the >39 clamp).
    pub num: u8,
    pub scale: u8,
}

impl Range {
    /// Decode the range fields of an (effective, RES0-cleared) command. `None` when TG == 0: no
    /// range is performed and TTL/TTL128 are unused (§4.4.1.1).
    pub fn from_fields(addr: u64, f: &RangeFields, ds: bool) -> Option<Range> {
        let granule = Granule::from_tg_field(f.tg)?;
        let num = f.num & 0x1F;
        // SCALE is [24:20] (5 bits) when DS == 0 and [25:20] when DS == 1, where values above
        // 39 are treated as 39 (§4.4.1.1).
        let scale = if ds {
            (f.scale & 0x3F).min(39)
        } else {
            f.scale & 0x1F
        };
        let ttl_level = match f.ttl & 0b11 {
            0 => None,
            // 16KB TTL=0b01 is Reserved when DS == 0 and treated as 0b00 (§4.4.1.1).
            1 if granule == Granule::K16 && !ds => None,
            l => Some(l),
        };
        let len = (u128::from(num) + 1) << (u32::from(scale) + granule.shift());
        Some(Range {
            base: addr & !0xFFF,
            len,
            granule,
            ttl_level,
            // TTL128 applies only to the TTL hint (§4.4.1.1: "If TTL != 0b00").
            d128: f.ttl128 && ttl_level.is_some(),
            num,
            scale,
        })
    }

    /// Exclusive end of the invalidated set, not wrapped: a range past the top of the address
    /// space does not wrap (§4.4.1.1 note), so the required set stops at 2^64.
    pub fn end(&self) -> u128 {
        (u128::from(self.base) + self.len).min(ADDR_SPACE_END)
    }

    /// The unclipped end (may exceed 2^64), for reports.
    pub fn raw_end(&self) -> u128 {
        u128::from(self.base) + self.len
    }

    /// Whether the range runs past 2^64 (only wrap-around over-invalidation would reach TTB0).
    pub fn overflows(&self) -> bool {
        self.raw_end() > ADDR_SPACE_END
    }

    /// Exclusive end for regimes with two VA ranges (EL1, EL2-E2H). A base in the TTB0 half
    /// whose range runs into the TTB1 region is not required to invalidate TTB1-region entries
    /// (§4.4.1.1, SCALE). The TTBR select bit is VA[55] (it is the bit that stays meaningful
    /// under TBI), so for a base with bit 55 clear the required set stops where VA[55] becomes 1.
    pub fn end_two_ranges(&self) -> u128 {
        let end = self.end();
        if self.base & (1u64 << 55) != 0 {
            return end;
        }
        let ttb1_start = u128::from(self.base & !((1u64 << 56) - 1)) + (1u128 << 55);
        end.min(ttb1_start)
    }

    /// Whether the TTB0-into-TTB1 clip shortens this range.
    pub fn clipped_at_ttb1(&self) -> bool {
        self.end_two_ranges() < self.end()
    }

    /// NUM == 0, SCALE == 0 and (effective) TTL == 0b00 with TG != 0 is Reserved and raises
    /// CERROR_ILL (§4.4.1.1), including 16KB TTL=0b01 with DS == 0.
    pub fn is_reserved(&self) -> bool {
        self.num == 0 && self.scale == 0 && self.ttl_level.is_none()
    }

    /// Alignment the address must have: the size of one entry at the TTL level, or one granule
    /// when there is no TTL level (§4.4.1.1 tables; e.g. 4KB TTL=0b10 needs Address[20:12] == 0).
    pub fn required_alignment(&self) -> u64 {
        match self.ttl_level {
            Some(l) => {
                let s = if self.d128 {
                    self.granule.span_shift(l, true)
                } else {
                    self.granule.span_shift(l, false)
                };
                // A level that does not exist for the granule (64KB level 0 cannot be named:
                // TTL has no 0 code) falls back to the granule.
                s.map(|s| 1u64 << s).unwrap_or(self.granule.size())
            }
            None => self.granule.size(),
        }
    }

    fn misaligned(&self) -> bool {
        self.base & (self.required_alignment() - 1) != 0
    }

    /// 64-bit descriptors: Address not aligned to the TTL-implied block (or the granule when TTL
    /// is 0b00) makes the invalidated range UNPREDICTABLE (§4.4.1.1).
    pub fn is_unpredictable(&self) -> bool {
        !self.d128 && self.misaligned()
    }

    /// 128-bit descriptors (TTL128 == 1): a misaligned Address means no entry is required to be
    /// invalidated (§4.4.1.1).
    pub fn nothing_required(&self) -> bool {
        self.d128 && self.misaligned()
    }

    /// Whether `[base, base + size)` intersects `[self.base, end)` (end-exclusive on both).
    #[inline]
    pub fn intersects(&self, base: u64, size: u64, end: u128) -> bool {
        let b = u128::from(base);
        size != 0 && b < end && u128::from(self.base) < b + u128::from(size)
    }

    /// Whether `[base, base + size)` lies entirely inside `[self.base, end)`.
    #[inline]
    pub fn contains(&self, base: u64, size: u64, end: u128) -> bool {
        let b = u128::from(base);
        u128::from(self.base) <= b && b + u128::from(size) <= end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rf(tg: u8, ttl: u8, num: u8, scale: u8) -> RangeFields {
        RangeFields {
            tg,
            ttl,
            ttl128: false,
            num,
            scale,
        }
    }

    #[test]
    fn largest_ranges() {
        let r = Range::from_fields(0, &rf(3, 0, 31, 31), false).unwrap();
        assert_eq!(r.len, 1u128 << 52);
        let r = Range::from_fields(0, &rf(1, 0, 31, 63), true).unwrap();
        assert_eq!(r.scale, 39);
        assert_eq!(r.len, 1u128 << 56);
        let r = Range::from_fields(0, &rf(3, 0, 31, 63), true).unwrap();
        assert_eq!(r.len, 1u128 << 60);
        // SCALE[25] ignored when DS == 0.
        let r = Range::from_fields(0, &rf(1, 0, 0, 0x21), false).unwrap();
        assert_eq!(r.scale, 1);
    }

    #[test]
    fn no_wrap_and_ttb1_clip() {
        let r = Range::from_fields(!0xFFFF, &rf(3, 0, 31, 31), false).unwrap();
        assert!(r.overflows());
        assert_eq!(r.end(), ADDR_SPACE_END);
        let r = Range::from_fields(0x007F_0000_0000_0000, &rf(3, 0, 31, 31), false).unwrap();
        assert_eq!(r.end_two_ranges(), 1u128 << 55);
        assert!(r.clipped_at_ttb1());
    }

    #[test]
    fn ttl_and_alignment() {
        let r = Range::from_fields(0x1000, &rf(1, 2, 0, 0), false).unwrap();
        assert!(r.is_unpredictable());
        let r = Range::from_fields(0x20_0000, &rf(1, 2, 0, 0), false).unwrap();
        assert!(!r.is_unpredictable());
        // 16KB TTL=01 with DS == 0 is treated as 00: reserved when NUM == SCALE == 0.
        let r = Range::from_fields(0x4000, &rf(2, 1, 0, 0), false).unwrap();
        assert!(r.is_reserved() && r.ttl_level.is_none());
        let r = Range::from_fields(0x4000, &rf(2, 1, 0, 0), true).unwrap();
        assert_eq!(r.ttl_level, Some(1));
        let r = Range::from_fields(0x1000, &rf(3, 3, 0, 0), false).unwrap();
        assert!(r.is_unpredictable());
        let mut f = rf(1, 2, 0, 0);
        f.ttl128 = true;
        let r = Range::from_fields(0x10_0000, &f, false).unwrap();
        assert!(!r.nothing_required());
        let r = Range::from_fields(0x8_0000, &f, false).unwrap();
        assert!(r.nothing_required() && !r.is_unpredictable());
    }
}
