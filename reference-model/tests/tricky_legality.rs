//! Digest §9, tricky cases 1-7 and 35-48: command legality and RES0 handling, judged at model
//! level. Mandatory CERROR_ILL is `Model::consume` returning the rule. For RES0-set commands both
//! permitted behaviours are shown (§4.1.5): the queue oracle accepts CERROR_ILL and consumption,
//! and the model, having consumed the command, judges its effect as the all-zero encoding.

mod common_b;

use common_b::{pa, Rig, Space, NG};
use smmu_model::classify::{classify, Flags, Verdict};
use smmu_model::command::{layout as l, AddrInval, Command, Opcode, RangeFields, RawCommand};
use smmu_model::granule::Granule;
use smmu_model::oracle::Model;
use smmu_model::profile::{IdRegs, Profile, Queue};
use smmu_model::queue::{
    check as queue_check, sync_signal, CmdError, Observation as QObs, OracleCtx, ProfileClassifier,
    QueueMemory, QueueState, QueueViolation, SyncSignal, Trigger,
};
use smmu_model::rules::{legality as lg, Rule};
use smmu_model::scope::{required_scope, ScopeCtx};
use smmu_model::structures::Ste;

const OLD: u64 = 0x8000_0000;
/// A remapped leaf points this far above its old output.
const MOVED: u64 = 0x4000_0000;

fn prof(name: &str) -> Profile {
    Profile::named(name).unwrap()
}

fn with_regs(name: &str, f: impl FnOnce(&mut IdRegs)) -> Profile {
    let mut r = prof(name).regs;
    f(&mut r);
    Profile::from_regs(r)
}

/// QEMU 10.0 with IDR0.S1P cleared: a stage-2-only SMMU.
fn s2_only() -> Profile {
    let p = with_regs("qemu-10.0", |r| r.idr0 &= !0b10);
    assert!(p.s2p && !p.s1p);
    p
}

#[track_caller]
fn ill_on(p: &Profile, q: Queue, raw: RawCommand, rule: &Rule) {
    let mut m = Model::new(*p);
    match m.consume_on(q, raw) {
        Err(r) => assert_eq!(r.id, rule.id, "{raw}: wrong rule"),
        Ok(_) => panic!(
            "{raw} ({}) consumed, must raise CERROR_ILL ({})",
            raw.opcode(),
            rule.id
        ),
    }
}

#[track_caller]
fn ill(p: &Profile, raw: RawCommand, rule: &Rule) {
    ill_on(p, Queue::NonSecure, raw, rule)
}

#[track_caller]
fn legal_on(p: &Profile, q: Queue, raw: RawCommand) {
    let mut m = Model::new(*p);
    if let Err(r) = m.consume_on(q, raw) {
        panic!(
            "{raw} ({}) must be consumed, model says {}",
            raw.opcode(),
            r.id
        );
    }
}

fn range(tg: u8, ttl: u8, num: u8, scale: u8) -> RangeFields {
    RangeFields {
        tg,
        ttl,
        ttl128: false,
        num,
        scale,
    }
}

fn nh_va(asid: u16, va: u64, r: RangeFields) -> RawCommand {
    Command::TlbiNhVa {
        vmid: 0,
        asid,
        inv: AddrInval {
            addr: va,
            leaf: false,
            range: r,
        },
    }
    .encode()
}

/// The RES0 freedom at queue level (§4.1.5): `raw` submitted alone, the oracle must accept both
/// CERROR_ILL at it and its consumption.
#[track_caller]
fn queue_accepts_ill_and_consume(p: &Profile, raw: RawCommand) {
    let (ill, consumed) = queue_outcomes(p, raw);
    if let Err(v) = ill {
        panic!("{raw}: CERROR_ILL rejected: {v}");
    }
    if let Err(v) = consumed {
        panic!("{raw}: consumption rejected: {v}");
    }
}

type QRes = Result<smmu_model::queue::Accepted, QueueViolation>;

/// (CERROR_ILL at entry 0, consumed) judged by the queue oracle for `raw` alone on the queue.
fn queue_outcomes(p: &Profile, raw: RawCommand) -> (QRes, QRes) {
    let q = QueueState::configured(p, 0x9000_0000, 4);
    let mut mem = QueueMemory::new();
    let prod = mem.submit(&q, &[raw]);
    let pc = ProfileClassifier {
        profile: *p,
        queue: Queue::NonSecure,
    };
    let ctx = OracleCtx {
        classifier: &pc,
        res0_policy: None,
    };
    let t = Trigger::Prod(prod);
    let ill = QObs::settled((CmdError::Ill.code() as u32) << 24, 1);
    let consumed = QObs::settled(prod, 0);
    (
        queue_check(&q, t, &mem, &ctx, &ill),
        queue_check(&q, t, &mem, &ctx, &consumed),
    )
}

/// SID 1, stage 1 (ASID 1, VMID 0) in granule `g`, each `(va, level)` mapped to `OLD + va`,
/// SMMU enabled, then every leaf remapped to `OLD + MOVED + va`: the old translations are stale.
fn stale_s1(profile: &str, g: Granule, maps: &[(u64, u8)]) -> (Rig, Space) {
    let mut r = Rig::new(profile);
    let st = r.linear_st(2);
    let mut sp = r.s1_space_g(g);
    let cd = r.new_cd(1, &sp);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    let leaves: Vec<u64> = maps
        .iter()
        .map(|&(va, lvl)| r.map(&mut sp, va, OLD + va, lvl, &NG))
        .collect();
    r.m.set_smmuen(true);
    for (&(va, lvl), &leaf) in maps.iter().zip(&leaves) {
        r.fresh(1, None, va, pa(OLD + va));
        r.remap_s1(&sp, leaf, lvl, OLD + MOVED + va, &NG);
        r.stale_ok(1, None, va, pa(OLD + va));
        r.fresh(1, None, va, pa(OLD + MOVED + va));
    }
    (r, sp)
}

// ---------------------------------------------------------------------------------------------
// Range, TTL and TG (§4.4.1.1)

/// Case 1 (§4.4.1.1): TG=16K, TTL=0b01 with DS==0 is treated as TTL=0b00; with NUM=SCALE=0 that
/// is the Reserved combination, so CERROR_ILL is mandatory. With DS==1 TTL=0b01 is a real level.
#[test]
fn case_01_tg16k_ttl01_ds0_num0_scale0_is_ill() {
    let qemu = prof("qemu-10.0");
    assert!(!qemu.ds && qemu.ril);
    let raw = nh_va(1, 0x4000_0000, range(0b10, 0b01, 0, 0));
    ill(&qemu, raw, &lg::TLBI_RANGE_RESERVED);
    // NH_VAA and S2_IPA carry the same fields.
    let inv = AddrInval {
        addr: 0x4000_0000,
        leaf: true,
        range: range(0b10, 0b01, 0, 0),
    };
    ill(
        &qemu,
        Command::TlbiNhVaa { vmid: 0, inv }.encode(),
        &lg::TLBI_RANGE_RESERVED,
    );
    ill(
        &qemu,
        Command::TlbiS2Ipa { vmid: 1, inv }.encode(),
        &lg::TLBI_RANGE_RESERVED,
    );
    // DS == 1: TTL=0b01 is level 1 for 16K, a legal single-level hint.
    let full = prof("smmuv3.4-full");
    assert!(full.ds);
    legal_on(&full, Queue::NonSecure, raw);
}

/// Case 2 (§4.4.1.1): the same with NUM=1 is a legal range invalidation with TTL treated as 0b00
/// (any level): a cached level-3 16KB page in the range MUST go, although TTL=0b01 read literally
/// would name level 1 only. Address[13:12] != 0 makes the range UNPREDICTABLE: no assertion.
#[test]
fn case_02_tg16k_ttl01_ds0_num1_is_any_level_range() {
    let va = 0x10_0000;
    let (mut r, _sp) = stale_s1("qemu-10.0", Granule::K16, &[(va, 3)]);
    let raw = nh_va(1, va, range(0b10, 0b01, 1, 0));
    assert_eq!(
        classify(&r.m.profile, Queue::NonSecure, raw).verdict,
        Verdict::Legal
    );
    assert!(r.raw(raw) >= 1, "the stale level-3 page is in scope");
    // Before the SYNC both outcomes are allowed (§4.1.4).
    r.stale_ok(1, None, va, pa(OLD + va));
    r.sync();
    let v = r.rejected(1, None, va, pa(OLD + va));
    assert!(v.message.contains("still observed"), "{v}");
    r.fresh(1, None, va, pa(OLD + MOVED + va));

    // Address[13:12] != 0 with TTL treated as 0b00: UNPREDICTABLE range, flagged, nothing
    // required, so the oracle must not demand removal.
    let (mut r, _sp) = stale_s1("qemu-10.0", Granule::K16, &[(va, 3)]);
    let bad = nh_va(1, va | 0x1000, range(0b10, 0b01, 1, 0));
    let c = classify(&r.m.profile, Queue::NonSecure, bad);
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::UNPREDICTABLE_RANGE));
    r.raw(bad);
    r.sync();
    r.stale_ok(1, None, va, pa(OLD + va));
}

/// Case 3 (§4.4.1.1): TG != 0 with NUM=0, SCALE=0, TTL=0b00 is CERROR_ILL for every TG, on every
/// address-based TLBI.
#[test]
fn case_03_tg_nonzero_num0_scale0_ttl0_is_ill_for_every_tg() {
    for name in ["qemu-10.0", "smmuv3.4-full", "qemu-7.2"] {
        let p = prof(name);
        for tg in 1..=3u8 {
            let inv = AddrInval {
                addr: 0x20_0000,
                leaf: false,
                range: range(tg, 0, 0, 0),
            };
            let mut cmds = vec![
                nh_va(3, 0x20_0000, range(tg, 0, 0, 0)),
                Command::TlbiNhVaa { vmid: 0, inv }.encode(),
            ];
            if p.s2p {
                cmds.push(Command::TlbiS2Ipa { vmid: 1, inv }.encode());
            }
            if p.hyp {
                cmds.push(Command::TlbiEl2Va { asid: 0, inv }.encode());
                cmds.push(Command::TlbiEl2Vaa { inv }.encode());
            }
            for c in cmds {
                ill(&p, c, &lg::TLBI_RANGE_RESERVED);
            }
            // Any one of NUM, SCALE or TTL non-zero makes it legal.
            legal_on(
                &p,
                Queue::NonSecure,
                nh_va(3, 0x20_0000, range(tg, 0, 1, 0)),
            );
            legal_on(&p, Queue::NonSecure, nh_va(3, 0, range(tg, 0, 0, 1)));
            legal_on(
                &p,
                Queue::NonSecure,
                nh_va(3, 0x20_0000, range(tg, 3, 0, 0)),
            );
        }
    }
}

/// Case 4 (§4.4.1.1, §4.1.5): TG=0 with NUM/SCALE/TTL/TTL128 non-zero: those fields are RES0.
/// CERROR_ILL or the all-zero encoding, a single-address any-level invalidation: a cached 2MB
/// block containing Addr MUST go although the RES0 TTL says "level 3".
#[test]
fn case_04_tg0_with_range_fields_is_res0() {
    let p = prof("qemu-10.0");
    let blk = 0x4000_0000;
    let mut r4 = RangeFields {
        tg: 0,
        ttl: 0b11,
        ttl128: true,
        num: 5,
        scale: 2,
    };
    for f in 0..4 {
        let mut r = r4;
        // Each field alone, then all of them.
        match f {
            0 => r = range(0, 0b11, 0, 0),
            1 => r = range(0, 0, 5, 0),
            2 => r = range(0, 0, 0, 2),
            _ => {}
        }
        let raw = nh_va(1, blk, r);
        let c = classify(&p, Queue::NonSecure, raw);
        assert_eq!(c.verdict, Verdict::ReservedFieldSet, "{raw}");
        queue_accepts_ill_and_consume(&p, raw);
    }
    r4.ttl128 = false;
    let raw = nh_va(1, blk, r4);
    let (mut r, _sp) = stale_s1("qemu-10.0", Granule::K4, &[(blk, 2)]);
    assert!(r.raw(raw) >= 1);
    r.sync();
    r.rejected(1, None, blk + 0x1_2000, pa(OLD + blk + 0x1_2000));
    r.fresh(1, None, blk + 0x1_2000, pa(OLD + MOVED + blk + 0x1_2000));
}

/// Case 5 (§4.4.1.1, §6.3.4): RIL == 0 with TG != 0: TG and every range field are RES0. The
/// command either raises CERROR_ILL or acts as TG=0 (single address, any level): a 2MB block
/// containing Addr MUST go (although TTL=0b11 would say level 3), while a page at Addr+4KB,
/// inside the NUM=1 "range" read literally, MAY stay.
#[test]
fn case_05_ril0_tg_nonzero_is_res0_and_acts_as_tg0() {
    let p = prof("smmuv3.0-s1-norange");
    assert!(!p.ril);
    let blk = 0x4000_0000;
    let page = 0x1000_0000;
    let raw_blk = nh_va(1, blk, range(0b01, 0b11, 1, 0));
    let raw_page = nh_va(1, page, range(0b01, 0b11, 1, 0));
    for raw in [raw_blk, raw_page] {
        assert_eq!(
            classify(&p, Queue::NonSecure, raw).verdict,
            Verdict::ReservedFieldSet
        );
        queue_accepts_ill_and_consume(&p, raw);
    }
    // Even the combination that is Reserved under RIL == 1 (NUM = SCALE = TTL = 0) is only RES0
    // here: its all-zero encoding is a legal TG=0 invalidation.
    let reserved_shape = nh_va(1, blk, range(0b01, 0, 0, 0));
    assert_eq!(
        classify(&p, Queue::NonSecure, reserved_shape).verdict,
        Verdict::ReservedFieldSet
    );
    let (mut r, _sp) = stale_s1(
        "smmuv3.0-s1-norange",
        Granule::K4,
        &[(blk, 2), (page, 3), (page + 0x1000, 3)],
    );
    r.raw(raw_blk);
    r.raw(raw_page);
    r.sync();
    r.rejected(1, None, blk + 0x3000, pa(OLD + blk + 0x3000));
    r.rejected(1, None, page, pa(OLD + page));
    r.stale_ok(1, None, page + 0x1000, pa(OLD + page + 0x1000));
}

/// Case 6 (§4.4.1.1, §4.1.5): DS == 0 with SCALE[25] = 1: RES0, SCALE is [24:20]. NUM=0,
/// SCALE=0b100000, TTL=3 behaves as SCALE=0: an 8KB range. The page at Addr MUST go; a page
/// 64KB above (inside the range only if SCALE[25] counted) MAY stay. With TTL=0 the zero encoding
/// is the Reserved NUM=SCALE=TTL=0 combination, so CERROR_ILL is then mandatory.
#[test]
fn case_06_ds0_scale25_is_res0() {
    let p = prof("qemu-10.0");
    assert!(!p.ds);
    let va = 0x20_0000;
    let raw = nh_va(1, va, range(0b01, 0b11, 0, 0b10_0000));
    assert_eq!(
        classify(&p, Queue::NonSecure, raw).verdict,
        Verdict::ReservedFieldSet
    );
    queue_accepts_ill_and_consume(&p, raw);
    ill(
        &p,
        nh_va(1, va, range(0b01, 0, 0, 0b10_0000)),
        &lg::TLBI_RANGE_RESERVED,
    );
    let (mut r, _sp) = stale_s1("qemu-10.0", Granule::K4, &[(va, 3), (va + 0x1_0000, 3)]);
    r.raw(raw);
    r.sync();
    r.rejected(1, None, va, pa(OLD + va));
    r.stale_ok(1, None, va + 0x1_0000, pa(OLD + va + 0x1_0000));
}

/// Case 7 (§4.4.1.1): DS == 1 with SCALE = 45 is treated as SCALE = 39: at least that range
/// (everything from Addr, for TG=4K) MUST be removed.
#[test]
fn case_07_ds1_scale45_treated_as_39() {
    let p = prof("smmuv3.4-full");
    assert!(p.ds);
    let raw = nh_va(1, 0, range(0b01, 0, 0, 45));
    let c = classify(&p, Queue::NonSecure, raw);
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::SCALE_CLAMPED));
    let far = 0x40_0000_0000 - 0x1000;
    let (mut r, _sp) = stale_s1(
        "smmuv3.4-full",
        Granule::K4,
        &[(0x1000, 3), (0x4000_0000, 2), (far, 3)],
    );
    assert!(r.raw(raw) >= 3);
    r.sync();
    r.rejected(1, None, 0x1000, pa(OLD + 0x1000));
    r.rejected(1, None, 0x4000_0000, pa(OLD + 0x4000_0000));
    r.rejected(1, None, far, pa(OLD + far));
}

// ---------------------------------------------------------------------------------------------
// EL2, EL3 and Security

fn el2_cmds() -> Vec<RawCommand> {
    let inv = AddrInval {
        addr: 0x1000,
        leaf: true,
        range: RangeFields::default(),
    };
    vec![
        Command::TlbiEl2All.encode(),
        Command::TlbiEl2Asid { asid: 1 }.encode(),
        Command::TlbiEl2Va { asid: 1, inv }.encode(),
        Command::TlbiEl2Vaa { inv }.encode(),
    ]
}

/// Case 35 (§4.4.2.7-10): EL2_* with Hyp == 0, including every S1-only or S2-only SMMU:
/// CERROR_ILL.
#[test]
fn case_35_el2_tlbi_without_hyp_is_ill() {
    let qemu = prof("qemu-10.0");
    // Hyp reads as 0 unless S1P == S2P == 1: set IDR0.Hyp on one-stage SMMUs too.
    let s1_hyp = with_regs("qemu-7.2", |r| r.idr0 |= 1 << 9);
    let s2_hyp = with_regs("qemu-10.0", |r| r.idr0 = (r.idr0 & !0b10) | (1 << 9));
    for p in [qemu, prof("qemu-7.2"), s2_only(), s1_hyp, s2_hyp] {
        for c in el2_cmds() {
            ill(&p, c, &lg::EL2_NO_HYP);
        }
    }
    let full = prof("smmuv3.4-full");
    for c in el2_cmds() {
        legal_on(&full, Queue::NonSecure, c);
    }
}

/// An EL2 stream (STRW = 0b10) on the full profile, SID 1, CD ASID 5; VA 0x1000 non-global and
/// VA 0x2000 global, both remapped after enabling.
fn stale_el2(e2h: bool) -> Rig {
    let mut r = Rig::new("smmuv3.4-full");
    r.m.set_e2h(e2h);
    let st = r.linear_st(2);
    let mut sp = r.s1_space();
    let cd = r.new_cd(5, &sp);
    r.put_struct(st + 64, Ste::stage1(cd).with_strw(0b10).encode());
    let a = r.map(&mut sp, 0x1000, OLD + 0x1000, 3, &NG);
    let b = r.map(
        &mut sp,
        0x2000,
        OLD + 0x2000,
        3,
        &smmu_model::tables::LeafSpec::S1,
    );
    r.m.set_smmuen(true);
    r.fresh(1, None, 0x1000, pa(OLD + 0x1000));
    r.fresh(1, None, 0x2000, pa(OLD + 0x2000));
    r.remap_s1(&sp, a, 3, OLD + MOVED + 0x1000, &NG);
    r.remap_s1(
        &sp,
        b,
        3,
        OLD + MOVED + 0x2000,
        &smmu_model::tables::LeafSpec::S1,
    );
    r.stale_ok(1, None, 0x1000, pa(OLD + 0x1000));
    r.stale_ok(1, None, 0x2000, pa(OLD + 0x2000));
    r
}

fn el2_va(asid: u16, va: u64) -> Command {
    Command::TlbiEl2Va {
        asid,
        inv: AddrInval {
            addr: va,
            leaf: true,
            range: RangeFields::default(),
        },
    }
}

/// Case 36 (§4.4.2.8): EL2_VA with E2H == 0 ignores ASID: any value removes the NS-EL2 entry.
/// With E2H == 1 only matching-ASID (or global) EL2-E2H entries are required.
#[test]
fn case_36_el2_va_asid_ignored_without_e2h() {
    for asid in [0u16, 5, 9, 0xffff] {
        let mut r = stale_el2(false);
        r.cmd(el2_va(asid, 0x1000));
        r.cmd(el2_va(asid, 0x2000));
        r.sync();
        r.rejected(1, None, 0x1000, pa(OLD + 0x1000));
        r.rejected(1, None, 0x2000, pa(OLD + 0x2000));
    }
    // E2H == 1: a non-matching ASID leaves the non-global entry MAY-keep, but the global entry
    // for that VA MUST go whatever ASID is named.
    let mut r = stale_el2(true);
    r.cmd(el2_va(9, 0x1000));
    r.cmd(el2_va(9, 0x2000));
    r.sync();
    r.stale_ok(1, None, 0x1000, pa(OLD + 0x1000));
    r.rejected(1, None, 0x2000, pa(OLD + 0x2000));
    r.cmd(el2_va(5, 0x1000));
    r.sync();
    r.rejected(1, None, 0x1000, pa(OLD + 0x1000));
}

/// Case 37 (§4.4.2.10): EL2_ASID leaves NS-EL2 (untagged) entries and global EL2-E2H entries
/// MAY-keep; non-global EL2-E2H entries with that ASID MUST go.
#[test]
fn case_37_el2_asid_keeps_untagged_and_global() {
    let mut r = stale_el2(false);
    r.cmd(Command::TlbiEl2Asid { asid: 5 });
    r.sync();
    r.stale_ok(1, None, 0x1000, pa(OLD + 0x1000));
    r.stale_ok(1, None, 0x2000, pa(OLD + 0x2000));
    let mut r = stale_el2(true);
    r.cmd(Command::TlbiEl2Asid { asid: 5 });
    r.sync();
    r.rejected(1, None, 0x1000, pa(OLD + 0x1000));
    r.stale_ok(1, None, 0x2000, pa(OLD + 0x2000));
    // EL2_ALL takes both.
    r.cmd(Command::TlbiEl2All);
    r.sync();
    r.rejected(1, None, 0x2000, pa(OLD + 0x2000));
}

/// Case 38 (§4.4.2.5/6): EL3_ALL / EL3_VA on the NS queue, or on the Secure queue with
/// RME_IMPL == 1: CERROR_ILL.
#[test]
fn case_38_el3_tlbi_ill_on_ns_queue_and_with_rme() {
    let inv = AddrInval {
        addr: 0x1000,
        leaf: false,
        range: RangeFields::default(),
    };
    let cmds = [
        Command::TlbiEl3All.encode(),
        Command::TlbiEl3Va { inv }.encode(),
    ];
    let full = prof("smmuv3.4-full");
    let rme = with_regs("smmuv3.4-full", |r| r.idr0 |= 1 << 30);
    assert!(rme.rme_impl && !full.rme_impl);
    for c in cmds {
        for p in [prof("qemu-10.0"), full, rme] {
            ill(&p, c, &lg::EL3_NOT_SECURE_QUEUE);
        }
        ill_on(&rme, Queue::Secure, c, &lg::EL3_RME);
        legal_on(&full, Queue::Secure, c);
    }
}

/// Case 39 (§4.4.2.11-14, §4.4.3.3/4, §4.4.4.2): Secure-only TLBIs on the NS queue, or on the
/// Secure queue with SEL2 == 0: CERROR_ILL.
#[test]
fn case_39_secure_tlbi_ill_on_ns_queue_and_without_sel2() {
    let inv = AddrInval {
        addr: 0x1000,
        leaf: false,
        range: RangeFields::default(),
    };
    let cmds = [
        Command::TlbiSEl2All.encode(),
        Command::TlbiSEl2Asid { asid: 1 }.encode(),
        Command::TlbiSEl2Va { asid: 1, inv }.encode(),
        Command::TlbiSEl2Vaa { inv }.encode(),
        Command::TlbiSS12Vmall { vmid: 1 }.encode(),
        Command::TlbiSS2Ipa {
            vmid: 1,
            ns: false,
            inv,
        }
        .encode(),
        Command::TlbiSnhAll.encode(),
    ];
    let full = prof("smmuv3.4-full");
    let no_sel2 = with_regs("smmuv3.4-full", |r| r.s_idr1 = 0x8000_0000);
    assert!(full.sel2 && no_sel2.secure_impl && !no_sel2.sel2);
    for c in cmds {
        ill(&full, c, &lg::SECURE_ONLY_QUEUE);
        ill(&prof("qemu-10.0"), c, &lg::SECURE_ONLY_QUEUE);
        ill_on(&no_sel2, Queue::Secure, c, &lg::SECURE_NO_SEL2);
        legal_on(&full, Queue::Secure, c);
    }
}

/// Case 40 (§4.1.6, §4.1.3): SSec=1 on the NS queue for CFGI_*, PREFETCH_*, RESUME, STALL_TERM
/// or VMS_PIDM: CERROR_ILL, even with no Secure state at all.
#[test]
fn case_40_ssec_on_ns_queue_is_ill() {
    let cmds = [
        Command::PrefetchConfig {
            ssec: true,
            ssv: false,
            ssid: 0,
            sid: 1,
        },
        Command::PrefetchAddr {
            ssec: true,
            ssv: false,
            ssid: 0,
            sid: 1,
            size: 0,
            stride: 0,
            addr: 0x1000,
        },
        Command::CfgiSte {
            ssec: true,
            sid: 1,
            leaf: true,
        },
        Command::CfgiSteRange {
            ssec: true,
            sid: 0,
            range: 3,
        },
        Command::cfgi_all(),
        Command::CfgiCd {
            ssec: true,
            sid: 1,
            ssid: 0,
            leaf: true,
        },
        Command::CfgiCdAll { ssec: true, sid: 1 },
        Command::CfgiVmsPidm {
            ssec: true,
            vmid: 1,
        },
        Command::Resume {
            ssec: true,
            ac: false,
            ab: false,
            sid: 1,
            stag: 0,
        },
        Command::StallTerm { ssec: true, sid: 1 },
    ];
    let full = prof("smmuv3.4-full");
    let qemu = prof("qemu-10.0");
    assert!(!qemu.secure_impl);
    for c in cmds {
        let mut raw = c.encode();
        raw = raw.with(l::SSEC, 1);
        ill(&full, raw, &lg::SSEC_NON_SECURE_QUEUE);
        // No Secure state: still CERROR_ILL (possibly for a feature rule that comes first).
        let mut m = Model::new(qemu);
        assert!(m.consume(raw).is_err(), "{raw} consumed on qemu-10.0");
        legal_on(&full, Queue::Secure, raw);
        legal_on(&full, Queue::NonSecure, raw.with(l::SSEC, 0));
    }
    // A command that needs nothing but a StreamID: the SSec rule itself.
    ill(
        &qemu,
        Command::CfgiSte {
            ssec: true,
            sid: 1,
            leaf: false,
        }
        .encode(),
        &lg::SSEC_NON_SECURE_QUEUE,
    );
}

// ---------------------------------------------------------------------------------------------
// Opcodes, RES0 and errors

/// Digest case 41's list of Reserved opcodes.
fn digest_reserved(op: u8) -> bool {
    matches!(op,
        0x00 | 0x08..=0x0F | 0x14..=0x17 | 0x19 | 0x1B..=0x1F | 0x24..=0x27 | 0x29 | 0x2B..=0x2F
        | 0x31..=0x3F | 0x42..=0x43 | 0x47..=0x4F | 0x54..=0x57 | 0x59 | 0x5B..=0x5F
        | 0x61..=0x6F | 0x71..=0x72 | 0x74..=0x7F | 0x90..=0xFF)
}

/// Case 41 (§4.1.1, §7.1): every Reserved opcode is CERROR_ILL on every queue; 0x80-0x8F are
/// IMPLEMENTATION DEFINED (flagged, no verdict asserted).
#[test]
fn case_41_every_reserved_opcode_is_ill() {
    let full = prof("smmuv3.4-full");
    for b in 0..=255u8 {
        let raw = RawCommand::new(b as u64, 0);
        let op = Opcode::from_u8(b);
        assert_eq!(
            matches!(op, Opcode::Reserved(_)),
            digest_reserved(b),
            "opcode {b:#04x}"
        );
        if digest_reserved(b) {
            for q in [Queue::NonSecure, Queue::Secure] {
                ill_on(&full, q, raw, &lg::RESERVED_OPCODE);
            }
            // Non-zero payload changes nothing.
            ill(
                &full,
                RawCommand::new(b as u64 | 0xdead_0000, !0),
                &lg::RESERVED_OPCODE,
            );
        }
        if (0x80..=0x8F).contains(&b) {
            assert!(matches!(op, Opcode::ImplementationDefined(_)));
            assert!(classify(&full, Queue::NonSecure, raw)
                .flags
                .has(Flags::IMPDEF));
        }
    }
}

/// Case 42 (§4.3.5, §4.6): CFGI_VMS_PIDM (0x07) with MPAM == 0, DPTI_ALL/DPTI_PA (0x70/0x73)
/// with DPT == 0: CERROR_ILL.
#[test]
fn case_42_vms_pidm_without_mpam_and_dpti_without_dpt_are_ill() {
    let qemu = prof("qemu-10.0");
    let full = prof("smmuv3.4-full");
    assert!(!qemu.mpam && !qemu.dpt && full.mpam && full.dpt);
    let vms = Command::CfgiVmsPidm {
        ssec: false,
        vmid: 1,
    }
    .encode();
    assert_eq!(vms.opcode_byte(), 0x07);
    ill(&qemu, vms, &lg::VMS_PIDM_NO_MPAM);
    legal_on(&full, Queue::NonSecure, vms);
    let dpti = [
        Command::DptiAll.encode(),
        Command::DptiPa {
            leaf: false,
            size: 0,
            pa: 0x1000,
        }
        .encode(),
    ];
    assert_eq!((dpti[0].opcode_byte(), dpti[1].opcode_byte()), (0x70, 0x73));
    for c in dpti {
        ill(&qemu, c, &lg::DPTI_NO_DPT);
        legal_on(&full, Queue::NonSecure, c);
    }
}

fn legal_samples() -> Vec<Command> {
    let inv = AddrInval {
        addr: 0x20_0000,
        leaf: true,
        range: range(0b01, 0b11, 1, 0),
    };
    vec![
        Command::PrefetchConfig {
            ssec: false,
            ssv: true,
            ssid: 3,
            sid: 1,
        },
        Command::PrefetchAddr {
            ssec: false,
            ssv: false,
            ssid: 0,
            sid: 1,
            size: 2,
            stride: 1,
            addr: 0x4000,
        },
        Command::CfgiSte {
            ssec: false,
            sid: 1,
            leaf: true,
        },
        Command::CfgiSteRange {
            ssec: false,
            sid: 0x10,
            range: 3,
        },
        Command::CfgiCd {
            ssec: false,
            sid: 1,
            ssid: 2,
            leaf: false,
        },
        Command::CfgiCdAll {
            ssec: false,
            sid: 1,
        },
        Command::CfgiVmsPidm {
            ssec: false,
            vmid: 3,
        },
        Command::TlbiNhAll { vmid: 3 },
        Command::TlbiNhAsid { vmid: 3, asid: 4 },
        Command::TlbiNhVa {
            vmid: 3,
            asid: 4,
            inv,
        },
        Command::TlbiNhVaa { vmid: 3, inv },
        Command::TlbiEl2All,
        Command::TlbiEl2Asid { asid: 4 },
        Command::TlbiEl2Va { asid: 4, inv },
        Command::TlbiEl2Vaa { inv },
        Command::TlbiS12Vmall { vmid: 3 },
        Command::TlbiS2Ipa { vmid: 3, inv },
        Command::TlbiNsnhAll,
        Command::AtcInv {
            global: false,
            ssv: false,
            ssid: 0,
            sid: 1,
            size: 4,
            addr: 0x10_0000,
        },
        Command::PriResp {
            ssv: false,
            ssid: 0,
            sid: 1,
            prg_index: 3,
            resp: 1,
        },
        Command::Resume {
            ssec: false,
            ac: true,
            ab: false,
            sid: 1,
            stag: 7,
        },
        Command::StallTerm {
            ssec: false,
            sid: 1,
        },
        Command::sync(),
        Command::DptiAll,
        Command::DptiPa {
            leaf: true,
            size: 0,
            pa: 0x10_0000,
        },
    ]
}

/// Case 43 (§4.1.5): any single non-zero RES0 bit in any legal command: CERROR_ILL or behaviour
/// identical to the all-zero encoding, never anything in between. Exhaustive over the static
/// RES0 bits of one legal sample of every opcode: the queue oracle accepts both outcomes, the
/// model consumes it, and its required scope equals the zero encoding's.
#[test]
fn case_43_any_res0_bit_is_ill_or_zero_encoding() {
    let p = prof("smmuv3.4-full");
    let ctx = ScopeCtx::new(p, Queue::NonSecure);
    let strip = |s: String| {
        s.replace(
            " (RES0 bits treated as zero, SCOPE-RES0-AS-ZERO §4.1.5)",
            "",
        )
    };
    let mut checked = 0;
    for c in legal_samples() {
        let base = c.encode();
        assert_eq!(
            classify(&p, Queue::NonSecure, base).verdict,
            Verdict::Legal,
            "sample {base} must be legal"
        );
        let zero = strip(required_scope(&ctx, base).describe());
        let mask = l::static_res0_mask(base.opcode());
        for bit in 0..128 {
            if mask >> bit & 1 == 0 {
                continue;
            }
            let raw = RawCommand::from_u128(base.as_u128() | 1u128 << bit);
            let cl = classify(&p, Queue::NonSecure, raw);
            assert_eq!(cl.verdict, Verdict::ReservedFieldSet, "{raw} bit {bit}");
            assert_eq!(cl.res0_set, 1u128 << bit, "{raw} bit {bit}");
            let mut m = Model::new(p);
            assert!(m.consume(raw).is_ok(), "{raw} bit {bit}");
            assert_eq!(
                strip(required_scope(&ctx, raw).describe()),
                zero,
                "{raw}: RES0 bit {bit} changed the required scope"
            );
            queue_accepts_ill_and_consume(&p, raw);
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} bits checked");

    // A concrete one at model level: NH_VA with a RES0 bit set removes the stale entry as the
    // zero encoding does.
    let va = 0x20_0000;
    let base = nh_va(1, va, RangeFields::default());
    let bit = l::static_res0_mask(Opcode::TlbiNhVa).trailing_zeros();
    let raw = RawCommand::from_u128(base.as_u128() | 1u128 << bit);
    let (mut r, _sp) = stale_s1("smmuv3.4-full", Granule::K4, &[(va, 3)]);
    assert_eq!(r.raw(raw), 1);
    r.sync();
    r.rejected(1, None, va, pa(OLD + va));
}

/// Case 44 (§4.7.3): CMD_SYNC with CS=0b11 is CERROR_ILL; the other CS values are legal.
#[test]
fn case_44_sync_cs_reserved_is_ill() {
    for name in ["qemu-10.0", "smmuv3.4-full"] {
        let p = prof(name);
        let cs = |cs| {
            Command::Sync {
                cs,
                msh: 0,
                msi_attr: 0,
                msi_data: 0,
                msi_addr: 0,
            }
            .encode()
        };
        ill(&p, cs(3), &lg::SYNC_CS_RESERVED);
        for ok in 0..3 {
            legal_on(&p, Queue::NonSecure, cs(ok));
        }
        let (ill_obs, consumed) = queue_outcomes(&p, cs(3));
        assert!(ill_obs.is_ok() && consumed.is_err());
    }
}

/// Case 45 (§4.7.3): SIG_SEV with SEV == 0 acts as SIG_NONE, no error, and is still a SYNC;
/// SIG_IRQ with MSIAddress == 0 writes no MSI; MSIAddress non-zero only above OAS counts as
/// non-zero and is truncated.
#[test]
fn case_45_sync_signal_corner_cases() {
    let qemu = prof("qemu-10.0");
    assert!(!qemu.sev);
    let sev = Command::Sync {
        cs: 2,
        msh: 0,
        msi_attr: 0,
        msi_data: 0,
        msi_addr: 0,
    }
    .encode();
    let q = QueueState::configured(&qemu, 0x9000_0000, 4);
    assert_eq!(sync_signal(&q, sev), (SyncSignal::None, false));
    let (ill_obs, consumed) = queue_outcomes(&qemu, sev);
    assert!(ill_obs.is_err() && consumed.is_ok());
    // Still a completion point for earlier invalidations.
    let va = 0x20_0000;
    let (mut r, _sp) = stale_s1("qemu-10.0", Granule::K4, &[(va, 3)]);
    r.raw(nh_va(1, va, RangeFields::default()));
    r.raw(sev);
    r.rejected(1, None, va, pa(OLD + va));

    let full = prof("smmuv3.4-full");
    assert!(full.msi && full.oas_bits == 52);
    let q = QueueState::configured(&full, 0x9000_0000, 4);
    let irq = |addr| {
        Command::Sync {
            cs: 1,
            msh: 3,
            msi_attr: 0xf,
            msi_data: 0x55,
            msi_addr: addr,
        }
        .encode()
    };
    assert!(!matches!(sync_signal(&q, irq(0)).0, SyncSignal::Msi(_)));
    match sync_signal(&q, irq((1 << 54) | 0x40)).0 {
        SyncSignal::Msi(w) => assert_eq!((w.addr, w.data), (0x40, 0x55)),
        s => panic!("expected an MSI, got {s:?}"),
    }
}

/// Case 46 (§4.5.1): ATC_INV with ATS == 0 is CERROR_ILL. Size=52 covers the whole address
/// space. Size 53..63: CERROR_ILL or an UNKNOWN span, so the queue oracle must accept both.
#[test]
fn case_46_atc_inv_ats0_ill_and_size_52_everything() {
    let atc = |size| {
        Command::AtcInv {
            global: false,
            ssv: false,
            ssid: 0,
            sid: 1,
            size,
            addr: 0,
        }
        .encode()
    };
    ill(&prof("qemu-10.0"), atc(0), &lg::ATC_INV_NO_ATS);
    let full = prof("smmuv3.4-full");
    legal_on(&full, Queue::NonSecure, atc(52));
    let s = required_scope(&ScopeCtx::new(full, Queue::NonSecure), atc(52)).describe();
    assert!(s.contains("[0x0, 0x10000000000000000)"), "{s}");
    for size in 53..=63 {
        let c = classify(&full, Queue::NonSecure, atc(size));
        assert!(c.flags.has(Flags::UNKNOWN_SPAN), "Size {size}");
        let (_, consumed) = queue_outcomes(&full, atc(size));
        assert!(
            consumed.is_ok(),
            "Size {size}: consumption must be accepted"
        );
    }
}

/// Case 46, second half (§4.5.1): for Size 53..63 CERROR_ILL is a permitted outcome.
#[test]
fn case_46_atc_inv_size_above_52_may_raise_ill() {
    let full = prof("smmuv3.4-full");
    for size in 53..=63u8 {
        let raw = Command::AtcInv {
            global: false,
            ssv: false,
            ssid: 0,
            sid: 1,
            size,
            addr: 0,
        }
        .encode();
        let (ill_obs, _) = queue_outcomes(&full, raw);
        if let Err(v) = ill_obs {
            panic!("Size {size}: CERROR_ILL rejected: {v}");
        }
    }
}

/// Case 46, Global (§4.5.1): ATC_INV.Global is IGNORED when SSV == 0, so the command must
/// invalidate exactly what Global = 0 does, not nothing.
#[test]
fn case_46_atc_inv_global_ignored_without_ssv_still_invalidates() {
    let full = prof("smmuv3.4-full");
    let ctx = ScopeCtx::new(full, Queue::NonSecure);
    let atc = |global| {
        Command::AtcInv {
            global,
            ssv: false,
            ssid: 0,
            sid: 1,
            size: 0,
            addr: 0x1000,
        }
        .encode()
    };
    let zero = required_scope(&ctx, atc(false)).describe();
    assert!(zero.contains("[0x1000, 0x2000)"), "{zero}");
    assert_eq!(required_scope(&ctx, atc(true)).describe(), zero);
}

/// Case 47 (§4.5.2, §4.7.1/2): PRI_RESP with Resp=0b11 or PRI == 0, and RESUME/STALL_TERM with
/// STALL_MODEL == 0b01: CERROR_ILL.
#[test]
fn case_47_pri_resp_and_stall_commands_ill() {
    let full = prof("smmuv3.4-full");
    let qemu = prof("qemu-10.0");
    assert!(full.pri && !qemu.pri && qemu.stall_model == 0b01 && full.stall_model == 0);
    let pri = |resp| {
        Command::PriResp {
            ssv: false,
            ssid: 0,
            sid: 1,
            prg_index: 1,
            resp,
        }
        .encode()
    };
    ill(&full, pri(0b11), &lg::PRI_RESP_RESERVED_RESP);
    for resp in 0..3 {
        legal_on(&full, Queue::NonSecure, pri(resp));
        ill(&qemu, pri(resp), &lg::PRI_RESP_NO_PRI);
    }
    let stall = [
        Command::Resume {
            ssec: false,
            ac: false,
            ab: true,
            sid: 1,
            stag: 2,
        }
        .encode(),
        Command::StallTerm {
            ssec: false,
            sid: 1,
        }
        .encode(),
    ];
    for c in stall {
        ill(&qemu, c, &lg::STALL_NOT_SUPPORTED);
        legal_on(&full, Queue::NonSecure, c);
    }
}

/// Case 48 (§4.3.3/4): CFGI_CD and CFGI_CD_ALL on a stage-2-only SMMU: CERROR_ILL.
#[test]
fn case_48_cfgi_cd_on_s2_only_is_ill() {
    let p = s2_only();
    let cmds = [
        Command::CfgiCd {
            ssec: false,
            sid: 1,
            ssid: 0,
            leaf: true,
        }
        .encode(),
        Command::CfgiCdAll {
            ssec: false,
            sid: 1,
        }
        .encode(),
    ];
    for c in cmds {
        ill(&p, c, &lg::CFGI_CD_NO_S1P);
        legal_on(&prof("qemu-10.0"), Queue::NonSecure, c);
    }
    // CFGI_STE stays legal on the stage-2-only SMMU.
    legal_on(
        &p,
        Queue::NonSecure,
        Command::CfgiSte {
            ssec: false,
            sid: 1,
            leaf: true,
        }
        .encode(),
    );
}
