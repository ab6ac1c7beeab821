//! The trace builder produces structures the model translates as intended.
use smmu_conform::build::TraceBuilder;
use smmu_conform::trace::Step;
use smmu_model::granule::Granule;
use smmu_model::oracle::enumerate::Outcome;
use smmu_model::oracle::{Model, Probe};
use smmu_model::profile::Profile;
use smmu_model::structures::StreamTableConfig;
use smmu_model::tables::LeafSpec;
use smmu_model::walk::Stage;

fn fresh(b: &TraceBuilder, profile: &str, sid: u32, addr: u64) -> Option<Outcome> {
    let mut m = Model::new(Profile::named(profile).unwrap());
    for s in &b.trace.steps {
        match s {
            Step::Write { pa, value } => m.write_u64(*pa, *value),
            Step::StreamTable { base, cfg } => {
                m.set_stream_table(StreamTableConfig::from_regs(*base, *cfg))
            }
            Step::Enable { on } => m.set_smmuen(*on),
            _ => {}
        }
    }
    m.fresh(&Probe {
        sid,
        ssid: None,
        addr,
        write: false,
    })
}

#[test]
fn stage1_stage2_and_nested_streams_translate() {
    for g in [Granule::K4, Granule::K16, Granule::K64] {
        let mut b = TraceBuilder::new();
        let mut s = b.s1_stream(8, 1, 0, g).unwrap();
        let pa = b.data(g.size()).unwrap();
        b.map(&mut s, Stage::S1, 0x10_0000, pa, 3, &LeafSpec::S1)
            .unwrap();
        b.enable();
        assert_eq!(
            fresh(&b, "qemu-10.0", 8, 0x10_0000 + 8),
            Some(Outcome::Translated { pa: pa + 8 }),
            "{g:?}"
        );
    }
    let mut b = TraceBuilder::new();
    let mut s = b.s2_stream(3, 5).unwrap();
    let pa = b.data(0x1000).unwrap();
    b.map(&mut s, Stage::S2, 0x20_0000, pa, 3, &LeafSpec::S2)
        .unwrap();
    assert_eq!(
        fresh(&b, "qemu-10.0", 3, 0x20_0010),
        Some(Outcome::Translated { pa: pa + 0x10 })
    );

    let mut b = TraceBuilder::new();
    let mut s = b.nested_stream(4, 7, 9, Granule::K4).unwrap();
    let pa = b.data(0x1000).unwrap();
    // Stage 1 maps VA 0x30_0000 to IPA == PA (stage 2 is 1:1 over RAM).
    b.map(&mut s, Stage::S1, 0x30_0000, pa, 3, &LeafSpec::S1)
        .unwrap();
    assert_eq!(
        fresh(&b, "qemu-10.0", 4, 0x30_0000),
        Some(Outcome::Translated { pa })
    );
}
