//! Digest §9, tricky cases 58-68 and 70: configuration invalidation and its interaction with TLB
//! invalidation, through the `Model` with real structures (linear and two-level Stream tables,
//! two-level CD tables, shared CDs, stage-2 STEs). Every case asserts both directions with
//! `Model::check`: forbidden outcomes are rejected, allowed ones (fresh, and stale where the
//! architecture lets the old configuration stay cached) are accepted.

mod common_b;

use common_b::{fault, pa, s2_ste, Rig, Space, NG};
use smmu_model::command::{AddrInval, Command, RangeFields};
use smmu_model::oracle::enumerate::C_BAD_STE;
use smmu_model::profile::Queue;
use smmu_model::queue::{
    check as queue_check, CmdError, Observation as QObs, OracleCtx, ProfileClassifier, QueueMemory,
    QueueState, Trigger,
};
use smmu_model::structures::{CdFormat, L1Cd, L1Std, Ste, StreamTableConfig};

const VA: u64 = 0x20_0000;
const OLD: u64 = 0x8000_0000;
const NEW: u64 = 0xC000_0000;

fn cfgi_ste(sid: u32, leaf: bool) -> Command {
    Command::CfgiSte {
        ssec: false,
        sid,
        leaf,
    }
}

fn ste_range(sid: u32, range: u8) -> Command {
    Command::CfgiSteRange {
        ssec: false,
        sid,
        range,
    }
}

fn cfgi_cd(sid: u32, ssid: u32, leaf: bool) -> Command {
    Command::CfgiCd {
        ssec: false,
        sid,
        ssid,
        leaf,
    }
}

fn nh_asid(asid: u16) -> Command {
    Command::TlbiNhAsid { vmid: 0, asid }
}

/// A regime mapping VA -> `oa` (level 3, non-global).
fn space_to(r: &mut Rig, oa: u64) -> (Space, u64) {
    let mut sp = r.s1_space();
    let leaf = r.map(&mut sp, VA, oa, 3, &NG);
    (sp, leaf)
}

// ---------------------------------------------------------------------------------------------

/// SIDs 4..7 share CD A (ASID 1: VA -> OLD) in a linear table; after enabling, SID 5's STE is
/// switched to CD B (ASID 2: VA -> NEW). SID 5's old STE and CD may be cached: OLD is stale.
fn switched_sid5() -> Rig {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(4);
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let cd_a = r.new_cd(1, &a);
    let cd_b = r.new_cd(2, &b);
    for sid in 4..8 {
        r.put_struct(st + 64 * sid, Ste::stage1(cd_a).encode());
    }
    r.m.set_smmuen(true);
    r.fresh(5, None, VA, pa(OLD));
    r.put_struct(st + 64 * 5, Ste::stage1(cd_b).encode());
    r.fresh(5, None, VA, pa(NEW));
    r.stale_ok(5, None, VA, pa(OLD));
    r.fresh(4, None, VA, pa(OLD));
    r
}

/// Case 58 (§4.3.2, §4.3.6): CFGI_STE_RANGE with Range=k ignores SID[k:0]: SID=6, Range=1
/// covers SIDs 4..7, so SID 5's stale STE MUST go. SID=7, Range=0 covers 6..7 only: SID 5 MAY
/// keep it. Range=31 is CFGI_ALL and ignores the SID.
#[test]
fn case_58_cfgi_ste_range_ignores_low_sid_bits() {
    let mut r = switched_sid5();
    r.cmd(ste_range(7, 0));
    r.sync();
    r.stale_ok(5, None, VA, pa(OLD));
    assert!(r.cmd(ste_range(6, 1)) >= 1);
    // Before the SYNC, both.
    r.stale_ok(5, None, VA, pa(OLD));
    r.sync();
    r.rejected(5, None, VA, pa(OLD));
    r.fresh(5, None, VA, pa(NEW));
    r.fresh(4, None, VA, pa(OLD));

    // Range = 31: CFGI_ALL, whatever the SID (even one far out of SIDSIZE).
    for sid in [0, 5, 0xffff_ffff] {
        let mut r = switched_sid5();
        r.cmd(ste_range(sid, 31));
        r.sync();
        r.rejected(5, None, VA, pa(OLD));
    }
    let mut r = switched_sid5();
    r.cmd(Command::cfgi_all());
    r.sync();
    r.rejected(5, None, VA, pa(OLD));
}

/// A two-level Stream table (SPLIT 6): L1STD 0 -> L2 array A, where SID 1 uses CD A (ASID 1:
/// VA -> OLD). After enabling, a new L2 array B (SID 1 -> CD B, ASID 2: VA -> NEW) is built and
/// L1STD 0 switched to it.
fn switched_l1std() -> Rig {
    let mut r = Rig::new("qemu-10.0");
    let base = r.alloc(0x1000);
    r.m.set_stream_table(StreamTableConfig::two_level(base, 8, 6));
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let cd_a = r.new_cd(1, &a);
    let cd_b = r.new_cd(2, &b);
    let l2a = r.alloc(0x1000);
    let l2b = r.alloc(0x1000);
    r.put_struct(l2a + 64, Ste::stage1(cd_a).encode());
    r.write(base, L1Std::new(l2a, 3).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.put_struct(l2b + 64, Ste::stage1(cd_b).encode());
    r.write(base, L1Std::new(l2b, 3).encode());
    r.fresh(1, None, VA, pa(NEW));
    r.stale_ok(1, None, VA, pa(OLD));
    r
}

/// Case 59 (§4.3.1/2): after an L1STD.L2Ptr change, CFGI_STE with Leaf=1 need not drop the
/// L1STD: the stale L2 pointer MAY still be used. Leaf=0, or CFGI_STE_RANGE, MUST use the new one.
#[test]
fn case_59_cfgi_ste_leaf_keeps_stale_l1std() {
    let mut r = switched_l1std();
    r.cmd(cfgi_ste(1, true));
    r.sync();
    r.stale_ok(1, None, VA, pa(OLD));
    r.fresh(1, None, VA, pa(NEW));
    r.cmd(cfgi_ste(1, false));
    r.sync();
    r.rejected(1, None, VA, pa(OLD));
    r.fresh(1, None, VA, pa(NEW));

    let mut r = switched_l1std();
    r.cmd(ste_range(1, 0));
    r.sync();
    r.rejected(1, None, VA, pa(OLD));
}

/// Full profile (SSIDs, two-level CD tables): SID 1's STE has a 4KB-leaf two-level CD table
/// (S1CDMax = 7). L1CD 0 -> L2 table A whose CD 3 is ASID 1 (VA -> OLD); after enabling it is
/// switched to L2 table B whose CD 3 is ASID 2 (VA -> NEW).
fn switched_l1cd() -> Rig {
    let mut r = Rig::new("smmuv3.4-full");
    let st = r.linear_st(2);
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let l1 = r.alloc(0x1000);
    let l2a = r.alloc(0x1000);
    let l2b = r.alloc(0x1000);
    r.put_struct(l2a + 3 * 64, common_b::cd(1, &a).encode());
    r.put_struct(l2b + 3 * 64, common_b::cd(2, &b).encode());
    r.write(l1, L1Cd::new(l2a).encode());
    r.put_struct(
        st + 64,
        Ste::stage1(l1)
            .with_cd_table(CdFormat::TwoLevel4K, 7)
            .encode(),
    );
    r.m.set_smmuen(true);
    r.fresh(1, Some(3), VA, pa(OLD));
    r.write(l1, L1Cd::new(l2b).encode());
    r.fresh(1, Some(3), VA, pa(NEW));
    r.stale_ok(1, Some(3), VA, pa(OLD));
    r
}

/// Case 60 (§4.3.3/4): after an L1CD change, CFGI_CD with Leaf=1 leaves the L1CD MAY-keep;
/// Leaf=0 or CFGI_CD_ALL MUST remove it.
#[test]
fn case_60_cfgi_cd_leaf_keeps_stale_l1cd() {
    let mut r = switched_l1cd();
    r.cmd(cfgi_cd(1, 3, true));
    r.sync();
    r.stale_ok(1, Some(3), VA, pa(OLD));
    // Another SSID's CFGI_CD with Leaf=0 covers only its own L1CD span... which is the same
    // L1CD here (SSIDs 0..63), so it MUST go.
    r.cmd(cfgi_cd(1, 5, false));
    r.sync();
    r.rejected(1, Some(3), VA, pa(OLD));
    r.fresh(1, Some(3), VA, pa(NEW));

    let mut r = switched_l1cd();
    r.cmd(cfgi_cd(1, 3, false));
    r.sync();
    r.rejected(1, Some(3), VA, pa(OLD));

    let mut r = switched_l1cd();
    r.cmd(Command::CfgiCdAll {
        ssec: false,
        sid: 1,
    });
    r.sync();
    r.rejected(1, Some(3), VA, pa(OLD));
    // CFGI_CD_ALL for another SID leaves it.
    let mut r = switched_l1cd();
    r.cmd(Command::CfgiCdAll {
        ssec: false,
        sid: 2,
    });
    r.sync();
    r.stale_ok(1, Some(3), VA, pa(OLD));
}

/// Case 61 (§4.3.3, §5.4.1): a CD shared by SIDs 1 and 2 is changed (new ASID and tables) and
/// invalidated only via SID 1: SID 2 MAY keep the stale CD, SID 1 MUST NOT. Invalidating through
/// SID 2 as well removes it.
#[test]
fn case_61_shared_cd_invalidated_through_one_sid() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let cd = r.new_cd(1, &a);
    for sid in [1, 2] {
        r.put_struct(st + 64 * sid, Ste::stage1(cd).encode());
    }
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.fresh(2, None, VA, pa(OLD));
    r.put_struct(cd, common_b::cd(2, &b).encode());
    for sid in [1, 2] {
        r.fresh(sid, None, VA, pa(NEW));
        r.stale_ok(sid, None, VA, pa(OLD));
    }
    r.cmd(cfgi_cd(1, 0, true));
    r.sync();
    r.rejected(1, None, VA, pa(OLD));
    r.stale_ok(2, None, VA, pa(OLD));
    r.cmd(cfgi_cd(2, 0, true));
    r.sync();
    r.rejected(2, None, VA, pa(OLD));
    r.fresh(2, None, VA, pa(NEW));
}

/// Case 62 (§4.3.1 note, §5.2): STE.S2TTB changed, CFGI_STE + SYNC but no TLBI: stale stage-2
/// translations with the same VMID MAY remain. TLBI S12_VMALL for another VMID leaves them;
/// for the STE's VMID they MUST go.
#[test]
fn case_62_s2ttb_change_needs_tlbi() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let mut a = r.s2_space();
    let mut b = r.s2_space();
    r.map(&mut a, VA, OLD, 3, &smmu_model::tables::LeafSpec::S2);
    r.map(&mut b, VA, NEW, 3, &smmu_model::tables::LeafSpec::S2);
    r.put_struct(st + 64, s2_ste(3, &a).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.put_struct(st + 64, s2_ste(3, &b).encode());
    r.fresh(1, None, VA, pa(NEW));
    r.stale_ok(1, None, VA, pa(OLD));
    r.cmd(cfgi_ste(1, true));
    r.sync();
    r.stale_ok(1, None, VA, pa(OLD));
    r.cmd(Command::TlbiS12Vmall { vmid: 4 });
    r.sync();
    r.stale_ok(1, None, VA, pa(OLD));
    r.cmd(Command::TlbiS12Vmall { vmid: 3 });
    r.sync();
    let v = r.rejected(1, None, VA, pa(OLD));
    assert!(v.message.contains("CMD_TLBI_S12_VMALL"), "{v}");
    r.fresh(1, None, VA, pa(NEW));
}

/// Case 63 (§3.21.3): STE V 0 -> 1 without CFGI_STE: the cached invalid STE MAY persist, so
/// C_BAD_STE is allowed until a CFGI_STE + SYNC; after that it is forbidden.
#[test]
fn case_63_ste_valid_without_cfgi_may_still_fault() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, _) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    // Fully written, V = 0.
    r.put_struct(st + 64, Ste::stage1(cd).with_valid(false).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, fault(C_BAD_STE));
    r.rejected(1, None, VA, pa(OLD));
    r.write(st + 64, Ste::stage1(cd).encode()[0]);
    r.fresh(1, None, VA, pa(OLD));
    r.stale_ok(1, None, VA, fault(C_BAD_STE));
    r.cmd(cfgi_ste(1, true));
    r.stale_ok(1, None, VA, fault(C_BAD_STE));
    r.sync();
    let v = r.rejected(1, None, VA, fault(C_BAD_STE));
    assert!(v.message.contains("faulted"), "{v}");
    r.fresh(1, None, VA, pa(OLD));
}

/// Case 63, from a zeroed Stream table (the usual start): the STE is written (words 1-7, then
/// word 0 with V=1) without CFGI_STE. The all-zero invalid STE may have been cached while the
/// SMMU was enabled (§3.21.3: structures may be cached whether valid or not), so C_BAD_STE is
/// still allowed.
#[test]
fn case_63_zeroed_ste_made_valid_without_cfgi_may_still_fault() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, _) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, fault(C_BAD_STE));
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.fresh(1, None, VA, pa(OLD));
    r.stale_ok(1, None, VA, fault(C_BAD_STE));
}

/// STE.CONT (§5.2) is bits [80:77]: word 1 bits [16:13]. A span of 2^CONT STEs that may be
/// cached as one entry; every STE in it must be identical except for this field's meaning.
fn with_cont(ste: Ste, cont: u64) -> [u64; 8] {
    let mut w = ste.encode();
    w[1] = (w[1] & !(0xf << 13)) | (cont << 13);
    w
}

/// SIDs 4..7 are one CONT=2 span using CD A (VA -> OLD); after enabling every STE of the span is
/// switched to CD B (ASID 2: VA -> NEW).
fn switched_span() -> Rig {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(4);
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let cd_a = r.new_cd(1, &a);
    let cd_b = r.new_cd(2, &b);
    for sid in 4..8 {
        r.put_struct(st + 64 * sid, with_cont(Ste::stage1(cd_a), 2));
    }
    r.m.set_smmuen(true);
    r.fresh(5, None, VA, pa(OLD));
    for sid in 4..8 {
        r.put_struct(st + 64 * sid, with_cont(Ste::stage1(cd_b), 2));
    }
    r.stale_ok(5, None, VA, pa(OLD));
    r
}

/// Case 64 (§5.2 CONT), the documented part: CONT does not change invalidation, so invalidating
/// every STE of the span, one CFGI_STE each or one CFGI_STE_RANGE, removes the old span.
#[test]
fn case_64_cont_span_invalidated_ste_by_ste() {
    let mut r = switched_span();
    for sid in 4..8 {
        r.cmd(cfgi_ste(sid, true));
    }
    r.sync();
    for sid in 4..8 {
        r.rejected(sid, None, VA, pa(OLD));
        r.fresh(sid, None, VA, pa(NEW));
    }
    let mut r = switched_span();
    r.cmd(ste_range(4, 1));
    r.sync();
    for sid in 4..8 {
        r.rejected(sid, None, VA, pa(OLD));
    }
}

/// Case 64, the MAY-keep part: only SID 5 invalidated; a span entry cached through SID 4 may
/// still satisfy lookups for SID 5 (§5.2 CONT: one cache entry covers the whole span).
#[test]
#[ignore = "model bug: STE.CONT is not modelled, so an old span entry cached through another SID of the span is not allowed for SID 5 after CFGI_STE(5)"]
fn case_64_cont_span_entry_from_other_sid_may_satisfy_lookup() {
    let mut r = switched_span();
    r.cmd(cfgi_ste(5, true));
    r.sync();
    r.stale_ok(5, None, VA, pa(OLD));
}

/// SID 1 (CD ASID 1, TTB0 -> tables A: VA -> OLD); after enabling, CD.TTB0 is switched to
/// tables B (VA -> NEW) keeping ASID 1.
fn switched_ttb() -> Rig {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, _) = space_to(&mut r, OLD);
    let (b, _) = space_to(&mut r, NEW);
    let cd = r.new_cd(1, &a);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    let mut w = common_b::cd(1, &b).encode();
    let cur = r.read(cd);
    assert_eq!(w[0], cur, "only TTB0 (word 1) changes");
    w[0] = cur;
    r.write(cd + 8, w[1]);
    r.fresh(1, None, VA, pa(NEW));
    r.stale_ok(1, None, VA, pa(OLD));
    r
}

/// Case 65 (§4.3.6 note), required order: CFGI, SYNC, TLBI, SYNC gives a clean state. CFGI +
/// SYNC alone leaves the old translations (same ASID) MAY-keep: configuration invalidation does
/// not invalidate TLBs (§4.3.1 note).
#[test]
fn case_65_cfgi_sync_tlbi_sync_is_clean() {
    let mut r = switched_ttb();
    r.cmd(Command::cfgi_all());
    r.sync();
    r.stale_ok(1, None, VA, pa(OLD));
    r.cmd(nh_asid(1));
    r.sync();
    r.rejected(1, None, VA, pa(OLD));
    r.fresh(1, None, VA, pa(NEW));
}

/// Case 65, wrong order: TLBI then CFGI_ALL with no SYNC between. Prefetch through the still-cached
/// old CD may refill the TLB after the TLBI took effect, so after the SYNC the old translation
/// MAY remain (§4.3.6 note).
#[test]
fn case_65_tlbi_before_cfgi_all_may_refill() {
    let mut r = switched_ttb();
    r.cmd(nh_asid(1));
    r.cmd(Command::cfgi_all());
    r.sync();
    r.stale_ok(1, None, VA, pa(OLD));
}

/// Case 66 (§4.2): prefetches with SMMUEN == 0, through an invalid STE, or for an out-of-range
/// address or StreamID are consumed silently: no error, and nothing is cached by a prefetch
/// while SMMUEN == 0.
#[test]
fn case_66_prefetch_consumed_silently() {
    let pf_addr = |sid| Command::PrefetchAddr {
        ssec: false,
        ssv: false,
        ssid: 0,
        sid,
        size: 0,
        stride: 0,
        addr: VA,
    };
    let pf_cfg = |sid| Command::PrefetchConfig {
        ssec: false,
        ssv: false,
        ssid: 0,
        sid,
    };
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (mut a, leaf) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.put_struct(st + 128, Ste::stage1(cd).with_valid(false).encode());
    // SMMUEN == 0: consumed, no effect.
    assert_eq!(r.cmd(pf_cfg(1)), 0);
    assert_eq!(r.cmd(pf_addr(1)), 0);
    r.sync();
    r.remap_s1(&a, leaf, 3, NEW, &NG);
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(NEW));
    r.rejected(1, None, VA, pa(OLD));
    // Invalid STE, and a StreamID beyond SIDSIZE (16): consumed, no fault becomes allowed.
    for c in [pf_cfg(2), pf_addr(2), pf_cfg(0x1_0000), pf_addr(0x1_0000)] {
        assert_eq!(r.cmd(c), 0);
    }
    r.map(&mut a, 0x7f_ffff_f000, OLD + 0x1000, 3, &NG);
    assert_eq!(
        r.cmd(Command::PrefetchAddr {
            ssec: false,
            ssv: false,
            ssid: 0,
            sid: 1,
            size: 31,
            stride: 0,
            addr: 0x1_0000_0000_0000,
        }),
        0
    );
    r.sync();
    r.fresh(1, None, VA, pa(NEW));
    r.rejected(1, None, VA, fault(0x10));

    // At queue level: each is consumed, and CERROR_ILL for it is rejected.
    let p = r.m.profile;
    for c in [pf_cfg(2), pf_addr(2), pf_cfg(0x1_0000), pf_addr(0x1_0000)] {
        let q = QueueState::configured(&p, 0x9000_0000, 3);
        let mut mem = QueueMemory::new();
        let prod = mem.submit(&q, &[c.encode()]);
        let pc = ProfileClassifier {
            profile: p,
            queue: Queue::NonSecure,
        };
        let ctx = OracleCtx {
            classifier: &pc,
            res0_policy: None,
        };
        let t = Trigger::Prod(prod);
        queue_check(&q, t, &mem, &ctx, &QObs::settled(prod, 0)).unwrap();
        let ill = QObs::settled((CmdError::Ill.code() as u32) << 24, 1);
        assert!(queue_check(&q, t, &mem, &ctx, &ill).is_err(), "{c:?}");
    }
}

/// Case 67 (§6.3.9.6, §3.21.1): TLBI and CFGI issued while SMMUEN == 0 still work: the targeted
/// entries are absent after the SYNC, so after re-enabling the old results are forbidden.
#[test]
fn case_67_tlbi_and_cfgi_while_smmuen_0() {
    // TLB: a stale translation invalidated while disabled.
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, leaf) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.remap_s1(&a, leaf, 3, NEW, &NG);
    r.m.set_smmuen(false);
    r.cmd(nh_asid(1));
    r.sync();
    r.m.set_smmuen(true);
    r.rejected(1, None, VA, pa(OLD));
    r.fresh(1, None, VA, pa(NEW));

    // Configuration: a stale STE invalidated while disabled.
    let mut r = switched_sid5();
    r.m.set_smmuen(false);
    r.cmd(cfgi_ste(5, true));
    r.sync();
    r.m.set_smmuen(true);
    r.rejected(5, None, VA, pa(OLD));
}

/// Case 67, sharper: the invalidation completes while SMMUEN == 0 and only then does software
/// change the tables and the STE, still disabled. Nothing can be inserted while SMMUEN == 0
/// (§3.21.1, §3.21.3, §6.3.9.6), so the old translation is impossible after re-enabling.
#[test]
fn case_67_change_after_invalidation_while_disabled_leaves_nothing() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, leaf) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.m.set_smmuen(false);
    r.cmd(Command::cfgi_all());
    r.cmd(Command::TlbiNhAll { vmid: 0 });
    r.sync();
    r.remap_s1(&a, leaf, 3, NEW, &NG);
    r.put_struct(st + 64, Ste::abort().encode());
    r.m.set_smmuen(true);
    r.rejected(1, None, VA, pa(OLD));
    r.rejected(1, None, VA, pa(NEW));
}

/// Case 68 (§4.1.4 note): a TLBI's effect may appear before its SYNC, and eviction is always
/// allowed: never assert that an entry is still present. Only the completed SYNC forbids it.
#[test]
fn case_68_effect_may_appear_before_sync() {
    let mut r = Rig::new("qemu-10.0");
    let st = r.linear_st(2);
    let (a, leaf) = space_to(&mut r, OLD);
    let cd = r.new_cd(1, &a);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    r.m.set_smmuen(true);
    r.remap_s1(&a, leaf, 3, NEW, &NG);
    // Before the TLBI: the stale entry may or may not be used.
    r.fresh(1, None, VA, pa(NEW));
    r.stale_ok(1, None, VA, pa(OLD));
    r.cmd(Command::TlbiNhVa {
        vmid: 0,
        asid: 1,
        inv: AddrInval {
            addr: VA,
            leaf: true,
            range: RangeFields::default(),
        },
    });
    // Consumed, not yet synchronised: both still.
    r.fresh(1, None, VA, pa(NEW));
    r.stale_ok(1, None, VA, pa(OLD));
    r.sync();
    r.rejected(1, None, VA, pa(OLD));
    r.fresh(1, None, VA, pa(NEW));
}

/// Case 70 (§4.1.2, §3.17.6): a VMW change while a dependent TLBI is in flight: either the old or
/// the new semantics may apply. The oracle must therefore require only what both require:
/// S12_VMALL(VMID 0x20) removes VMID 0x20 under either; VMID 0x21 only under VMW=1, so with the
/// change in flight the 0x21 entry is MAY-keep.
#[test]
fn case_70_vmw_change_in_flight_either_semantics() {
    let build = |vmw: u8| {
        let mut r = Rig::new("smmuv3.4-full");
        r.m.set_vmw(vmw);
        let st = r.linear_st(2);
        let mut leaves = Vec::new();
        for (sid, vmid) in [(1u64, 0x20u16), (2, 0x21)] {
            let mut sp = r.s2_space();
            let l = r.map(
                &mut sp,
                VA,
                OLD + sid * 0x10_0000,
                3,
                &smmu_model::tables::LeafSpec::S2,
            );
            r.put_struct(st + 64 * sid, s2_ste(vmid, &sp).encode());
            leaves.push((sid, l));
        }
        r.m.set_smmuen(true);
        for (sid, l) in leaves {
            r.fresh(sid as u32, None, VA, pa(OLD + sid * 0x10_0000));
            r.remap_s2(l, 3, NEW + sid * 0x10_0000);
            r.stale_ok(sid as u32, None, VA, pa(OLD + sid * 0x10_0000));
        }
        r.cmd(Command::TlbiS12Vmall { vmid: 0x20 });
        r.sync();
        r
    };
    let old_sem = build(0);
    let new_sem = build(1);
    for r in [&old_sem, &new_sem] {
        r.rejected(1, None, VA, pa(OLD + 0x10_0000));
        r.fresh(1, None, VA, pa(NEW + 0x10_0000));
    }
    // VMID 0x21: required only by the new (VMW=1) semantics.
    new_sem.rejected(2, None, VA, pa(OLD + 0x20_0000));
    old_sem.stale_ok(2, None, VA, pa(OLD + 0x20_0000));
    // The union of the two is what a harness must accept while the change is in flight.
    assert!(
        old_sem.check(2, None, VA, pa(OLD + 0x20_0000)).is_ok()
            || new_sem.check(2, None, VA, pa(OLD + 0x20_0000)).is_ok()
    );
}
