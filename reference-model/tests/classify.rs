//! Classification tests: one row per Reserved opcode, per CERROR_ILL rule, per ReservedFieldSet
//! condition, and per tricky case of the digest §9 (1-7, 30, 35-48), plus property tests that
//! classify is total and deterministic and that `res0_set` is exactly what keeps a command from
//! being Legal.

use proptest::prelude::*;
use rstest::rstest;
use smmu_model::classify::{classify, res0_fields, Classification, Classifier, Flags, Verdict};
use smmu_model::command::layout as l;
use smmu_model::command::{Opcode, RawCommand};
use smmu_model::profile::{IdRegs, Profile, Queue, NAMED_PROFILES};
use smmu_model::rules::{self, legality as lg, Rule};

use Queue::{NonSecure as NS, Realm, Secure};

/// Profiles by short name: the named ones plus single-feature variations of the full profile.
fn prof(name: &str) -> Profile {
    let full = Profile::named("smmuv3.4-full").unwrap().regs;
    let regs = match name {
        "full" => full,
        "qemu10" => Profile::named("qemu-10.0").unwrap().regs,
        "qemu72" => Profile::named("qemu-7.2").unwrap().regs,
        "s1v30" => Profile::named("smmuv3.0-s1-norange").unwrap().regs,
        // Stage-2-only: S1P cleared (Hyp then reads as 0 too, §6.3.1).
        "s2only" => IdRegs {
            idr0: full.idr0 & !(1 << 1),
            ..full
        },
        "rme" => IdRegs {
            idr0: full.idr0 | (1 << 30),
            ..full
        },
        "sams" => IdRegs {
            s_idr3: 1 << 6,
            ..full
        },
        "nosel2" => IdRegs {
            s_idr1: 1 << 31,
            ..full
        },
        "realm_ats_dpt" => IdRegs {
            r_idr0: 1 << 10,
            r_idr3: 1 << 15,
            ..full
        },
        "v31" => IdRegs { aidr: 1, ..full },
        "v30" => IdRegs { aidr: 0, ..full },
        "nods" => IdRegs {
            idr5: full.idr5 & !(1 << 7),
            ..full
        },
        "noril" => IdRegs {
            idr3: full.idr3 & !(1 << 10),
            ..full
        },
        "stall01" => IdRegs {
            idr0: full.idr0 | (1 << 24),
            ..full
        },
        "nosev" => IdRegs {
            idr0: full.idr0 & !(1 << 14),
            ..full
        },
        "nompam_nodpt" => IdRegs {
            idr3: full.idr3 & !((1 << 7) | (1 << 15)),
            ..full
        },
        "noats_nopri" => IdRegs {
            idr0: full.idr0 & !((1 << 10) | (1 << 16)),
            ..full
        },
        "nohyp" => IdRegs {
            idr0: full.idr0 & !(1 << 9),
            ..full
        },
        "narrow" => IdRegs {
            idr0: full.idr0 & !((1 << 12) | (1 << 18)),
            ..full
        },
        other => panic!("unknown test profile {other}"),
    };
    Profile::from_regs(regs)
}

const PROFILES: &[&str] = &[
    "full",
    "qemu10",
    "qemu72",
    "s1v30",
    "s2only",
    "rme",
    "sams",
    "nosel2",
    "realm_ats_dpt",
    "v31",
    "v30",
    "nods",
    "noril",
    "stall01",
    "nosev",
    "nompam_nodpt",
    "noats_nopri",
    "nohyp",
    "narrow",
];

fn cmd(op: u8) -> RawCommand {
    RawCommand::new(op as u64, 0)
}

/// A range TLBI on a 4KB-aligned, canonical address.
fn va(op: u8, tg: u64, ttl: u64, num: u64, scale: u64) -> RawCommand {
    cmd(op)
        .with(l::TG, tg)
        .with(l::TTL, ttl)
        .with(l::NUM, num)
        .with(l::SCALE, scale)
        .with_address(l::VA, 0x4000_0000)
}

fn cl(p: &str, q: Queue, raw: RawCommand) -> Classification {
    let pr = prof(p);
    let c = classify(&pr, q, raw);
    // The table-driven classifier and the free function must agree.
    assert_eq!(c, Classifier::new(&pr, q).classify(raw));
    c
}

fn rule_of(c: &Classification) -> Option<&'static Rule> {
    match c.verdict {
        Verdict::Illegal(r) => Some(r),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// §4.1.1, §7.1, case 41: every Reserved opcode is ILL, on every profile and queue.

#[rstest]
#[case::reserved_0x00(0x00)]
#[case::reserved_0x08(0x08)]
#[case::reserved_0x09(0x09)]
#[case::reserved_0x0a(0x0a)]
#[case::reserved_0x0b(0x0b)]
#[case::reserved_0x0c(0x0c)]
#[case::reserved_0x0d(0x0d)]
#[case::reserved_0x0e(0x0e)]
#[case::reserved_0x0f(0x0f)]
#[case::reserved_0x14(0x14)]
#[case::reserved_0x15(0x15)]
#[case::reserved_0x16(0x16)]
#[case::reserved_0x17(0x17)]
#[case::reserved_0x19(0x19)]
#[case::reserved_0x1b(0x1b)]
#[case::reserved_0x1c(0x1c)]
#[case::reserved_0x1d(0x1d)]
#[case::reserved_0x1e(0x1e)]
#[case::reserved_0x1f(0x1f)]
#[case::reserved_0x24(0x24)]
#[case::reserved_0x25(0x25)]
#[case::reserved_0x26(0x26)]
#[case::reserved_0x27(0x27)]
#[case::reserved_0x29(0x29)]
#[case::reserved_0x2b(0x2b)]
#[case::reserved_0x2c(0x2c)]
#[case::reserved_0x2d(0x2d)]
#[case::reserved_0x2e(0x2e)]
#[case::reserved_0x2f(0x2f)]
#[case::reserved_0x31(0x31)]
#[case::reserved_0x32(0x32)]
#[case::reserved_0x33(0x33)]
#[case::reserved_0x34(0x34)]
#[case::reserved_0x35(0x35)]
#[case::reserved_0x36(0x36)]
#[case::reserved_0x37(0x37)]
#[case::reserved_0x38(0x38)]
#[case::reserved_0x39(0x39)]
#[case::reserved_0x3a(0x3a)]
#[case::reserved_0x3b(0x3b)]
#[case::reserved_0x3c(0x3c)]
#[case::reserved_0x3d(0x3d)]
#[case::reserved_0x3e(0x3e)]
#[case::reserved_0x3f(0x3f)]
#[case::reserved_0x42(0x42)]
#[case::reserved_0x43(0x43)]
#[case::reserved_0x47(0x47)]
#[case::reserved_0x48(0x48)]
#[case::reserved_0x49(0x49)]
#[case::reserved_0x4a(0x4a)]
#[case::reserved_0x4b(0x4b)]
#[case::reserved_0x4c(0x4c)]
#[case::reserved_0x4d(0x4d)]
#[case::reserved_0x4e(0x4e)]
#[case::reserved_0x4f(0x4f)]
#[case::reserved_0x54(0x54)]
#[case::reserved_0x55(0x55)]
#[case::reserved_0x56(0x56)]
#[case::reserved_0x57(0x57)]
#[case::reserved_0x59(0x59)]
#[case::reserved_0x5b(0x5b)]
#[case::reserved_0x5c(0x5c)]
#[case::reserved_0x5d(0x5d)]
#[case::reserved_0x5e(0x5e)]
#[case::reserved_0x5f(0x5f)]
#[case::reserved_0x61(0x61)]
#[case::reserved_0x62(0x62)]
#[case::reserved_0x63(0x63)]
#[case::reserved_0x64(0x64)]
#[case::reserved_0x65(0x65)]
#[case::reserved_0x66(0x66)]
#[case::reserved_0x67(0x67)]
#[case::reserved_0x68(0x68)]
#[case::reserved_0x69(0x69)]
#[case::reserved_0x6a(0x6a)]
#[case::reserved_0x6b(0x6b)]
#[case::reserved_0x6c(0x6c)]
#[case::reserved_0x6d(0x6d)]
#[case::reserved_0x6e(0x6e)]
#[case::reserved_0x6f(0x6f)]
#[case::reserved_0x71(0x71)]
#[case::reserved_0x72(0x72)]
#[case::reserved_0x74(0x74)]
#[case::reserved_0x75(0x75)]
#[case::reserved_0x76(0x76)]
#[case::reserved_0x77(0x77)]
#[case::reserved_0x78(0x78)]
#[case::reserved_0x79(0x79)]
#[case::reserved_0x7a(0x7a)]
#[case::reserved_0x7b(0x7b)]
#[case::reserved_0x7c(0x7c)]
#[case::reserved_0x7d(0x7d)]
#[case::reserved_0x7e(0x7e)]
#[case::reserved_0x7f(0x7f)]
#[case::reserved_0x90(0x90)]
#[case::reserved_0x91(0x91)]
#[case::reserved_0x92(0x92)]
#[case::reserved_0x93(0x93)]
#[case::reserved_0x94(0x94)]
#[case::reserved_0x95(0x95)]
#[case::reserved_0x96(0x96)]
#[case::reserved_0x97(0x97)]
#[case::reserved_0x98(0x98)]
#[case::reserved_0x99(0x99)]
#[case::reserved_0x9a(0x9a)]
#[case::reserved_0x9b(0x9b)]
#[case::reserved_0x9c(0x9c)]
#[case::reserved_0x9d(0x9d)]
#[case::reserved_0x9e(0x9e)]
#[case::reserved_0x9f(0x9f)]
#[case::reserved_0xa0(0xa0)]
#[case::reserved_0xa1(0xa1)]
#[case::reserved_0xa2(0xa2)]
#[case::reserved_0xa3(0xa3)]
#[case::reserved_0xa4(0xa4)]
#[case::reserved_0xa5(0xa5)]
#[case::reserved_0xa6(0xa6)]
#[case::reserved_0xa7(0xa7)]
#[case::reserved_0xa8(0xa8)]
#[case::reserved_0xa9(0xa9)]
#[case::reserved_0xaa(0xaa)]
#[case::reserved_0xab(0xab)]
#[case::reserved_0xac(0xac)]
#[case::reserved_0xad(0xad)]
#[case::reserved_0xae(0xae)]
#[case::reserved_0xaf(0xaf)]
#[case::reserved_0xb0(0xb0)]
#[case::reserved_0xb1(0xb1)]
#[case::reserved_0xb2(0xb2)]
#[case::reserved_0xb3(0xb3)]
#[case::reserved_0xb4(0xb4)]
#[case::reserved_0xb5(0xb5)]
#[case::reserved_0xb6(0xb6)]
#[case::reserved_0xb7(0xb7)]
#[case::reserved_0xb8(0xb8)]
#[case::reserved_0xb9(0xb9)]
#[case::reserved_0xba(0xba)]
#[case::reserved_0xbb(0xbb)]
#[case::reserved_0xbc(0xbc)]
#[case::reserved_0xbd(0xbd)]
#[case::reserved_0xbe(0xbe)]
#[case::reserved_0xbf(0xbf)]
#[case::reserved_0xc0(0xc0)]
#[case::reserved_0xc1(0xc1)]
#[case::reserved_0xc2(0xc2)]
#[case::reserved_0xc3(0xc3)]
#[case::reserved_0xc4(0xc4)]
#[case::reserved_0xc5(0xc5)]
#[case::reserved_0xc6(0xc6)]
#[case::reserved_0xc7(0xc7)]
#[case::reserved_0xc8(0xc8)]
#[case::reserved_0xc9(0xc9)]
#[case::reserved_0xca(0xca)]
#[case::reserved_0xcb(0xcb)]
#[case::reserved_0xcc(0xcc)]
#[case::reserved_0xcd(0xcd)]
#[case::reserved_0xce(0xce)]
#[case::reserved_0xcf(0xcf)]
#[case::reserved_0xd0(0xd0)]
#[case::reserved_0xd1(0xd1)]
#[case::reserved_0xd2(0xd2)]
#[case::reserved_0xd3(0xd3)]
#[case::reserved_0xd4(0xd4)]
#[case::reserved_0xd5(0xd5)]
#[case::reserved_0xd6(0xd6)]
#[case::reserved_0xd7(0xd7)]
#[case::reserved_0xd8(0xd8)]
#[case::reserved_0xd9(0xd9)]
#[case::reserved_0xda(0xda)]
#[case::reserved_0xdb(0xdb)]
#[case::reserved_0xdc(0xdc)]
#[case::reserved_0xdd(0xdd)]
#[case::reserved_0xde(0xde)]
#[case::reserved_0xdf(0xdf)]
#[case::reserved_0xe0(0xe0)]
#[case::reserved_0xe1(0xe1)]
#[case::reserved_0xe2(0xe2)]
#[case::reserved_0xe3(0xe3)]
#[case::reserved_0xe4(0xe4)]
#[case::reserved_0xe5(0xe5)]
#[case::reserved_0xe6(0xe6)]
#[case::reserved_0xe7(0xe7)]
#[case::reserved_0xe8(0xe8)]
#[case::reserved_0xe9(0xe9)]
#[case::reserved_0xea(0xea)]
#[case::reserved_0xeb(0xeb)]
#[case::reserved_0xec(0xec)]
#[case::reserved_0xed(0xed)]
#[case::reserved_0xee(0xee)]
#[case::reserved_0xef(0xef)]
#[case::reserved_0xf0(0xf0)]
#[case::reserved_0xf1(0xf1)]
#[case::reserved_0xf2(0xf2)]
#[case::reserved_0xf3(0xf3)]
#[case::reserved_0xf4(0xf4)]
#[case::reserved_0xf5(0xf5)]
#[case::reserved_0xf6(0xf6)]
#[case::reserved_0xf7(0xf7)]
#[case::reserved_0xf8(0xf8)]
#[case::reserved_0xf9(0xf9)]
#[case::reserved_0xfa(0xfa)]
#[case::reserved_0xfb(0xfb)]
#[case::reserved_0xfc(0xfc)]
#[case::reserved_0xfd(0xfd)]
#[case::reserved_0xfe(0xfe)]
#[case::reserved_0xff(0xff)]
fn reserved_opcode_is_ill(#[case] op: u8) {
    for p in PROFILES {
        for q in [NS, Secure, Realm] {
            let c = cl(p, q, cmd(op).with(l::SID, 0xFFFF_FFFF));
            assert_eq!(rule_of(&c), Some(&lg::RESERVED_OPCODE), "{op:#x} {p} {q:?}");
            // res0_set still reports the set bits even though the verdict is Illegal.
            assert_eq!(c.res0_set, 0xFFFF_FFFFu128 << 32);
        }
    }
}

/// Case 41: the Reserved set is exactly the digest's list.
#[test]
fn case_41_reserved_opcode_set_matches_digest() {
    let ranges: &[(u8, u8)] = &[
        (0x00, 0x00),
        (0x08, 0x0F),
        (0x14, 0x17),
        (0x19, 0x19),
        (0x1B, 0x1F),
        (0x24, 0x27),
        (0x29, 0x29),
        (0x2B, 0x2F),
        (0x31, 0x3F),
        (0x42, 0x43),
        (0x47, 0x4F),
        (0x54, 0x57),
        (0x59, 0x59),
        (0x5B, 0x5F),
        (0x61, 0x6F),
        (0x71, 0x72),
        (0x74, 0x7F),
        (0x90, 0xFF),
    ];
    for b in 0..=255u8 {
        let listed = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&b));
        let c = cl("full", Secure, cmd(b));
        assert_eq!(
            rule_of(&c) == Some(&lg::RESERVED_OPCODE),
            listed,
            "opcode {b:#x}"
        );
    }
}

/// §4.1.1: IMPLEMENTATION DEFINED opcodes are modelled as ILL with the IMPDEF flag.
#[rstest]
fn impdef_opcodes_are_flagged(#[values(0x80, 0x85, 0x8F)] op: u8) {
    let c = cl("full", NS, cmd(op).with(l::SID, 7));
    assert_eq!(rule_of(&c), Some(&lg::IMPDEF_OPCODE));
    assert!(c.flags.has(Flags::IMPDEF));
    assert_eq!(
        c.res0_set, 0,
        "nothing is known to be RES0 in an IMPDEF command"
    );
}

// ---------------------------------------------------------------------------------------------
// One row per CERROR_ILL rule, each citing its section.

#[rstest]
// §4.3.3/§4.3.4: CFGI_CD, CFGI_CD_ALL need S1P.
#[case::cfgi_cd_no_s1p_4_3_3("s2only", NS, cmd(0x05), &lg::CFGI_CD_NO_S1P)]
#[case::cfgi_cd_all_no_s1p_4_3_4("s2only", NS, cmd(0x06), &lg::CFGI_CD_NO_S1P)]
// §4.3.5: VMS_PIDM needs MPAM.
#[case::vms_pidm_no_mpam_4_3_5("nompam_nodpt", NS, cmd(0x07), &lg::VMS_PIDM_NO_MPAM)]
// §4.4.2: stage-1 TLBIs on a stage-2-only SMMU.
#[case::nh_all_no_s1p_4_4_2("s2only", NS, cmd(0x10), &lg::TLBI_S1_NO_S1P)]
#[case::nh_asid_no_s1p_4_4_2("s2only", NS, cmd(0x11), &lg::TLBI_S1_NO_S1P)]
#[case::nh_va_no_s1p_4_4_2("s2only", NS, cmd(0x12), &lg::TLBI_S1_NO_S1P)]
#[case::nh_vaa_no_s1p_4_4_2("s2only", NS, cmd(0x13), &lg::TLBI_S1_NO_S1P)]
#[case::el3_all_no_s1p_4_4_2_5("s2only", Secure, cmd(0x18), &lg::TLBI_S1_NO_S1P)]
// §4.4.2.7-10: EL2 TLBIs need Hyp.
#[case::el2_all_no_hyp_4_4_2_7("nohyp", NS, cmd(0x20), &lg::EL2_NO_HYP)]
#[case::el2_asid_no_hyp_4_4_2_10("nohyp", NS, cmd(0x21), &lg::EL2_NO_HYP)]
#[case::el2_va_no_hyp_4_4_2_8("nohyp", NS, cmd(0x22), &lg::EL2_NO_HYP)]
#[case::el2_vaa_no_hyp_4_4_2_9("nohyp", NS, cmd(0x23), &lg::EL2_NO_HYP)]
// §4.4.2.5/6: EL3 TLBIs off the Secure queue, or with RME.
#[case::el3_all_ns_queue_4_4_2_5("full", NS, cmd(0x18), &lg::EL3_NOT_SECURE_QUEUE)]
#[case::el3_va_realm_queue_4_4_2_6("full", Realm, cmd(0x1A), &lg::EL3_NOT_SECURE_QUEUE)]
#[case::el3_all_rme_4_4_2_5("rme", Secure, cmd(0x18), &lg::EL3_RME)]
// §4.4.3.1/2: stage-2 TLBIs need S2P.
#[case::s12_vmall_no_s2p_4_4_3_2("qemu72", NS, cmd(0x28), &lg::S2_NO_S2P)]
#[case::s2_ipa_no_s2p_4_4_3_1("qemu72", NS, cmd(0x2A), &lg::S2_NO_S2P)]
// §4.4.2.11-14, §4.4.3.3/4, §4.4.4.2: Secure-only TLBIs.
#[case::s_el2_all_ns_queue_4_4_2_11("full", NS, cmd(0x50), &lg::SECURE_ONLY_QUEUE)]
#[case::snh_all_realm_queue_4_4_4_2("full", Realm, cmd(0x60), &lg::SECURE_ONLY_QUEUE)]
#[case::s_s2_ipa_no_sel2_4_4_3_3("nosel2", Secure, cmd(0x5A), &lg::SECURE_NO_SEL2)]
// §4.5.1: ATC_INV.
#[case::atc_inv_no_ats_4_5_1("noats_nopri", NS, cmd(0x40), &lg::ATC_INV_NO_ATS)]
#[case::atc_inv_no_r_ats_4_5_1("full", Realm, cmd(0x40), &lg::ATC_INV_NO_ATS)]
#[case::atc_inv_sams_4_5_1("sams", Secure, cmd(0x40), &lg::ATC_INV_SAMS)]
// §4.5.2: PRI_RESP.
#[case::pri_resp_no_pri_4_5_2("noats_nopri", NS, cmd(0x41), &lg::PRI_RESP_NO_PRI)]
#[case::pri_resp_sams_4_5_2("sams", Secure, cmd(0x41), &lg::PRI_RESP_SAMS)]
#[case::pri_resp_resp3_4_5_2("full", NS, cmd(0x41).with(l::RESP, 3), &lg::PRI_RESP_RESERVED_RESP)]
// §4.7.1/2: RESUME/STALL_TERM.
#[case::resume_stall01_4_7_1("stall01", NS, cmd(0x44), &lg::STALL_NOT_SUPPORTED)]
#[case::stall_term_stall01_4_7_2("stall01", Secure, cmd(0x45), &lg::STALL_NOT_SUPPORTED)]
#[case::resume_realm_4_7_1("full", Realm, cmd(0x44), &lg::STALL_REALM_QUEUE)]
// §4.7.3: CMD_SYNC CS == 0b11.
#[case::sync_cs3_4_7_3("full", NS, cmd(0x46).with(l::CS, 3), &lg::SYNC_CS_RESERVED)]
// §4.4.1.1: the reserved range combination.
#[case::range_reserved_4_4_1_1("full", NS, va(0x12, 1, 0, 0, 0), &lg::TLBI_RANGE_RESERVED)]
// §4.6.1/2: DPTI.
#[case::dpti_all_no_dpt_4_6_1("nompam_nodpt", NS, cmd(0x70), &lg::DPTI_NO_DPT)]
#[case::dpti_pa_no_r_dpt_4_6_2("full", Realm, cmd(0x73), &lg::DPTI_NO_DPT)]
#[case::dpti_all_sams_4_6_1("sams", Secure, cmd(0x70), &lg::DPTI_SAMS)]
// §4.1.6: SSec == 1 on the NS and Realm queues.
#[case::ssec_ns_queue_4_1_6("full", NS, cmd(0x03).with(l::SSEC, 1), &lg::SSEC_NON_SECURE_QUEUE)]
#[case::ssec_realm_queue_4_1_6("full", Realm, cmd(0x03).with(l::SSEC, 1), &lg::SSEC_REALM_QUEUE)]
fn cerror_ill_rule(
    #[case] p: &str,
    #[case] q: Queue,
    #[case] raw: RawCommand,
    #[case] rule: &'static Rule,
) {
    let c = cl(p, q, raw);
    assert_eq!(rule_of(&c), Some(rule), "{c:?}");
}

/// Every registered legality rule is exercised by some row above or the Reserved/IMPDEF tests,
/// and every rule is registered.
#[test]
fn every_rule_is_registered() {
    for r in lg::ALL {
        assert_eq!(rules::by_id(r.id), Some(*r));
        assert!(r.section.starts_with('§'));
    }
    assert_eq!(lg::ALL.len(), 24);
}

/// The same commands are legal where the feature exists (the rows above are not vacuous).
#[rstest]
#[case("full", NS, cmd(0x05))]
#[case("full", NS, cmd(0x07))]
#[case("full", NS, cmd(0x20))]
#[case("full", Secure, cmd(0x18))]
#[case("full", NS, cmd(0x2A))]
#[case("full", Secure, cmd(0x50))]
#[case("full", Secure, cmd(0x5A))]
#[case("full", Secure, cmd(0x60))]
#[case("full", NS, cmd(0x40))]
#[case("realm_ats_dpt", Realm, cmd(0x40))]
#[case("full", Secure, cmd(0x41).with(l::RESP, 2))]
#[case("full", NS, cmd(0x44))]
#[case("full", Secure, cmd(0x45).with(l::SSEC, 1))]
#[case("full", NS, cmd(0x46).with(l::CS, 2))]
#[case("full", NS, va(0x12, 1, 3, 0, 0))]
#[case("full", Secure, cmd(0x70))]
#[case("realm_ats_dpt", Realm, cmd(0x73))]
#[case("full", NS, cmd(0x30))]
#[case("s2only", NS, cmd(0x30))]
fn legal_counterparts(#[case] p: &str, #[case] q: Queue, #[case] raw: RawCommand) {
    assert_eq!(cl(p, q, raw).verdict, Verdict::Legal);
}

// ---------------------------------------------------------------------------------------------
// One row per ReservedFieldSet condition (§4.1.5; digest §1 configuration-dependent RES0).

#[rstest]
// §4.1.5: a bit no field names (NSNH_ALL is opcode-only).
#[case::static_bit_4_1_5("full", NS, cmd(0x30).with(l::SID, 1), 1u128 << 32, 0)]
// §4.4.1.1, §6.3.4: RIL == 0 makes TG/TTL/NUM/SCALE/TTL128 RES0.
#[case::ril0_tg_4_4_1_1("noril", NS, va(0x12, 1, 0, 0, 0), l::TG.mask() & (1u128 << 74), 0)]
// §4.4.1.1: TG == 0 makes NUM/SCALE/TTL/TTL128 RES0.
#[case::tg0_num_4_4_1_1("full", NS, va(0x12, 0, 0, 3, 0), 3u128 << 12, 0)]
#[case::tg0_ttl128_4_4_1_1("full", NS, cmd(0x12).with(l::TTL128, 1), 1u128 << 71, 0)]
// §4.4.1.1: TTL == 0 makes TTL128 RES0.
#[case::ttl0_ttl128_4_4_1_1("full", NS, va(0x12, 1, 0, 1, 0).with(l::TTL128, 1), 1u128 << 71, 0)]
// §4.4.1.1: SCALE[25] RES0 when DS == 0.
#[case::scale25_ds0_4_4_1_1("nods", NS, va(0x12, 1, 3, 0, 0x20), 1u128 << 25, 0)]
// §4.4.2, digest §10.2: NH_* VMID without stage 2 for the queue's Security state.
#[case::vmid_no_s2_ns_4_4_2("qemu72", NS, cmd(0x10).with(l::VMID, 1), 1u128 << 32, Flags::VMID_NO_STAGE2)]
#[case::vmid_no_sel2_secure_4_4_2("nosel2", Secure, cmd(0x11).with(l::VMID, 1), 1u128 << 32, Flags::VMID_NO_STAGE2)]
// §4.4, §6.3.1, digest §10.1: upper bytes of 8-bit ASID/VMID.
#[case::asid_upper_4_4("narrow", NS, cmd(0x11).with(l::ASID, 0x100), 1u128 << 56, Flags::NARROW_ID_UPPER_SET)]
#[case::vmid_upper_4_4("narrow", NS, cmd(0x28).with(l::VMID, 0x100), 1u128 << 40, Flags::NARROW_ID_UPPER_SET)]
// §4.1.6: IPA/PA Address[55:52] in v3.1-v3.3, [55:48] in v3.0 (bit 52 is also above IAS 52:
// OUT_OF_RANGE, §4.4.3.1).
#[case::ipa_55_52_v31_4_1_6("v31", NS, cmd(0x2A).with_address(l::IPA, 1 << 52), 1u128 << 116, Flags::OUT_OF_RANGE)]
#[case::ipa_48_v30_4_1_6("v30", NS, cmd(0x2A).with_address(l::IPA, 1 << 48), 1u128 << 112, 0)]
#[case::dpti_pa_55_52_v31_4_1_6("v31", NS, cmd(0x73).with_address(l::IPA, 1 << 53), 1u128 << 117, 0)]
// §4.7.3, §4.1.6: MSIAddress[55:52] when the MSI is used (CS == SIG_IRQ, MSI == 1).
#[case::sync_msiaddr_v31_4_7_3("v31", NS, cmd(0x46).with(l::CS, 1).with_address(l::MSIADDR, 1 << 55), 1u128 << 119, 0)]
// §4.2.2: PREFETCH_ADDR.Stride RES0 in v3.0.
#[case::stride_v30_4_2_2("s1v30", NS, cmd(0x02).with(l::PF_STRIDE, 1), 1u128 << 69, 0)]
fn reserved_field_set(
    #[case] p: &str,
    #[case] q: Queue,
    #[case] raw: RawCommand,
    #[case] res0: u128,
    #[case] flags: u16,
) {
    let c = cl(p, q, raw);
    assert_eq!(c.verdict, Verdict::ReservedFieldSet, "{c:?}");
    assert_eq!(c.res0_set, res0, "{:#x}", c.res0_set);
    assert_eq!(c.flags.0, flags, "{c:?}");
}

/// §4.7.3: MSI fields are IGNORED, not RES0, when CS != SIG_IRQ or IDR0.MSI == 0.
#[rstest]
#[case::sig_none("v31", 0)]
#[case::sig_sev("v31", 2)]
#[case::irq_no_msi("qemu10", 1)]
fn sync_msi_fields_ignored_not_res0(#[case] p: &str, #[case] cs: u64) {
    let raw = cmd(0x46)
        .with(l::CS, cs)
        .with_address(l::MSIADDR, 1 << 55)
        .with(l::MSIDATA, 5);
    let c = cl(p, NS, raw);
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::IGNORED));
}

// ---------------------------------------------------------------------------------------------
// Tricky cases of the digest §9.

#[test]
fn case_01_tg16k_ttl01_ds0_num0_scale0_is_ill() {
    // §4.4.1.1: TTL=0b01 with 16KB and DS == 0 is treated as 0b00: the reserved combination.
    let raw = va(0x12, 2, 1, 0, 0);
    assert_eq!(
        rule_of(&cl("qemu10", NS, raw)),
        Some(&lg::TLBI_RANGE_RESERVED)
    );
    assert_eq!(
        rule_of(&cl("nods", NS, raw)),
        Some(&lg::TLBI_RANGE_RESERVED)
    );
    // With DS == 1 TTL=0b01 is a real level (64GB block): legal.
    assert_eq!(cl("full", NS, raw).verdict, Verdict::Legal);
}

#[test]
fn case_02_tg16k_ttl01_ds0_num1_is_legal_any_level() {
    let raw = va(0x12, 2, 1, 1, 0);
    let c = cl("nods", NS, raw);
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(!c.flags.has(Flags::UNPREDICTABLE_RANGE));
    // Address[13:12] != 0: UNPREDICTABLE range (TTL treated as 0b00, §4.4.1.1).
    let c = cl("nods", NS, raw.with_address(l::VA, 0x4000_1000));
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::UNPREDICTABLE_RANGE));
}

#[rstest]
fn case_03_tg_nonzero_num0_scale0_ttl0_is_ill(#[values(1, 2, 3)] tg: u64) {
    for p in ["full", "qemu10", "nods"] {
        assert_eq!(
            rule_of(&cl(p, NS, va(0x12, tg, 0, 0, 0))),
            Some(&lg::TLBI_RANGE_RESERVED)
        );
    }
    // Every address-based TLBI, not just NH_VA.
    for op in [0x13, 0x22, 0x23, 0x2A] {
        assert_eq!(
            rule_of(&cl("full", NS, va(op, tg, 0, 0, 0))),
            Some(&lg::TLBI_RANGE_RESERVED)
        );
    }
}

#[test]
fn case_04_tg0_with_range_fields_is_reserved_field_set() {
    let raw = va(0x12, 0, 2, 5, 3).with(l::TTL128, 1);
    let c = cl("full", NS, raw);
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
    assert_eq!(
        c.res0_set,
        raw.as_u128() & (l::NUM.mask() | l::SCALE.mask() | l::TTL.mask() | l::TTL128.mask())
    );
}

#[test]
fn case_05_ril0_with_tg_is_reserved_field_set_not_ill() {
    // The reserved combination is not ILL when RIL == 0: the fields are RES0 (§4.4.1.1, §6.3.4).
    let c = cl("s1v30", NS, va(0x12, 1, 0, 0, 0));
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
    assert_eq!(c.res0_set, 1u128 << 74);
    let c = cl("noril", NS, va(0x12, 3, 2, 1, 1));
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
}

#[test]
fn case_06_ds0_scale25_is_reserved_field_set() {
    let c = cl("nods", NS, va(0x12, 1, 3, 1, 0x21));
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
    assert_eq!(c.res0_set, 1u128 << 25);
    let f = res0_fields(&prof("nods"), NS, va(0x12, 1, 3, 1, 0x21));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].name, "SCALE[25]");
    assert_eq!(f[0].reason, "IDR5.DS == 0");
    assert_eq!(f[0].section, "§4.4.1.1");
    // SCALE[25] alone, NUM == 0, TTL == 0: effective SCALE 0 gives the reserved combination.
    assert_eq!(
        rule_of(&cl("nods", NS, va(0x12, 1, 0, 0, 0x20))),
        Some(&lg::TLBI_RANGE_RESERVED)
    );
}

#[test]
fn case_07_ds1_scale45_is_clamped() {
    let c = cl("full", NS, va(0x12, 3, 0, 1, 45));
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::SCALE_CLAMPED));
    assert!(!cl("full", NS, va(0x12, 3, 0, 1, 39))
        .flags
        .has(Flags::SCALE_CLAMPED));
}

#[test]
fn case_30_narrow_asid_vmid_upper_byte() {
    let c = cl(
        "narrow",
        NS,
        cmd(0x12).with(l::ASID, 0xAB01).with(l::VMID, 0x0201),
    );
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
    assert!(c.flags.has(Flags::NARROW_ID_UPPER_SET));
    assert_eq!(c.res0_set, (0xABu128 << 56) | (0x02u128 << 40));
    let names: Vec<_> = res0_fields(
        &prof("narrow"),
        NS,
        cmd(0x12).with(l::ASID, 0xAB01).with(l::VMID, 0x0201),
    )
    .into_iter()
    .map(|f| f.name)
    .collect();
    assert_eq!(names, ["VMID[15:8]", "ASID[15:8]"]);
    // 16-bit IDs: legal.
    assert_eq!(
        cl("full", NS, cmd(0x12).with(l::ASID, 0xAB01)).verdict,
        Verdict::Legal
    );
}

#[rstest]
fn case_35_el2_without_hyp_is_ill(
    #[values("qemu10", "qemu72", "s1v30", "s2only", "nohyp")] p: &str,
    #[values(0x20, 0x21, 0x22, 0x23)] op: u8,
) {
    assert_eq!(rule_of(&cl(p, NS, cmd(op))), Some(&lg::EL2_NO_HYP));
}

#[test]
fn case_36_37_el2_va_and_asid_legal_with_hyp() {
    for asid in [0, 1, 0xFFFF] {
        assert_eq!(
            cl("full", NS, cmd(0x22).with(l::ASID, asid)).verdict,
            Verdict::Legal
        );
        assert_eq!(
            cl("full", NS, cmd(0x21).with(l::ASID, asid)).verdict,
            Verdict::Legal
        );
    }
}

#[rstest]
fn case_38_el3_ns_queue_or_rme_is_ill(#[values(0x18, 0x1A)] op: u8) {
    assert_eq!(
        rule_of(&cl("full", NS, cmd(op))),
        Some(&lg::EL3_NOT_SECURE_QUEUE)
    );
    assert_eq!(rule_of(&cl("rme", Secure, cmd(op))), Some(&lg::EL3_RME));
    assert_eq!(cl("full", Secure, cmd(op)).verdict, Verdict::Legal);
}

#[rstest]
fn case_39_secure_only_tlbi(#[values(0x50, 0x51, 0x52, 0x53, 0x58, 0x5A, 0x60)] op: u8) {
    assert_eq!(
        rule_of(&cl("full", NS, cmd(op))),
        Some(&lg::SECURE_ONLY_QUEUE)
    );
    assert_eq!(
        rule_of(&cl("full", Realm, cmd(op))),
        Some(&lg::SECURE_ONLY_QUEUE)
    );
    assert_eq!(
        rule_of(&cl("nosel2", Secure, cmd(op))),
        Some(&lg::SECURE_NO_SEL2)
    );
    assert_eq!(
        rule_of(&cl("qemu10", Secure, cmd(op))),
        Some(&lg::SECURE_NO_SEL2)
    );
}

#[rstest]
fn case_40_ssec1_on_ns_queue_is_ill(
    #[values(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x44, 0x45)] op: u8,
    #[values("full", "qemu10")] p: &str,
) {
    let c = cl(p, NS, cmd(op).with(l::SSEC, 1));
    // On qemu-10.0 VMS_PIDM and RESUME/STALL_TERM are ILL for a feature reason first; either
    // way the command is ILL.
    assert!(matches!(c.verdict, Verdict::Illegal(_)));
    if p == "full" {
        assert_eq!(rule_of(&c), Some(&lg::SSEC_NON_SECURE_QUEUE));
        assert_eq!(
            rule_of(&cl(p, Realm, cmd(op).with(l::SSEC, 1))).map(|r| r.id),
            Some(if matches!(op, 0x44 | 0x45) {
                lg::STALL_REALM_QUEUE.id
            } else {
                lg::SSEC_REALM_QUEUE.id
            })
        );
        // SSec == 1 is fine on the Secure queue.
        assert_eq!(
            cl(p, Secure, cmd(op).with(l::SSEC, 1)).verdict,
            Verdict::Legal
        );
    } else {
        // PREFETCH is ILL with SSec == 1 even with no Secure state at all (§4.1.6).
        if matches!(op, 0x01 | 0x02) {
            assert_eq!(rule_of(&c), Some(&lg::SSEC_NON_SECURE_QUEUE));
        }
    }
}

#[test]
fn case_42_vms_pidm_and_dpti_without_feature() {
    assert_eq!(
        rule_of(&cl("qemu10", NS, cmd(0x07))),
        Some(&lg::VMS_PIDM_NO_MPAM)
    );
    assert_eq!(
        rule_of(&cl("qemu10", NS, cmd(0x70))),
        Some(&lg::DPTI_NO_DPT)
    );
    assert_eq!(
        rule_of(&cl("qemu10", NS, cmd(0x73))),
        Some(&lg::DPTI_NO_DPT)
    );
}

#[test]
fn case_43_random_res0_bit_is_reserved_field_set() {
    // CFGI_STE: bit 100 is not a field.
    let c = cl(
        "full",
        NS,
        RawCommand::from_u128(cmd(0x03).as_u128() | (1u128 << 100)),
    );
    assert_eq!(c.verdict, Verdict::ReservedFieldSet);
    assert_eq!(c.res0_set, 1u128 << 100);
    let f = res0_fields(
        &prof("full"),
        NS,
        RawCommand::from_u128(cmd(0x03).as_u128() | (1u128 << 100)),
    );
    assert_eq!(f[0].name, "bits[127:65]");
    assert_eq!(f[0].value, 1u128 << 35);
}

#[test]
fn case_44_sync_cs3_is_ill() {
    for p in PROFILES {
        assert_eq!(
            rule_of(&cl(p, NS, cmd(0x46).with(l::CS, 3))),
            Some(&lg::SYNC_CS_RESERVED)
        );
    }
}

#[test]
fn case_45_sync_sev_and_msi_zero() {
    let c = cl("nosev", NS, cmd(0x46).with(l::CS, 2));
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(c.flags.has(Flags::IGNORED));
    let c = cl("full", NS, cmd(0x46).with(l::CS, 1));
    assert_eq!(
        c,
        Classification {
            verdict: Verdict::Legal,
            res0_set: 0,
            flags: Flags(0)
        }
    );
    // MSIAddress only above OAS: still legal on v3.4 (no RES0 address bits).
    assert_eq!(
        cl(
            "full",
            NS,
            cmd(0x46).with(l::CS, 1).with_address(l::MSIADDR, 1 << 54)
        )
        .verdict,
        Verdict::Legal
    );
}

#[test]
fn case_46_atc_inv() {
    assert_eq!(
        rule_of(&cl("qemu10", NS, cmd(0x40))),
        Some(&lg::ATC_INV_NO_ATS)
    );
    let c = cl("full", NS, cmd(0x40).with(l::ATC_SIZE, 52));
    assert_eq!(c.verdict, Verdict::Legal);
    assert!(!c.flags.has(Flags::UNKNOWN_SPAN));
    for size in 53..=63 {
        let c = cl("full", NS, cmd(0x40).with(l::ATC_SIZE, size));
        // §4.5.1: ILL permitted but not required, or an UNKNOWN span: a flag, not Illegal.
        assert_eq!(c.verdict, Verdict::Legal);
        assert!(c.flags.has(Flags::UNKNOWN_SPAN));
    }
}

#[test]
fn case_47_pri_resp_and_stall() {
    assert_eq!(
        rule_of(&cl("full", NS, cmd(0x41).with(l::RESP, 3))),
        Some(&lg::PRI_RESP_RESERVED_RESP)
    );
    assert_eq!(
        rule_of(&cl("qemu10", NS, cmd(0x41))),
        Some(&lg::PRI_RESP_NO_PRI)
    );
    for r in 0..3 {
        assert_eq!(
            cl("full", NS, cmd(0x41).with(l::RESP, r)).verdict,
            Verdict::Legal
        );
    }
    for op in [0x44, 0x45] {
        assert_eq!(
            rule_of(&cl("qemu10", NS, cmd(op))),
            Some(&lg::STALL_NOT_SUPPORTED)
        );
        assert_eq!(
            rule_of(&cl("stall01", NS, cmd(op))),
            Some(&lg::STALL_NOT_SUPPORTED)
        );
    }
}

#[rstest]
fn case_48_cfgi_cd_on_s2_only_is_ill(#[values(0x05, 0x06)] op: u8) {
    assert_eq!(
        rule_of(&cl("s2only", NS, cmd(op))),
        Some(&lg::CFGI_CD_NO_S1P)
    );
    assert_eq!(
        rule_of(&cl("s2only", Secure, cmd(op))),
        Some(&lg::CFGI_CD_NO_S1P)
    );
}

// ---------------------------------------------------------------------------------------------
// Flags.

#[test]
fn out_of_range_flags() {
    // qemu-10.0: SIDSIZE 16, SSIDSIZE 0.
    let c = cl("qemu10", NS, cmd(0x03).with(l::SID, 1 << 16));
    assert!(c.flags.has(Flags::OUT_OF_RANGE));
    assert!(!cl("qemu10", NS, cmd(0x03).with(l::SID, 0xFFFF))
        .flags
        .has(Flags::OUT_OF_RANGE));
    // SSV == 1 with no substreams (§4.2, §4.5.1).
    assert!(cl("qemu10", NS, cmd(0x01).with(l::SSV, 1))
        .flags
        .has(Flags::OUT_OF_RANGE));
    // SSID ignored when SSV == 0.
    assert!(!cl("qemu10", NS, cmd(0x01).with(l::SSID, 5))
        .flags
        .has(Flags::OUT_OF_RANGE));
    // CFGI_STE_RANGE: Range = 31 (CFGI_ALL) ignores the StreamID.
    assert!(!cl(
        "qemu10",
        NS,
        cmd(0x04).with(l::SID, u32::MAX as u64).with(l::RANGE, 31)
    )
    .flags
    .has(Flags::OUT_OF_RANGE));
    // Non-canonical VA (VAS 52 on the full profile) (§4.4.2).
    let c = cl(
        "full",
        NS,
        cmd(0x12).with_address(l::VA, 0x0010_0000_0000_0000),
    );
    assert!(c.flags.has(Flags::OUT_OF_RANGE));
    assert!(!cl(
        "full",
        NS,
        cmd(0x12).with_address(l::VA, 0xFFFF_F000_0000_0000)
    )
    .flags
    .has(Flags::OUT_OF_RANGE));
    // IPA above IAS (qemu-10.0: OAS 44, TTF AArch64 only) (§4.4.3.1).
    assert!(cl("qemu10", NS, cmd(0x2A).with_address(l::IPA, 1 << 44))
        .flags
        .has(Flags::OUT_OF_RANGE));
}

#[test]
fn alignment_flags() {
    // 4KB, TTL=0b10 (2MB), Address[20:12] != 0: UNPREDICTABLE range (case 12).
    let raw = va(0x12, 1, 2, 1, 0).with_address(l::VA, 0x20_1000);
    assert!(cl("full", NS, raw).flags.has(Flags::UNPREDICTABLE_RANGE));
    // 64KB, TTL=0b11, Address[15:12] != 0 (case 13).
    let raw = va(0x12, 3, 3, 1, 0).with_address(l::VA, 0x1_1000);
    assert!(cl("full", NS, raw).flags.has(Flags::UNPREDICTABLE_RANGE));
    // TTL128 misaligned: nothing required (case 14).
    let raw = va(0x12, 1, 2, 1, 0)
        .with(l::TTL128, 1)
        .with_address(l::VA, 0x1000);
    let c = cl("full", NS, raw);
    assert!(c.flags.has(Flags::NOTHING_REQUIRED) && !c.flags.has(Flags::UNPREDICTABLE_RANGE));
}

#[test]
fn res0_fields_names_static_runs() {
    // NSNH_ALL is opcode only: bits [127:8] form one run.
    let raw = RawCommand::new(0x30 | (1 << 9) | (1 << 40), 1);
    let f = res0_fields(&prof("full"), NS, raw);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].name, "bits[127:8]");
    assert_eq!((f[0].hi, f[0].lo), (127, 8));
    assert_eq!(f[0].section, "§4.1.5");
    let f = res0_fields(&prof("qemu72"), NS, cmd(0x10).with(l::VMID, 3));
    assert_eq!(f[0].name, "VMID (no stage 2)");
    assert_eq!(f[0].reason, "IDR0.S2P == 0 (no stage 2)");
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn all_profiles() -> Vec<Profile> {
    let mut v: Vec<Profile> = NAMED_PROFILES
        .iter()
        .map(|n| Profile::from_regs(n.regs))
        .collect();
    v.extend(PROFILES.iter().map(|p| prof(p)));
    v
}

/// One classifier per (profile, queue), built once for the whole property run.
fn classifiers() -> &'static [Classifier] {
    static K: std::sync::OnceLock<Vec<Classifier>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        all_profiles()
            .iter()
            .flat_map(|p| [NS, Secure, Realm].map(|q| Classifier::new(p, q)))
            .collect()
    })
}

fn arb_raw() -> impl Strategy<Value = RawCommand> {
    // Mostly architected opcodes with sparse payloads, so that Legal commands are common.
    let opcode = prop_oneof![
        3 => proptest::sample::select(
            smmu_model::command::opcode::ARCHITECTED.iter().map(|e| e.0).collect::<Vec<u8>>()
        ),
        1 => any::<u8>(),
    ];
    let word = prop_oneof![
        any::<u64>(),
        any::<u64>().prop_map(|w| w & (w >> 7) & (w >> 13)),
        Just(0u64)
    ];
    (opcode, word.clone(), word).prop_map(|(op, a, b)| RawCommand::new((a & !0xFF) | op as u64, b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn classify_is_total_deterministic_and_res0_is_exact(raw in arb_raw()) {
        for k in classifiers() {
            let (p, q) = (*k.profile(), k.queue());
            {
                let c = classify(&p, q, raw);
                prop_assert_eq!(c, classify(&p, q, raw));
                prop_assert_eq!(c, k.classify(raw));
                // res0_fields names exactly res0_set.
                let union = res0_fields(&p, q, raw).iter().fold(0u128, |u, f| u | (f.value << f.lo));
                prop_assert_eq!(union, c.res0_set);
                match c.verdict {
                    Verdict::Illegal(_) => {}
                    Verdict::Legal => prop_assert_eq!(c.res0_set, 0),
                    Verdict::ReservedFieldSet => {
                        prop_assert_ne!(c.res0_set, 0);
                        let cleared = RawCommand::from_u128(raw.as_u128() & !c.res0_set);
                        let c2 = classify(&p, q, cleared);
                        prop_assert_eq!(c2.verdict, Verdict::Legal, "{:?} -> {:?}", raw, cleared);
                    }
                }
            }
        }
    }
}

#[test]
fn opcode_of_every_architected_entry_round_trips() {
    for e in smmu_model::command::opcode::ARCHITECTED {
        assert_eq!(Opcode::from_u8(e.0), e.1);
    }
}

// ---------------------------------------------------------------------------------------------
// The compiled fast path (Classifier, classify_queue) against the readable rules (the free
// classify()): every opcode, random words, every profile, every queue, so that the two can
// never drift apart.

fn arb_word() -> impl Strategy<Value = u64> {
    // Dense, sparse (so that "all zero" conditions such as NUM == SCALE == 0 occur), zero, and
    // a single set bit.
    prop_oneof![
        any::<u64>(),
        any::<u64>().prop_map(|w| w & (w >> 7) & (w >> 13)),
        Just(0u64),
        (0u32..64).prop_map(|b| 1u64 << b),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn compiled_classifier_agrees_with_the_rules_on_every_opcode(
        w0 in arb_word(),
        w1 in arb_word(),
    ) {
        let raws: Vec<RawCommand> = (0..=255u8)
            .map(|op| RawCommand::new((w0 & !0xFF) | op as u64, w1))
            .collect();
        let queue: Vec<u8> = raws.iter().flat_map(|r| r.to_bytes()).collect();
        for k in classifiers() {
            let (p, q) = (*k.profile(), k.queue());
            let fast = k.classify_queue(&queue).unwrap();
            prop_assert_eq!(fast.len(), raws.len());
            for (raw, c) in raws.iter().zip(fast) {
                let rich = classify(&p, q, *raw);
                prop_assert_eq!(c.classification(), rich, "{} {:?} {:?}", raw, q, p.regs);
                prop_assert_eq!(c.verdict(), rich.verdict);
                prop_assert_eq!(c.illegal_rule().map(|r| r.id), rule_of(&rich).map(|r| r.id));
                prop_assert_eq!(c.is_legal(), rich.verdict == Verdict::Legal);
                prop_assert_eq!(c, k.classify_compact(*raw));
                prop_assert_eq!(c, k.classify_bytes(&raw.to_bytes()));
            }
        }
    }
}

#[test]
fn classify_queue_rejects_a_partial_command() {
    let k = Classifier::new(&prof("full"), NS);
    let err = k.classify_queue(&[0u8; 17]).unwrap_err();
    assert_eq!(err.len, 17);
    assert!(err.to_string().contains("1 bytes left over"), "{err}");
    assert_eq!(k.classify_queue(&[]).unwrap().count(), 0);
    // CMD_SYNC, CS = SIG_NONE, all else zero: Legal.
    let sync = RawCommand::new(0x46, 0).to_bytes();
    let v: Vec<_> = k.classify_queue(&[sync, sync].concat()).unwrap().collect();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|c| c.is_legal()));
}
