//! Full probes per second on one QEMU process through the qtest backend: each probe writes the
//! PTE (alternating between two pages), issues TLBI_NH_VA + CMD_SYNC, runs the lsi DMA and
//! reads the result back, and checks it reached the page just mapped.
//!
//! Two ways, both through the `Device` trait: one step per call (`write`, `submit`, `probe`:
//! two qtest round trips per probe), and `run_steps` with BATCH full probes (3 steps each) per
//! call, as the harness hands a trace's runs of writes, submissions and probes over.
//!
//! `cargo run --release -p smmu-conform --example qemu_probe_rate -- [BINARY] [MACHINE] [N] [BATCH]`

use smmu_conform::backend::qemu::QemuDevice;
use smmu_conform::backend::{Device, StepOutcome};
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
    let batch: usize = args.get(4).map_or(Ok(64), |s| s.parse())?;

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
    let expect = |i: usize, o: &Observation| -> Result<(), String> {
        let k = i % 2;
        if *o
            != (Observation::Translated {
                pa: pages[k] + 0x40,
            })
        {
            return Err(format!("probe {i}: {o:?}, expected page {:#x}", pages[k]));
        }
        Ok(())
    };
    let pid = d.pid();
    let (cpu0, q0) = (process_cpu(std::process::id()), process_cpu(pid));
    let start = Instant::now();
    for i in 0..n {
        let k = i % 2;
        d.write(pte, descs[k])?;
        d.submit(&[tlbi, sync])?;
        let o = d.probe(&probe)?;
        expect(i, &o)?;
    }
    let one = start.elapsed();
    let one_cpu = process_cpu(std::process::id()) - cpu0;
    let one_qemu = process_cpu(pid) - q0;

    let (cpu0, q0) = (process_cpu(std::process::id()), process_cpu(pid));
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        let mut steps = Vec::with_capacity(3 * m);
        for j in i..i + m {
            steps.push(Step::write(pte, descs[j % 2]));
            steps.push(Step::submit([tlbi, sync]));
            steps.push(Step::probe(probe.sid, probe.addr));
        }
        let out = d.run_steps(&steps)?;
        for (j, o) in out.chunks(3).enumerate() {
            match &o[2] {
                StepOutcome::Probe(o) => expect(i + j, o)?,
                o => return Err(format!("probe {}: {o:?}", i + j).into()),
            }
        }
        i += m;
    }
    let batched = start.elapsed();
    let batched_cpu = process_cpu(std::process::id()) - cpu0;
    let batched_qemu = process_cpu(pid) - q0;
    println!(
        "{} {machine}: spawn {:.1} ms, reset {:.1} ms, {n} full probes",
        bin.display(),
        spawn.as_secs_f64() * 1e3,
        reset.as_secs_f64() * 1e3,
    );
    for (what, wall, client, qemu) in [
        ("one step per call", one, one_cpu, one_qemu),
        (
            &format!("{batch} per run_steps"),
            batched,
            batched_cpu,
            batched_qemu,
        ),
    ] {
        println!(
            "  {what:<20} {:.2} s wall = {:>6.0} probes/s; QEMU CPU {:.2} s = {:>6.0} probes per QEMU CPU-second; client CPU (all threads) {:.2} s",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            qemu,
            n as f64 / qemu.max(1e-9),
            client
        );
    }
    Ok(())
}

/// A process's CPU time in seconds, all its threads (QEMU's, or this client's with its
/// reader threads).
fn process_cpu(pid: u32) -> f64 {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

fn stat_cpu(path: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
            let t = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(t / 100.0)
        })
        .unwrap_or(0.0)
}
