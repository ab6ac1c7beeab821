//! Required-scope tests: for every command at least one entry that MUST go and one that need not,
//! named after the rule or the digest §9 case.

use proptest::prelude::*;
use smmu_model::command::{AddrInval, Command, RangeFields, RawCommand};
use smmu_model::granule::Granule;
use smmu_model::profile::{Profile, Queue};
use smmu_model::scope::{required_scope, Scope, ScopeCtx};
use smmu_model::tlb::{AtcTag, CfgTag, EntryKind, EntryStage, Security, StreamWorld, TlbTag};

use EntryKind::{Leaf, Table};
use EntryStage::{Combined, S1, S2};
use StreamWorld::*;

const GB: u64 = 1 << 30;
const MB2: u64 = 2 << 20;

fn full(q: Queue) -> ScopeCtx {
    ScopeCtx::new(Profile::named("smmuv3.4-full").unwrap(), q)
}
fn ns() -> ScopeCtx {
    full(Queue::NonSecure)
}
fn scope(ctx: &ScopeCtx, c: Command) -> Scope {
    required_scope(ctx, c.encode())
}

/// A 4KB-granule leaf page.
fn page(world: StreamWorld, vmid: u16, asid: u16, base: u64) -> TlbTag {
    TlbTag {
        world,
        stage: S1,
        kind: Leaf,
        vmid,
        asid,
        global: false,
        aset: false,
        granule: Granule::K4,
        level: 3,
        d128: false,
        base,
        size: 4096,
        ipa_space_ns: false,
    }
}
fn at(mut t: TlbTag, kind: EntryKind, level: u8) -> TlbTag {
    t.kind = kind;
    t.level = level;
    t.size = 1u64 << t.granule.span_shift(level, false).unwrap();
    t.base &= !(t.size - 1);
    t
}
fn global(mut t: TlbTag) -> TlbTag {
    t.global = true;
    t
}
fn stage(mut t: TlbTag, s: EntryStage) -> TlbTag {
    t.stage = s;
    t
}
fn gran(mut t: TlbTag, g: Granule, kind: EntryKind, level: u8) -> TlbTag {
    t.granule = g;
    at(t, kind, level)
}

fn inv(addr: u64, leaf: bool) -> AddrInval {
    AddrInval {
        addr,
        leaf,
        range: RangeFields::default(),
    }
}
fn rinv(addr: u64, leaf: bool, tg: u8, ttl: u8, num: u8, scale: u8) -> AddrInval {
    AddrInval {
        addr,
        leaf,
        range: RangeFields {
            tg,
            ttl,
            ttl128: false,
            num,
            scale,
        },
    }
}
fn nh_va(vmid: u16, asid: u16, i: AddrInval) -> Command {
    Command::TlbiNhVa { vmid, asid, inv: i }
}
fn nh_vaa(vmid: u16, i: AddrInval) -> Command {
    Command::TlbiNhVaa { vmid, inv: i }
}

fn must(s: &Scope, t: &TlbTag) {
    assert!(s.requires_tlb(t), "{} should require {t:?}", s.describe());
    assert!(s.rule_for_tlb(t).is_some());
}
fn may(s: &Scope, t: &TlbTag) {
    assert!(
        !s.requires_tlb(t),
        "{} should not require {t:?}",
        s.describe()
    );
}

// ---------------- NH_* ----------------

#[test]
fn nh_all_requires_s1_and_global_for_vmid_not_s2_or_el2() {
    let s = scope(&ns(), Command::TlbiNhAll { vmid: 5 });
    must(&s, &page(NsEl1, 5, 9, 0x1000));
    must(&s, &global(page(NsEl1, 5, 9, 0x1000)));
    must(&s, &stage(page(NsEl1, 5, 9, 0x1000), Combined));
    must(&s, &at(page(NsEl1, 5, 9, 0x1000), Table, 1));
    may(&s, &page(NsEl1, 6, 9, 0x1000));
    may(&s, &page(NsEl2, 0, 0, 0x1000));
    may(&s, &page(SEl1, 5, 9, 0x1000));
}

#[test]
fn case_23_nh_all_does_not_require_s2_only_but_s12_vmall_does() {
    let e = stage(page(NsEl1, 5, 0, 0x1000), S2);
    may(&scope(&ns(), Command::TlbiNhAll { vmid: 5 }), &e);
    must(&scope(&ns(), Command::TlbiS12Vmall { vmid: 5 }), &e);
}

#[test]
fn case_27_nh_asid_keeps_globals_nh_va_removes_them() {
    let g = global(page(NsEl1, 1, 7, 0x40_0000));
    let s = scope(&ns(), Command::TlbiNhAsid { vmid: 1, asid: 3 });
    may(&s, &g);
    must(&s, &page(NsEl1, 1, 3, 0x40_0000));
    must(&s, &at(page(NsEl1, 1, 3, 0x40_0000), Table, 0));
    may(&s, &page(NsEl1, 1, 4, 0x40_0000));
    let s = scope(&ns(), nh_va(1, 3, inv(0x40_0000, false)));
    must(&s, &g);
    assert_eq!(s.rule_for_tlb(&g).unwrap().id, "SCOPE-NH-VA-GLOBAL");
    must(&s, &page(NsEl1, 1, 3, 0x40_0000));
    may(&s, &page(NsEl1, 1, 4, 0x40_0000));
    may(&s, &page(NsEl1, 1, 3, 0x40_1000));
}

#[test]
fn nh_vaa_requires_every_asid_for_the_address() {
    let s = scope(&ns(), nh_vaa(2, inv(0x8000, true)));
    must(&s, &page(NsEl1, 2, 1, 0x8000));
    must(&s, &page(NsEl1, 2, 0xFFFF, 0x8000));
    may(&s, &page(NsEl1, 3, 1, 0x8000));
    may(&s, &stage(page(NsEl1, 2, 1, 0x8000), S2));
}

#[test]
fn case_20_leaf_one_does_not_require_walk_cache() {
    let t = at(page(NsEl1, 2, 1, 0x8000), Table, 2);
    may(&scope(&ns(), nh_vaa(2, inv(0x8000, true))), &t);
    must(&scope(&ns(), nh_vaa(2, inv(0x8000, false))), &t);
}

#[test]
fn case_17_tg0_address_in_middle_of_block() {
    let blk = at(page(NsEl1, 0, 1, 0), Leaf, 2);
    let s = scope(&ns(), nh_vaa(0, inv(0x12_3000, true)));
    must(&s, &blk);
    may(&s, &at(page(NsEl1, 0, 1, 0x20_0000), Leaf, 2));
}

#[test]
fn case_31_no_s2_vmid_zero_matches_all_nonzero_empty() {
    let c = ScopeCtx::new(Profile::named("qemu-7.2").unwrap(), Queue::NonSecure);
    let s = scope(&c, Command::TlbiNhAll { vmid: 0 });
    must(&s, &page(NsEl1, 0, 1, 0));
    must(&s, &page(NsEl1, 7, 1, 0));
    let s = scope(&c, Command::TlbiNhAll { vmid: 3 });
    assert!(s.is_empty(), "{}", s.describe());
    may(&s, &page(NsEl1, 3, 1, 0));
}

#[test]
fn case_32_s1_only_ste_tagged_with_s2vmid() {
    let e = page(NsEl1, 9, 1, 0x5000);
    must(&scope(&ns(), nh_va(9, 1, inv(0x5000, true))), &e);
    may(&scope(&ns(), nh_va(8, 1, inv(0x5000, true))), &e);
}

#[test]
fn case_33_vmw_wildcard() {
    let mut c = ns();
    c.vmw = 1;
    let s = scope(&c, Command::TlbiNhAll { vmid: 0x20 });
    must(&s, &page(NsEl1, 0x21, 1, 0));
    may(&s, &page(NsEl1, 0x22, 1, 0));
    must(
        &scope(&c, Command::TlbiS12Vmall { vmid: 0x21 }),
        &page(NsEl1, 0x20, 1, 0),
    );
    c.vmw = 7; // reserved: behaves as 0
    may(
        &scope(&c, Command::TlbiNhAll { vmid: 0x20 }),
        &page(NsEl1, 0x21, 1, 0),
    );
}

#[test]
fn case_30_narrow_asid_upper_byte_set_is_empty() {
    let c = ScopeCtx::new(
        Profile::named("smmuv3.0-s1-norange").unwrap(),
        Queue::NonSecure,
    );
    let s = scope(
        &c,
        Command::TlbiNhAsid {
            vmid: 0,
            asid: 0x103,
        },
    );
    assert!(s.is_empty());
    may(&s, &page(NsEl1, 0, 3, 0));
    must(
        &scope(&c, Command::TlbiNhAsid { vmid: 0, asid: 3 }),
        &page(NsEl1, 0, 3, 0),
    );
}

#[test]
fn case_34_secure_queue_sel2_vmid_zero_hits_secure_s1() {
    let c = full(Queue::Secure);
    let e = page(SEl1, 0, 1, 0);
    must(&scope(&c, Command::TlbiNhAll { vmid: 0 }), &e);
    may(&scope(&c, Command::TlbiNhAll { vmid: 1 }), &e);
    may(
        &scope(&c, Command::TlbiNhAll { vmid: 0 }),
        &page(NsEl1, 0, 1, 0),
    );
    may(
        &scope(&c, Command::TlbiNhAll { vmid: 0 }),
        &page(El3, 0, 0, 0),
    );
}

#[test]
fn case_26_non_canonical_va_is_out_of_range() {
    // VAX=0b01 (52-bit): bits [63:52] must all be equal.
    let s = scope(&ns(), nh_vaa(0, inv(0x0010_0000_0000_0000, true)));
    assert!(s.is_empty(), "{}", s.describe());
    let s = scope(&ns(), nh_vaa(0, inv(0xFFF0_0000_0000_0000, true)));
    must(&s, &page(NsEl1, 0, 0, 0xFFF0_0000_0000_0000));
}

// ---------------- Range, TG, TTL ----------------

#[test]
fn case_8_range_extreme_end_exclusive() {
    // NUM=31, SCALE=31, TG=64K: 2^52 bytes (DS == 0 profile).
    let c = ScopeCtx::new(Profile::named("qemu-10.0").unwrap(), Queue::NonSecure);
    let s = scope(&c, nh_vaa(0, rinv(0, true, 3, 0, 31, 31)));
    let p = |b| gran(page(NsEl1, 0, 0, b), Granule::K64, Leaf, 3);
    must(&s, &p((1 << 52) - 0x10000));
    may(&s, &p(1 << 52));
}

#[test]
fn case_9_other_granule_not_required() {
    let s = scope(&ns(), nh_vaa(0, rinv(0, true, 3, 3, 0, 0)));
    may(&s, &page(NsEl1, 0, 0, 0));
    must(&s, &gran(page(NsEl1, 0, 0, 0), Granule::K64, Leaf, 3));
}

#[test]
fn case_10_ttl11_does_not_require_l2_block() {
    let blk = at(page(NsEl1, 0, 0, 0x20_0000), Leaf, 2);
    may(
        &scope(&ns(), nh_vaa(0, rinv(0x20_0000, true, 1, 3, 0, 0))),
        &blk,
    );
    must(
        &scope(&ns(), nh_vaa(0, rinv(0x20_0000, true, 1, 2, 0, 0))),
        &blk,
    );
}

#[test]
fn case_11_leaf0_ttl10_tables_before_level() {
    let s = scope(&ns(), nh_vaa(0, rinv(0, false, 1, 2, 0, 0)));
    let e = page(NsEl1, 0, 0, 0);
    must(&s, &at(e, Leaf, 2));
    must(&s, &at(e, Table, 0));
    must(&s, &at(e, Table, 1));
    may(&s, &at(e, Leaf, 3));
    may(&s, &at(e, Table, 2));
    may(&s, &at(e, Leaf, 1));
}

#[test]
fn case_12_13_unpredictable_range_is_empty() {
    let s = scope(&ns(), nh_vaa(0, rinv(0x1000, true, 1, 2, 0, 0)));
    assert!(s.is_empty());
    assert_eq!(s.reason().unwrap().id, "SCOPE-RANGE-UNPREDICTABLE");
    let s = scope(&ns(), nh_vaa(0, rinv(0x1000, true, 3, 3, 0, 0)));
    assert!(s.is_empty());
    may(&s, &gran(page(NsEl1, 0, 0, 0), Granule::K64, Leaf, 3));
}

#[test]
fn case_14_ttl128_misaligned_nothing_required() {
    let mut i = rinv(0x8_0000, true, 1, 2, 0, 0);
    i.range.ttl128 = true;
    let s = scope(&ns(), nh_vaa(0, i));
    assert!(s.is_empty());
    assert_eq!(s.reason().unwrap().id, "SCOPE-RANGE-TTL128-MISALIGNED");
    // Aligned: only 128-bit-descriptor entries at that level.
    i.addr = 0x10_0000;
    let s = scope(&ns(), nh_vaa(0, i));
    let mut e = page(NsEl1, 0, 0, 0x10_0000);
    e.level = 2;
    e.size = 1 << 20;
    may(&s, &e);
    e.d128 = true;
    must(&s, &e);
}

#[test]
fn case_15_ttb0_range_into_ttb1_not_required() {
    // DS == 1, 64K, NUM=31, SCALE=39: 2^60 bytes from a TTB0-half base.
    let s = scope(
        &ns(),
        nh_vaa(0, rinv(0x000F_0000_0000_0000, true, 3, 0, 31, 39)),
    );
    let p = |b| gran(page(NsEl1, 0, 0, b), Granule::K64, Leaf, 3);
    must(&s, &p(0x000F_0000_0000_0000));
    may(&s, &p(0x0080_0000_0000_0000));
    may(&s, &p(0xFFFF_0000_0000_0000));
}

#[test]
fn case_16_ttb1_range_past_top_does_not_wrap() {
    let s = scope(
        &ns(),
        nh_vaa(0, rinv(0xFFFF_FFFF_FFF0_0000, true, 3, 0, 31, 39)),
    );
    let p = |b| gran(page(NsEl1, 0, 0, b), Granule::K64, Leaf, 3);
    must(&s, &p(0xFFFF_FFFF_FFFF_0000));
    may(&s, &p(0));
}

#[test]
fn case_18_range_starting_inside_block_requires_block() {
    let blk = at(page(NsEl1, 0, 0, 0x20_0000), Leaf, 2);
    let s = scope(&ns(), nh_vaa(0, rinv(0x20_1000, true, 1, 0, 1, 0)));
    must(&s, &blk);
    assert_eq!(s.rule_for_tlb(&blk).unwrap().id, "SCOPE-RANGE-OVERLAP");
    may(&s, &at(page(NsEl1, 0, 0, 0x40_0000), Leaf, 2));
}

#[test]
fn case_19_pe_style_range_conversion() {
    // PE: NUM=3, SCALE_pe=1 -> (3+1) * 2^(5+1) pages; SMMU SCALE = 5*1+1 = 6.
    let s = scope(&ns(), nh_vaa(0, rinv(0, true, 1, 3, 3, 6)));
    must(&s, &page(NsEl1, 0, 0, (4 * 64 - 1) * 4096));
    may(&s, &page(NsEl1, 0, 0, 4 * 64 * 4096));
}

#[test]
fn ttl_combined_entries_only_at_ttl_level() {
    let e = stage(at(page(NsEl1, 0, 0, 0), Leaf, 3), Combined);
    must(&scope(&ns(), nh_vaa(0, rinv(0, true, 1, 3, 0, 0))), &e);
    may(&scope(&ns(), nh_vaa(0, rinv(0, true, 1, 2, 0, 0))), &e);
}

#[test]
fn range_reserved_combination_is_empty() {
    let s = scope(&ns(), nh_vaa(0, rinv(0, true, 1, 0, 0, 0)));
    assert!(s.is_empty());
}

// ---------------- EL2 / EL3 ----------------

#[test]
fn case_24_nsnh_all_keeps_el2_el2_all_removes() {
    let e2 = page(NsEl2, 0, 0, 0);
    let e2h = page(NsEl2E2h, 0, 4, 0);
    let s = scope(&ns(), Command::TlbiNsnhAll);
    may(&s, &e2);
    may(&s, &e2h);
    must(&s, &page(NsEl1, 77, 1, 0));
    must(&s, &stage(page(NsEl1, 3, 0, 0), S2));
    may(&s, &page(SEl1, 0, 1, 0));
    let s = scope(&ns(), Command::TlbiEl2All);
    must(&s, &e2);
    must(&s, &e2h);
    may(&s, &page(NsEl1, 0, 0, 0));
}

#[test]
fn el2_va_follows_e2h() {
    let mut c = ns();
    let cmd = Command::TlbiEl2Va {
        asid: 5,
        inv: inv(0x3000, true),
    };
    let s = scope(&c, cmd);
    must(&s, &page(NsEl2, 0, 0, 0x3000));
    may(&s, &page(NsEl2E2h, 0, 5, 0x3000));
    c.e2h = true;
    let s = scope(&c, cmd);
    may(&s, &page(NsEl2, 0, 0, 0x3000));
    must(&s, &page(NsEl2E2h, 0, 5, 0x3000));
    must(&s, &global(page(NsEl2E2h, 0, 6, 0x3000)));
    may(&s, &page(NsEl2E2h, 0, 6, 0x3000));
}

#[test]
fn el2_vaa_follows_e2h() {
    let mut c = ns();
    c.e2h = true;
    let s = scope(
        &c,
        Command::TlbiEl2Vaa {
            inv: inv(0x3000, true),
        },
    );
    must(&s, &page(NsEl2E2h, 0, 6, 0x3000));
    may(&s, &page(NsEl2, 0, 0, 0x3000));
}

#[test]
fn el2_asid_non_global_e2h_only() {
    let s = scope(&ns(), Command::TlbiEl2Asid { asid: 5 });
    must(&s, &page(NsEl2E2h, 0, 5, 0));
    may(&s, &global(page(NsEl2E2h, 0, 5, 0)));
    may(&s, &page(NsEl2, 0, 5, 0));
}

#[test]
fn el3_commands_secure_queue_only() {
    let s = scope(&full(Queue::Secure), Command::TlbiEl3All);
    must(&s, &page(El3, 0, 0, 0));
    may(&s, &page(SEl1, 0, 0, 0));
    assert!(scope(&ns(), Command::TlbiEl3All).is_empty());
    let s = scope(
        &full(Queue::Secure),
        Command::TlbiEl3Va {
            inv: inv(0x7000, true),
        },
    );
    must(&s, &page(El3, 0, 0, 0x7000));
    may(&s, &page(El3, 0, 0, 0x8000));
}

#[test]
fn secure_el2_commands() {
    let mut c = full(Queue::Secure);
    must(&scope(&c, Command::TlbiSEl2All), &page(SEl2, 0, 0, 0));
    may(&scope(&c, Command::TlbiSEl2All), &page(NsEl2, 0, 0, 0));
    assert!(scope(&ns(), Command::TlbiSEl2All).is_empty());
    c.s_e2h = true;
    let s = scope(
        &c,
        Command::TlbiSEl2Va {
            asid: 2,
            inv: inv(0, true),
        },
    );
    must(&s, &page(SEl2E2h, 0, 2, 0));
    may(&s, &page(SEl2, 0, 2, 0));
    let s = scope(&c, Command::TlbiSEl2Vaa { inv: inv(0, true) });
    must(&s, &page(SEl2E2h, 0, 9, 0));
    let s = scope(&c, Command::TlbiSEl2Asid { asid: 2 });
    must(&s, &page(SEl2E2h, 0, 2, 0));
    may(&s, &page(SEl2E2h, 0, 3, 0));
}

// ---------------- Stage 2 ----------------

#[test]
fn case_21_s2_ipa_keeps_combined_entries() {
    let s = scope(
        &ns(),
        Command::TlbiS2Ipa {
            vmid: 4,
            inv: inv(0x9000, true),
        },
    );
    may(&s, &stage(page(NsEl1, 4, 0, 0x9000), Combined));
    must(
        &scope(&ns(), Command::TlbiS12Vmall { vmid: 4 }),
        &stage(page(NsEl1, 4, 0, 0x9000), Combined),
    );
}

#[test]
fn case_22_s2_ipa_removes_s2_only_entries() {
    let s = scope(
        &ns(),
        Command::TlbiS2Ipa {
            vmid: 4,
            inv: inv(0x9000, true),
        },
    );
    must(&s, &stage(page(NsEl1, 4, 0, 0x9000), S2));
    may(&s, &stage(page(NsEl1, 5, 0, 0x9000), S2));
    may(&s, &page(NsEl1, 4, 0, 0x9000));
}

#[test]
fn s12_vmall_other_vmid_and_el2_not_required() {
    let s = scope(&ns(), Command::TlbiS12Vmall { vmid: 4 });
    must(&s, &at(stage(page(NsEl1, 4, 0, 0), S2), Table, 1));
    may(&s, &page(NsEl1, 5, 0, 0));
    may(&s, &page(NsEl2, 0, 0, 0));
}

#[test]
fn secure_stage2_commands() {
    let c = full(Queue::Secure);
    let mut e = stage(page(SEl1, 4, 0, 0x9000), S2);
    let s = scope(
        &c,
        Command::TlbiSS2Ipa {
            vmid: 4,
            ns: true,
            inv: inv(0x9000, true),
        },
    );
    may(&s, &e);
    e.ipa_space_ns = true;
    must(&s, &e);
    let s = scope(&c, Command::TlbiSS12Vmall { vmid: 4 });
    must(&s, &page(SEl1, 4, 1, 0));
    may(&s, &page(NsEl1, 4, 1, 0));
    let s = scope(&c, Command::TlbiSnhAll);
    must(&s, &page(SEl1, 9, 1, 0));
    may(&s, &page(SEl2, 0, 0, 0));
    may(&s, &page(El3, 0, 0, 0));
    assert!(scope(&ns(), Command::TlbiSnhAll).is_empty());
}

// ---------------- Configuration ----------------

fn ste(sid: u32) -> CfgTag {
    CfgTag::Ste {
        sec: Security::NonSecure,
        sid,
    }
}

#[test]
fn cfgi_ste_and_case_59_leaf() {
    let l1 = CfgTag::L1Std {
        sec: Security::NonSecure,
        sid_first: 0x100,
        sid_count: 0x100,
    };
    let s = scope(
        &ns(),
        Command::CfgiSte {
            ssec: false,
            sid: 0x142,
            leaf: true,
        },
    );
    assert!(s.requires_cfg(&ste(0x142)));
    assert!(s.requires_cfg(&CfgTag::Cd {
        sec: Security::NonSecure,
        sid: 0x142,
        ssid: 3
    }));
    assert!(!s.requires_cfg(&ste(0x143)));
    assert!(!s.requires_cfg(&l1));
    assert!(!s.requires_tlb(&page(NsEl1, 0, 0, 0)));
    let s = scope(
        &ns(),
        Command::CfgiSte {
            ssec: false,
            sid: 0x142,
            leaf: false,
        },
    );
    assert!(s.requires_cfg(&l1));
}

#[test]
fn case_58_ste_range_ignores_low_sid_bits() {
    let s = scope(
        &ns(),
        Command::CfgiSteRange {
            ssec: false,
            sid: 0x47,
            range: 3,
        },
    );
    assert!(s.requires_cfg(&ste(0x40)));
    assert!(s.requires_cfg(&ste(0x4F)));
    assert!(!s.requires_cfg(&ste(0x50)));
    let s = scope(&ns(), Command::cfgi_all());
    assert!(s.requires_cfg(&ste(0xFFFF_FFFF)));
    assert!(s.requires_cfg(&CfgTag::VmsPidm {
        sec: Security::NonSecure,
        vmid: 3
    }));
    assert!(!s.requires_cfg(&CfgTag::Ste {
        sec: Security::Secure,
        sid: 1
    }));
}

#[test]
fn cfgi_ssec_selects_structures_from_secure_queue() {
    // The full profile's S_IDR1.S_SIDSIZE is 0: one Secure StreamID (SID 0).
    let c = full(Queue::Secure);
    let s = scope(
        &c,
        Command::CfgiSte {
            ssec: true,
            sid: 0,
            leaf: true,
        },
    );
    assert!(s.requires_cfg(&CfgTag::Ste {
        sec: Security::Secure,
        sid: 0
    }));
    assert!(!s.requires_cfg(&ste(0)));
    assert!(scope(
        &c,
        Command::CfgiSte {
            ssec: true,
            sid: 1,
            leaf: true
        }
    )
    .is_empty());
    let s = scope(
        &c,
        Command::CfgiSte {
            ssec: false,
            sid: 1,
            leaf: true,
        },
    );
    assert!(s.requires_cfg(&ste(1)));
    assert!(!s.requires_cfg(&CfgTag::Ste {
        sec: Security::Secure,
        sid: 1
    }));
}

#[test]
fn cfgi_cd_and_case_60_leaf() {
    let l1 = CfgTag::L1Cd {
        sec: Security::NonSecure,
        sid: 2,
        ssid_first: 0,
        ssid_count: 64,
    };
    let cd = |ssid| CfgTag::Cd {
        sec: Security::NonSecure,
        sid: 2,
        ssid,
    };
    let s = scope(
        &ns(),
        Command::CfgiCd {
            ssec: false,
            sid: 2,
            ssid: 5,
            leaf: true,
        },
    );
    assert!(s.requires_cfg(&cd(5)));
    assert!(!s.requires_cfg(&cd(6)));
    assert!(!s.requires_cfg(&l1));
    let s = scope(
        &ns(),
        Command::CfgiCd {
            ssec: false,
            sid: 2,
            ssid: 5,
            leaf: false,
        },
    );
    assert!(s.requires_cfg(&l1));
    let s = scope(
        &ns(),
        Command::CfgiCdAll {
            ssec: false,
            sid: 2,
        },
    );
    assert!(s.requires_cfg(&l1));
    assert!(s.requires_cfg(&cd(6)));
    assert!(!s.requires_cfg(&ste(2)));
}

#[test]
fn cfgi_vms_pidm_matches_vmid() {
    let s = scope(
        &ns(),
        Command::CfgiVmsPidm {
            ssec: false,
            vmid: 3,
        },
    );
    assert!(s.requires_cfg(&CfgTag::VmsPidm {
        sec: Security::NonSecure,
        vmid: 3
    }));
    assert!(!s.requires_cfg(&CfgTag::VmsPidm {
        sec: Security::NonSecure,
        vmid: 4
    }));
}

#[test]
fn cfgi_out_of_range_sid_is_empty() {
    let c = ScopeCtx::new(Profile::named("qemu-10.0").unwrap(), Queue::NonSecure);
    assert!(scope(
        &c,
        Command::CfgiSte {
            ssec: false,
            sid: 0x1_0000,
            leaf: true
        }
    )
    .is_empty());
}

// ---------------- ATC ----------------

#[test]
fn atc_inv_span_and_global() {
    let t = |ssid, global, base| AtcTag {
        sid: 1,
        ssid,
        global,
        base,
        size: 4096,
    };
    let c = Command::AtcInv {
        global: false,
        ssv: false,
        ssid: 0,
        sid: 1,
        size: 2,
        addr: 0x5000,
    };
    let s = scope(&ns(), c);
    assert!(s.requires_atc(&t(None, false, 0x4000)));
    assert!(s.requires_atc(&t(None, false, 0x7000)));
    assert!(!s.requires_atc(&t(None, false, 0x8000)));
    assert!(!s.requires_atc(&t(Some(1), false, 0x4000)));
    let c = Command::AtcInv {
        global: true,
        ssv: true,
        ssid: 1,
        sid: 1,
        size: 52,
        addr: 0,
    };
    let s = scope(&ns(), c);
    assert!(s.requires_atc(&t(Some(1), false, !0xFFF)));
    assert!(s.requires_atc(&t(Some(2), true, 0)));
    assert!(!s.requires_atc(&t(Some(2), false, 0)));
    let c = Command::AtcInv {
        global: false,
        ssv: false,
        ssid: 0,
        sid: 1,
        size: 53,
        addr: 0,
    };
    assert!(scope(&ns(), c).is_empty());
}

// ---------------- No cache effect ----------------

#[test]
fn non_invalidating_commands_have_empty_scope() {
    let e = page(NsEl1, 0, 0, 0);
    for c in [
        Command::sync(),
        Command::PrefetchConfig {
            ssec: false,
            ssv: false,
            ssid: 0,
            sid: 0,
        },
        Command::StallTerm {
            ssec: false,
            sid: 0,
        },
        Command::Resume {
            ssec: false,
            ac: true,
            ab: false,
            sid: 0,
            stag: 0,
        },
        Command::PriResp {
            ssv: false,
            ssid: 0,
            sid: 0,
            prg_index: 0,
            resp: 2,
        },
        Command::DptiAll,
    ] {
        let s = scope(&ns(), c);
        assert!(s.is_empty());
        may(&s, &e);
        assert!(!s.requires_cfg(&ste(0)));
    }
    assert!(scope(&ns(), Command::sync()).is_sync());
}

#[test]
fn res0_bits_never_panic_and_describe_is_one_line() {
    for b in 0..=255u8 {
        let raw = RawCommand::new(!0xFF | u64::from(b), u64::MAX);
        let s = required_scope(&ns(), raw);
        assert!(!s.describe().contains('\n'));
        let _ = s.requires_tlb(&page(NsEl1, 0, 0, 0));
    }
}

// ---------------- Properties ----------------

fn arb_world() -> impl Strategy<Value = StreamWorld> {
    prop::sample::select(StreamWorld::ALL.to_vec())
}

proptest! {
    #[test]
    fn matched_vmid_or_world_never_crosses(vmid in any::<u16>(), other in any::<u16>(),
                                           w in arb_world(), addr in any::<u64>()) {
        prop_assume!(vmid != other);
        let ctx = ns();
        let s = scope(&ctx, Command::TlbiNhAll { vmid });
        prop_assert!(!s.requires_tlb(&page(NsEl1, other, 0, addr & !0xFFF)));
        if w != NsEl1 {
            prop_assert!(!s.requires_tlb(&page(w, vmid, 0, addr & !0xFFF)));
        }
        let s = scope(&ctx, Command::TlbiS12Vmall { vmid });
        prop_assert!(!s.requires_tlb(&page(NsEl1, other, 0, 0)));
    }

    #[test]
    fn tg0_va_requires_exactly_containing_entries(addr in any::<u64>(), base in any::<u64>(),
                                                  lvl in 1u8..=3, asid in 0u16..4, g in any::<bool>()) {
        let a = addr & 0x000F_FFFF_FFFF_F000; // in range for 52-bit VA
        let s = scope(&ns(), nh_va(1, 2, inv(a, false)));
        let mut e = at(page(NsEl1, 1, asid, base & 0x000F_FFFF_FFFF_F000), Leaf, lvl);
        e.global = g;
        let in_scope = g || asid == 2;
        prop_assert_eq!(s.requires_tlb(&e), in_scope && e.contains(a));
        e.kind = Table;
        prop_assert_eq!(s.requires_tlb(&e), in_scope && e.contains(a));
    }

    #[test]
    fn random_commands_never_panic(dw0 in any::<u64>(), dw1 in any::<u64>(), q in 0u8..3,
                                   t in any::<(u64, u64, u16, u16, u8)>()) {
        let q = [Queue::NonSecure, Queue::Secure, Queue::Realm][q as usize];
        for name in ["smmuv3.4-full", "qemu-10.0", "smmuv3.0-s1-norange"] {
            let mut ctx = ScopeCtx::new(Profile::named(name).unwrap(), q);
            ctx.vmw = t.4 & 7;
            ctx.e2h = t.4 & 8 != 0;
            let s = required_scope(&ctx, RawCommand::new(dw0, dw1));
            let tag = TlbTag { world: NsEl1, stage: S1, kind: Leaf, vmid: t.2, asid: t.3, global: false,
                aset: false, granule: Granule::K4, level: t.4 & 3, d128: false, base: t.0, size: t.1,
                ipa_space_ns: false };
            let _ = s.rule_for_tlb(&tag);
            let _ = s.requires_cfg(&CfgTag::L1Std { sec: Security::NonSecure, sid_first: t.0 as u32, sid_count: t.1 });
            let _ = s.requires_atc(&AtcTag { sid: t.0 as u32, ssid: Some(t.1 as u32), global: true, base: t.0, size: t.1 });
            let _ = s.describe();
        }
    }
}

#[test]
fn largest_range_covers_100k_entries() {
    let s = scope(&ns(), nh_vaa(0, rinv(0, false, 3, 0, 31, 39)));
    let entries: Vec<TlbTag> = (0..100_000u64)
        .map(|i| gran(page(NsEl1, 0, 0, i << 16), Granule::K64, Leaf, 3))
        .collect();
    let t0 = std::time::Instant::now();
    let n = entries.iter().filter(|e| s.requires_tlb(e)).count();
    assert_eq!(n, 100_000);
    // Printed, never asserted: speed is measured by `--example oracle_bench`
    // (docs/performance.md); the point here is that every entry is judged.
    eprintln!("100k entries: {:?}", t0.elapsed());
}

#[test]
fn gb_and_mb_constants_used() {
    let s = scope(&ns(), nh_vaa(0, rinv(GB, true, 1, 1, 0, 0)));
    must(&s, &at(page(NsEl1, 0, 0, GB), Leaf, 1));
    may(&s, &at(page(NsEl1, 0, 0, GB + MB2), Leaf, 2));
}

#[test]
fn case_4_tg0_with_range_fields_is_single_address() {
    // NUM/SCALE/TTL are RES0 when TG == 0: ignored, a single address of any granule.
    let s = scope(&ns(), nh_vaa(0, rinv(0x4000, true, 0, 2, 5, 3)));
    must(&s, &page(NsEl1, 0, 0, 0x4000));
    must(&s, &at(page(NsEl1, 0, 0, 0x4000), Leaf, 1));
    may(&s, &page(NsEl1, 0, 0, 0x5000));
}

#[test]
fn case_5_ril0_range_fields_ignored() {
    let c = ScopeCtx::new(
        Profile::named("smmuv3.0-s1-norange").unwrap(),
        Queue::NonSecure,
    );
    let s = scope(&c, nh_vaa(0, rinv(0x4000, true, 1, 3, 31, 31)));
    must(&s, &page(NsEl1, 0, 0, 0x4000));
    may(&s, &page(NsEl1, 0, 0, 0x5000));
}

#[test]
fn case_6_ds0_scale_bit25_ignored() {
    let c = ScopeCtx::new(Profile::named("qemu-10.0").unwrap(), Queue::NonSecure);
    // SCALE = 0b100001: with DS == 0 only [24:20] = 1 counts: 2 pages.
    let s = scope(&c, nh_vaa(0, rinv(0, true, 1, 3, 0, 0x21)));
    must(&s, &page(NsEl1, 0, 0, 0x1000));
    may(&s, &page(NsEl1, 0, 0, 0x2000));
}

#[test]
fn case_7_ds1_scale_above_39_is_39() {
    let s = scope(&ns(), nh_vaa(0, rinv(0, true, 1, 3, 0, 45)));
    must(&s, &page(NsEl1, 0, 0, (1 << 51) - 0x1000));
    may(&s, &page(NsEl1, 0, 0, 1 << 51));
}

#[test]
fn case_25_ipa_above_ias_is_out_of_range() {
    // smmuv3.4-full: OAS 52, no AArch32 tables: IAS 52.
    let s = scope(
        &ns(),
        Command::TlbiS2Ipa {
            vmid: 1,
            inv: inv(1 << 53, true),
        },
    );
    assert!(s.is_empty(), "{}", s.describe());
    let s = scope(
        &ns(),
        Command::TlbiS2Ipa {
            vmid: 1,
            inv: inv(1 << 51, true),
        },
    );
    must(&s, &stage(page(NsEl1, 1, 0, 1 << 51), S2));
}

#[test]
fn case_28_cfgi_cd_requires_no_tlb_entries() {
    let s = scope(
        &ns(),
        Command::CfgiCd {
            ssec: false,
            sid: 1,
            ssid: 0,
            leaf: false,
        },
    );
    may(&s, &global(page(NsEl1, 1, 5, 0)));
    may(&s, &page(NsEl1, 1, 5, 0));
    assert!(s.requires_cfg(&CfgTag::Cd {
        sec: Security::NonSecure,
        sid: 1,
        ssid: 0
    }));
}

#[test]
fn case_29_tlbi_ignores_aset() {
    let s = scope(&ns(), Command::TlbiNhAsid { vmid: 1, asid: 5 });
    let mut e = page(NsEl1, 1, 5, 0);
    must(&s, &e);
    e.aset = true;
    must(&s, &e);
}

#[test]
fn realm_queue_targets_realm_worlds() {
    let c = full(Queue::Realm);
    let s = scope(&c, Command::TlbiNhAll { vmid: 2 });
    must(&s, &page(RealmEl1, 2, 0, 0));
    may(&s, &page(NsEl1, 2, 0, 0));
    let s = scope(&c, Command::TlbiNsnhAll);
    must(&s, &stage(page(RealmEl1, 9, 0, 0), S2));
    may(&s, &page(NsEl1, 9, 0, 0));
    let s = scope(&c, Command::TlbiEl2All);
    must(&s, &page(RealmEl2, 0, 0, 0));
    may(&s, &page(NsEl2, 0, 0, 0));
    assert!(scope(&c, Command::TlbiEl3All).is_empty());
}

#[test]
fn rule_citations_name_the_reason() {
    let s = scope(&ns(), nh_vaa(0, inv(0x12_3000, false)));
    let blk = at(page(NsEl1, 0, 0, 0), Leaf, 2);
    assert_eq!(s.rule_for_tlb(&blk).unwrap().id, "SCOPE-NONRANGE-CONTAINS");
    let s = scope(&ns(), nh_vaa(0, rinv(0, false, 1, 2, 0, 0)));
    assert_eq!(
        s.rule_for_tlb(&at(page(NsEl1, 0, 0, 0), Table, 1))
            .unwrap()
            .id,
        "SCOPE-TTL-LEVEL"
    );
    assert_eq!(
        s.rule_for_tlb(&at(page(NsEl1, 0, 0, 0), Leaf, 2))
            .unwrap()
            .id,
        "SCOPE-NH-VAA"
    );
    for id in smmu_model::rules::scope::ALL.iter().map(|r| r.id) {
        assert!(id.starts_with("SCOPE-"), "{id}");
    }
}

/// Opcodes that match on the NS VMID and on the NS-EL1 world (full profile, VMW == 0).
const VMID_MATCHING: [u8; 6] = [0x10, 0x11, 0x12, 0x13, 0x28, 0x2A];

proptest! {
    #[test]
    fn vmid_and_world_never_cross_for_random_commands(
        op in prop::sample::select(VMID_MATCHING.to_vec()), dw0 in any::<u64>(), dw1 in any::<u64>(),
        other in any::<u16>(), w in arb_world(), base in any::<u64>(), lvl in 0u8..=3,
        st in prop::sample::select(vec![S1, S2, Combined]), table in any::<bool>(), g in any::<bool>()
    ) {
        let raw = RawCommand::new((dw0 & !0xFF) | u64::from(op), dw1);
        let vmid = raw.get(smmu_model::command::layout::VMID) as u16;
        prop_assume!(other != vmid);
        let s = required_scope(&ns(), raw);
        let mut e = at(page(NsEl1, other, raw.get(smmu_model::command::layout::ASID) as u16, base), Leaf, lvl);
        e.stage = st;
        e.global = g;
        if table { e.kind = Table; }
        prop_assert!(!s.requires_tlb(&e), "{} vs {:?}", s.describe(), e);
        if w != NsEl1 {
            e.world = w;
            e.vmid = vmid;
            prop_assert!(!s.requires_tlb(&e), "{} vs {:?}", s.describe(), e);
        }
    }
}

#[test]
fn cfgi_vms_pidm_without_stage2_vmid_unmatched() {
    // Stage 1 only, with MPAM (else VMS_PIDM is ILLEGAL, §4.3.5). VMID 0 covers every VMID;
    // VMID != 0 requires nothing.
    let mut regs = Profile::named("qemu-7.2").unwrap().regs;
    regs.idr3 |= 1 << 7;
    let c = ScopeCtx::new(Profile::from_regs(regs), Queue::NonSecure);
    let t = CfgTag::VmsPidm {
        sec: Security::NonSecure,
        vmid: 7,
    };
    assert!(scope(
        &c,
        Command::CfgiVmsPidm {
            ssec: false,
            vmid: 0
        }
    )
    .requires_cfg(&t));
    let s = scope(
        &c,
        Command::CfgiVmsPidm {
            ssec: false,
            vmid: 7,
        },
    );
    assert!(s.is_empty() && !s.requires_cfg(&t));
}
