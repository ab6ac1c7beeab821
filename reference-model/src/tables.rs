//! Encoders for VMSAv8-64 descriptors (Arm ARM D8.3) and a small page-table builder, so tests
//! and the conformance suite can write translation tables as easily as STEs and CDs.

use serde::{Deserialize, Serialize};

use crate::granule::Granule;
use crate::memory::{MemRead, Memory};
use crate::structures::addr_mask;
use crate::walk::{decode_descriptor, descriptor_address, Descriptor, Stage, WalkParams};

/// Attributes of a block/page descriptor to encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeafSpec {
    /// S1: AP[2:1]; S2: S2AP (bit 0 read, bit 1 write).
    pub ap: u8,
    pub af: bool,
    /// S1 only.
    pub ng: bool,
    /// S1: UXN/XN (bit 54); S2: XN[1].
    pub xn: bool,
    /// S1: PXN (bit 53).
    pub pxn: bool,
    /// S1: AttrIndx; S2: MemAttr.
    pub attr: u8,
    pub sh: u8,
}

impl LeafSpec {
    /// Stage 1 defaults: read/write at EL0 and EL1 (AP = 0b01), AF = 1, global (nG = 0),
    /// executable, AttrIndx 1, Inner Shareable.
    pub const S1: LeafSpec = LeafSpec {
        ap: 0b01,
        af: true,
        ng: false,
        xn: false,
        pxn: false,
        attr: 1,
        sh: 3,
    };
    /// Stage 2 defaults: S2AP = RW, AF = 1, executable, MemAttr 0xF (Normal WB), Inner Shareable.
    pub const S2: LeafSpec = LeafSpec {
        ap: 0b11,
        af: true,
        ng: false,
        xn: false,
        pxn: false,
        attr: 0xf,
        sh: 3,
    };

    pub fn for_stage(stage: Stage) -> LeafSpec {
        match stage {
            Stage::S1 => Self::S1,
            Stage::S2 => Self::S2,
        }
    }
    pub fn ap(mut self, ap: u8) -> Self {
        self.ap = ap & 3;
        self
    }
    pub fn af(mut self, af: bool) -> Self {
        self.af = af;
        self
    }
    pub fn ng(mut self, ng: bool) -> Self {
        self.ng = ng;
        self
    }
    pub fn xn(mut self, xn: bool) -> Self {
        self.xn = xn;
        self
    }
    pub fn pxn(mut self, pxn: bool) -> Self {
        self.pxn = pxn;
        self
    }
}

/// A table descriptor pointing at `next_table` (bits [1:0] = 0b11).
pub fn table_descriptor(next_table: u64) -> u64 {
    (next_table & addr_mask(47, 12)) | 0b11
}

/// A block (levels 1-2) or page (level 3) descriptor mapping `oa` (aligned down to the
/// block size).
pub fn leaf_descriptor(granule: Granule, level: u8, oa: u64, spec: &LeafSpec, stage: Stage) -> u64 {
    let mut d = oa & addr_mask(47, granule.level_shift(level));
    d |= if level == 3 { 0b11 } else { 0b01 };
    match stage {
        Stage::S1 => {
            d |= ((spec.attr as u64) & 7) << 2;
            d |= (spec.ng as u64) << 11;
            d |= (spec.pxn as u64) << 53;
        }
        Stage::S2 => d |= ((spec.attr as u64) & 0xf) << 2,
    }
    d |= ((spec.ap as u64) & 3) << 6;
    d |= ((spec.sh as u64) & 3) << 8;
    d |= (spec.af as u64) << 10;
    d |= (spec.xn as u64) << 54;
    d
}

/// Why [`PageTableBuilder::map`] could not map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MapError {
    #[error("level {0} cannot hold a leaf for this granule / start level")]
    BadLevel(u8),
    #[error("a block already maps the range at level {0}")]
    Conflict(u8),
}

/// Builds one stage's tables in a [`Memory`], allocating new tables from a bump pointer.
/// Table addresses are written as given (identity): for a nested stage 1 place the tables
/// where stage 2 maps IPA == PA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageTableBuilder {
    pub params: WalkParams,
    /// Next free table address (granule-aligned).
    pub next_free: u64,
}

impl PageTableBuilder {
    /// `params.table_base` is the (zeroed) root table; tables are allocated from `next_free`.
    pub fn new(params: WalkParams, next_free: u64) -> Self {
        let g = params.granule.size();
        Self {
            params,
            next_free: next_free.div_ceil(g).wrapping_mul(g),
        }
    }

    /// Maps the block/page containing `ia` at `level` to `oa`.
    pub fn map(
        &mut self,
        mem: &mut Memory,
        ia: u64,
        oa: u64,
        level: u8,
        spec: &LeafSpec,
    ) -> Result<u64, MapError> {
        let p = self.params;
        let g = p.granule;
        if level < p.start_level || g.block_size(level).is_none() {
            return Err(MapError::BadLevel(level));
        }
        let mut table = p.table_base;
        for l in p.start_level..level {
            let da = descriptor_address(&p, l, table, ia);
            match decode_descriptor(g, l, mem.read_u64(da), p.stage) {
                Descriptor::Table { next_table, .. } => table = next_table,
                Descriptor::Leaf { .. } => return Err(MapError::Conflict(l)),
                Descriptor::Invalid => {
                    let t = self.next_free;
                    self.next_free = self.next_free.wrapping_add(g.size());
                    mem.write_u64(da, table_descriptor(t));
                    table = t;
                }
            }
        }
        let da = descriptor_address(&p, level, table, ia);
        mem.write_u64(da, leaf_descriptor(g, level, oa, spec, p.stage));
        Ok(da)
    }

    /// PA of the leaf descriptor for `ia` at `level`, if the tables down to it exist.
    pub fn leaf_address(&self, mem: &Memory, ia: u64, level: u8) -> Option<u64> {
        let p = self.params;
        let mut table = p.table_base;
        for l in p.start_level..level.min(4) {
            let da = descriptor_address(&p, l, table, ia);
            match decode_descriptor(p.granule, l, mem.read_u64(da), p.stage) {
                Descriptor::Table { next_table, .. } => table = next_table,
                _ => return None,
            }
        }
        Some(descriptor_address(&p, level, table, ia))
    }
}
