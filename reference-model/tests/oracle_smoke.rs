use smmu_model::command::{AddrInval, Command};
use smmu_model::granule::Granule;
use smmu_model::memory::Memory;
use smmu_model::oracle::{Accepted, Model, Observation, Probe};
use smmu_model::profile::Profile;
use smmu_model::structures::{Cd, Ste, StreamTableConfig};
use smmu_model::tables::{leaf_descriptor, LeafSpec, PageTableBuilder};
use smmu_model::walk::{Stage, WalkParams};

#[test]
fn stale_allowed_until_sync_then_forbidden() {
    let p = Profile::named("qemu-7.2").unwrap();
    let mut m = Model::new(p);
    let st_base = 0x4010_0000u64;
    m.set_stream_table(StreamTableConfig::linear(st_base, 5));
    let cd_pa = 0x4020_0000u64;
    let ttb = 0x4030_0000u64;
    let cd = Cd::new(1, ttb, 25, Granule::K4);
    m.write_words(cd_pa, &cd.encode());
    m.write_words(st_base + 8 * 64, &Ste::stage1(cd_pa).encode());
    // Page tables through the builder on a scratch memory, then copied in as writes.
    let params = WalkParams::new(Stage::S1, Granule::K4, 39, 1, ttb);
    let mut scratch = Memory::new();
    let mut b = PageTableBuilder::new(params, 0x4040_0000);
    b.map(&mut scratch, 0x10000, 0x5000_0000, 3, &LeafSpec::S1)
        .unwrap();
    for (pa, v) in scratch.iter() {
        m.write_u64(pa, v);
    }
    m.set_smmuen(true);
    let probe = Probe {
        sid: 8,
        ssid: None,
        addr: 0x10000,
        write: false,
    };
    assert_eq!(
        m.check(&probe, &Observation::Translated { pa: 0x5000_0000 })
            .unwrap(),
        Accepted::Fresh
    );
    // Remap to another PA.
    let pte_pa = b.leaf_address(&scratch, 0x10000, 3).unwrap();
    m.write_u64(
        pte_pa,
        leaf_descriptor(Granule::K4, 3, 0x5100_0000, &LeafSpec::S1, Stage::S1),
    );
    assert_eq!(
        m.check(&probe, &Observation::Translated { pa: 0x5100_0000 })
            .unwrap(),
        Accepted::Fresh
    );
    assert_eq!(
        m.check(&probe, &Observation::Translated { pa: 0x5000_0000 })
            .unwrap(),
        Accepted::Stale
    );
    // TLBI for another ASID does not cover a non-global entry... but this one is global.
    let tlbi = Command::TlbiNhVa {
        vmid: 0,
        asid: 2,
        inv: AddrInval {
            addr: 0x10000,
            leaf: true,
            range: Default::default(),
        },
    };
    m.consume(tlbi.encode()).unwrap();
    // Before SYNC both are allowed.
    assert!(m
        .check(&probe, &Observation::Translated { pa: 0x5000_0000 })
        .is_ok());
    m.consume(Command::sync().encode()).unwrap();
    let v = m
        .check(&probe, &Observation::Translated { pa: 0x5000_0000 })
        .unwrap_err();
    println!("{v}");
    assert_eq!(v.rule.section.chars().next(), Some('§'));
    assert!(m
        .check(&probe, &Observation::Translated { pa: 0x5100_0000 })
        .is_ok());
}
