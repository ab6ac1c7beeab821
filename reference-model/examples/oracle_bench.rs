//! Cost of the oracle as histories grow (issue: "cost does not grow with a command's range").
//!
//! 1. 100 000 stale TLB entries (a 64K-granule table of 100 000 pages detached by one CD write),
//!    then the largest range TLBI (TG=64K, NUM=31, SCALE=31: 2^52 bytes) is applied, and the SYNC
//!    that completes it.
//! 2. Allowed-set queries against that state, averaged.
//! 3. A long history (remap, TLBI, SYNC, probe, repeated) with the stale-set size and the
//!    process's resident memory sampled, to show memory stays bounded.
//!
//! Run: `cargo run --release -p smmu-model --example oracle_bench`

use smmu_model::command::{AddrInval, Command, RangeFields};
use smmu_model::granule::Granule;
use smmu_model::oracle::{Model, Observation, Probe};
use smmu_model::profile::Profile;
use smmu_model::structures::{Cd, Ste, StreamTableConfig};
use smmu_model::tables::{leaf_descriptor, table_descriptor, LeafSpec};
use smmu_model::walk::Stage;
use std::time::Instant;

const PAGES: u64 = 100_000;
const ST: u64 = 0x4020_0000;
const CD: u64 = 0x4021_0000;
const L2: u64 = 0x4030_0000;
const L3: u64 = 0x4040_0000;
const EMPTY: u64 = 0x4800_0000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let g = Granule::K64;
    let mut m = Model::new(Profile::named("qemu-7.2").expect("profile"));
    m.set_stream_table(StreamTableConfig::linear(ST, 4));
    // 64K granule, 42-bit VA: walk starts at level 2 (8192-entry tables of 512 MiB each).
    let cd = Cd::new(1, L2, 22, g);
    m.write_words(CD, &cd.encode());
    m.write_words(ST + 8 * 64, &Ste::stage1(CD).encode());
    let per_table = 8192u64;
    let tables = PAGES.div_ceil(per_table);
    for t in 0..tables {
        m.write_u64(L2 + 8 * t, table_descriptor(L3 + t * 0x10000));
    }
    let t0 = Instant::now();
    for i in 0..PAGES {
        let pte = L3 + (i / per_table) * 0x10000 + 8 * (i % per_table);
        let spec = LeafSpec::S1.ng(true);
        m.write_u64(
            pte,
            leaf_descriptor(g, 3, 0x1_0000_0000 + i * 0x10000, &spec, Stage::S1),
        );
    }
    println!("setup: {PAGES} page mappings written in {:?}", t0.elapsed());
    m.set_smmuen(true);
    // Point the CD at an empty table: every old entry becomes a stale, still-cacheable entry.
    let t0 = Instant::now();
    let new_cd = Cd::new(1, EMPTY, 22, g);
    m.write_u64(CD + 8, new_cd.encode()[1]);
    println!(
        "detach: {} stale TLB entries created by one CD write in {:?}",
        m.stale().tlb_len(),
        t0.elapsed()
    );

    let probe = |va: u64| Probe {
        sid: 8,
        ssid: None,
        addr: va,
        write: false,
    };
    // Queries before the invalidation: stale results are allowed.
    let n = 20_000u64;
    let t0 = Instant::now();
    let mut ok = 0;
    for i in 0..n {
        let va = (i * 7919 % PAGES) * 0x10000;
        let obs = Observation::Translated {
            pa: 0x1_0000_0000 + va,
        };
        ok += m.check(&probe(va), &obs).is_ok() as u64;
    }
    let q = t0.elapsed();
    println!(
        "query: {n} allowed-set checks against {} stale entries, {:.2} us each ({ok} accepted)",
        m.stale().tlb_len(),
        q.as_secs_f64() * 1e6 / n as f64
    );

    // The largest range TLBI: TG=64K, NUM=31, SCALE=31 covers 2^52 bytes.
    let tlbi = Command::TlbiNhVa {
        vmid: 0,
        asid: 1,
        inv: AddrInval {
            addr: 0,
            leaf: false,
            range: RangeFields {
                tg: 3,
                ttl: 0,
                ttl128: false,
                num: 31,
                scale: 31,
            },
        },
    };
    let t0 = Instant::now();
    let covered = m.consume(tlbi.encode()).expect("legal");
    let apply = t0.elapsed();
    let t0 = Instant::now();
    m.consume(Command::sync().encode()).expect("legal");
    let sync = t0.elapsed();
    println!(
        "largest range TLBI over 100000 entries: applied in {apply:?} ({covered} covered), SYNC completed in {sync:?}; {} stale entries left",
        m.stale().tlb_len()
    );

    // Memory stays bounded: a long history of remaps, invalidations and probes on a few pages.
    let pte0 = L3;
    let mut m2 = Model::new(Profile::named("qemu-7.2").expect("profile"));
    m2.set_stream_table(StreamTableConfig::linear(ST, 4));
    m2.write_words(CD, &cd.encode());
    m2.write_words(ST + 8 * 64, &Ste::stage1(CD).encode());
    m2.write_u64(L2, table_descriptor(L3));
    m2.write_u64(
        pte0,
        leaf_descriptor(g, 3, 0x1_0000_0000, &LeafSpec::S1, Stage::S1),
    );
    m2.set_smmuen(true);
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let rounds = 200_000u64;
    for i in 0..rounds {
        let page = i % 64;
        m2.write_u64(
            pte0 + 8 * page,
            leaf_descriptor(
                g,
                3,
                0x1_0000_0000 + (i % 1024) * 0x10000,
                &LeafSpec::S1,
                Stage::S1,
            ),
        );
        if i % 4 == 3 {
            let va = page * 0x10000;
            let inv = Command::TlbiNhVaa {
                vmid: 0,
                inv: AddrInval {
                    addr: va,
                    leaf: true,
                    range: RangeFields::default(),
                },
            };
            m2.consume(inv.encode()).expect("legal");
            m2.consume(Command::sync().encode()).expect("legal");
            let _ = m2.check(&probe(va), &Observation::Translated { pa: 0 });
        }
        if i % 50_000 == 49_999 {
            println!(
                "history: {} events, {} stale entries, RSS {} KiB (start {} KiB)",
                i + 1,
                m2.stale().tlb_len(),
                rss_kib(),
                rss0
            );
        }
    }
    println!(
        "history: {rounds} writes with invalidations in {:?}",
        t0.elapsed()
    );
}
