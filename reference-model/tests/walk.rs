//! Translation tests: tables are built with the crate's own encoders and walked back.

use proptest::prelude::*;
use smmu_model::granule::Granule;
use smmu_model::memory::{MemRead, Memory};
use smmu_model::structures::cd::TtbRegion;
use smmu_model::structures::stream_table::L1Std;
use smmu_model::structures::{
    Cd, CdFormat, L1Cd, SmmuProfile, Ste, StreamTableConfig, StreamWorld,
};
use smmu_model::tables::{LeafSpec, PageTableBuilder};
use smmu_model::walk::{
    s1_start_level, translate, translate_traced, Access, FaultClass, FaultKind, S2Purpose, Stage,
    StepKind, TraceRole, WalkParams,
};

const STRTAB: u64 = 0x10_0000;
const CD_BASE: u64 = 0x20_0000;
const S1_ROOT: u64 = 0x100_0000;
const S1_ALLOC: u64 = 0x110_0000;
const S2_ROOT: u64 = 0x400_0000;
const S2_ALLOC: u64 = 0x410_0000;

fn st() -> StreamTableConfig {
    StreamTableConfig::linear(STRTAB, 8)
}

fn put_ste(mem: &mut Memory, sid: u32, ste: &Ste) {
    mem.write_words(STRTAB + sid as u64 * 64, &ste.encode());
}

fn s1_builder(cd: &Cd, region: TtbRegion) -> PageTableBuilder {
    let p = WalkParams::stage1_region(cd, StreamWorld::NsEl1, &SmmuProfile::default(), region)
        .expect("region");
    PageTableBuilder::new(
        p,
        S1_ALLOC
            + if region == TtbRegion::Ttb1 {
                0x80_0000
            } else {
                0
            },
    )
}

/// Stage-1-only setup: SID 1 -> CD at CD_BASE -> tables at S1_ROOT.
fn s1_setup(g: Granule, t0sz: u8) -> (Memory, Cd, PageTableBuilder) {
    let mut mem = Memory::new();
    let cd = Cd::new(5, S1_ROOT, t0sz, g);
    mem.write_words(CD_BASE, &cd.encode());
    put_ste(&mut mem, 1, &Ste::stage1(CD_BASE).with_vmid(3));
    let b = s1_builder(&cd, TtbRegion::Ttb0);
    (mem, cd, b)
}

#[test]
fn s1_every_granule_and_level() {
    for g in Granule::ALL {
        for t0sz in [16u8, 25, 33] {
            let start = s1_start_level(g, 64 - t0sz).unwrap();
            for level in start.max(1)..=3 {
                if g.block_size(level).is_none() {
                    continue;
                }
                let (mut mem, _cd, mut b) = s1_setup(g, t0sz);
                let size = g.block_size(level).unwrap();
                let va = (3 * size) & ((1u64 << (64 - t0sz)) - 1);
                let va = va + ((size / 2) & !0xfff) + 0x123;
                let oa = 0x8000_0000u64.next_multiple_of(size) + size;
                b.map(&mut mem, va, oa, level, &LeafSpec::S1).unwrap();
                let t = translate(&mem, &st(), true, 1, None, va, Access::READ)
                    .unwrap_or_else(|f| panic!("{g:?} t0sz {t0sz} level {level}: {f:?}"));
                assert_eq!(t.pa, oa + (va & (size - 1)), "{g:?} {t0sz} {level}");
                let s1 = t.s1.unwrap();
                assert_eq!(s1.level, level);
                assert_eq!(s1.block_size, size);
                assert_eq!(s1.granule, g);
                assert_eq!(t.asid, Some(5));
                assert_eq!(t.vmid, 3);
                assert!(t.global);
                assert!(t.s2.is_none());
                // Trace: STE, CD, then one S1 read per level.
                assert!(matches!(t.trace[0].role, TraceRole::Ste { sid: 1 }));
                assert!(matches!(t.trace[1].role, TraceRole::Cd { sid: 1, ssid: 0 }));
                let s1_reads = t.trace.len() - 2;
                assert_eq!(s1_reads, (level - start + 1) as usize);
                assert!(matches!(
                    t.trace.last().unwrap().role,
                    TraceRole::S1 {
                        kind: StepKind::Leaf,
                        ..
                    }
                ));
                // Neighbouring unmapped address faults at stage 1.
                let f = translate(&mem, &st(), true, 1, None, va ^ (size * 8), Access::READ)
                    .unwrap_err();
                assert_eq!(f.kind, FaultKind::Translation);
                assert_eq!(f.stage, Some(Stage::S1));
            }
        }
    }
}

#[test]
fn s1_ttb1_region_and_out_of_range() {
    let (mut mem, cd, _) = s1_setup(Granule::K4, 25);
    let cd = cd.with_ttb1(0x180_0000, 25, Granule::K16);
    mem.write_words(CD_BASE, &cd.encode());
    let mut b1 = s1_builder(&cd, TtbRegion::Ttb1);
    let va = 0xFFFF_FF80_0040_0000u64; // top 39 bits region
    b1.map(&mut mem, va, 0x9000_0000, 3, &LeafSpec::S1).unwrap();
    let t = translate(&mem, &st(), true, 1, None, va + 0x10, Access::READ).unwrap();
    assert_eq!(t.pa, 0x9000_0010);
    assert_eq!(t.s1.unwrap().region, Some(TtbRegion::Ttb1));
    assert_eq!(t.s1.unwrap().granule, Granule::K16);
    // Not sign-extended correctly: outside both regions.
    let f = translate(
        &mem,
        &st(),
        true,
        1,
        None,
        0x0000_8000_0000_0000,
        Access::READ,
    )
    .unwrap_err();
    assert_eq!(f.kind, FaultKind::Translation);
    let f = translate(
        &mem,
        &st(),
        true,
        1,
        None,
        0xFF00_0080_0000_0000,
        Access::READ,
    )
    .unwrap_err();
    assert_eq!(f.kind, FaultKind::Translation);
    // TBI1 ignores the top byte.
    let cd2 = cd.with_tbi(false, true);
    mem.write_words(CD_BASE, &cd2.encode());
    let t = translate(
        &mem,
        &st(),
        true,
        1,
        None,
        (va & !(0xffu64 << 56)) | (0x12 << 56),
        Access::READ,
    );
    assert_eq!(t.unwrap().pa, 0x9000_0000);
    // EPD1: TTB1 walks disabled.
    mem.write_words(CD_BASE, &Cd { epd1: true, ..cd }.encode());
    let f = translate(&mem, &st(), true, 1, None, va, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::Translation);
}

#[test]
fn s1_ng_af_and_permissions() {
    let (mut mem, cd, mut b) = s1_setup(Granule::K4, 25);
    b.map(&mut mem, 0x1000, 0x8000_1000, 3, &LeafSpec::S1.ng(true))
        .unwrap();
    b.map(&mut mem, 0x2000, 0x8000_2000, 3, &LeafSpec::S1.af(false))
        .unwrap();
    b.map(&mut mem, 0x3000, 0x8000_3000, 3, &LeafSpec::S1.ap(0b11))
        .unwrap();
    b.map(&mut mem, 0x4000, 0x8000_4000, 3, &LeafSpec::S1.ap(0b00))
        .unwrap();
    b.map(&mut mem, 0x5000, 0x8000_5000, 3, &LeafSpec::S1.xn(true))
        .unwrap();
    let tr = |mem: &Memory, va, a| translate(mem, &st(), true, 1, None, va, a);
    let t = tr(&mem, 0x1000, Access::WRITE).unwrap();
    assert!(!t.global);
    assert_eq!(t.asid, Some(5));
    let f = tr(&mem, 0x2000, Access::READ).unwrap_err();
    assert_eq!(
        (f.kind, f.stage, f.level),
        (FaultKind::Access, Some(Stage::S1), Some(3))
    );
    assert_eq!(f.event_id(), Some(0x12));
    mem.write_words(CD_BASE, &cd.with_affd(true).encode());
    assert!(tr(&mem, 0x2000, Access::READ).is_ok());
    assert!(tr(&mem, 0x3000, Access::READ).is_ok());
    let f = tr(&mem, 0x3000, Access::WRITE).unwrap_err();
    assert_eq!((f.kind, f.event_id()), (FaultKind::Permission, Some(0x13)));
    assert_eq!(
        tr(&mem, 0x4000, Access::READ).unwrap_err().kind,
        FaultKind::Permission
    );
    assert!(tr(&mem, 0x4000, Access::WRITE.privileged()).is_ok());
    assert!(tr(&mem, 0x5000, Access::READ).is_ok());
    assert_eq!(
        tr(&mem, 0x5000, Access::READ.instruction())
            .unwrap_err()
            .kind,
        FaultKind::Permission
    );
    // STE.PRIVCFG = 0b11 forces privileged.
    let mut ste = Ste::stage1(CD_BASE);
    ste.privcfg = 0b11;
    put_ste(&mut mem, 1, &ste);
    assert!(tr(&mem, 0x4000, Access::READ).is_ok());
}

fn s2_params(g: Granule, t0sz: u8, level: u8) -> WalkParams {
    WalkParams::new(Stage::S2, g, 64 - t0sz, level, S2_ROOT)
}

#[test]
fn s2_only_every_granule() {
    for (g, t0sz, start) in [
        (Granule::K4, 24, 0),
        (Granule::K4, 25, 1),
        (Granule::K4, 34, 2),
        (Granule::K4, 30, 1), // 34-bit IPA from level 1: 16 concatenated tables
        (Granule::K16, 24, 1),
        (Granule::K16, 28, 2),
        (Granule::K64, 20, 1),
        (Granule::K64, 30, 2),
    ] {
        let mut mem = Memory::new();
        let ste = Ste::stage2(9, S2_ROOT, g, t0sz, start);
        put_ste(&mut mem, 2, &ste);
        let mut b = PageTableBuilder::new(s2_params(g, t0sz, start), S2_ALLOC);
        assert_eq!(
            WalkParams::stage2(&ste, &SmmuProfile::default())
                .unwrap()
                .start_level,
            start
        );
        for level in start.max(1)..=3 {
            let Some(size) = g.block_size(level) else {
                continue;
            };
            let ipa = (size * 5) & ((1u64 << (64 - t0sz)) - 1);
            let oa = 0x1_0000_0000u64.next_multiple_of(size);
            b.map(&mut mem, ipa, oa, level, &LeafSpec::S2).unwrap();
            let t = translate(&mem, &st(), true, 2, None, ipa + 0x40, Access::WRITE)
                .unwrap_or_else(|f| panic!("{g:?} {t0sz} {level}: {f:?}"));
            assert_eq!(t.pa, oa + 0x40);
            assert_eq!(t.vmid, 9);
            assert!(t.s1.is_none());
            assert_eq!(t.s2.unwrap().level, level);
            assert!(t.trace.iter().skip(1).all(|e| matches!(
                e.role,
                TraceRole::S2 {
                    purpose: S2Purpose::Output,
                    ..
                }
            )));
            b.map(&mut mem, ipa, oa, level, &LeafSpec::S2.ap(0b01))
                .unwrap();
            let f = translate(&mem, &st(), true, 2, None, ipa, Access::WRITE).unwrap_err();
            assert_eq!(
                (f.kind, f.stage, f.class),
                (FaultKind::Permission, Some(Stage::S2), Some(FaultClass::In))
            );
            mem = Memory::new();
            put_ste(&mut mem, 2, &ste);
            b = PageTableBuilder::new(s2_params(g, t0sz, start), S2_ALLOC);
        }
    }
    // IPA beyond S2T0SZ: stage 2 translation fault; with no stage 2 implemented, VMID is 0
    // and the STE is ILLEGAL.
    let mut mem = Memory::new();
    put_ste(&mut mem, 2, &Ste::stage2(9, S2_ROOT, Granule::K4, 32, 1));
    let f = translate(&mem, &st(), true, 2, None, 1 << 33, Access::READ).unwrap_err();
    assert_eq!((f.kind, f.stage), (FaultKind::Translation, Some(Stage::S2)));
    let f = translate(&mem, &st(), false, 2, None, 0, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::BadSte);
    // SSID on a stage-2-only STE.
    let f = translate(&mem, &st(), true, 2, Some(1), 0, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::BadSubstreamId);
    // Inconsistent S2SL0 (4K level 0 with a 32-bit IPA).
    put_ste(&mut mem, 2, &Ste::stage2(9, S2_ROOT, Granule::K4, 32, 0));
    assert_eq!(
        translate(&mem, &st(), true, 2, None, 0, Access::READ)
            .unwrap_err()
            .kind,
        FaultKind::BadSte
    );
}

/// Nested: stage 2 identity-maps the configuration/table area with 2MB blocks and maps the
/// S1 output IPA 0x4000_0000 to PA 0xC000_0000.
fn nested_setup() -> (Memory, PageTableBuilder) {
    let mut mem = Memory::new();
    let g2 = Granule::K4;
    let mut b2 = PageTableBuilder::new(s2_params(g2, 24, 1), S2_ALLOC);
    for ipa in (0..0x200_0000u64).step_by(0x20_0000) {
        b2.map(&mut mem, ipa, ipa, 2, &LeafSpec::S2.ap(0b01))
            .unwrap();
    }
    b2.map(&mut mem, 0x4000_0000, 0xC000_0000, 3, &LeafSpec::S2)
        .unwrap();
    let cd = Cd::new(7, S1_ROOT, 25, Granule::K64);
    mem.write_words(CD_BASE, &cd.encode());
    put_ste(&mut mem, 4, &Ste::nested(CD_BASE, 11, S2_ROOT, g2, 24, 1));
    let b1 = s1_builder(&cd, TtbRegion::Ttb0);
    (mem, b1)
}

#[test]
fn nested_translation() {
    let (mut mem, mut b1) = nested_setup();
    b1.map(&mut mem, 0x7_0000, 0x4000_0000, 3, &LeafSpec::S1)
        .unwrap();
    let t = translate(&mem, &st(), true, 4, None, 0x7_0123, Access::WRITE).unwrap();
    assert_eq!(t.pa, 0xC000_0123);
    assert_eq!(t.vmid, 11);
    assert_eq!(t.asid, Some(7));
    assert_eq!(t.s1.unwrap().granule, Granule::K64);
    assert_eq!(t.s2.unwrap().level, 3);
    let purposes: Vec<_> = t
        .trace
        .iter()
        .filter_map(|e| match e.role {
            TraceRole::S2 {
                purpose,
                kind: StepKind::Leaf,
                ..
            } => Some(purpose),
            _ => None,
        })
        .collect();
    // CD fetch, S1 tables at levels 2 and 3, then the output.
    assert_eq!(
        purposes,
        vec![
            S2Purpose::Cd,
            S2Purpose::S1Table,
            S2Purpose::S1Table,
            S2Purpose::Output
        ]
    );
    // Trace order: each S1 read comes right after the S2 walk that located it.
    let pos_s1 = t
        .trace
        .iter()
        .position(|e| matches!(e.role, TraceRole::S1 { .. }))
        .unwrap();
    assert!(matches!(
        t.trace[pos_s1 - 1].role,
        TraceRole::S2 {
            purpose: S2Purpose::S1Table,
            ..
        }
    ));
    // S1 output IPA not mapped by stage 2: stage 2 fault, class IN.
    b1.map(&mut mem, 0x8_0000, 0x5000_0000, 3, &LeafSpec::S1)
        .unwrap();
    let f = translate(&mem, &st(), true, 4, None, 0x8_0000, Access::READ).unwrap_err();
    assert_eq!(
        (f.kind, f.stage, f.class, f.ipa),
        (
            FaultKind::Translation,
            Some(Stage::S2),
            Some(FaultClass::In),
            Some(0x5000_0000)
        )
    );
    // CD not mapped by stage 2: class CD.
    put_ste(
        &mut mem,
        4,
        &Ste::nested(0x3000_0000, 11, S2_ROOT, Granule::K4, 24, 1),
    );
    let f = translate(&mem, &st(), true, 4, None, 0, Access::READ).unwrap_err();
    assert_eq!(
        (f.kind, f.class),
        (FaultKind::Translation, Some(FaultClass::Cd))
    );
}

#[test]
fn stream_tables_linear_and_two_level() {
    let mut mem = Memory::new();
    // Linear, 2^4 SIDs.
    let lin = StreamTableConfig::linear(STRTAB, 4);
    mem.write_words(STRTAB + 3 * 64, &Ste::bypass().encode());
    let t = translate(&mem, &lin, true, 3, None, 0x1234_5678, Access::READ).unwrap();
    assert_eq!(t.pa, 0x1234_5678);
    let f = translate(&mem, &lin, true, 16, None, 0, Access::READ).unwrap_err();
    assert_eq!((f.kind, f.event_id()), (FaultKind::BadStreamId, Some(0x02)));
    // Bypass with an address above the OAS: stage 1 F_ADDR_SIZE (§3.4).
    let f = translate(&mem, &lin, true, 3, None, 1 << 50, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::AddrSize);
    // V == 0 and Config abort / reserved.
    let f = translate(&mem, &lin, true, 4, None, 0, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::BadSte);
    mem.write_words(STRTAB + 5 * 64, &Ste::abort().encode());
    let f = translate(&mem, &lin, true, 5, None, 0, Access::READ).unwrap_err();
    assert_eq!((f.kind, f.event_id()), (FaultKind::Aborted, None));
    let mut reserved = Ste::bypass();
    reserved.config_raw = 0b010;
    mem.write_words(STRTAB + 6 * 64, &reserved.encode());
    assert_eq!(
        translate(&mem, &lin, true, 6, None, 0, Access::READ)
            .unwrap_err()
            .kind,
        FaultKind::Aborted
    );

    // Two-level, SPLIT 6, 2^12 SIDs. L1[1] spans 8 STEs at 0x30_0000.
    let two = StreamTableConfig::two_level(0x40_0000, 12, 6);
    let two = StreamTableConfig::from_regs(two.strtab_base(), two.strtab_base_cfg());
    mem.write_u64(0x40_0000 + 8, L1Std::new(0x30_0000, 4).encode());
    mem.write_words(0x30_0000 + 2 * 64, &Ste::bypass().encode());
    let mut trace = Vec::new();
    let p = SmmuProfile::default();
    let t = translate_traced(
        &mem,
        &two,
        &p,
        64 + 2,
        None,
        0x1000,
        Access::READ,
        &mut trace,
    )
    .unwrap();
    assert_eq!(t.pa, 0x1000);
    assert!(matches!(t.trace[0].role, TraceRole::L1Std { sid: 66 }));
    assert_eq!(t.trace[0].pa, 0x40_0008);
    assert_eq!(t.trace[1].pa, 0x30_0080);
    // Beyond the span, an invalid L1STD, and beyond LOG2SIZE.
    for sid in [64 + 8, 0, 1 << 12] {
        let f = translate(&mem, &two, true, sid, None, 0, Access::READ).unwrap_err();
        assert_eq!(f.kind, FaultKind::BadStreamId, "sid {sid}");
    }
}

#[test]
fn cd_tables_and_substreams() {
    let p = SmmuProfile::default();
    for (fmt, cdmax) in [
        (CdFormat::Linear, 4u8),
        (CdFormat::TwoLevel4K, 8),
        (CdFormat::TwoLevel64K, 12),
        (CdFormat::TwoLevel4K, 3),
    ] {
        let mut mem = Memory::new();
        let ste = Ste::stage1(CD_BASE)
            .with_cd_table(fmt, cdmax)
            .with_s1dss(0b10);
        put_ste(&mut mem, 1, &ste);
        let ssid = (1u32 << cdmax) - 3;
        let cd_addr = match fmt.l2_bits() {
            None => CD_BASE + ssid as u64 * 64,
            Some(l2) => {
                let l2_table = 0x60_0000 + ((ssid >> l2) as u64) * 0x1_0000;
                mem.write_u64(
                    CD_BASE + ((ssid >> l2) as u64) * 8,
                    L1Cd::new(l2_table).encode(),
                );
                l2_table + ((ssid & ((1 << l2) - 1)) as u64) * 64
            }
        };
        let cd = Cd::new(ssid as u16, S1_ROOT, 25, Granule::K4);
        mem.write_words(cd_addr, &cd.encode());
        let mut b = s1_builder(&cd, TtbRegion::Ttb0);
        b.map(&mut mem, 0x20_0000, 0x8000_0000, 2, &LeafSpec::S1)
            .unwrap();
        let t = translate(&mem, &st(), true, 1, Some(ssid), 0x20_1000, Access::READ)
            .unwrap_or_else(|f| panic!("{fmt:?} {cdmax}: {f:?}"));
        assert_eq!(t.pa, 0x8000_1000);
        assert_eq!(t.asid, Some(ssid as u16));
        assert_eq!(t.cd_index, Some(ssid));
        let has_l1 = t
            .trace
            .iter()
            .any(|e| matches!(e.role, TraceRole::L1Cd { .. }));
        assert_eq!(has_l1, fmt.l2_bits().is_some());
        let fk = |mem: &Memory, ssid: Option<u32>| {
            translate(mem, &st(), true, 1, ssid, 0x20_1000, Access::READ)
                .map(|_| ())
                .unwrap_err()
                .kind
        };
        // Out of range SSID; SSID 0 with S1DSS 0b10; no SSID uses CD 0 which is invalid.
        assert_eq!(fk(&mem, Some(1 << cdmax)), FaultKind::BadSubstreamId);
        assert_eq!(fk(&mem, Some(0)), FaultKind::StreamDisabled);
        let k = fk(&mem, None);
        if fmt.l2_bits().is_some() && ssid >> fmt.l2_bits().unwrap() != 0 {
            assert_eq!(k, FaultKind::BadSubstreamId); // L1CD[0] invalid
        } else {
            assert_eq!(k, FaultKind::BadCd);
        }
        // S1DSS 0b00: no SSID terminates; 0b01: bypass stage 1.
        put_ste(&mut mem, 1, &ste.with_s1dss(0));
        assert_eq!(fk(&mem, None), FaultKind::StreamDisabled);
        put_ste(&mut mem, 1, &ste.with_s1dss(1));
        let t = translate(&mem, &st(), true, 1, None, 0x20_1000, Access::READ).unwrap();
        assert_eq!(t.pa, 0x20_1000);
        assert!(t.s1.is_none());
        let _ = &p;
    }
    // Single-CD STE with a SubstreamID.
    let (mem, _, _) = s1_setup(Granule::K4, 25);
    let f = translate(&mem, &st(), true, 1, Some(0), 0, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::BadSubstreamId);
}

#[test]
fn bad_cd() {
    let (mut mem, cd, _) = s1_setup(Granule::K4, 25);
    for bad in [
        cd.with_valid(false),
        Cd { aa64: false, ..cd },
        Cd { tg0: 3, ..cd },
        Cd { t0sz: 10, ..cd },
        Cd { ha: true, ..cd },
        Cd {
            ttb0: 1 << 50,
            ..cd
        },
    ] {
        mem.write_words(CD_BASE, &bad.encode());
        let f = translate(&mem, &st(), true, 1, None, 0, Access::READ).unwrap_err();
        assert_eq!(
            (f.kind, f.event_id()),
            (FaultKind::BadCd, Some(0x0A)),
            "{bad:?}"
        );
        assert!(f.bad_cd.is_some());
    }
    // A reserved TG0 does not matter with EPD0 = 1: the walk faults instead.
    mem.write_words(
        CD_BASE,
        &Cd {
            tg0: 3,
            epd0: true,
            ..cd
        }
        .encode(),
    );
    let f = translate(&mem, &st(), true, 1, None, 0, Access::READ).unwrap_err();
    assert_eq!(f.kind, FaultKind::Translation);
}

#[test]
fn el2_stream_world() {
    let (mut mem, _cd, mut b) = s1_setup(Granule::K4, 25);
    put_ste(
        &mut mem,
        1,
        &Ste::stage1(CD_BASE).with_strw(0b10).with_vmid(3),
    );
    b.map(
        &mut mem,
        0x1000,
        0x8000_1000,
        3,
        &LeafSpec::S1.ng(true).ap(0b00),
    )
    .unwrap();
    let t = translate(&mem, &st(), true, 1, None, 0x1000, Access::WRITE).unwrap();
    assert_eq!(t.stream_world, StreamWorld::NsEl2);
    assert_eq!((t.asid, t.vmid, t.global), (None, 0, true));
    put_ste(&mut mem, 1, &Ste::stage1(CD_BASE).with_strw(0b01));
    assert_eq!(
        translate(&mem, &st(), true, 1, None, 0x1000, Access::READ)
            .unwrap_err()
            .kind,
        FaultKind::BadSte
    );
}

#[test]
fn external_abort_on_fetch() {
    struct Aborting(Memory, u64);
    impl MemRead for Aborting {
        fn read_u64(&self, pa: u64) -> u64 {
            self.0.read_u64(pa)
        }
        fn try_read_u64(&self, pa: u64) -> Option<u64> {
            (pa & !0xfff != self.1).then(|| self.0.read_u64(pa))
        }
    }
    let (mut mem, _, mut b) = s1_setup(Granule::K4, 25);
    b.map(&mut mem, 0x1000, 0x8000_1000, 3, &LeafSpec::S1)
        .unwrap();
    let leaf_table = b.leaf_address(&mem, 0x1000, 3).unwrap() & !0xfff;
    let kind = |page| {
        translate(
            &Aborting(mem.clone(), page),
            &st(),
            true,
            1,
            None,
            0x1000,
            Access::READ,
        )
        .unwrap_err()
        .kind
    };
    assert_eq!(kind(STRTAB), FaultKind::SteFetch);
    assert_eq!(kind(CD_BASE), FaultKind::CdFetch);
    assert_eq!(kind(leaf_table), FaultKind::WalkEabt);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random page mappings built with the encoder walk back to the mapped PAs.
    #[test]
    fn random_mappings_walk_back(
        gi in 0usize..3,
        t0sz in 16u8..=39,
        pages in proptest::collection::btree_map(0u64..(1 << 20), 0u64..(1 << 20), 1..40),
    ) {
        let g = Granule::ALL[gi];
        let (mut mem, _cd, mut b) = s1_setup(g, t0sz);
        let in_mask = (1u64 << (64 - t0sz)) - 1;
        let mut expect = std::collections::BTreeMap::new();
        for (vpn, ppn) in &pages {
            let va = (vpn << g.shift()) & in_mask;
            let pa = (ppn << g.shift()) | 0x1_0000_0000;
            b.map(&mut mem, va, pa, 3, &LeafSpec::S1).unwrap();
            expect.insert(va, pa);
        }
        for (va, pa) in expect {
            let t = translate(&mem, &st(), true, 1, None, va + 8, Access::WRITE).unwrap();
            prop_assert_eq!(t.pa, pa + 8);
            prop_assert_eq!(t.s1.unwrap().level, 3);
        }
    }

    /// Garbage in the configuration and table area never panics (translate, and the model's
    /// reachability and allowed-set enumeration over it).
    #[test]
    fn garbage_never_panics(
        words in proptest::collection::vec((0u64..0x400, any::<u64>()), 0..200),
        sid in 0u32..8, ssid in proptest::option::of(0u32..64), va in any::<u64>(),
        two_level in any::<bool>(),
    ) {
        let mut mem = Memory::new();
        for (i, w) in words {
            // Spread over the stream table, CD and table areas.
            let base = [STRTAB, CD_BASE, S1_ROOT, S2_ROOT][(i % 4) as usize];
            mem.write_u64(base + (i / 4) * 8, w);
        }
        let st = if two_level { StreamTableConfig::two_level(STRTAB, 5, 2) } else { StreamTableConfig::linear(STRTAB, 3) };
        for s2 in [true, false] {
            let _ = translate(&mem, &st, s2, sid, ssid, va, Access::WRITE);
        }
        let mut m = smmu_model::oracle::Model::new(smmu_model::profile::Profile::named("smmuv3.4-full").unwrap());
        m.set_stream_table(st);
        m.set_smmuen(true);
        for (pa, v) in mem.iter() {
            m.write_u64(pa, v);
        }
        let _ = m.allowed(&smmu_model::oracle::Probe { sid, ssid, addr: va, write: false });
    }
}

#[test]
fn hierarchical_permissions() {
    let (mut mem, cd, mut b) = s1_setup(Granule::K4, 25);
    b.map(&mut mem, 0x1000, 0x8000_1000, 3, &LeafSpec::S1)
        .unwrap();
    // Set APTable[1] (bit 62, read-only) in the level-2 table descriptor.
    let l2 = b.leaf_address(&mem, 0x1000, 2).unwrap();
    mem.write_u64(l2, mem.read_u64(l2) | 1 << 62);
    assert!(translate(&mem, &st(), true, 1, None, 0x1000, Access::READ).is_ok());
    let f = translate(&mem, &st(), true, 1, None, 0x1000, Access::WRITE).unwrap_err();
    assert_eq!(f.kind, FaultKind::Permission);
    // CD.HAD0 disables hierarchical attributes.
    mem.write_words(CD_BASE, &Cd { had0: true, ..cd }.encode());
    assert!(translate(&mem, &st(), true, 1, None, 0x1000, Access::WRITE).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Bit flips in any word a valid nested translation reads never panic, and every fault
    /// names an event or the no-event abort.
    #[test]
    fn mutated_nested_config_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u32..8, any::<u64>()), 1..4),
        va in 0u64..0x10_0000, write in any::<bool>(), ssid in proptest::option::of(0u32..4),
    ) {
        let (mut mem, mut b1) = nested_setup();
        b1.map(&mut mem, 0x7_0000, 0x4000_0000, 3, &LeafSpec::S1).unwrap();
        let t = translate(&mem, &st(), true, 4, None, 0x7_0000, Access::READ).unwrap();
        for (idx, word, mask) in flips {
            let e = &t.trace[idx.index(t.trace.len())];
            let pa = e.pa + 8 * (word as u64 % if matches!(e.raw, smmu_model::walk::Raw::Struct(_)) { 8 } else { 1 });
            mem.write_u64(pa, mem.read_u64(pa) ^ mask);
        }
        let a = if write { Access::WRITE } else { Access::READ };
        match translate(&mem, &st(), true, 4, ssid, va, a) {
            Ok(t) => prop_assert!(t.pa >> 48 == 0),
            Err(f) => prop_assert!(f.event_id().is_some() || f.kind == FaultKind::Aborted),
        }
    }
}
