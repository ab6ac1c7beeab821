//! Tricky cases 8 to 34 of the spec digest §9 (shared/reference/smmuv3-spec-digest.md), one test
//! each, at model level: real stream tables, STEs, CDs and page tables in the [`Model`], memory
//! changes, consumed commands and completed SYNCs, then `Model::check` asserted in both
//! directions: what the architecture forbids is rejected with a rule naming a section, what it
//! allows (the fresh result, and the stale one where an entry MAY be kept) is accepted.

mod tricky_support;

use smmu_model::command::{Command, RangeFields};
use smmu_model::granule::Granule;
use smmu_model::oracle::Accepted;
use smmu_model::profile::{Profile, Queue};
use smmu_model::range::Range;
use smmu_model::scope::{required_scope, ScopeCtx};
use smmu_model::structures::cd::TtbRegion;
use smmu_model::structures::Cd;
use smmu_model::tables::LeafSpec;
use smmu_model::tlb::{EntryKind, EntryStage, StreamWorld, TlbTag};
use tricky_support::*;

const SID: u32 = 1;
const MB2: u64 = 0x20_0000;
const GB: u64 = 0x4000_0000;

fn cd4k(asid: u16) -> Cd {
    Cd::new(asid, 0, 25, Granule::K4)
}

/// A 4 KB stage-1 stream (39-bit VA) on `profile` at SID 1.
fn s1_rig(profile: &str, asid: u16) -> (Rig, Tables) {
    let mut r = Rig::named(profile);
    let (_, _, t) = r.s1_stream(SID, cd4k(asid), |s| s);
    (r, t)
}

// ---------------------------------------------------------------------------------------------
// Range, TTL and TG
// ---------------------------------------------------------------------------------------------

/// §9 case 8, §4.4.1.1: NUM=31, SCALE=31, TG=64K spans exactly 2^52 bytes; the invalidated set
/// is end-exclusive, so an entry starting exactly at Addr+Range is not required to go. A 48-bit
/// TTB0 space cannot hold an entry at 2^52, so the boundary is checked with NUM=31, SCALE=20
/// (2^41 bytes) on the same 64 KB regime, and the 2^52 range must clear the top of the space.
#[test]
fn case_08_range_extremes_end_exclusive() {
    let r52 = Range::from_fields(0, &range(TG64K, 0, 31, 31), false).unwrap();
    assert_eq!(r52.len, 1u128 << 52);

    let mut r = Rig::named("qemu-10.0");
    let (_, _, mut t) = r.s1_stream(SID, Cd::new(1, 0, 16, Granule::K64), |s| s);
    let top = 0x0000_FFFF_FFFF_0000u64; // last 64 KB page of the 48-bit TTB0 space
    let end41 = 1u64 << 41;
    let s = LeafSpec::S1;
    r.map(&mut t, 0, 0x8000_0000, 3, s);
    r.map(&mut t, top, 0x8010_0000, 3, s);
    r.map(&mut t, end41 - 0x1_0000, 0x8020_0000, 3, s);
    r.map(&mut t, end41, 0x8030_0000, 3, s);
    r.enable();
    for (va, pa) in [
        (0, 0x8000_0000),
        (top, 0x8010_0000),
        (end41 - 0x1_0000, 0x8020_0000),
        (end41, 0x8030_0000),
    ] {
        r.fresh(SID, va, pa);
        r.map(&mut t, va, pa + 0x100_0000, 3, s);
    }
    // NUM=31, SCALE=20: [0, 2^41). The last page inside must go; the page at 2^41 may stay.
    r.cmd(nh_vaa(0, 0, true, range(TG64K, 3, 31, 20)));
    r.stale(SID, end41 - 0x1_0000, 0x8020_0000); // before the SYNC: may still be seen
    r.sync();
    r.forbidden_by(SID, end41 - 0x1_0000, 0x8020_0000, "SCOPE-NH-VAA");
    r.fresh(SID, end41 - 0x1_0000, 0x8120_0000);
    r.stale(SID, end41, 0x8030_0000);
    r.stale(SID, top, 0x8010_0000);
    // NUM=31, SCALE=31: [0, 2^52) covers the whole TTB0 space, the top page included.
    r.cmd(nh_vaa(0, 0, true, range(TG64K, 3, 31, 31)));
    r.sync();
    for (va, pa) in [(0, 0x8000_0000), (top, 0x8010_0000), (end41, 0x8030_0000)] {
        r.forbidden_by(SID, va, pa, "SCOPE-NH-VAA");
        r.fresh(SID, va, pa + 0x100_0000);
    }
}

/// §9 case 9, §4.4.1.1: with TG != 0 only entries inserted with that granule are required to go.
/// A 4 KB-granule page survives a TG=64K invalidation of its address (MAY-keep) and is removed by
/// the same invalidation with TG=4K (MUST-remove).
#[test]
fn case_09_granule_differs_from_tg_may_keep() {
    let (mut r, mut t) = s1_rig("qemu-10.0", 1);
    let va = 0x40_0000; // 64 KB aligned: TG=64K TTL=3 is not UNPREDICTABLE
    r.map(&mut t, va, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va, 0x8000_0000);
    r.map(&mut t, va, 0x9000_0000, 3, LeafSpec::S1);
    r.cmd(nh_va(0, 1, va, true, range(TG64K, 3, 0, 0)));
    r.sync();
    r.stale(SID, va, 0x8000_0000);
    r.fresh(SID, va, 0x9000_0000);
    r.cmd(nh_va(0, 1, va, true, range(TG4K, 3, 0, 0)));
    r.stale(SID, va, 0x8000_0000);
    r.sync();
    r.forbidden_by(SID, va, 0x8000_0000, "SCOPE-NH-VA");
    r.fresh(SID, va, 0x9000_0000);
}

/// §9 case 10, §4.4.1.1 TTL table: TTL=0b11 (level-3 pages) does not cover a cached 2 MB level-2
/// block (MAY-keep); TTL=0b10 does (MUST-remove).
#[test]
fn case_10_ttl11_keeps_l2_block_ttl10_removes_it() {
    let (mut r, mut t) = s1_rig("qemu-10.0", 1);
    let va = 0x4000_0000 + 3 * MB2;
    r.map(&mut t, va, 0x8000_0000, 2, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va + 0x1234, 0x8000_1234);
    r.map(&mut t, va, 0x9000_0000, 2, LeafSpec::S1);
    r.cmd(nh_vaa(0, va, true, range(TG4K, 0b11, 0, 0)));
    r.sync();
    r.stale(SID, va + 0x1234, 0x8000_1234);
    r.cmd(nh_vaa(0, va, true, range(TG4K, 0b10, 0, 0)));
    r.stale(SID, va + 0x1234, 0x8000_1234);
    r.sync();
    r.forbidden_by(SID, va + 0x1234, 0x8000_1234, "SCOPE-NH-VAA");
    r.fresh(SID, va + 0x1234, 0x9000_1234);
}

/// §9 case 11, spec example in §4.4.1.1 (note): Leaf=0 with TTL=0b10 must remove L2 block
/// entries and the L0/L1 table entries above them, but need not remove L3 entries, L2 table
/// entries or L1 blocks. 48-bit VA so that the walk starts at level 0.
#[test]
fn case_11_leaf0_ttl10_drops_l0_l1_tables_keeps_l3_l2_tables_l1_blocks() {
    let mut r = Rig::named("qemu-10.0");
    let (_, _, mut t) = r.s1_stream(SID, Cd::new(1, 0, 16, Granule::K4), |s| s);
    let s = LeafSpec::S1;
    // GB 0: an L1 table -> L2 table holding a 2 MB block at 0 and an L3 page at 2 MB.
    let blk = 0;
    let page = MB2;
    r.map(&mut t, blk, 0x8000_0000, 2, s);
    r.map(&mut t, page, 0x8100_0000, 3, s);
    // GB 1: a 1 GB L1 block.
    let l1blk = GB;
    r.map(&mut t, l1blk, 0xC000_0000, 1, s);
    r.enable();
    r.fresh(SID, blk + 0x10, 0x8000_0010);
    r.fresh(SID, page, 0x8100_0000);
    r.fresh(SID, l1blk, 0xC000_0000);

    // Replace the L1 table descriptor of GB 0 by one pointing at a new, empty L2 table, and the
    // L1 block of GB 1 by an invalid descriptor.
    let l1_desc = t.b.leaf_address(&r.shadow, blk, 1).unwrap();
    let new_l2 = r.alloc();
    r.write(l1_desc, smmu_model::tables::table_descriptor(new_l2));
    r.unmap(&t, l1blk, 1);

    r.cmd(nh_vaa(0, blk, false, range(TG4K, 0b10, 0, 0)));
    r.cmd(nh_vaa(0, page, false, range(TG4K, 0b10, 0, 0)));
    r.cmd(nh_vaa(0, l1blk, false, range(TG4K, 0b10, 0, 0)));
    r.stale(SID, blk + 0x10, 0x8000_0010);
    r.sync();
    // The L2 block and the L1 table entry that led to it are gone: only the fresh fault.
    r.forbidden(SID, blk + 0x10, 0x8000_0010);
    r.fault_allowed(SID, blk + 0x10, true);
    // The L3 page (through a cached L2 table entry or the L3 entry itself) may remain.
    r.stale(SID, page, 0x8100_0000);
    // The L1 block may remain.
    r.stale(SID, l1blk, 0xC000_0000);
    // Without a TTL hint, Leaf=0 covers every level (§4.4.2.3).
    r.cmd(nh_vaa(0, page, false, NO_RANGE));
    r.cmd(nh_vaa(0, l1blk, false, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, page, 0x8100_0000, "SCOPE-NH-VAA");
    r.forbidden_by(SID, l1blk, 0xC000_0000, "SCOPE-NH-VAA");
}

/// One stale 4 KB page at `va` (old PA 0x8000_0000, new 0x9000_0000) on a fresh qemu-10.0 rig,
/// observed once while current.
fn one_stale_page(profile: &str, va: u64) -> Rig {
    let (mut r, mut t) = s1_rig(profile, 1);
    r.map(&mut t, va, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va, 0x8000_0000);
    r.map(&mut t, va, 0x9000_0000, 3, LeafSpec::S1);
    r.stale(SID, va, 0x8000_0000);
    r
}

/// After an invalidation whose range is UNPREDICTABLE (or that need not do anything), nothing
/// may be asserted about the stale entry: the oracle must accept it (no false alarm) and the
/// fresh result, and still reject a PA no walk ever gave.
#[track_caller]
fn nothing_asserted(r: &Rig, va: u64) {
    r.stale(SID, va, 0x8000_0000);
    r.fresh(SID, va, 0x9000_0000);
    let v = r.forbidden(SID, va, 0x7000_0000);
    assert_eq!(v.rule.id, "NO-SUCH-TRANSLATION", "{v}");
}

/// §9 case 12, §4.4.1.1 alignment table: TG=4K, TTL=0b10 with Address[20:12] != 0 makes the
/// invalidated range UNPREDICTABLE, so the oracle must not require anything in or near it.
#[test]
fn case_12_tg4k_ttl10_misaligned_range_unpredictable() {
    let va = 0x40_0000 + 0x3000;
    let mut r = one_stale_page("qemu-10.0", va);
    r.cmd(nh_vaa(0, va, true, range(TG4K, 0b10, 0, 0)));
    r.sync();
    nothing_asserted(&r, va);
    // The aligned form of the same command (TTL=0b11) is required to remove it.
    r.cmd(nh_vaa(0, va, true, range(TG4K, 0b11, 0, 0)));
    r.sync();
    r.forbidden_by(SID, va, 0x8000_0000, "SCOPE-NH-VAA");
}

/// §9 case 13, §4.4.1.1: TG=64K, TTL=0b11 with Address[15:12] != 0 is UNPREDICTABLE.
#[test]
fn case_13_tg64k_ttl11_misaligned_range_unpredictable() {
    let mut r = Rig::named("qemu-10.0");
    let (_, _, mut t) = r.s1_stream(SID, Cd::new(1, 0, 25, Granule::K64), |s| s);
    let va = 0x40_0000;
    r.map(&mut t, va, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va + 0x3000, 0x8000_3000);
    r.map(&mut t, va, 0x9000_0000, 3, LeafSpec::S1);
    r.cmd(nh_vaa(0, va + 0x3000, true, range(TG64K, 0b11, 0, 0)));
    r.sync();
    nothing_asserted(&r, va);
    r.cmd(nh_vaa(0, va, true, range(TG64K, 0b11, 0, 0)));
    r.sync();
    r.forbidden_by(SID, va + 0x3000, 0x8000_3000, "SCOPE-NH-VAA");
    r.fresh(SID, va + 0x3000, 0x9000_3000);
}

/// §9 case 14, §4.4.1.1: TTL128=1 with a misaligned Address: no entry is required to be
/// invalidated. (Aligned TTL128=1 names 128-bit-descriptor entries only, so a 64-bit-descriptor
/// entry may stay either way; TTL128=0 aligned removes it.)
#[test]
fn case_14_ttl128_misaligned_requires_nothing() {
    let va = 0x40_0000 + 0x5000;
    let mut r = one_stale_page("qemu-10.0", va);
    let mut rf = range(TG4K, 0b10, 0, 0);
    rf.ttl128 = true;
    r.cmd(nh_vaa(0, va, true, rf));
    r.sync();
    nothing_asserted(&r, va);
    let mut rf = range(TG4K, 0b11, 0, 0);
    rf.ttl128 = true;
    r.cmd(nh_vaa(0, va, true, rf));
    r.sync();
    nothing_asserted(&r, va);
    r.cmd(nh_vaa(0, va, true, range(TG4K, 0b11, 0, 0)));
    r.sync();
    r.forbidden_by(SID, va, 0x8000_0000, "SCOPE-NH-VAA");
}

/// A 64 KB-granule stream with TTB0 and TTB1 (48-bit each) on smmuv3.4-full (DS, so SCALE may
/// reach 39), one stale page in each half.
fn two_range_rig(g: Granule, profile: &str, va0: u64, va1: u64) -> Rig {
    let mut r = Rig::named(profile);
    let cd = Cd::new(1, 0, 16, g).with_ttb1(0, 16, g);
    let (_, cd, mut t0) = r.s1_stream(SID, cd, |s| s);
    let mut t1 = r.s1_tables(&cd, TtbRegion::Ttb1);
    r.map(&mut t0, va0, 0x8000_0000, 3, LeafSpec::S1);
    r.map(&mut t1, va1, 0x8100_0000, 3, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va0, 0x8000_0000);
    r.fresh(SID, va1, 0x8100_0000);
    r.map(&mut t0, va0, 0x9000_0000, 3, LeafSpec::S1);
    r.map(&mut t1, va1, 0x9100_0000, 3, LeafSpec::S1);
    r
}

/// §9 case 15, §4.4.1.1 (SCALE): a TTB0-half base whose range extends into the TTB1 region is
/// not required to invalidate TTB1 entries. NUM=31, SCALE=39 (DS), TG=64K from 0 spans 2^60.
#[test]
fn case_15_ttb0_range_into_ttb1_keeps_ttb1_entries() {
    let top1 = 0xFFFF_FFFF_FFFF_0000u64;
    let mut r = two_range_rig(Granule::K64, "smmuv3.4-full", 0x1_0000, top1);
    let rf = range(TG64K, 0b11, 31, 39);
    assert!(Range::from_fields(0, &rf, true).unwrap().clipped_at_ttb1());
    r.cmd(nh_vaa(0, 0, true, rf));
    r.sync();
    r.forbidden_by(SID, 0x1_0000, 0x8000_0000, "SCOPE-NH-VAA");
    r.fresh(SID, 0x1_0000, 0x9000_0000);
    r.stale(SID, top1, 0x8100_0000);
    r.fresh(SID, top1, 0x9100_0000);
}

/// §9 case 16, §4.4.1.1: a TTB1-half base whose range runs past 2^64 does not wrap, so TTB0
/// entries MAY stay (wrapping over-invalidation is allowed too); entries in the range must go.
#[test]
fn case_16_ttb1_range_past_2_64_does_not_wrap() {
    let base = 0xFFFF_FFFF_FFC0_0000u64; // 4 MB below the top
    let mut r = two_range_rig(Granule::K4, "qemu-10.0", 0x1000, base + 0x1000);
    // 4K, NUM=31, SCALE=9: 64 MB from base, 60 MB past 2^64.
    let rf = range(TG4K, 0, 31, 9);
    assert!(Range::from_fields(base, &rf, false).unwrap().overflows());
    r.cmd(nh_vaa(0, base, true, rf));
    r.sync();
    r.forbidden_by(SID, base + 0x1000, 0x8100_0000, "SCOPE-NH-VAA");
    r.fresh(SID, base + 0x1000, 0x9100_0000);
    r.stale(SID, 0x1000, 0x8000_0000);
    r.fresh(SID, 0x1000, 0x9000_0000);
}

/// A stale 2 MB block at `blk` (old 0x8000_0000, new 0x9000_0000).
fn stale_block(blk: u64) -> Rig {
    let (mut r, mut t) = s1_rig("qemu-10.0", 1);
    r.map(&mut t, blk, 0x8000_0000, 2, LeafSpec::S1);
    r.enable();
    r.fresh(SID, blk + 0x5_4321, 0x8005_4321);
    r.map(&mut t, blk, 0x9000_0000, 2, LeafSpec::S1);
    r.stale(SID, blk + 0x5_4321, 0x8005_4321);
    r
}

/// §9 case 17, §4.4 note: a non-range (TG=0) invalidation of an address in the middle of a 2 MB
/// block must remove the block (low address bits are ignored as far as the entry's size needs).
#[test]
fn case_17_tg0_mid_block_address_removes_block() {
    let blk = 0x4000_0000;
    let mut r = stale_block(blk);
    r.cmd(nh_vaa(0, blk + 0x10_0000, true, NO_RANGE));
    r.stale(SID, blk + 0x5_4321, 0x8005_4321);
    r.sync();
    let v = r.forbidden(SID, blk + 0x5_4321, 0x8005_4321);
    assert_eq!(v.rule.id, "SCOPE-NONRANGE-CONTAINS", "{v}");
    r.fresh(SID, blk + 0x5_4321, 0x9005_4321);
}

/// §9 case 18, §4.4.1.1 and digest §10.6 (interpretation): a range starting inside a block
/// (TG=4K, TTL=0, Addr = block + 0x1000, NUM=1) intersects the block, which translates
/// addresses in the invalidated set, so the block must go.
#[test]
fn case_18_range_starting_inside_block_removes_block() {
    let blk = 0x4000_0000;
    let mut r = stale_block(blk);
    r.cmd(nh_vaa(0, blk + 0x1000, true, range(TG4K, 0, 1, 0)));
    r.sync();
    let v = r.forbidden(SID, blk + 0x5_4321, 0x8005_4321);
    assert_eq!(v.rule.id, "SCOPE-RANGE-OVERLAP", "{v}");
    r.fresh(SID, blk + 0x5_4321, 0x9005_4321);
}

/// §9 case 19, §4.4.1.1 note: a VMM forwarding a PE range TLBI (NUM, SCALE_pe; range =
/// (NUM+1)·2^(5·SCALE_pe+1)·granule) uses SCALE_smmu = 5·SCALE_pe + 1 and must cover the same
/// range: for NUM=3, SCALE_pe=1 that is 1 MB; the last page inside goes, the next may stay.
#[test]
fn case_19_pe_style_range_conversion_covers_same_range() {
    let (num, scale_pe) = (3u8, 1u8);
    let pe_len = (num as u64 + 1) << (5 * scale_pe as u32 + 1 + 12);
    let scale = 5 * scale_pe + 1;
    let base = 0x4000_0000u64;
    let rf = range(TG4K, 0b11, num, scale);
    assert_eq!(
        Range::from_fields(base, &rf, false).unwrap().len,
        pe_len as u128
    );

    let (mut r, mut t) = s1_rig("qemu-10.0", 1);
    let pages = [base, base + pe_len - 0x1000, base + pe_len];
    for (i, va) in pages.iter().enumerate() {
        r.map(
            &mut t,
            *va,
            0x8000_0000 + (i as u64) * 0x1000,
            3,
            LeafSpec::S1,
        );
    }
    r.enable();
    for (i, va) in pages.iter().enumerate() {
        r.fresh(SID, *va, 0x8000_0000 + (i as u64) * 0x1000);
        r.map(
            &mut t,
            *va,
            0x9000_0000 + (i as u64) * 0x1000,
            3,
            LeafSpec::S1,
        );
    }
    r.cmd(nh_va(0, 1, base, true, rf));
    r.sync();
    r.forbidden_by(SID, pages[0], 0x8000_0000, "SCOPE-NH-VA");
    r.forbidden_by(SID, pages[1], 0x8000_1000, "SCOPE-NH-VA");
    r.stale(SID, pages[2], 0x8000_2000);
    for (i, va) in pages.iter().enumerate() {
        r.fresh(SID, *va, 0x9000_0000 + (i as u64) * 0x1000);
    }
}

// ---------------------------------------------------------------------------------------------
// Leaf, walk caches and stages
// ---------------------------------------------------------------------------------------------

/// §9 case 20, §4.4.2.x and §3.21.1: after an L2 table descriptor is swapped to a new L3 table,
/// Leaf=1 removes only last-level entries, so a cached L2 table entry may still lead to the old
/// L3 table (MAY-keep); Leaf=0 removes it and the walk must use the new table.
#[test]
fn case_20_leaf1_may_use_stale_next_level_table_leaf0_must_not() {
    let (mut r, mut t) = s1_rig("qemu-10.0", 1);
    let va = 0x4000_0000 + 0x5000;
    r.map(&mut t, va, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    r.fresh(SID, va, 0x8000_0000);
    // New L3 table with another mapping; the old one stays in memory untouched.
    let l2_desc = t.b.leaf_address(&r.shadow, va, 2).unwrap();
    let new_l3 = r.alloc();
    let new_pte = new_l3 + ((va >> 12) & 0x1FF) * 8;
    r.write(
        new_pte,
        smmu_model::tables::leaf_descriptor(
            Granule::K4,
            3,
            0x9000_0000,
            &LeafSpec::S1,
            smmu_model::walk::Stage::S1,
        ),
    );
    r.write(l2_desc, smmu_model::tables::table_descriptor(new_l3));
    r.cmd(nh_va(0, 1, va, true, NO_RANGE));
    r.sync();
    // Old L3 page entry removed, but the cached L2 table entry may still point at the old L3
    // table, whose descriptor still maps the old PA.
    r.stale(SID, va, 0x8000_0000);
    r.fresh(SID, va, 0x9000_0000);
    r.cmd(nh_va(0, 1, va, false, NO_RANGE));
    r.stale(SID, va, 0x8000_0000);
    r.sync();
    r.forbidden_by(SID, va, 0x8000_0000, "SCOPE-NH-VA");
    r.fresh(SID, va, 0x9000_0000);
}

/// A nested stream (VMID 5, ASID 1): VA 0x1000 -> IPA 0x4000_0000 -> PA 0x8000_0000, observed,
/// then the stage-2 page remapped to PA 0x9000_0000 with no invalidation yet.
fn nested_remapped_s2() -> Rig {
    let mut r = Rig::named("qemu-10.0");
    let (mut s1, mut s2) = r.nested_stream(SID, 5, 1);
    r.map(&mut s1, 0x1000, 0x4000_0000, 3, LeafSpec::S1);
    r.map(&mut s2, 0x4000_0000, 0x8000_0000, 3, LeafSpec::S2);
    r.enable();
    r.fresh(SID, 0x1000, 0x8000_0000);
    r.map(&mut s2, 0x4000_0000, 0x9000_0000, 3, LeafSpec::S2);
    r.stale(SID, 0x1000, 0x8000_0000);
    r.fresh(SID, 0x1000, 0x9000_0000);
    r
}

/// §9 case 21, §4.4.3.1 and §16.2.1: in a nested configuration S2_IPA is not required to remove
/// combined S1+S2 entries, so after S2_IPA+SYNC alone the old VA->PA MAY still be seen. Adding
/// NH_VAA (or NH_ALL), or using S12_VMALL, makes it MUST-remove.
#[test]
fn case_21_nested_s2_ipa_alone_keeps_combined_entries() {
    for fix in [
        Some(nh_vaa(5, 0x1000, true, NO_RANGE)),
        Some(Command::TlbiNhAll { vmid: 5 }),
        None,
    ] {
        let mut r = nested_remapped_s2();
        if fix.is_some() {
            r.cmd(s2_ipa(5, 0x4000_0000, true, NO_RANGE));
            r.sync();
            r.stale(SID, 0x1000, 0x8000_0000);
        }
        let (c, rule) = match fix {
            Some(c @ Command::TlbiNhVaa { .. }) => (c, "SCOPE-NH-VAA"),
            Some(c) => (c, "SCOPE-NH-ALL"),
            None => (Command::TlbiS12Vmall { vmid: 5 }, "SCOPE-S12-VMALL"),
        };
        r.cmd(c);
        r.stale(SID, 0x1000, 0x8000_0000);
        r.sync();
        r.forbidden_by(SID, 0x1000, 0x8000_0000, rule);
        r.fresh(SID, 0x1000, 0x9000_0000);
    }
}

/// A stage-2-only stream (VMID 5): IPA 0x4000_0000 -> PA 0x8000_0000, observed, then remapped.
fn s2_remapped(profile: Profile) -> Rig {
    let mut r = Rig::new(profile);
    let mut s2 = r.s2_stream(SID, 5);
    r.map(&mut s2, 0x4000_0000, 0x8000_0000, 3, LeafSpec::S2);
    r.enable();
    r.fresh(SID, 0x4000_0000, 0x8000_0000);
    r.map(&mut s2, 0x4000_0000, 0x9000_0000, 3, LeafSpec::S2);
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r
}

/// §9 case 22, §4.4.3.1: for a stage-2-only STE, S2_IPA+SYNC is sufficient (MUST-remove); an
/// S2_IPA for another VMID is not required to touch it.
#[test]
fn case_22_s2_only_s2_ipa_sufficient() {
    let mut r = s2_remapped(profile("qemu-10.0"));
    r.cmd(s2_ipa(6, 0x4000_0000, true, NO_RANGE));
    r.sync();
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r.cmd(s2_ipa(5, 0x4000_0000, true, NO_RANGE));
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r.sync();
    r.forbidden_by(SID, 0x4000_0000, 0x8000_0000, "SCOPE-S2-IPA");
    r.fresh(SID, 0x4000_0000, 0x9000_0000);
}

/// §9 case 23, §4.4.2.1 and §4.4.3.2 (digest §10.10): NH_ALL is a stage-1 invalidation and need
/// not remove S2-only (IPA) entries; S12_VMALL must.
#[test]
fn case_23_nh_all_keeps_s2_only_s12_vmall_removes() {
    let mut r = s2_remapped(profile("qemu-10.0"));
    r.cmd(Command::TlbiNhAll { vmid: 5 });
    r.sync();
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r.cmd(Command::TlbiS12Vmall { vmid: 5 });
    r.sync();
    r.forbidden_by(SID, 0x4000_0000, 0x8000_0000, "SCOPE-S12-VMALL");
    r.fresh(SID, 0x4000_0000, 0x9000_0000);
}

/// §9 case 24, §4.4.4.1 and §3.11: NSNH_ALL does not require EL2 or EL2-E2H entries to go
/// (they are a different StreamWorld); EL2_ALL does. STE.STRW=0b10 on an SMMU with Hyp.
#[test]
fn case_24_nsnh_all_keeps_el2_entries_el2_all_removes() {
    for e2h in [false, true] {
        let mut r = Rig::named("smmuv3.4-full");
        r.m.set_e2h(e2h);
        let (_, _, mut t) = r.s1_stream(SID, cd4k(3), |s| s.with_strw(0b10));
        r.map(&mut t, 0x1000, 0x8000_0000, 3, LeafSpec::S1.ng(e2h));
        r.enable();
        r.fresh(SID, 0x1000, 0x8000_0000);
        r.map(&mut t, 0x1000, 0x9000_0000, 3, LeafSpec::S1.ng(e2h));
        r.cmd(Command::TlbiNsnhAll);
        r.cmd(Command::TlbiNhAll { vmid: 0 });
        r.sync();
        r.stale(SID, 0x1000, 0x8000_0000);
        r.cmd(Command::TlbiEl2All);
        r.sync();
        r.forbidden_by(SID, 0x1000, 0x8000_0000, "SCOPE-EL2-ALL");
        r.fresh(SID, 0x1000, 0x9000_0000);
    }
}

/// §9 case 25, §4.4.3.1 and §4.1.7: an S2_IPA whose IPA has bits at or above IAS set may be
/// treated as out of range (no effect, or an UNPREDICTABLE address), so nothing is required.
#[test]
fn case_25_s2_ipa_above_ias_out_of_range() {
    let p = profile("qemu-10.0");
    assert_eq!(p.oas_bits, 44);
    let mut r = s2_remapped(p);
    r.cmd(s2_ipa(5, (1 << 44) | 0x4000_0000, true, NO_RANGE));
    r.sync();
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r.fresh(SID, 0x4000_0000, 0x9000_0000);
    assert_eq!(
        r.forbidden(SID, 0x4000_0000, 0x7000_0000).rule.id,
        "NO-SUCH-TRANSLATION"
    );
    r.cmd(s2_ipa(5, 0x4000_0000, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, 0x4000_0000, 0x8000_0000, "SCOPE-S2-IPA");
}

/// §9 case 26, §4.4.2 and §3.4.1: NH_VA with a non-canonical VA (bits [63:VAS-1] not all equal),
/// or with a non-zero top byte, may be treated as out of range (and TBI is optional), so it need
/// not remove anything; the canonical form must.
#[test]
fn case_26_nh_va_non_canonical_or_top_byte_optional() {
    let va = 0x40_3000;
    let mut r = one_stale_page("qemu-10.0", va);
    for bad in [va | 0x0001_0000_0000_0000, va | 0x5A00_0000_0000_0000] {
        r.cmd(nh_va(0, 1, bad, true, NO_RANGE));
        r.sync();
        nothing_asserted(&r, va);
    }
    r.cmd(nh_va(0, 1, va, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, va, 0x8000_0000, "SCOPE-NH-VA");

    // With CD.TBI0 = 1 an access with a tagged VA uses the entry cached for its canonical VA
    // (§3.4.1): the stale entry is allowed through the tagged VA too, a TLBI with the tagged VA
    // need not remove it (TBI in TLBI is optional, §4.4.2), the canonical one must.
    let mut r = Rig::named("qemu-10.0");
    let cd = cd4k(1).with_tbi(true, false);
    let (_, _, mut t) = r.s1_stream(SID, cd, |s| s);
    r.map(&mut t, va, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    let tagged = va | 0x5A00_0000_0000_0000;
    r.fresh(SID, tagged, 0x8000_0000);
    r.map(&mut t, va, 0x9000_0000, 3, LeafSpec::S1);
    r.fresh(SID, tagged, 0x9000_0000);
    r.stale(SID, tagged, 0x8000_0000);
    r.cmd(nh_va(0, 1, tagged, true, NO_RANGE));
    r.sync();
    r.stale(SID, tagged, 0x8000_0000);
    r.cmd(nh_va(0, 1, va, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, tagged, 0x8000_0000, "SCOPE-NH-VA");
    r.fresh(SID, tagged, 0x9000_0000);
}

// ---------------------------------------------------------------------------------------------
// ASID, VMID and global entries
// ---------------------------------------------------------------------------------------------

const X: u64 = 0x10_0000; // a global page
const Y: u64 = 0x20_0000; // a non-global page

/// ASID-1 stream with a global page X (0x8000_0000) and a non-global page Y (0x8100_0000), both
/// observed and then remapped (+0x1000_0000) with no invalidation.
fn global_and_non_global(profile: &str, cd: Cd) -> (Rig, u64) {
    let mut r = Rig::named(profile);
    let (cd_pa, _, mut t) = r.s1_stream(SID, cd, |s| s);
    r.map(&mut t, X, 0x8000_0000, 3, LeafSpec::S1);
    r.map(&mut t, Y, 0x8100_0000, 3, LeafSpec::S1.ng(true));
    r.enable();
    r.fresh(SID, X, 0x8000_0000);
    r.fresh(SID, Y, 0x8100_0000);
    r.map(&mut t, X, 0x9000_0000, 3, LeafSpec::S1);
    r.map(&mut t, Y, 0x9100_0000, 3, LeafSpec::S1.ng(true));
    (r, cd_pa)
}

/// §9 case 27, §4.4.2.2, §4.4.2.4 and §3.17.1: NH_ASID need not remove global entries
/// (MAY-keep) but removes non-global ones of that ASID; NH_VA must remove a global entry for its
/// address whatever ASID it names.
#[test]
fn case_27_nh_asid_keeps_global_nh_va_removes_global_any_asid() {
    let (mut r, _) = global_and_non_global("qemu-10.0", cd4k(1));
    r.cmd(Command::TlbiNhAsid { vmid: 0, asid: 1 });
    r.sync();
    r.stale(SID, X, 0x8000_0000);
    r.forbidden_by(SID, Y, 0x8100_0000, "SCOPE-NH-ASID");
    r.fresh(SID, Y, 0x9100_0000);
    r.cmd(nh_va(0, 0x77, X, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, X, 0x8000_0000, "SCOPE-NH-VA-GLOBAL");
    r.fresh(SID, X, 0x9000_0000);
}

/// Rewrite the CD at `cd_pa` (ASID / ASET change) and invalidate it with CFGI_CD + SYNC.
fn replace_cd(r: &mut Rig, cd_pa: u64, cd: &Cd) {
    r.set_cd(cd_pa, cd);
    r.cmd(Command::CfgiCd {
        ssec: false,
        sid: SID,
        ssid: 0,
        leaf: true,
    });
    r.sync();
}

/// §9 case 28, §3.17.1 and §4.3.3: CD.ASID changed with CFGI_CD but no TLBI: the old non-global
/// entries are hidden behind their ASID tag, but an old global entry still matches the new ASID
/// (same VMID, StreamWorld and ASET) and MAY be used.
#[test]
fn case_28_cd_asid_change_global_entries_still_match() {
    let (mut r, cd_pa) = global_and_non_global("qemu-10.0", cd4k(1));
    let mut cd = Cd::decode(r.shadow_words(cd_pa));
    cd.asid = 2;
    r.set_cd(cd_pa, &cd);
    // Before CFGI_CD completes the old CD (ASID 1) may still be used.
    r.stale(SID, Y, 0x8100_0000);
    r.cmd(Command::CfgiCd {
        ssec: false,
        sid: SID,
        ssid: 0,
        leaf: true,
    });
    r.sync();
    r.stale(SID, X, 0x8000_0000);
    r.fresh(SID, X, 0x9000_0000);
    r.forbidden(SID, Y, 0x8100_0000);
    r.fresh(SID, Y, 0x9100_0000);
}

/// §9 case 29, §4.4 and §3.17.1: TLBIs ignore ASET, but an ASET=0 global entry never satisfies a
/// lookup through an ASET=1 CD.
#[test]
fn case_29_aset0_global_entry_never_hits_aset1_lookup() {
    let (mut r, cd_pa) = global_and_non_global("qemu-10.0", cd4k(1));
    let mut cd = Cd::decode(r.shadow_words(cd_pa));
    cd.aset = true;
    replace_cd(&mut r, cd_pa, &cd);
    r.forbidden(SID, X, 0x8000_0000);
    r.fresh(SID, X, 0x9000_0000);
    // The non-global ASID-1 entry: §3.17.1 restricts ASET matching to global entries, so the
    // model (conservatively) still lets it match; NH_ASID removes it whatever its ASET.
    r.stale(SID, Y, 0x8100_0000);
    r.cmd(Command::TlbiNhAsid { vmid: 0, asid: 1 });
    r.sync();
    r.forbidden_by(SID, Y, 0x8100_0000, "SCOPE-NH-ASID");
    // With ASET=1 global entries, the TLBI still ignores ASET: NH_VAA removes them.
    let (mut r, cd_pa) = global_and_non_global("qemu-10.0", cd4k(1).with_aset(true));
    let _ = cd_pa;
    r.stale(SID, X, 0x8000_0000);
    r.cmd(nh_vaa(0, X, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, X, 0x8000_0000, "SCOPE-NH-VAA");
}

/// Consume `c`; an ILL verdict is acceptable (returns false) when the case allows it.
fn consume_or_ill(r: &mut Rig, c: Command) -> bool {
    match r.m.consume(c.encode()) {
        Ok(_) => true,
        Err(rule) => {
            assert!(rule.section.starts_with('§'));
            false
        }
    }
}

/// §9 case 30, §4.4 and §6.3.1 (digest §10.1): with ASID16==0 an ASID with bits [15:8] set is
/// not required to affect TLBs (ILL, no-op or an invalidation are all acceptable); the same for
/// VMID16==0 and VMID[15:8].
#[test]
fn case_30_narrow_asid_vmid_upper_byte_not_required() {
    let (mut r, _) = global_and_non_global("smmuv3.0-s1-norange", cd4k(1));
    assert!(!r.m.profile.asid16);
    consume_or_ill(
        &mut r,
        Command::TlbiNhAsid {
            vmid: 0,
            asid: 0x101,
        },
    );
    r.sync();
    r.stale(SID, Y, 0x8100_0000);
    r.fresh(SID, Y, 0x9100_0000);
    r.cmd(Command::TlbiNhAsid { vmid: 0, asid: 1 });
    r.sync();
    r.forbidden_by(SID, Y, 0x8100_0000, "SCOPE-NH-ASID");

    // VMID16 (IDR0 bit 18) cleared on a stage-2 capable profile.
    let p = profile_idr0("qemu-10.0", 0, 1 << 18);
    assert!(p.s2p && !p.vmid16);
    let mut r = s2_remapped(p);
    consume_or_ill(&mut r, Command::TlbiS12Vmall { vmid: 0x105 });
    r.sync();
    r.stale(SID, 0x4000_0000, 0x8000_0000);
    r.fresh(SID, 0x4000_0000, 0x9000_0000);
    r.cmd(Command::TlbiS12Vmall { vmid: 5 });
    r.sync();
    r.forbidden_by(SID, 0x4000_0000, 0x8000_0000, "SCOPE-S12-VMALL");
}

/// §9 case 31, §4.4.2 and §4.4.4.1 note (digest §10.2): with S2P==0 an NH_* VMID != 0 may hit an
/// UNKNOWN VMID or nothing; VMID=0 must work, and NH_ALL(0) is a full NS-EL1 flush.
#[test]
fn case_31_s1_only_nh_vmid_nonzero_unknown_vmid0_works() {
    let (mut r, _) = global_and_non_global("qemu-7.2", cd4k(1));
    assert!(!r.m.profile.s2p);
    consume_or_ill(&mut r, Command::TlbiNhAll { vmid: 5 });
    consume_or_ill(&mut r, nh_va(5, 1, Y, true, NO_RANGE));
    r.sync();
    r.stale(SID, X, 0x8000_0000);
    r.stale(SID, Y, 0x8100_0000);
    r.cmd(nh_va(0, 1, Y, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, Y, 0x8100_0000, "SCOPE-NH-VA");
    r.stale(SID, X, 0x8000_0000);
    r.cmd(Command::TlbiNhAll { vmid: 0 });
    r.sync();
    r.forbidden_by(SID, X, 0x8000_0000, "SCOPE-NH-ALL");
    r.fresh(SID, X, 0x9000_0000);
}

/// §9 case 32, §3.17 and §5.2 S2VMID: with S2P==1, entries made through a stage-1-only STE carry
/// STE.S2VMID; NH_VA naming another VMID may leave them, the right VMID must remove them.
#[test]
fn case_32_s1_only_ste_entries_carry_s2vmid() {
    let mut r = Rig::named("qemu-10.0");
    let (_, _, mut t) = r.s1_stream(SID, cd4k(1), |s| s.with_vmid(7));
    r.map(&mut t, Y, 0x8100_0000, 3, LeafSpec::S1.ng(true));
    r.enable();
    r.fresh(SID, Y, 0x8100_0000);
    r.map(&mut t, Y, 0x9100_0000, 3, LeafSpec::S1.ng(true));
    r.cmd(nh_va(8, 1, Y, true, NO_RANGE));
    r.cmd(nh_va(0, 1, Y, true, NO_RANGE));
    r.sync();
    r.stale(SID, Y, 0x8100_0000);
    r.cmd(nh_va(7, 1, Y, true, NO_RANGE));
    r.sync();
    r.forbidden_by(SID, Y, 0x8100_0000, "SCOPE-NH-VA");
    r.fresh(SID, Y, 0x9100_0000);
}

/// Streams on smmuv3.4-full: SID 1 stage 1 with VMID 0x21, SID 2 stage 1 with VMID 0x22, SID 3
/// stage 2 only with VMID 0x21; each page observed then remapped.
fn vmw_rig() -> Rig {
    let mut r = Rig::named("smmuv3.4-full");
    let (_, _, mut t1) = r.s1_stream(1, cd4k(1), |s| s.with_vmid(0x21));
    let (_, _, mut t2) = r.s1_stream(2, cd4k(1), |s| s.with_vmid(0x22));
    let mut s2 = r.s2_stream(3, 0x21);
    r.map(&mut t1, X, 0x8000_0000, 3, LeafSpec::S1);
    r.map(&mut t2, X, 0x8100_0000, 3, LeafSpec::S1);
    r.map(&mut s2, X, 0x8200_0000, 3, LeafSpec::S2);
    r.enable();
    for (sid, pa) in [(1, 0x8000_0000), (2, 0x8100_0000), (3, 0x8200_0000)] {
        r.fresh(sid, X, pa);
    }
    r.map(&mut t1, X, 0x9000_0000, 3, LeafSpec::S1);
    r.map(&mut t2, X, 0x9100_0000, 3, LeafSpec::S1);
    r.map(&mut s2, X, 0x9200_0000, 3, LeafSpec::S2);
    r
}

/// §9 case 33, §3.17.6, §6.3.9 and §4.1.2: with CR0.VMW=1, NH_*, S2_IPA and S12_VMALL for VMID
/// 0x20 must also invalidate VMID 0x21 (not 0x22). A VMW change while such a TLBI is in flight
/// is not guaranteed: either value may apply, so the entry MAY stay.
#[test]
fn case_33_vmw_wildcard_and_in_flight_change() {
    let mut r = vmw_rig();
    r.m.set_vmw(1);
    r.cmd(Command::TlbiNhAll { vmid: 0x20 });
    r.cmd(s2_ipa(0x20, X, true, NO_RANGE));
    r.sync();
    r.forbidden_by(1, X, 0x8000_0000, "SCOPE-NH-ALL");
    r.stale(2, X, 0x8100_0000);
    r.forbidden_by(3, X, 0x8200_0000, "SCOPE-S2-IPA");

    let mut r = vmw_rig();
    r.m.set_vmw(1);
    r.cmd(Command::TlbiS12Vmall { vmid: 0x20 });
    r.sync();
    r.forbidden_by(1, X, 0x8000_0000, "SCOPE-S12-VMALL");
    r.stale(2, X, 0x8100_0000);
    r.forbidden_by(3, X, 0x8200_0000, "SCOPE-S12-VMALL");

    // VMW changes 0 -> 1 and 1 -> 0 between consumption and SYNC: old or new value (§4.1.2).
    for (before, after) in [(0, 1), (1, 0)] {
        let mut r = vmw_rig();
        r.m.set_vmw(before);
        r.cmd(Command::TlbiNhAll { vmid: 0x20 });
        r.cmd(Command::TlbiS12Vmall { vmid: 0x20 });
        r.m.set_vmw(after);
        r.sync();
        r.stale(1, X, 0x8000_0000);
        r.stale(3, X, 0x8200_0000);
        r.fresh(1, X, 0x9000_0000);
        // A command consumed after the change uses the new value only.
        r.cmd(Command::TlbiS12Vmall { vmid: 0x20 });
        r.sync();
        if after == 1 {
            r.forbidden(1, X, 0x8000_0000);
        } else {
            r.stale(1, X, 0x8000_0000);
        }
    }
}

/// §9 case 34, §3.10.2.2 and §4.4.2: on the Secure queue with SEL2==1, Secure stage-1-only
/// entries carry VMID 0, so NH_* needs VMID=0 to hit them. Secure streams are not walked by the
/// model (documented limitation), so the Secure-world part is checked on the required scope and
/// the model part checks that Secure-queue NH_* leave Non-secure entries alone.
#[test]
fn case_34_secure_queue_sel2_nh_needs_vmid0_for_s1_only() {
    let p = profile("smmuv3.4-full");
    assert!(p.sel2);
    let ctx = ScopeCtx::new(p, Queue::Secure);
    let tag = TlbTag {
        world: StreamWorld::SEl1,
        stage: EntryStage::S1,
        kind: EntryKind::Leaf,
        vmid: 0,
        asid: 1,
        global: false,
        aset: false,
        granule: Granule::K4,
        level: 3,
        d128: false,
        base: X,
        size: 0x1000,
        ipa_space_ns: true,
    };
    let all = |vmid| required_scope(&ctx, Command::TlbiNhAll { vmid }.encode());
    assert!(all(0).requires_tlb(&tag));
    assert!(!all(5).requires_tlb(&tag));
    let va = |vmid| required_scope(&ctx, nh_va(vmid, 1, X, true, NO_RANGE).encode());
    assert!(va(0).requires_tlb(&tag));
    assert!(!va(5).requires_tlb(&tag));

    // In the model: a Secure-queue NH_ALL(0) does not cover the NS-EL1 entry (VMID 0x21).
    let mut r = vmw_rig();
    r.m.consume_on(Queue::Secure, Command::TlbiNhAll { vmid: 0 }.encode())
        .unwrap();
    r.m.consume_on(Queue::Secure, Command::TlbiNhAll { vmid: 0x21 }.encode())
        .unwrap();
    r.sync();
    r.stale(1, X, 0x8000_0000);
    r.cmd(Command::TlbiNhAll { vmid: 0x21 });
    r.sync();
    r.forbidden_by(1, X, 0x8000_0000, "SCOPE-NH-ALL");
    assert_eq!(r.check(1, X, 0x9000_0000).unwrap(), Accepted::Fresh);
}

/// `RangeFields` is used by the helpers; keep the import meaningful for readers.
#[allow(dead_code)]
const _R: RangeFields = NO_RANGE;

/// docs/model.md, "Review of the session-2 widenings" (9884244): a global leaf a Leaf=1 TLBI
/// removed survives its SYNC when a stale walk-cache entry can refill it, and matches the
/// rebuilt leaf whatever the ASID (§3.17.1) but not whatever the ASET: the walk-cache entry
/// (ASID 1, ASET 0) serves only contexts of ASID 1, so it refills the leaf with ASET 0, which an
/// ASET=1 lookup never matches (§3.17.1, §5.4.1). The model must reject the old page through
/// the current (ASID 2, ASET 1) CD.
#[test]
fn global_leaf_refill_through_a_walk_cache_entry_keeps_its_aset() {
    let x = 0x20_3000;
    let mut r = Rig::named("qemu-10.0");
    let (cd_pa, _, mut t) = r.s1_stream(SID, cd4k(1), |s| s);
    r.map(&mut t, x, 0x8000_0000, 3, LeafSpec::S1);
    r.enable();
    // Walk-cache entries tagged ASID 1 (ASET 0) and the global leaf are cached.
    r.fresh(SID, x, 0x8000_0000);
    // The CD becomes ASID 2, ASET 1, and the old CD is invalidated: no ASID-1 context is left.
    let mut cd = Cd::decode(r.shadow_words(cd_pa));
    cd.asid = 2;
    cd.aset = true;
    replace_cd(&mut r, cd_pa, &cd);
    r.fresh(SID, x, 0x8000_0000);
    // The level-1 table becomes a 1 GB block: the old tables are reachable only through stale
    // walk-cache entries.
    r.map(&mut t, 0, 0x4000_0000, 1, LeafSpec::S1.ng(true));
    r.cmd(Command::TlbiNhAsid { vmid: 0, asid: 2 });
    r.cmd(nh_vaa(0, x, true, NO_RANGE));
    r.sync();
    r.fresh(SID, x, 0x4020_3000);
    r.forbidden(SID, x, 0x8000_0000);
}
