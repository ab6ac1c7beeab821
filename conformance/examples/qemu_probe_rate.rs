//! Full probes per second on one QEMU process through the qtest backend: each probe writes the
//! PTE (alternating between two pages), issues TLBI_NH_VA + CMD_SYNC, runs the lsi DMA and
//! reads the result back, and checks it reached the page just mapped.
//!
//! `cargo run --release -p smmu-conform --example qemu_probe_rate -- [BINARY] [MACHINE] [N]`

use smmu_conform::backend::qemu::QemuDevice;
use smmu_conform::backend::Device;
use smmu_conform::build::TraceBuilder;
use smmu_conform::trace::Step;
use smmu_model::command::RawCommand;
use smmu_model::granule::Granule;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::tables::{leaf_descriptor, LeafSpec};
use smmu_model::walk::Stage;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(args.get(1).map_or("/usr/bin/qemu-system-aarch64", |s| s));
    let machine = args.get(2).map_or("virt", |s| s);
    let n: usize = args.get(3).map_or(Ok(20_000), |s| s.parse())?;

    let t0 = Instant::now();
    let mut d = QemuDevice::spawn(&bin, machine, Duration::from_secs(5))?;
    let spawn = t0.elapsed();

    let mut b = TraceBuilder::new();
    let mut s = b.s1_stream(0x10, 1, 0, Granule::K4)?;
    let pages = [b.data(0x1000)?, b.data(0x1000)?];
    let va = 0x10_0000;
    let pte = b.map(&mut s, Stage::S1, va, pages[0], 3, &LeafSpec::S1)?;
    b.enable();
    let t1 = Instant::now();
    d.reset()?;
    let reset = t1.elapsed();
    for step in &b.finish().steps {
        match step {
            Step::Write { pa, value } => d.write(*pa, *value)?,
            Step::StreamTable { base, cfg } => d.stream_table(*base, *cfg)?,
            Step::Enable { on } => d.enable(*on)?,
            _ => {}
        }
    }
    let descs = pages.map(|p| leaf_descriptor(Granule::K4, 3, p, &LeafSpec::S1, Stage::S1));
    // Both pages need their tags: probe each once before timing.
    let tlbi = RawCommand::new(0x12 | (1 << 48), va | 1);
    let sync = RawCommand::new(0x46, 0);
    let probe = Probe {
        sid: 0x10,
        ssid: None,
        addr: va + 0x40,
        write: false,
    };
    let start = Instant::now();
    for i in 0..n {
        let k = i % 2;
        d.write(pte, descs[k])?;
        d.submit(&[tlbi, sync])?;
        let o = d.probe(&probe)?;
        if o != (Observation::Translated {
            pa: pages[k] + 0x40,
        }) {
            return Err(format!("probe {i}: {o:?}, expected page {:#x}", pages[k]).into());
        }
    }
    let el = start.elapsed();
    println!(
        "{} {machine}: spawn {:.1} ms, reset {:.1} ms, {n} full probes in {:.2} s = {:.0} probes/s",
        bin.display(),
        spawn.as_secs_f64() * 1e3,
        reset.as_secs_f64() * 1e3,
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );
    Ok(())
}
